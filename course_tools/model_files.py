"""Saving a trained model to a directory and loading it back.

``save_model(model, dir)`` writes ``model.pt`` (the module's weights) and ``settings.json``
(hyperparameters, keys, genes, training history, the weights' SHA-256); ``load_model(SCGEN, dir,
adata)`` rebuilds the model on ``adata`` (same genes, same order). Both files are written to
``.part`` files and renamed into place, so a save killed half-way leaves no truncated file; a
full disk raises ``OSError`` (``ENOSPC``) naming the directory, and a model saved there before
stays intact. A missing, truncated or inconsistent directory raises ``ValueError``
(``FileNotFoundError`` for a missing file) naming it; a gene mismatch raises ``DataValidationError``.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import json
import math
import os
from pathlib import Path

import torch
from anndata import AnnData

from tutorial_lib.data.checks import DataValidationError
from tutorial_lib.models.base import BaseModel
from tutorial_lib.models.vae import TrainingHistory

WEIGHTS_FILE, SETTINGS_FILE = "model.pt", "settings.json"


def _map_values(d: dict, fn) -> dict:
    """``d`` with ``fn`` applied to every element of its lists (nested dicts too)."""
    out = {}
    for k, v in d.items():
        out[k] = _map_values(v, fn) if isinstance(v, dict) else [fn(x) for x in v] if isinstance(v, list) else v
    return out


def history_to_dict(history: TrainingHistory) -> dict:
    """JSON-serialisable form of a training history (NaN written as ``None``)."""
    return _map_values(dataclasses.asdict(history), lambda x: None if isinstance(x, float) and math.isnan(x) else x)


def history_from_dict(d: dict) -> TrainingHistory:
    """Inverse of :func:`history_to_dict`."""
    return TrainingHistory(**_map_values(d, lambda x: math.nan if x is None else x))


def save_model(model: BaseModel, dir_path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``model`` to ``dir_path`` (see the module docstring); returns the directory."""
    path = Path(dir_path)
    if not overwrite and (path / WEIGHTS_FILE).exists():
        raise FileExistsError(f"{path / WEIGHTS_FILE} exists; pass overwrite=True to replace it")
    path.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.module.state_dict().items()}, buffer)
    weights = buffer.getvalue()  # serialised in memory: torch's own file writer reports a full disk without saying so
    settings = {
        "model": type(model).__name__,
        "condition_key": model.condition_key,
        "cell_type_key": model.cell_type_key,
        "module_kwargs": model.module_kwargs,
        "var_names": list(model.var_names),
        "is_trained": model.is_trained,
        "history": history_to_dict(model.history_),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    parts = {
        path / (WEIGHTS_FILE + ".part"): weights,
        path / (SETTINGS_FILE + ".part"): json.dumps(settings, indent=1).encode(),
    }
    try:
        for part, data in parts.items():
            with open(part, "wb") as fh:
                fh.write(data)
    except BaseException as err:
        for part in parts:
            part.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise OSError(
                err.errno,
                f"no space left on the device to save the model to {path} ({os.strerror(err.errno)}); need "
                f"about {sum(map(len, parts.values())) / 2**20:.1f} MiB. The partial files were removed; a model "
                "saved there before is unchanged. Free some space or save elsewhere",
            ) from err
        raise
    for part in parts:  # weights first
        os.replace(part, part.with_suffix(""))
    return path


def load_model(cls: type[BaseModel], dir_path: str | Path, adata: AnnData, *, device: str | None = None) -> BaseModel:
    """A ``cls`` saved by :func:`save_model`, attached to ``adata``; weights read with ``weights_only=True``."""
    path = Path(dir_path)
    where = f"cannot load a {cls.__name__} from {path}"
    for name in (SETTINGS_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            found = sorted(p.name for p in path.iterdir()) if path.is_dir() else None
            raise FileNotFoundError(
                f"{where}: {'the directory does not exist' if found is None else f'no {name} (found {found})'}; "
                "expected a directory written by save_model()"
            )
    try:
        settings = json.loads((path / SETTINGS_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{where}: {SETTINGS_FILE} is unreadable or truncated ({err})") from err
    kinds = {"model": str, "condition_key": str, "cell_type_key": str, "module_kwargs": dict}
    kinds |= {"var_names": list, "is_trained": bool, "history": dict}
    wrong = [k for k, t in kinds.items() if not isinstance(settings, dict) or not isinstance(settings.get(k), t)]
    if wrong:
        raise ValueError(f"{where}: {SETTINGS_FILE} lacks or has malformed entries {wrong}")
    if settings["model"] != cls.__name__:
        raise ValueError(f"{where}: it holds a {settings['model']}, not a {cls.__name__}")
    problem = _history_problem(settings["history"], settings["is_trained"])
    if problem:
        raise ValueError(f"{where}: {SETTINGS_FILE} holds a malformed training history ({problem}); save it again")
    if list(map(str, adata.var_names)) != list(settings["var_names"]):
        raise DataValidationError(
            f"adata's genes differ from the saved model's in {path} ({adata.n_vars} vs "
            f"{len(settings['var_names'])} genes, or another order); subset adata to the training genes"
        )
    keys = {"condition_key": settings["condition_key"], "cell_type_key": settings["cell_type_key"]}
    try:
        model = cls(adata, **keys, device=device, **settings["module_kwargs"])
    except DataValidationError:
        raise  # a problem of adata, reported as such
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: its settings do not build a model ({err})") from err
    digest = settings.get("weights_sha256")
    if digest is not None and hashlib.sha256((path / WEIGHTS_FILE).read_bytes()).hexdigest() != digest:
        raise ValueError(
            f"{where}: {WEIGHTS_FILE} is not the file {SETTINGS_FILE} was saved with (SHA-256 differs); "
            "save the model again"
        )
    try:
        model.module.load_state_dict(torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True))
    except Exception as err:  # truncated zip, unpickling, shape mismatch, ...
        first = str(err).splitlines()[0] if str(err) else ""
        raise ValueError(
            f"{where}: {WEIGHTS_FILE} is truncated or does not match {SETTINGS_FILE} ({type(err).__name__}: {first})"
        ) from err
    model.module.eval()
    model.is_trained, model.history_ = settings["is_trained"], history_from_dict(settings["history"])
    return model


def _history_problem(saved: dict, is_trained: bool) -> str | None:
    """What is wrong with a saved training history, or ``None``.

    Columns are lists of numbers (``None`` for NaN) with one value per row or none (a term the
    module does not report); a trained model has at least one row.
    """
    scalars = {"best_epoch": (int, float, type(None)), "best_step": (int, type(None)), "stopped_early": (bool,)}
    unknown = sorted(set(saved) - {f.name for f in dataclasses.fields(TrainingHistory)})
    if unknown:
        return f"unknown entries {unknown}"
    if not isinstance(saved.get("epoch"), list):
        return "no list 'epoch'"
    n_rows = len(saved["epoch"])
    if is_trained and n_rows == 0:
        return "no rows, but the model was saved as trained"
    for name, kinds in scalars.items():
        value = saved.get(name)
        if name in saved and (not isinstance(value, kinds) or (isinstance(value, bool) and kinds != (bool,))):
            return f"{name} is {value!r}"
    terms = saved.get("terms", {})
    if not isinstance(terms, dict):
        return f"terms is {terms!r}, not a dict"
    for name, values in ({k: v for k, v in saved.items() if k not in scalars and k != "terms"} | terms).items():
        if not isinstance(values, list):
            return f"column {name!r} is {values!r}, not a list"
        if len(values) not in (0, n_rows):
            return f"column {name!r} has {len(values)} values for {n_rows} rows"
        bad = [x for x in values if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float)))]
        if bad:
            return f"column {name!r} holds {bad[0]!r}, not a number"
    return None
