"""Execute the course notebooks and record how; check that committed outputs are publishable.

The book shows the outputs stored in the notebooks (it does not execute them), so they must come
from one in-order run in full mode on the full data. :func:`execute_notebook` runs a notebook
top to bottom in a fresh kernel with ``TUTORIAL_FAST`` set, and stores the run's mode, date,
wall time, machine (CPU, cores, PyTorch threads, device), the machine's load during the run and
the library versions in ``metadata["tutorial_execution"]``; the notebook file is replaced only when
every cell succeeded (written to a ``.part`` file first, then renamed), so a failed run leaves the
previous outputs intact. ``metadata["tutorial_timings"]`` keeps the latest timing of each mode:
a full run in place sets its ``"full"`` entry, and ``--time-only`` runs a notebook on a throwaway
copy to time it (its ``"fast"`` entry, say) without touching the stored outputs. The pages that
quote run times read them from there (:mod:`course_tools.run_times`). :func:`execution_problems` lists what makes a
notebook unfit to publish: a code cell not executed, cells executed out of order, an error
output, no record of the run, or a record whose mode differs from the mode the notebook itself
printed (``mode: full`` from :func:`tutorial_lib.config.setup_notebook`).

Command line (what ``scripts/run_course.sh notebooks`` runs)::

    python -m course_tools.execution [--mode full|fast] [--timeout S] notebooks/*.ipynb
    python -m course_tools.execution --time-only --mode fast notebooks/*.ipynb
    python -m course_tools.execution --check notebooks/*.ipynb
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Notebook metadata key of the execution record.
RECORD_KEY = "tutorial_execution"
#: Notebook metadata key of the latest timing per mode (``{"full": {...}, "fast": {...}}``).
TIMINGS_KEY = "tutorial_timings"
#: Fields of a record that describe the timing (copied into ``TIMINGS_KEY``).
TIMING_FIELDS = ("date", "wall_s", "cpu_model", "cpu_count", "torch_threads", "device", "load_start", "load_mean")
MODES = ("full", "fast")
_MODE_LINE = re.compile(r"^mode: (\w+)", re.MULTILINE)


@contextmanager
def _fast_env(mode: str):
    """``TUTORIAL_FAST`` for ``mode``, and no ``TUTORIAL_SMOKE``: a run is the learner's, never the tests' budget."""
    old = {key: os.environ.get(key) for key in ("TUTORIAL_FAST", "TUTORIAL_SMOKE")}
    os.environ["TUTORIAL_FAST"] = "1" if mode == "fast" else "0"
    os.environ.pop("TUTORIAL_SMOKE", None)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for package in ("tutorial_lib", "torch", "numpy", "scanpy", "anndata", "pot", "optuna"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def _machine() -> dict[str, Any]:
    """CPU model, core count, PyTorch threads and device: what a wall time depends on."""
    import torch

    from tutorial_lib.config import get_device, torch_threads

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = get_device()
    if device == "cuda":
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    return {"cpu_model": model, "cpu_count": os.cpu_count(), "torch_threads": torch_threads(), "device": device}


class _LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds in a background thread.

    The notebook's own kernel counts too: on an otherwise idle machine a run that keeps one core
    busy shows a load near 1.
    """

    def __init__(self, every: float = 5.0):
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> _LoadSampler:
        self.start = os.getloadavg()[0]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)


def execute_notebook(
    path: str | Path,
    *,
    mode: str = "full",
    timeout: int | None = 7200,
    kernel_name: str = "python3",
    time_only: bool = False,
) -> dict:
    """Run the notebook at ``path`` in ``mode`` and record the run in its metadata.

    By default the outputs are written back in place with the record (``RECORD_KEY``) and the
    timing of the mode (``TIMINGS_KEY[mode]``). With ``time_only`` the run's outputs are thrown
    away and only ``TIMINGS_KEY[mode]`` is written, so that a fast-mode timing can sit beside
    the committed full-mode outputs. ``timeout``: seconds per cell (``None``: no limit). Returns
    the record. Raises (and leaves the file untouched) if a cell fails or times out.
    """
    import nbformat
    from nbclient import NotebookClient

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        raise FileNotFoundError(f"{path} is not a notebook file (expected an existing .ipynb)")
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop(RECORD_KEY, None)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}}
    )
    machine = _machine()
    start = time.perf_counter()
    with _fast_env(mode), _LoadSampler() as load:
        client.execute()
    record = {
        "mode": mode,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - start, 1),
        **machine,
        "load_start": round(load.start, 2),
        "load_mean": round(load.mean, 2),
        "versions": _versions(),
    }
    if time_only:  # keep the stored outputs and record: re-read the file as it is on disk
        nb = nbformat.read(path, as_version=4)
    else:
        nb.metadata[RECORD_KEY] = record
    timings = dict(nb.metadata.get(TIMINGS_KEY, {}))
    timings[mode] = {k: record[k] for k in TIMING_FIELDS}
    nb.metadata[TIMINGS_KEY] = timings
    part = path.with_name(path.name + ".part")
    try:
        nbformat.write(nb, part)
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return record


def printed_mode(nb: Any) -> str | None:
    """The mode the notebook printed (``mode: full`` / ``mode: fast``) in its first such output."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            if isinstance(text, list):
                text = "".join(text)
            match = _MODE_LINE.search(text)
            if match:
                return match.group(1)
    return None


def execution_problems(nb: Any, *, mode: str = "full") -> list[str]:
    """Why the stored outputs of ``nb`` (an ``nbformat`` notebook) cannot be published; [] if none.

    Checks: every code cell with source was executed, execution counts run 1, 2, 3, ... in cell
    order (one kernel session, top to bottom), no output is an error, the execution record
    exists and says ``mode``, and the notebook printed the same mode.
    """
    problems = []
    counts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        if cell.get("execution_count") is None:
            problems.append(f"code cell {i} was not executed")
        else:
            counts.append(cell.execution_count)
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            problems.append(f"code cell {i} has an error output")
    if counts and counts != list(range(1, len(counts) + 1)):
        problems.append(f"execution counts are {counts}, not 1..{len(counts)} in order (not one top-to-bottom run)")
    record = nb.metadata.get(RECORD_KEY)
    if not record:
        problems.append(f"no metadata[{RECORD_KEY!r}]: run it with `python -m course_tools.execution`")
    elif record.get("mode") != mode:
        problems.append(f"executed in {record.get('mode')!r} mode, expected {mode!r}")
    shown = printed_mode(nb)
    if shown is None:
        problems.append("no 'mode: ...' line in the outputs (setup_notebook() not run?)")
    elif record and shown != record.get("mode"):
        problems.append(f"the notebook printed mode {shown!r} but its record says {record.get('mode')!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Execute (default) or check (``--check``) notebooks; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m course_tools.execution", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--mode", choices=MODES, default="full")
    parser.add_argument("--timeout", type=int, default=7200, help="seconds per cell (-1: none)")
    parser.add_argument("--check", action="store_true", help="only check the stored outputs (exit 1 if unfit)")
    parser.add_argument(
        "--time-only",
        action="store_true",
        help="run on a throwaway copy and record only the wall time of --mode (metadata tutorial_timings)",
    )
    args = parser.parse_args(argv)
    import nbformat

    failed = 0
    for path in args.notebooks:
        if args.check:  # every notebook is checked, even after one that cannot be read
            try:
                problems = execution_problems(nbformat.read(path, as_version=4), mode=args.mode)
            except Exception as err:  # missing file, invalid JSON, not a notebook
                problems = [f"unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"]
                print(f"{path}: {problems[0]}")
            else:
                print(f"{path}: " + ("ok" if not problems else "; ".join(problems)))
            failed += bool(problems)
            continue
        what = "timing" if args.time_only else "running"
        print(f"==> {what.capitalize()} {path} ({args.mode} mode)", flush=True)
        record = execute_notebook(
            path, mode=args.mode, timeout=None if args.timeout < 0 else args.timeout, time_only=args.time_only
        )
        print(f"    done in {record['wall_s']:.0f} s (mean 1-minute load {record['load_mean']:.1f})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
