"""A run folder: tables, report, a copy of the model file and run.json, so the report can be
re-rendered later without solving again (``critflow report RUN_DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.model.evaluate import evaluate
from critflow.model.load import Model, load_model
from critflow.report.content import RunInfo
from critflow.report.html import write_report
from critflow.report.tables import write_tables

RUN_FILE = "run.json"


def write_run(model: Model, results: FlowResults, out_dir: Path, info: RunInfo) -> dict[str, Path]:
    """Write every output of a run into ``out_dir``; return their paths (report.html first)."""
    paths = write_tables(model, results, out_dir)
    suffix = model.path.suffix if model.path else ".yaml"
    copy = out_dir / f"model{suffix}"
    if model.path is not None:
        copy.write_text(model.path.read_text(encoding="utf-8"), encoding="utf-8")
    run = {
        "model_file": info.model_file,
        "model_copy": copy.name if model.path is not None else None,
        "sha256": info.sha256,
        "ran_at": info.ran_at,
        "critflow": info.version,
        "scenarios": list(results.inputs.scenarios),
        "unit": results.unit,
        "max_relative_residual": results.max_relative_residual(),
    }
    (out_dir / RUN_FILE).write_text(json.dumps(run, indent=2), encoding="utf-8")
    report = write_report(model, results, info, out_dir / "report.html")
    return {"report.html": report, **paths, RUN_FILE: out_dir / RUN_FILE}


def read_run(run_dir: Path) -> tuple[Model, FlowResults, RunInfo]:
    """Model, results and provenance of a saved run, without solving."""
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
    shape = (len(inputs.scenarios), inputs.periods.size, topo.n_elements, topo.n_flows)
    if len(flows) != int(np.prod(shape)):
        raise CritflowError(
            str(run_dir / "flows.parquet"),
            f"has {len(flows)} rows where the model copy needs {int(np.prod(shape))}",
            "The folder mixes outputs of different runs: run the model again.",
        )
    values = flows["value"].to_numpy(dtype=float).reshape(shape)
    results = FlowResults(inputs, values * inputs.kg_per_unit, stocks=_read_stocks(run_dir, inputs))
    info = RunInfo(
        model_file=run["model_file"],
        sha256=run["sha256"],
        ran_at=run["ran_at"],
        version=run["critflow"],
    )
    return model, results, info


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
