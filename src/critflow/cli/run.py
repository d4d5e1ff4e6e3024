"""``critflow validate``, ``run``, ``report`` and ``schema``: check a model, solve it, write its
report and tables."""

import gc
import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from critflow.cli.common import (
    AllowOutsideFiles,
    check_format,
    out,
    progress_bar,
    slug,
)
from critflow.errors import CritflowError


def validate(
    model: Annotated[
        Path, typer.Argument(help="Model file (.yaml, .yml, .json or a model workbook .xlsx).")
    ],
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Check a model file: schema, references, units, coefficients, and that its balances solve."""
    from critflow.engine import solve
    from critflow.engine.compile import check_drawn_shares
    from critflow.model import load_model

    loaded = load_model(model, allow_outside_files=allow_outside_files)
    check_drawn_shares(loaded)  # drawn shares stay shares over the distributions' support
    if loaded.spec.measurements:
        from critflow.engine.reconcile import reconcile as run_reconcile

        found = run_reconcile(loaded)
        out.print(
            f"[green]✓[/green] {model}: '{loaded.name}' is valid — {len(loaded.spec.measurements)} "
            f"measurements reconcile in {len(found)} scenario-period(s); `critflow reconcile` "
            "reports them."
        )
        return
    results = solve(loaded)
    topo = results.inputs.topology
    out.print(
        f"[green]✓[/green] {model}: '{loaded.name}' is valid — {_process_count(topo)}, "
        f"{topo.n_flows} flows, {topo.n_elements} elements, {results.inputs.periods.size} period(s), "
        f"{len(results.inputs.scenarios)} scenario(s); largest relative balance residual "
        f"{results.max_relative_residual():.1e}."
    )


def _process_count(topo) -> str:
    """'200 processes (170 balanced)': all processes, and those with a balance (neither source nor
    sink) — the same words in validate and run."""
    balanced = sum(k not in ("source", "sink") for k in topo.process_kinds)
    return f"{len(topo.process_ids)} processes ({balanced} balanced)"


def run(
    model: Annotated[
        Path, typer.Argument(help="Model file (.yaml, .yml, .json or a model workbook .xlsx).")
    ],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario to run (repeatable); all by default."),
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder; default out/<model file name>/."),
    ] = None,
    top: Annotated[int, typer.Option(help="How many of the largest flows the summary lists.")] = 10,
    output_format: Annotated[
        str, typer.Option("--format", help="table (a summary for people) or json (for machines).")
    ] = "table",
    figures: Annotated[
        bool,
        typer.Option(
            "--figures", help="Also save the Sankeys and charts as SVG and PNG (figures/)."
        ),
    ] = False,
    excel: Annotated[
        str,
        typer.Option(
            help="results.xlsx: summary (KPIs, balances and the flows of one period, for people), "
            "full (every row of every table; slow and large for big models) or none. The full "
            "tables are always in Parquet and CSV."
        ),
    ] = "summary",
    excel_period: Annotated[
        str,
        typer.Option(
            help="The period the Excel summary shows: a year, 'last' or 'all' (totals over all "
            "periods)."
        ),
    ] = "last",
    samples: Annotated[
        int, typer.Option(help="Monte Carlo samples of the values with distributions (0: none).")
    ] = 0,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same numbers.")
    ] = 1,
    sampler: Annotated[
        str, typer.Option(help="random, lhs (Latin hypercube) or sobol.")
    ] = "random",
    chunk_size: Annotated[int, typer.Option(help="Samples solved at once (memory bound).")] = 1000,
    workers: Annotated[
        int | None, typer.Option(help="Run the samples on a local Dask cluster of N processes.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Run the samples on a Dask scheduler (tcp://host:8786).")
    ] = None,
    keep_samples: Annotated[
        bool, typer.Option("--keep-samples", help="Also write every sample (samples.parquet).")
    ] = False,
    max_memory: Annotated[
        str,
        typer.Option(
            help="Refuse a run estimated to need more memory than this (8GB, 500MB); 'auto': "
            "the memory available now; 'off': no limit."
        ),
    ] = "auto",
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Solve a model; write report.html, flows, balances and indicator tables (Parquet and CSV)
    and results.xlsx, a summary workbook (--excel full: every row).

    With --samples N, the values with distributions are sampled and flows_stats.csv and
    indicators_stats.csv give mean, sd and P5/P50/P95 of every flow and indicator (a stock
    model: stocks_stats.csv of every stock in use too).

    The outputs are written to a hidden folder next to the output folder and moved into place when
    complete: a run that fails leaves the output folder as it was, and a run into an earlier run's
    folder replaces all its files."""
    from critflow.analysis import Run
    from critflow.engine import solve_inputs
    from critflow.engine.compile import check_drawn_shares, evaluate
    from critflow.model import load_model
    from critflow.report.content import RunInfo
    from critflow.report.memory import check_memory, estimate_run, parse_size
    from critflow.report.run_dir import staged_folder, write_run

    check_format(output_format, "run")
    from critflow.report.tables import EXCEL_MODES, ExcelChoice

    if excel not in EXCEL_MODES:
        raise CritflowError(
            "--excel", f"'{excel}' is not a workbook choice", "Use summary, full or none."
        )
    choice = ExcelChoice(excel, excel_period)
    limit = parse_size(max_memory)
    if samples and chunk_size < 1:
        raise CritflowError("--chunk-size", f"{chunk_size}", "Give a positive chunk size.")

    started = time.perf_counter()
    with progress_bar() as progress:
        task = progress.add_task(f"Reading {model.name}", total=3)
        loaded = load_model(model, allow_outside_files=allow_outside_files)
        progress.update(task, advance=1, description="Evaluating parameters and values")
        inputs = evaluate(loaded, scenario)
        if samples:  # drawn shares stay shares over the distributions' support
            check_drawn_shares(loaded, scenario)
        progress.update(task, advance=1, description="Estimating the memory the run needs")
        estimate = estimate_run(
            loaded, inputs, scenario, samples, chunk_size, keep_samples, excel=excel
        )
        check_memory(estimate, limit, str(model))
        progress.update(task, advance=1)
    target = out_dir or Path("out") / slug(model.stem)
    spread = None
    from critflow.report.tables import summary_period

    summary_period(inputs.periods, excel_period)  # a bad period fails before solving
    with staged_folder(target) as folder:
        steps = 7 + (excel != "none") + figures
        with progress_bar() as progress:
            task = progress.add_task("Solving balances", total=steps)
            timings: dict[str, float] = {}
            results = solve_inputs(inputs, timings)
            solved = Run(loaded, results)

            def step(description: str) -> None:
                progress.update(task, advance=1, description=description)

            info = RunInfo(str(model), loaded.text_sha256 or "")
            # the modules and the model stay while the outputs are written: the garbage
            # collector need not walk them each time the writers' many small objects trigger it
            # (it spent 6 % of a large run doing so); unfrozen after, for a caller that goes on
            gc.freeze()
            try:
                paths = write_run(solved, folder, info, choice, step)
            finally:
                gc.unfreeze()
            if figures:
                from critflow.report.figures import write_figures

                step("Exporting figures (SVG, PNG)")
                written = write_figures(solved, folder / "figures")
                paths["figures/"] = folder / "figures" if written else folder
            progress.update(task, completed=steps)
        if samples:
            mc_paths, spread = _monte_carlo(
                loaded,
                scenario,
                folder,
                samples,
                seed,
                sampler,
                chunk_size,
                workers,
                scheduler,
                keep_samples,
                results,
                solved,
            )
            paths.update(mc_paths)
            _report_uncertainty(solved, info, folder)
    paths = {name: target / path.relative_to(folder) for name, path in paths.items()}
    if output_format == "json":
        document = {
            "model": loaded.name,
            "outputs": {name: str(path) for name, path in paths.items()},
            "scenarios": list(results.inputs.scenarios),
            "periods": [int(p) for p in results.inputs.periods],
            "unit": results.unit,
            "max_relative_residual": results.max_relative_residual(),
            "seconds": round(time.perf_counter() - started, 3),
            "memory_estimate_bytes": round(estimate.total),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    _summary(loaded.name, results, top)
    if spread is not None:
        out.print(spread)
    out.print(
        f"\nSolved in {time.perf_counter() - started:.2f} s. Outputs in [bold]{target}/[/bold]:"
    )
    for name, path in paths.items():
        out.print(f"  {name:<24} {path}")
    out.print(f"\nOpen the report: [bold]{paths['report.html']}[/bold]")


def _monte_carlo(
    loaded,
    scenario,
    target: Path,
    samples: int,
    seed: int,
    sampler: str,
    chunk_size: int,
    workers: int | None,
    scheduler: str | None,
    keep: bool,
    results,
    solved=None,
) -> tuple[dict[str, Path], Table]:
    """Run the Monte Carlo samples, write their statistics; return the paths and a table of the
    indicators that vary."""
    import numpy as np

    from critflow.engine.cluster import dask_client
    from critflow.engine.montecarlo import (
        flow_statistics,
        indicator_statistics,
        monte_carlo,
        stock_statistics,
    )
    from critflow.indicators.sampled import indicator_samples

    started = time.perf_counter()
    with progress_bar() as progress, dask_client(workers, scheduler) as client:
        task = progress.add_task(f"Monte Carlo ({sampler}, seed {seed})", total=samples)
        mc = monte_carlo(
            loaded,
            samples,
            seed,
            sampler,
            scenario,
            chunk_size,
            indicator_samples,
            keep,
            client,
            lambda done, n: progress.update(task, completed=done),
        )
    periods = results.inputs.periods
    flows = flow_statistics(mc, results.inputs.topology, periods, results.unit)
    indicators = indicator_statistics(mc, periods)
    paths = {
        "flows_stats.csv": target / "flows_stats.csv",
        "flows_stats.parquet": target / "flows_stats.parquet",
        "indicators_stats.csv": target / "indicators_stats.csv",
    }
    flows.to_csv(paths["flows_stats.csv"], index=False)
    flows.to_parquet(paths["flows_stats.parquet"], index=False)
    indicators.to_csv(paths["indicators_stats.csv"], index=False)
    stocks = stock_statistics(mc, results.inputs.topology, periods, results.unit.split("/")[0])
    if stocks is not None:  # goods in use at the end of each year
        paths["stocks_stats.csv"] = target / "stocks_stats.csv"
        stocks.to_csv(paths["stocks_stats.csv"], index=False)
    if keep:
        import pandas as pd

        n_s, n_p, n_e, n_f = mc.shapes["flows"]
        raw = np.concatenate(mc.raw["flows"]).reshape(samples, n_s, n_p, n_e, n_f).sum(axis=3)
        grid = np.indices((samples, n_s, n_p)).reshape(3, -1)
        frame = pd.DataFrame(raw.reshape(-1, n_f), columns=list(results.inputs.topology.flow_ids))
        frame.insert(0, "period", periods[grid[2]])
        frame.insert(0, "scenario", np.array(mc.scenarios, dtype=object)[grid[1]])
        frame.insert(0, "sample", grid[0])
        paths["samples.parquet"] = target / "samples.parquet"
        frame.to_parquet(paths["samples.parquet"], index=False)
    if solved is not None:  # the report's uncertainty section
        from critflow.report.uncertainty import uncertainty_data, write_uncertainty

        paths["uncertainty.json"] = write_uncertainty(uncertainty_data(solved, mc), target)
    where = f"{workers} local workers" if workers else (scheduler or "this process")
    last = indicators[indicators["period"] == periods[-1]]
    varies = last["sd"] > 1e-9 * last["mean"].abs().clip(lower=1e-300)
    constant = int((~varies).sum())
    last = last[varies]
    table = Table(
        caption=f"{constant} indicator values do not vary with the sampled inputs (not shown); "
        "all are in indicators_stats.csv, every flow in flows_stats.csv."
        if constant
        else None,
        title=f"Monte Carlo: {samples} samples ({sampler}, seed {seed}, {len(mc.inputs)} uncertain "
        f"inputs) in {time.perf_counter() - started:.1f} s on {where}; {periods[-1]}",
        title_justify="left",
    )
    for column in ("indicator", "element", "scenario", "mean", "sd", "P5", "P50", "P95"):
        table.add_column(
            column, justify="left" if column in ("indicator", "element", "scenario") else "right"
        )
    for row in last.itertuples():
        table.add_row(
            row.indicator,
            row.element or "goods",
            row.scenario,
            *(f"{v:.4g}" for v in (row.mean, row.sd, row.p5, row.p50, row.p95)),
        )
    return paths, table


def _report_uncertainty(solved, info, folder: Path) -> None:
    """Render report.html again with the uncertainty section of the Monte Carlo just run."""
    from critflow.report.html import write_report
    from critflow.report.uncertainty import read_uncertainty

    write_report(
        solved, info, folder / "report.html", extra={"uncertainty": read_uncertainty(folder)}
    )


def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `critflow run`.")],
    figures: Annotated[
        bool,
        typer.Option(
            "--figures", help="Also save the Sankeys and charts as SVG and PNG (figures/)."
        ),
    ] = False,
    plotly: Annotated[
        str,
        typer.Option(
            "--plotly",
            help="How the report gets plotly.js: inline (embedded, about 4.7 MB; opens offline), "
            "cdn (a small file that loads it from cdn.plot.ly) or directory (plotly.min.js "
            "written beside report.html).",
        ),
    ] = "inline",
    sensitivity: Annotated[
        list[Path] | None,
        typer.Option(
            "--sensitivity",
            help="Sobol indices to show, as written by `critflow sensitivity --format json -o "
            "FILE` (repeatable).",
        ),
    ] = None,
) -> None:
    """Render report.html again from a run folder's saved results, without solving.

    The uncertainty section of a run with --samples is drawn again from its uncertainty.json."""
    from critflow.report.html import check_plotly_mode, write_report
    from critflow.report.run_dir import read_run
    from critflow.report.uncertainty import read_sensitivity, read_uncertainty

    check_plotly_mode(plotly)
    if not run_dir.is_dir():
        raise CritflowError(
            str(run_dir), "no such folder", "Give the output folder of `critflow run`."
        )
    extra = {"sensitivity": read_sensitivity(sensitivity or [])}
    saved, info = read_run(run_dir)
    extra["uncertainty"] = read_uncertainty(run_dir)
    path = write_report(saved, info, run_dir / "report.html", plotly, extra)
    if plotly == "directory":
        _list_in_run(run_dir, "plotly.min.js")
    size = path.stat().st_size
    out.print(f"Report written: [bold]{path}[/bold] ({size / 1e6:.1f} MB, plotly.js {plotly})")
    if figures:
        from critflow.report.figures import write_figures

        written = write_figures(saved, run_dir / "figures")
        out.print(f"{len(written)} figures written to [bold]{run_dir / 'figures'}[/bold]")


def _list_in_run(run_dir: Path, name: str) -> None:
    """Add a file written into a run folder to its run.json list (so a later run into the folder
    replaces it instead of refusing the folder as holding someone else's files)."""
    run_file = run_dir / "run.json"
    try:
        record = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if isinstance(record.get("files"), list) and name not in record["files"]:
        record["files"] = sorted([*record["files"], name])
        run_file.write_text(json.dumps(record, indent=2), encoding="utf-8")


def _summary(name: str, results, top: int) -> None:
    """The largest flows in the last period, one column per scenario, and whether the balances
    close."""
    import numpy as np

    inputs = results.inputs
    topo = inputs.topology
    p = inputs.periods.size - 1
    values = results.values[:, p]  # (S, E, F)
    goods = values.sum(axis=1)  # (S, F)
    scenarios = list(inputs.scenarios)
    table = Table(
        title=f"{name} — {inputs.periods[p]}: largest flows"
        + (f" (largest in any of {len(scenarios)} scenarios)" if len(scenarios) > 1 else ""),
        title_justify="left",
    )
    table.add_column("flow")
    table.add_column("from → to")
    for scenario in scenarios:
        label = f"{scenario} [{results.unit}]" if len(scenarios) > 1 else f"goods [{results.unit}]"
        table.add_column(escape(label), justify="right")
    table.add_column(
        "main elements (mass share" + (", all scenarios)" if len(scenarios) > 1 else ")")
    )
    element_mass = values.sum(axis=0)  # (E, F): the element mix over all scenarios
    labels = topo.labels
    order = np.argsort(-goods.max(axis=0), kind="stable")
    if labels is not None:  # generated helpers (a split import's total) are no flows of the file
        order = [f for f in order if not labels.flows[f].hidden]
    for f in order[:top]:
        total = element_mass[:, f].sum()
        shares = element_mass[:, f] / total if total > 0 else np.zeros(topo.n_elements)
        main = ", ".join(
            f"{topo.elements[e]} {shares[e]:.1%}" for e in np.argsort(-shares)[:3] if shares[e] > 0
        )
        start = topo.process_ids[topo.flow_from[f]]
        if labels is not None and labels.processes[topo.flow_from[f]].hidden:
            # one origin's part of a split import: it leaves the split's source at that origin
            label = labels.flows[f]
            start = f"{label.from_base}[{','.join(label.origin.values())}]"
        table.add_row(
            topo.flow_ids[f],
            f"{start} → {topo.process_ids[topo.flow_to[f]]}",
            *(f"{goods[s, f]:,.6g}" for s in range(len(scenarios))),
            main,
        )
    out.print(table)
    residual = results.max_relative_residual()
    mark = "[green]✓ closes[/green]" if residual < 1e-9 else "[red]✗ does not close[/red]"
    out.print(
        f"Mass balance {mark}: largest relative residual {residual:.1e} over "
        f"{_process_count(topo)} × {topo.n_elements} elements × {inputs.periods.size} period(s) × "
        f"{len(inputs.scenarios)} scenario(s)."
    )
    if results.stocks is not None:
        _stock_summary(results)


def _stock_summary(results) -> None:
    """Per stock and scenario: goods in use at the start and end, inflow and outflow at the end."""
    from critflow.engine.stock_solve import clipping_notes

    inputs = results.inputs
    k = inputs.kg_per_unit
    table = Table(title="Stocks in use (goods)", title_justify="left")
    for column in ("stock", "scenario"):
        table.add_column(column)
    first, last = inputs.periods[0], inputs.periods[-1]
    table.add_column(escape(f"before {first} [{results.stock_unit}]"), justify="right")
    table.add_column(escape(f"{last} [{results.stock_unit}]"), justify="right")
    table.add_column(escape(f"inflow {last} [{results.unit}]"), justify="right")
    table.add_column(escape(f"outflow {last} [{results.unit}]"), justify="right")
    topo = inputs.topology
    for j, stock in enumerate(inputs.stocks):
        for s, scenario in enumerate(inputs.scenarios):
            table.add_row(
                stock.process_id,
                scenario,
                f"{results.stocks.initial_kg[s, :, j].sum() / k:,.6g}",
                f"{results.stocks.stock_kg[s, -1, :, j].sum() / k:,.6g}",
                f"{results.mass_kg[s, -1, :, topo.stock_input[j]].sum() / k:,.6g}",
                f"{results.mass_kg[s, -1, :, topo.stock_output[j]].sum() / k:,.6g}",
            )
    out.print(table)
    for note in clipping_notes(inputs, results.stocks):
        out.print(f"[yellow]Note[/yellow] {escape(note.where)}: {escape(note.what)}.")


def schema(
    indent: Annotated[int, typer.Option(help="JSON indentation.")] = 2,
) -> None:
    """Print the JSON Schema of the model file format."""
    from critflow.model.schema import ModelFile

    document = ModelFile.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "critflow model file"
    sys.stdout.write(json.dumps(document, indent=indent) + "\n")
