"""Read-only live views of one field of the method records, for the names older code imports.

``TRAIN_PRESETS``, ``PREDICT_PRESETS`` (:mod:`course_tools.presets`) and ``SEARCH_SPACES``
(:mod:`course_tools.tuning`) are such views: the records (:class:`~course_tools.methods.MethodSpec`)
define the values, so a method registered or removed later shows up or disappears in every view.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def _plain(value: Any) -> Any:
    return {k: _plain(v) for k, v in value.items()} if isinstance(value, Mapping) else value


class SpecFieldView(Mapping):
    """Live read-only view ``method -> spec.<field>`` of the method records whose field is not empty."""

    def __init__(self, field: str, name: str) -> None:
        self._field = field
        self._name = name

    def _table(self) -> dict[str, Any]:
        from course_tools.methods import SPECS

        return {m: getattr(spec, self._field) for m, spec in SPECS.items() if getattr(spec, self._field)}

    def __getitem__(self, method: str) -> Any:
        return self._table()[method]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return f"{self._name}({_plain(self._table())})"
