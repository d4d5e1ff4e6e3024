"""A run folder: tables, report, a copy of the model file and run.json, so the report can be
re-rendered later without solving again (``critflow report RUN_DIR``).

A run is written into a fresh hidden folder next to its output folder and moved into place only
when every file is written (:func:`staged_folder`): a run that fails leaves the output folder
exactly as it was, and a run into a folder of earlier results replaces them all, so no file of an
earlier run (``flows_stats.csv`` of an earlier Monte Carlo next to new deterministic results) is
left behind. A folder holding files critflow did not write is refused rather than replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from critflow.analysis import Run
from critflow.engine.compile import evaluate
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.model.load import load_model
from critflow.report.content import RunInfo
from critflow.report.html import write_report
from critflow.report.tables import ExcelChoice, not_writable, write_bulk_tables, write_tables

RUN_FILE = "run.json"
OUTPUT_SUFFIXES = (".csv", ".parquet", ".xlsx", ".html", ".yaml", ".yml", ".json", ".svg", ".png")
"""Files a critflow run writes (a folder of an older run, without a list of files in run.json, is
recognised by these)."""
PARTIAL = ".partial-"
OLD = ".old-"


def write_run(
    run: Run,
    out_dir: Path,
    info: RunInfo,
    excel: ExcelChoice | None = None,
    step: Callable[[str], None] | None = None,
) -> dict[str, Path]:
    """Write every output of a run into ``out_dir``; return their paths (report.html first).
    ``excel`` chooses the workbook (a summary by default); ``step`` is told what is being
    written."""
    from concurrent.futures import ThreadPoolExecutor

    out_dir.mkdir(parents=True, exist_ok=True)
    if step is not None:
        step("Writing flows and balance (Parquet and CSV) beside the rest")
    # the full tables, then the indicator CSVs, go to disk on a second thread (Arrow writes
    # without holding the GIL) while this one computes the Sankey's fate shares and the
    # indicators and writes the workbook and the report. (The fate shares had a thread of their
    # own: their many numpy steps each waited for the GIL behind this thread's pandas work, and
    # took three times their CPU time.) Should this one fail, leaving the block waits for the
    # thread before the error goes on
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="critflow-tables") as pool:
        bulk = pool.submit(write_bulk_tables, run.results, out_dir)
        deferred = [bulk]
        paths, report = _write_the_rest(run, out_dir, info, excel, step, pool.submit, deferred)
        try:
            paths |= bulk.result()
            for future in deferred[1:]:
                future.result()
        except OSError as exc:
            raise not_writable(out_dir, exc) from None
    return {"report.html": report, **paths, RUN_FILE: out_dir / RUN_FILE}


def _write_the_rest(
    run: Run,
    out_dir: Path,
    info: RunInfo,
    excel: ExcelChoice | None,
    step: Callable[[str], None] | None,
    submit: Callable,
    deferred: list,
) -> tuple[dict[str, Path], Path]:
    model, results = run.model, run.results
    paths = write_tables(run, out_dir, excel, step, bulk=False, submit=submit, deferred=deferred)
    suffix = model.path.suffix if model.path else ".yaml"
    copy = out_dir / f"model{suffix}"
    if model.path is not None:
        copy.write_bytes(model.path.read_bytes())  # a workbook (.xlsx) is not text
        copy_data_files(model.path, out_dir)
    record = {
        "model_file": info.model_file,
        "model_copy": copy.name if model.path is not None else None,
        "sha256": info.sha256,
        "ran_at": info.ran_at,
        "critflow": info.version,
        "scenarios": list(results.inputs.scenarios),
        "unit": results.unit,
        "max_relative_residual": results.max_relative_residual(),
    }
    (out_dir / RUN_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    if step is not None:
        step("Writing report.html")
    report = write_report(run, info, out_dir / "report.html")
    return paths, report


def copy_data_files(model_path: Path, out_dir: Path) -> list[Path]:
    """Copy the data files a model names (``{file: data/x.csv, …}``) that lie in its folder into
    ``out_dir`` under the same relative paths, so the run folder's model copy loads on its own
    (``critflow report`` re-renders from it). Returns the copies."""
    from critflow.model.convert import read_model_data

    base = model_path.parent.resolve()
    names: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("file"), str):
                names.add(value["file"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    if model_path.suffix.lower() in (".yaml", ".yml", ".json"):
        text = model_path.read_text(encoding="utf-8", errors="replace")
        if "file" not in text:  # names no data file: spare parsing the model a second time
            return []
    walk(read_model_data(model_path))
    copies = []
    for name in sorted(names):
        source = (base / name).resolve()
        target = (out_dir / name).resolve()
        if not source.is_relative_to(base) or not target.is_relative_to(out_dir.resolve()):
            continue  # a file outside the model's folder (--allow-outside-files) stays where it is
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            copies.append(target)
    return copies


def read_run(run_dir: Path) -> tuple[Run, RunInfo]:
    """The run (model and results) and provenance of a saved run, without solving."""
    run_file = run_dir / RUN_FILE
    if not run_file.is_file():
        raise CritflowError(
            str(run_dir),
            f"is not a critflow run folder (no {RUN_FILE})",
            "Give the folder `critflow run` wrote.",
        )
    run = json.loads(run_file.read_text(encoding="utf-8"))
    if not run.get("model_copy"):
        raise CritflowError(
            str(run_file),
            "the run has no copy of its model file",
            "Run the model again from a file.",
        )
    model = load_model(run_dir / run["model_copy"])
    inputs = evaluate(model, run["scenarios"])
    flows = pd.read_parquet(run_dir / "flows.parquet")
    topo = inputs.topology
    # flows.parquet holds the flows of the model file, not the generated totals of imports split
    # by origin (hidden): each is what its split passes on, the sum of the split's outflows
    hidden = (
        np.zeros(topo.n_flows, dtype=bool)
        if topo.labels is None
        else np.array([f.hidden for f in topo.labels.flows], dtype=bool)
    )
    shape = (len(inputs.scenarios), inputs.periods.size, topo.n_elements, int((~hidden).sum()))
    if len(flows) != int(np.prod(shape)):
        raise CritflowError(
            str(run_dir / "flows.parquet"),
            f"has {len(flows)} rows where the model copy needs {int(np.prod(shape))}",
            "The folder mixes outputs of different runs: run the model again.",
        )
    values = np.zeros((*shape[:3], topo.n_flows))
    values[..., ~hidden] = flows["value"].to_numpy(dtype=float).reshape(shape)
    for f in np.flatnonzero(hidden):
        values[..., f] = values[..., topo.flow_from == topo.flow_to[f]].sum(axis=-1)
    results = FlowResults(inputs, values * inputs.kg_per_unit, stocks=_read_stocks(run_dir, inputs))
    info = RunInfo(
        model_file=run["model_file"],
        sha256=run["sha256"],
        ran_at=run["ran_at"],
        version=run["critflow"],
    )
    return Run(model, results), info


def _read_stocks(run_dir: Path, inputs):
    """The stocks of a saved run (from stocks.parquet), or None for a model without stocks."""
    from critflow.engine.stock_solve import StockState

    path = run_dir / "stocks.parquet"
    if not inputs.stocks or not path.is_file():
        return None
    table = pd.read_parquet(path)
    shape = (
        len(inputs.scenarios),
        inputs.periods.size,
        inputs.topology.n_elements,
        len(inputs.stocks),
    )
    if len(table) != int(np.prod(shape)):
        raise CritflowError(
            str(path),
            f"has {len(table)} rows where the model copy needs {int(np.prod(shape))}",
            "The folder mixes outputs of different runs: run the model again.",
        )
    kg = inputs.kg_per_unit

    def column(name: str) -> np.ndarray:
        return table[name].to_numpy(dtype=float).reshape(shape) * kg

    in_use, change, retired = column("in_use"), column("stock_change"), column("retired")
    return StockState(
        stock_kg=in_use,
        initial_kg=in_use[:, 0] - change[:, 0],
        retired_kg=retired,
        clipped=(retired > 0).any(axis=2),
    )


def _run_files(folder: Path) -> set[str] | None:
    """Names (relative paths) a critflow run wrote into ``folder``, from its run.json; None when
    the folder is not a run folder."""
    run_file = folder / RUN_FILE
    if not run_file.is_file():
        return None
    try:
        listed = json.loads(run_file.read_text(encoding="utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return {str(name) for name in listed} if isinstance(listed, list) else set()


def _foreign_files(folder: Path) -> list[str]:
    """Files in ``folder`` that no critflow run wrote (empty for an empty folder or a run folder)."""
    entries = sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())
    if not entries:
        return []
    listed = _run_files(folder)
    if listed is None:
        return [str(p.relative_to(folder)) for p in entries]
    foreign = []
    for path in entries:
        name = path.relative_to(folder).as_posix()
        if name in listed or (not listed and path.suffix.lower() in OUTPUT_SUFFIXES):
            continue
        foreign.append(name)
    return foreign


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _remove_abandoned(parent: Path, name: str) -> None:
    """Remove hidden partial or replaced folders of ``name`` left by runs that were killed (their
    process is gone)."""
    if not parent.is_dir():
        return
    for prefix in (PARTIAL, OLD):
        for path in parent.glob(f".{name}{prefix}*"):
            pid = path.name.removeprefix(f".{name}{prefix}").split("-")[0]
            if pid.isdigit() and not _pid_alive(int(pid)) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A fresh hidden folder next to ``target`` to write a run into. When the block ends without
    error, the folder replaces ``target`` — a new folder, an empty one or the folder of an earlier
    run — and run.json lists the files written; when it raises (or the user interrupts), the
    folder is removed and ``target`` is left exactly as it was. A ``target`` holding files that no
    critflow run wrote is refused before anything is written."""
    target = Path(os.path.abspath(target))
    if target.is_symlink():
        target = target.resolve()
    if target.exists() and not target.is_dir():
        raise CritflowError(str(target), "is a file, not a folder", "Give a folder with --out.")
    if target.is_dir():
        foreign = _foreign_files(target)
        if foreign:
            shown = ", ".join(foreign[:5]) + (
                f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            )
            raise CritflowError(
                str(target),
                f"holds files that are not outputs of a critflow run ({shown}); a run replaces "
                "its output folder whole, so they would be lost",
                "Give a new or empty folder with --out, or move those files out first.",
            )
    parent = target.parent
    created = [p for p in (parent, *parent.parents) if not p.exists()]
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(parent, target.name)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}{os.getpid()}-", dir=parent)
        )
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # as a folder made by mkdir (mkdtemp makes it private)
    except OSError as exc:
        _remove_empty(created)
        blocker = next((p for p in (target, *target.parents) if p.exists()), None)
        reason = (
            f"{blocker} is a file, not a folder"
            if blocker is not None and not blocker.is_dir()
            else f"{exc.strerror or exc}: {exc.filename or parent}"
        )
        raise CritflowError(
            str(target),
            f"the output folder cannot be written there ({reason})",
            "Choose a folder you can write to with --out.",
        ) from None
    try:
        yield staging
        _list_files(staging)
        _replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)
        raise


def _list_files(folder: Path) -> None:
    """Record in run.json every file of the run (so a later run knows what it may replace)."""
    run_file = folder / RUN_FILE
    if not run_file.is_file():
        return
    run = json.loads(run_file.read_text(encoding="utf-8"))
    run["files"] = sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
    )
    if RUN_FILE not in run["files"]:
        run["files"].append(RUN_FILE)
    run_file.write_text(json.dumps(run, indent=2), encoding="utf-8")


def _replace(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an existing ``target`` is moved aside first and removed
    once the new folder is in place (restored if the move fails)."""
    if not target.exists():
        os.replace(staging, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}{OLD}{os.getpid()}-", dir=target.parent))
    aside.rmdir()
    os.replace(target, aside)
    try:
        os.replace(staging, target)
    except OSError:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created (deepest first), if they are still empty."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()
