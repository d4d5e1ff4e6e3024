"""The ``critflow`` command: validate, run and describe value-chain models.

User mistakes (:class:`~critflow.errors.CritflowError`) are printed as paragraphs and end with
exit code 2 — here, in :func:`main`, and nowhere else.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from critflow import __version__
from critflow.errors import CritflowError

app = typer.Typer(
    name="critflow",
    help="Material flow and value-chain models for critical raw materials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
from critflow.impact.cli import impact  # noqa: E402
from critflow.passport.cli import passport_app  # noqa: E402
from critflow.server.cli import db_app, keys_app, serve  # noqa: E402

app.add_typer(passport_app, name="passport")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)
app.command("impact")(impact)
out = Console()
if not out.is_terminal:  # piped or captured: wide enough that tables keep one line per row
    out = Console(width=200)
err = Console(stderr=True)


AllowOutsideFiles = Annotated[
    bool,
    typer.Option(
        "--allow-outside-files",
        help="Let the model read data files ({file: …}) outside its own folder. Off by default: "
        "a model from someone else could name any file on this machine.",
    ),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"critflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Material flow and value-chain models for critical raw materials."""


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "model"


@app.command()
def validate(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml or .json).")],
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
        f"[green]✓[/green] {model}: '{loaded.name}' is valid — {len(topo.process_ids)} processes, "
        f"{topo.n_flows} flows, {topo.n_elements} elements, {results.inputs.periods.size} period(s), "
        f"{len(results.inputs.scenarios)} scenario(s); largest relative balance residual "
        f"{results.max_relative_residual():.1e}."
    )


@app.command()
def run(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml or .json).")],
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
    """Solve a model; write report.html, flows, balances and indicator tables (CSV, Parquet, Excel).

    With --samples N, the values with distributions are sampled and flows_stats.csv and
    indicators_stats.csv give mean, sd and P5/P50/P95 of every flow and indicator.

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

    _check_format(output_format, "run")
    limit = parse_size(max_memory)
    if samples and chunk_size < 1:
        raise CritflowError("--chunk-size", f"{chunk_size}", "Give a positive chunk size.")

    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"Reading {model.name}", total=3)
        loaded = load_model(model, allow_outside_files=allow_outside_files)
        progress.update(task, advance=1, description="Evaluating parameters and values")
        inputs = evaluate(loaded, scenario)
        if samples:  # drawn shares stay shares over the distributions' support
            check_drawn_shares(loaded, scenario)
        progress.update(task, advance=1, description="Estimating the memory the run needs")
        estimate = estimate_run(loaded, inputs, scenario, samples, chunk_size, keep_samples)
        check_memory(estimate, limit, str(model))
        progress.update(task, advance=1)
    target = out_dir or Path("out") / _slug(model.stem)
    spread = None
    with staged_folder(target) as folder:
        with _progress() as progress:
            task = progress.add_task("Solving balances", total=2)
            timings: dict[str, float] = {}
            results = solve_inputs(inputs, timings)
            progress.update(task, advance=1, description="Writing the report and tables")
            solved = Run(loaded, results)
            paths = write_run(solved, folder, RunInfo(str(model), loaded.text_sha256 or ""))
            if figures:
                from critflow.report.figures import write_figures

                progress.update(task, description="Exporting figures (SVG, PNG)")
                written = write_figures(solved, folder / "figures")
                paths["figures/"] = folder / "figures" if written else folder
            progress.update(task, advance=1)
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
            )
            paths.update(mc_paths)
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
) -> tuple[dict[str, Path], Table]:
    """Run the Monte Carlo samples, write their statistics; return the paths and a table of the
    indicators that vary."""
    from critflow.engine.cluster import dask_client
    from critflow.engine.montecarlo import flow_statistics, indicator_statistics, monte_carlo
    from critflow.indicators.sampled import indicator_samples

    started = time.perf_counter()
    with _progress() as progress, dask_client(workers, scheduler) as client:
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


@app.command()
def sensitivity(
    model: Annotated[Path, typer.Argument(help="Model file with values that have distributions.")],
    output: Annotated[
        str,
        typer.Option(help="An indicator (recycling_efficiency, material_recovery …) or flow:ID."),
    ],
    element: Annotated[
        str | None, typer.Option("--element", "-e", help="Element of the output.")
    ] = None,
    scenario: Annotated[str | None, typer.Option("--scenario", "-s", help="Scenario.")] = None,
    year: Annotated[int | None, typer.Option(help="Year; the last period by default.")] = None,
    samples: Annotated[
        int, typer.Option(help="Base samples N (a power of 2); N·(D+2) runs.")
    ] = 1024,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Sobol indices: which uncertain inputs drive the variance of an output (SALib)."""
    from critflow.indicators.sensitivity import sobol_indices
    from critflow.model import load_model

    _check_format(output_format, "sensitivity")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("Sobol samples", total=1)
        found = sobol_indices(
            loaded,
            output,
            element,
            scenario,
            year,
            samples,
            seed,
            lambda done, n: progress.update(task, completed=done, total=n),
        )
    if output_format == "json":
        document = {
            "output": found.output,
            "runs": found.samples,
            "mean": found.output_mean,
            "sd": found.output_sd,
            "indices": found.table.to_dict("records"),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    table = Table(
        title=f"Sobol indices of {found.output}: mean {found.output_mean:.4g}, sd "
        f"{found.output_sd:.3g} ({found.samples} runs, {time.perf_counter() - started:.1f} s)",
        title_justify="left",
    )
    for column in ("input", "S1 (alone)", "±95 %", "ST (total)", "±95 % "):
        table.add_column(column, justify="left" if column == "input" else "right")
    for row in found.table.itertuples():
        table.add_row(
            row.input, f"{row.S1:.3f}", f"{row.S1_conf:.3f}", f"{row.ST:.3f}", f"{row.ST_conf:.3f}"
        )
    out.print(table)


@app.command()
def reconcile(
    model: Annotated[Path, typer.Argument(help="Model file with measurements:.")],
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", "-s", help="Scenario (repeatable).")
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="Year to reconcile; every period by default.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = 0.05,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder; default out/<model>-reconciled/."),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Reconcile measurements with the balances (weighted least squares), test them for gross
    errors, and write the reconciled flows. Exit code 1 when the global test fails."""
    from critflow.engine.reconcile import MAX_LISTED, flows_table, goods_table
    from critflow.engine.reconcile import reconcile as run_reconcile
    from critflow.model import load_model

    _check_format(output_format, "reconcile")
    if not 0 < alpha < 1:
        raise CritflowError("--alpha", f"{alpha} is not a probability", "Use e.g. 0.05.")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    found = run_reconcile(loaded, _split(scenario) or None, year, alpha)
    target = out_dir or Path("out") / f"{_slug(model.stem)}-reconciled"
    target.mkdir(parents=True, exist_ok=True)
    flows = flows_table(loaded, found)
    flows.to_csv(target / "reconciled_flows.csv", index=False)
    goods_table(loaded, found).to_csv(target / "reconciled_goods.csv", index=False)
    import pandas as pd

    measurements = pd.concat(
        [r.measurements.assign(scenario=r.scenario, period=r.period) for r in found],
        ignore_index=True,
    )
    measurements.to_csv(target / "measurements.csv", index=False)
    failed = [r for r in found if not r.passed]
    if output_format == "json":
        document = [
            {
                "scenario": r.scenario,
                "period": r.period,
                "chi2": r.chi2,
                "dof": r.dof,
                "critical": r.critical,
                "p_value": r.p_value,
                "passed": r.passed,
                "suspects": r.suspects,
                "suspect_groups": r.suspect_groups,
                "rank": r.rank,
                "unobservable": r.unobservable,
                "unobservable_goods": r.unobservable_goods,
                "iterations": r.iterations,
                "measurements": r.measurements.to_dict("records"),
            }
            for r in found
        ]
        sys.stdout.write(json.dumps(document, indent=2, default=float) + "\n")
    else:
        for r in found:
            verdict = (
                "[green]passes[/green]" if r.passed else "[red]fails: gross errors likely[/red]"
            )
            chi = (
                f"χ² = {r.chi2:.3g} with {r.dof} degrees of freedom (critical {r.critical:.3g} at "
                f"α = {alpha}, p = {r.p_value:.3g}): the global test {verdict}"
                if r.dof
                else "no redundancy (every measurement is needed to fix the flows): nothing to test"
            )
            table = Table(
                title=f"{loaded.name} — {r.scenario}, {r.period}", caption=chi, title_justify="left"
            )
            for column in (
                "measurement",
                "measured",
                "sd",
                "reconciled",
                "± sd",
                "z",
                "redundant",
                "suspect",
            ):
                table.add_column(column, justify="left" if column == "measurement" else "right")
            for row in r.measurements.itertuples():
                table.add_row(
                    row.measurement,
                    f"{row.measured:.6g}",
                    f"{row.sd:.3g}",
                    f"{row.reconciled:.6g}",
                    f"{row.reconciled_sd:.3g}",
                    "—" if np.isnan(row.z) else f"{row.z:.2f}",
                    "yes" if row.redundant else "no",
                    "[red]suspect[/red]" if row.suspect else "",
                )
            out.print(table)
            if r.suspects:
                named = []
                for group in r.suspect_groups:
                    z = r.measurements.set_index("measurement").loc[group[0], "z"]
                    named.append(
                        f"{group[0]} (|z| = {z:.2f})"
                        if len(group) == 1
                        else f"{', '.join(group)} — cannot be told apart (|z| = {z:.2f} for "
                        "each: they enter the balances in the same proportions, so a gross error "
                        "in any one of them explains the data equally well)"
                    )
                out.print(
                    f"Suspect measurements (largest normalised adjustment first, |z| > "
                    f"{r.measurements['z_critical'].iloc[0]:.2f}, Šidák-corrected): "
                    + "; ".join(named)
                    + (
                        ". Check them, or remove the largest and reconcile again."
                        if len(r.suspect_groups[0]) == 1
                        else ". Check them: which one of a group is wrong the data cannot say "
                        "(removing one would be a guess); measure another flow of their balances "
                        "to tell them apart."
                    )
                )
            hidden = r.unobservable_by_flow
            if hidden:
                parts = [f"{', '.join(elements)} in {flow}" for flow, elements in hidden.items()]
                listed = "; ".join(parts[:MAX_LISTED]) + (
                    f"; … ({len(parts)} flows in all)" if len(parts) > MAX_LISTED else ""
                )
                goods_hidden = [f for f in hidden if f in r.unobservable_goods]
                out.print(
                    "Not observable from these measurements, so given no value (NaN, status "
                    f"'unobservable' in reconciled_flows.csv): {listed}. "
                    + (
                        f"The goods masses of {', '.join(goods_hidden)} are not observable "
                        "either; measure them. "
                        if goods_hidden
                        else "Their goods masses are reconciled (reconciled_goods.csv). "
                    )
                    + "An assay (or element mass) in one of these flows fixes it and whatever "
                    "the balances then determine."
                )
        out.print(
            f"\nReconciled flows: [bold]{target / 'reconciled_flows.csv'}[/bold] (elements), "
            f"{target / 'reconciled_goods.csv'} (goods); measurements: "
            f"{target / 'measurements.csv'}"
        )
    if failed:
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A folder written by `critflow run`.")],
    figures: Annotated[
        bool,
        typer.Option(
            "--figures", help="Also save the Sankeys and charts as SVG and PNG (figures/)."
        ),
    ] = False,
) -> None:
    """Render report.html again from a run folder's saved results, without solving."""
    from critflow.report.html import write_report
    from critflow.report.run_dir import read_run

    if not run_dir.is_dir():
        raise CritflowError(
            str(run_dir), "no such folder", "Give the output folder of `critflow run`."
        )
    saved, info = read_run(run_dir)
    path = write_report(saved, info, run_dir / "report.html")
    out.print(f"Report written: [bold]{path}[/bold]")
    if figures:
        from critflow.report.figures import write_figures

        written = write_figures(saved, run_dir / "figures")
        out.print(f"{len(written)} figures written to [bold]{run_dir / 'figures'}[/bold]")


def _summary(name: str, results, top: int) -> None:
    inputs = results.inputs
    topo = inputs.topology
    values = results.values  # (S, P, E, F)
    goods = values.sum(axis=2)  # (S, P, F)
    p = inputs.periods.size - 1
    for s, scenario in enumerate(inputs.scenarios):
        table = Table(
            title=f"{name} — scenario '{scenario}', {inputs.periods[p]}: largest flows",
            title_justify="left",
        )
        table.add_column("flow")
        table.add_column("from → to")
        table.add_column(escape(f"goods [{results.unit}]"), justify="right")
        table.add_column("main elements (mass share)")
        for f in np.argsort(-goods[s, p])[:top]:
            total = goods[s, p, f]
            shares = values[s, p, :, f] / total if total > 0 else np.zeros(topo.n_elements)
            main = ", ".join(
                f"{topo.elements[e]} {shares[e]:.1%}"
                for e in np.argsort(-shares)[:3]
                if shares[e] > 0
            )
            table.add_row(
                topo.flow_ids[f],
                f"{topo.process_ids[topo.flow_from[f]]} → {topo.process_ids[topo.flow_to[f]]}",
                f"{total:,.6g}",
                main,
            )
        out.print(table)
    residual = results.max_relative_residual()
    mark = "[green]✓ closes[/green]" if residual < 1e-9 else "[red]✗ does not close[/red]"
    out.print(
        f"Mass balance {mark}: largest relative residual {residual:.1e} over "
        f"{sum(k not in ('source', 'sink') for k in topo.process_kinds)} processes × "
        f"{topo.n_elements} elements × {inputs.periods.size} period(s) × {len(inputs.scenarios)} scenario(s)."
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


@app.command()
def trace(
    model: Annotated[Path, typer.Argument(help="Model file with a stock process.")],
    stock: Annotated[str, typer.Option("--stock", help="Id of the stock whose cohort is traced.")],
    cohort: Annotated[
        int, typer.Option("--cohort", help="Year the traced cohort entered the stock.")
    ],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario (repeatable); all by default."),
    ] = None,
    every: Annotated[int, typer.Option(help="Show every n-th year in the table.")] = 5,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the full trace as CSV here.")
    ] = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Where one year's inflow to a stock is in later years: in use, or which sink (MaTrace)."""
    from critflow.engine import solve
    from critflow.indicators.matrace import longevity, trace_cohort
    from critflow.model import load_model

    results = solve(load_model(model, allow_outside_files=allow_outside_files), scenario)
    table_data = trace_cohort(results, stock, cohort)
    if out_file is not None:
        try:
            table_data.to_csv(out_file, index=False)
        except OSError as exc:
            raise CritflowError(
                str(out_file), f"cannot be written ({exc.strerror or exc})", "Choose another path."
            ) from None
    years = sorted(table_data["period"].unique())
    shown = [y for y in years if (y - years[0]) % every == 0 or y == years[-1]]
    for name in results.inputs.scenarios:
        part = table_data[(table_data["scenario"] == name) & table_data["period"].isin(shown)]
        for element in results.inputs.topology.elements:
            rows = part[part["element"] == element]
            pivot = rows.pivot_table(index="where", columns="period", values="share", sort=False)
            result = Table(
                title=f"{element} of the {cohort} cohort of '{stock}', scenario '{name}': "
                "share of the cohort (sinks cumulative)",
                title_justify="left",
            )
            result.add_column("where")
            for year in pivot.columns:
                result.add_column(str(year), justify="right")
            for where, values in pivot.iterrows():
                result.add_row(escape(str(where)), *(f"{v:.1%}" for v in values))
            out.print(result)
    years_in_use = longevity(table_data)
    for row in years_in_use.itertuples():
        out.print(
            f"Longevity of {row.element} ({row.scenario}): {row.years:.1f} years in use per unit "
            f"up to {years[-1]}"
        )
    if out_file is not None:
        out.print(f"Full trace: [bold]{out_file}[/bold]")


@app.command()
def schema(
    indent: Annotated[int, typer.Option(help="JSON indentation.")] = 2,
) -> None:
    """Print the JSON Schema of the model file format."""
    from critflow.model.schema import ModelFile

    document = ModelFile.model_json_schema(by_alias=True)
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "critflow model file"
    sys.stdout.write(json.dumps(document, indent=indent) + "\n")


@app.command()
def indicators(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml or .json).")],
    element: Annotated[
        list[str] | None,
        typer.Option(
            "--element", "-e", help="Elements to report (repeatable); goods mass by default."
        ),
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="Year to report; the model's last period by default.")
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario (repeatable); all by default."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Reference scenario (or year, 2023) for the *_change indicators."),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Print every indicator critflow can compute for a model (and the reason for those it cannot)."""
    from critflow.engine import solve
    from critflow.indicators.catalogue import (
        INDICATORS,
        Context,
        IndicatorNotAvailableError,
        evaluate_indicator,
    )
    from critflow.model import load_model

    _check_format(output_format, "indicators")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    scenarios = _split(scenario) or None
    scenarios = _with_reference(scenarios, reference)
    results = solve(loaded, scenarios)
    periods = list(results.inputs.periods)
    p = periods.index(year) if year in periods else len(periods) - 1
    if year is not None and year not in periods:
        raise CritflowError(
            "--year", f"the model has no period {year}", f"Periods: {periods[0]}–{periods[-1]}."
        )
    ctx = Context(loaded, results, reference)
    names = list(INDICATORS) + [n for n in loaded.spec.indicators if n not in INDICATORS]
    rows = []
    for name in names:
        for el in _split(element) or [None]:
            indicator = INDICATORS.get(name)
            if indicator and indicator.element == "required" and el is None:
                continue
            if indicator and indicator.element == "none" and el is not None:
                continue
            try:
                values = evaluate_indicator(ctx, name, el)
                reason = ""
            except IndicatorNotAvailableError as exc:
                values, reason = None, str(exc)
            except CritflowError as exc:  # e.g. outputs without a fate: say so, keep the others
                values, reason = None, exc.problems[0].what
            for s, scen in enumerate(results.inputs.scenarios):
                value = None if values is None or np.isnan(values[s, p]) else float(values[s, p])
                rows.append(
                    {
                        "indicator": name,
                        "element": el,
                        "scenario": scen,
                        "period": int(periods[p]),
                        "value": value,
                        "unit": indicator.unit if indicator else "fraction",
                        "reason": reason,
                    }
                )
    if output_format == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{loaded.name}: indicators in {periods[p]}", title_justify="left")
    for column in ("indicator", "element", "scenario", "value", "note"):
        table.add_column(column)
    for row in rows:
        shown = (
            "—"
            if row["value"] is None
            else (
                f"{row['value']:.2%}"
                if row["unit"] == "fraction"
                else f"{row['value']:.4g} {row['unit']}"
            )
        )
        table.add_row(
            row["indicator"],
            row["element"] or "goods",
            row["scenario"],
            shown,
            escape(row["reason"]),
        )
    out.print(table)


@app.command()
def compare(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml or .json).")],
    criteria: Annotated[
        Path,
        typer.Option(
            "--criteria", "-c", help="Criteria file (YAML): indicators, weights, directions."
        ),
    ],
    scenarios: Annotated[
        list[str] | None,
        typer.Option("--scenarios", help="Scenarios to compare, comma-separated; all by default."),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Reference scenario for *_change indicators.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Rank scenarios on several indicators (weighted sum and TOPSIS) with weight sensitivity."""
    from critflow.engine import solve
    from critflow.indicators.compare import compare as run_compare
    from critflow.indicators.compare import load_criteria
    from critflow.model import load_model

    _check_format(output_format, "compare")
    spec = load_criteria(criteria)
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    chosen = _split(scenarios) or None
    chosen = _with_reference(chosen, reference)
    result = run_compare(loaded, solve(loaded, chosen), spec, reference)
    if output_format == "json":
        document = {
            "period": result.period,
            "criteria": [c.model_dump() for c in result.criteria],
            "weights": [float(w) for w in result.weights],
            "ahp": None
            if result.ahp is None
            else {
                "lambda_max": result.ahp.lambda_max,
                "consistency_index": result.ahp.consistency_index,
                "consistency_ratio": result.ahp.consistency_ratio,
            },
            "scenarios": {
                s: {
                    "values": dict(
                        zip(
                            [c.label for c in result.criteria],
                            map(float, result.matrix[i]),
                            strict=True,
                        )
                    ),
                    "scores": {m: float(v[i]) for m, v in result.scores.items()},
                }
                for i, s in enumerate(result.scenarios)
            },
            "sensitivity": {
                m: [
                    {
                        "criterion": result.criteria[r.criterion].label,
                        "weight": r.weight,
                        "winner_kept_from": r.low,
                        "winner_kept_to": r.high,
                    }
                    for r in ranges
                ]
                for m, ranges in result.sensitivity.items()
            },
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    table = Table(
        title=f"{loaded.name}: scenarios compared in {result.period}", title_justify="left"
    )
    table.add_column("scenario")
    for c, w in zip(result.criteria, result.weights, strict=True):
        table.add_column(escape(f"{c.label} ({c.direction}, w={w:.3g})"), justify="right")
    for m in result.scores:
        table.add_column(f"{m} score (rank)", justify="right")
    ranks = {m: (-v).argsort().argsort() + 1 for m, v in result.scores.items()}
    for i, s in enumerate(result.scenarios):
        table.add_row(
            s,
            *(f"{v:.4g}" for v in result.matrix[i]),
            *(f"{v[i]:.3f} ({ranks[m][i]})" for m, v in result.scores.items()),
        )
    out.print(table)
    if result.ahp is not None:
        verdict = (
            "consistent"
            if result.ahp.consistent
            else "[yellow]inconsistent: revise the pairwise comparisons[/yellow]"
        )
        out.print(
            f"AHP weights from the pairwise matrix: λmax {result.ahp.lambda_max:.4f}, CI "
            f"{result.ahp.consistency_index:.4f}, CR {result.ahp.consistency_ratio:.3f} ({verdict}; "
            "CR ≤ 0.10 is the usual limit)"
        )
    for m, ranges in result.sensitivity.items():
        winner = result.scenarios[int(np.argmax(result.scores[m]))]
        out.print(
            f"{m}: '{winner}' ranks first while each weight stays within (others rescaled in proportion):"
        )
        for r in ranges:
            out.print(
                f"  {escape(result.criteria[r.criterion].label):<32} weight {r.weight:.3f}: {r.low:.3f} – {r.high:.3f}"
            )


@app.command()
def criticality(
    materials: Annotated[
        list[str] | None,
        typer.Argument(
            help="Materials, groups or element symbols (Lithium, PGMs, W); all with supply shares by default."
        ),
    ] = None,
    shares: Annotated[
        Path | None,
        typer.Option(
            help="CSV of your own supply shares (material, stage, scope, country, share) replacing shipped ones."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="A model file whose criticality: block overrides inputs."),
    ] = None,
    rule_file: Annotated[
        Path | None,
        typer.Option(
            "--rule-file",
            help="A CRMA rule file whose largest_third_country_share rule replaces the shipped limit.",
        ),
    ] = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """EU criticality (SR, EI, 2023), the CRMA lists, supply concentration and the CRMA
    single-country limit on EU sourcing per stage."""
    import pandas as pd

    from critflow.indicators.criticality import (
        criticality_rows,
        single_country_limit,
        supply_shares,
    )

    overrides = None
    if model is not None:
        from critflow.model import load_model

        block = load_model(model, allow_outside_files=allow_outside_files).spec.criticality
        if block is not None and block.shares:
            overrides = pd.DataFrame([row.model_dump() for row in block.shares])
    if shares is not None:
        if not shares.is_file():
            raise CritflowError(
                str(shares),
                "no such file",
                "Give a CSV with material, stage, scope, country, share.",
            )
        try:
            from_file = pd.read_csv(shares)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise CritflowError(
                str(shares),
                f"cannot be read as CSV ({exc})",
                "Save it as UTF-8 CSV with a header row.",
            ) from None
        overrides = from_file if overrides is None else pd.concat([overrides, from_file])
    limit = None
    if rule_file is not None:
        from critflow.rules import load_rule_sets

        limit = single_country_limit(load_rule_sets([], [rule_file])[0], str(rule_file))
    limit = limit or single_country_limit()
    rows = criticality_rows(materials, supply_shares(overrides, str(shares or model or "")), limit)
    result = Table(
        title="EU criticality assessment 2023, CRMA lists and supply concentration",
        title_justify="left",
    )
    for column in (
        "material",
        "CRMA",
        "SR",
        "EI",
        "critical",
        "EoL-RIR",
        "stage",
        "HHI",
        "largest third country",
        f"{limit.label} of EU use",
    ):
        result.add_column(column)
    verdicts = {"met": "met", "breach": "[red]breach[/red]"}
    for row in rows:
        via = f" ({row.assessed_as})" if row.assessed_as not in (None, row.material) else ""
        head = [
            escape(row.material),
            escape(row.crma),
            "—" if row.supply_risk is None else f"{row.supply_risk:.1f}{via}",
            "—" if row.economic_importance is None else f"{row.economic_importance:.1f}",
            "—" if row.critical is None else ("yes" if row.critical else "no"),
            "—" if row.eol_rir is None else f"{row.eol_rir:.0%}",
        ]
        for i, stage in enumerate(row.stages or [None]):
            cells = head if i == 0 else [""] * len(head)
            if stage is None:
                result.add_row(*cells, "—", "—", "—", "—")
                continue
            label = f"{stage.stage} ({stage.scope})"
            if stage.material != row.material:
                label = f"{stage.material}: {label}"
            result.add_row(
                *cells,
                escape(label),
                f"{stage.hhi:.2f}",
                f"{stage.largest_country} {stage.largest_share:.0%}"
                if stage.largest_country
                else "—",
                verdicts.get(stage.verdict, "— global" if stage.scope != "EU" else "— not an SRM"),
            )
    out.print(result)
    out.print(
        f"CRMA single-country limit: {limit.label} ({limit.source}, rule {limit.rule_id}), checked on "
        "EU-sourcing rows of strategic raw materials (or of their strategic grade or group); global "
        "supply shares are shown, not judged."
    )
    out.print(
        "Sources: European Commission, Study on the critical raw materials for the EU 2023 (SR, EI, supply "
        "shares: three largest suppliers, so HHI is a lower bound); SCRREEN2 factsheets (EoL-RIR); "
        "Regulation (EU) 2024/1252 Annexes I and II (CRMA)."
    )
    if overrides is not None:
        out.print(
            f"{len(overrides)} supply shares replaced by your own ("
            + ", ".join(sorted(set(map(str, overrides.get("source", ["user override"])))))
            + ")."
        )


def _objective(text: str | None):
    if text is None:
        return None
    if "=" not in text:
        if text not in ("cost", "primary", "co2"):
            raise CritflowError(
                "--objective",
                f"'{text}' is not an objective",
                "Use cost, primary, co2 or a mix cost=1,co2=0.05.",
            )
        return text
    weights = {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        if key.strip() not in ("cost", "primary", "co2"):
            raise CritflowError(
                "--objective",
                f"'{key}' is not an objective",
                "Mix cost, primary and co2: cost=1,co2=0.05.",
            )
        try:
            weights[key.strip()] = float(value)
        except ValueError:
            raise CritflowError(
                "--objective",
                f"'{value}' is not a weight",
                "Write weights as numbers: cost=1,co2=0.05.",
            ) from None
    return weights


@app.command()
def blend(
    problem: Annotated[Path, typer.Argument(help="Blend problem file (YAML or JSON).")],
    objective: Annotated[
        str | None,
        typer.Option(
            help="cost, primary, co2, or a weighted mix such as cost=1,co2=0.05 (per EUR, t, kg)."
        ),
    ] = None,
    confidence: Annotated[
        float | None,
        typer.Option(
            help="Probability with which each limit must hold (e.g. 0.95): the robust blend."
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The blend of scrap, primary metal and master alloys that meets every alloy specification."""
    from critflow.blend import blend as solve_blend
    from critflow.blend import downcycling_baseline, load_problem
    from critflow.blend.optimise import crm_reduction_targets

    _check_format(output_format, "blend")
    if confidence is not None and not 0.5 < confidence < 1:
        raise CritflowError(
            "--confidence", f"{confidence} is not a probability between 0.5 and 1", "Use e.g. 0.95."
        )
    arrays = load_problem(problem)
    chosen = _objective(objective)
    result = solve_blend(arrays, chosen, confidence)
    nominal = solve_blend(arrays, chosen, None) if result.confidence is not None else None
    totals = result.totals()
    baseline = downcycling_baseline(arrays, chosen)
    change = None
    if baseline and baseline["crm_primary_t"] > 0:
        change = totals["crm_primary_t"] / baseline["crm_primary_t"] - 1
    composition = result.composition()
    currency = arrays.problem.currency
    document = {
        "problem": arrays.problem.name,
        "objective": result.objective_name,
        "objective_value": result.objective,
        "confidence": result.confidence,
        "cost_of_safety": None
        if nominal is None
        else result.totals()["cost"] - nominal.totals()["cost"],
        "totals": totals,
        "downcycling_baseline": baseline,
        "crm_use_change": change,
        "recipe": {
            p: {
                m: float(result.tonnes[i, j])
                for i, m in enumerate(arrays.materials)
                if result.tonnes[i, j] > 1e-9
            }
            for j, p in enumerate(arrays.products)
        },
        "composition_percent": {
            p: {e: 100 * float(composition[j, k]) for k, e in enumerate(arrays.elements)}
            for j, p in enumerate(arrays.products)
        },
        "value_of_one_more_tonne": {
            m: float(v)
            for m, v in zip(arrays.materials, result.availability_value, strict=True)
            if np.isfinite(arrays.available[arrays.materials.index(m)])
        },
        "value_of_relaxing_limit_per_percentage_point": {
            f"{arrays.products[p]}:{arrays.elements[e]}:{kind}": v
            for (p, e, kind), v in result.limit_value.items()
            if abs(v) > 1e-9
        },
        "marginal_cost_of_product": dict(
            zip(arrays.products, map(float, result.demand_value), strict=True)
        ),
        "limit_confidence": {
            f"{arrays.products[p]}:{arrays.elements[e]}:{kind}": v
            for (p, e, kind), v in result.limit_confidence().items()
        },
    }
    if output_format == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    out.print(
        f"[bold]{arrays.problem.name}[/bold] — least {result.objective_name}"
        + (
            f", each limit met with probability {result.confidence:.0%}"
            if result.confidence
            else ""
        )
    )
    for j, product in enumerate(arrays.products):
        spec = arrays.problem.products[j].spec or "own limits"
        table = Table(title=f"{product}: {arrays.demand[j]:,.6g} t of {spec}", title_justify="left")
        table.add_column("material")
        table.add_column("t", justify="right")
        table.add_column("share", justify="right")
        for i, material in enumerate(arrays.materials):
            if result.tonnes[i, j] > 1e-6:
                table.add_row(
                    material,
                    f"{result.tonnes[i, j]:,.1f}",
                    f"{result.tonnes[i, j] / arrays.demand[j]:.1%}",
                )
        out.print(table)
        limits = []
        for k, element in enumerate(arrays.elements):
            lo, hi = arrays.low[j, k], arrays.high[j, k]
            if np.isnan(lo) and np.isnan(hi):
                continue
            span = f"{'' if np.isnan(lo) else f'{100 * lo:.3g}'}–{'' if np.isnan(hi) else f'{100 * hi:.3g}'}"
            limits.append(f"{element} {100 * composition[j, k]:.3f} ({span})")
        out.print("  composition % (limits): " + ", ".join(limits))
        out.print(f"  [dim]limits: {escape(arrays.limit_sources[product])}[/dim]")
    out.print(
        f"\nCost {totals['cost']:,.0f} {currency}; primary metal and master alloys {totals['primary_t']:,.1f} t; "
        f"scrap {totals['scrap_t']:,.1f} t; {totals['co2_kg'] / 1000:,.1f} t CO2-eq."
    )
    if nominal is not None:
        out.print(
            f"Cost of safety ({result.confidence:.0%} per limit): {document['cost_of_safety']:,.0f} {currency} "
            f"more than the blend on mean compositions ({result.cuts} cutting planes)."
        )
        (p, e, kind), least = min(result.limit_confidence().items(), key=lambda item: item[1])
        out.print(
            f"Least safe limit: {arrays.products[p]} {arrays.elements[e]} {kind}, met with probability "
            f"{least:.2%}."
        )
    if baseline:
        out.print(
            f"Against down-cycling (same products from primary metal and master alloys only): "
            f"{baseline['primary_t'] - totals['primary_t']:,.1f} t primary avoided, "
            f"{baseline['crm_primary_t'] - totals['crm_primary_t']:,.1f} t of critical raw materials avoided, "
            f"{(baseline['co2_kg'] - totals['co2_kg']) / 1000:,.1f} t CO2-eq avoided, "
            f"{baseline['cost'] - totals['cost']:,.0f} {currency} saved."
        )
        if change is not None:
            verdicts = ", ".join(
                f"{rule} ({threshold:+.0%}): {'pass' if change <= threshold else 'fail'}"
                for rule, threshold, _ in crm_reduction_targets()
            )
            out.print(f"CRM use change against down-cycling: {change:+.1%} — roadmap {verdicts}.")
    else:
        out.print(
            "Down-cycling comparison: the products cannot be made from primary metal and master alloys alone."
        )
    worth = [(m, v) for m, v in document["value_of_one_more_tonne"].items() if v > 1e-6]
    if worth:
        out.print(
            "Worth sorting for — objective saved per extra tonne: "
            + ", ".join(f"{m} {v:,.1f}" for m, v in sorted(worth, key=lambda x: -x[1]))
        )
    binding = sorted(
        document["value_of_relaxing_limit_per_percentage_point"].items(), key=lambda x: -abs(x[1])
    )[:8]
    if binding:
        out.print(
            "Binding limits — objective saved per percentage point of relaxation: "
            + ", ".join(f"{k.replace(':', ' ')} {v:,.0f}" for k, v in binding)
        )


def _check_format(value: str, command: str) -> None:
    if value not in ("table", "json"):
        raise CritflowError(
            "--format", f"'{value}' is not a format of {command}", "Use table or json."
        )


def _with_reference(scenarios: list[str] | None, reference: str | None) -> list[str] | None:
    """The chosen scenarios plus the reference scenario that relative indicators compare with
    (a reference that is a year, '2023', is a period of the same scenarios)."""
    if reference and scenarios and reference not in scenarios and not reference.isdigit():
        return [*scenarios, reference]
    return scenarios


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _percent(value: float | None, indicator: str) -> str:
    if value is None:
        return "—"
    from critflow.indicators.catalogue import INDICATORS

    unit = INDICATORS[indicator].unit if indicator in INDICATORS else "fraction"
    return f"{value:.1%}" if unit == "fraction" else f"{value:.4g} {unit}"


@app.command()
def check(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml or .json).")],
    rules: Annotated[
        list[str] | None,
        typer.Option(
            "--rules",
            "-r",
            help="Shipped rule sets, comma-separated: battery-regulation, crma, roadmap.",
        ),
    ] = None,
    rule_file: Annotated[
        list[Path] | None, typer.Option("--rule-file", help="A rule file of your own (repeatable).")
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="Year to check; the model's last period by default.")
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario to check (repeatable); all by default."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            help="Reference scenario (or year) for relative targets (the roadmap's -10 % / -20 %); "
            "without it, a rule's reference year (the roadmap's 2023)."
        ),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list the rules that do not apply, with the reason.")
    ] = False,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Check a model against rule sets; exit code 1 when a rule fails (for use in CI)."""
    from critflow.engine import solve
    from critflow.model import load_model
    from critflow.rules import check as check_rules
    from critflow.rules import load_rule_sets

    _check_format(output_format, "check")
    names = _split(rules) or ([] if rule_file else ["battery-regulation", "crma", "roadmap"])
    rule_sets = load_rule_sets(names, rule_file)
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    scenarios = _split(scenario) or None
    scenarios = _with_reference(scenarios, reference)
    results = solve(loaded, scenarios)
    rows = check_rules(loaded, results, rule_sets, year, reference)
    if output_format == "json":
        keys = [
            "rule",
            "title",
            "indicator",
            "scope",
            "scenario",
            "period",
            "value",
            "threshold",
            "comparator",
            "status",
            "margin",
            "source",
            "reason",
        ]
        sys.stdout.write(
            json.dumps([{k: r.as_dict()[k] for k in keys} for r in rows], indent=2) + "\n"
        )
    else:
        _check_table(loaded.name, rows, year, show_all)
    if any(r.status == "fail" for r in rows):
        raise typer.Exit(1)


def _check_table(name: str, rows, year: int | None, show_all: bool) -> None:
    colours = {"pass": "green", "fail": "red", "pending": "yellow", "not applicable": "dim"}
    shown = [r for r in rows if show_all or r.status != "not applicable"]
    period = rows[0].period if rows else year
    table = Table(title=f"{name}: rules checked for {period}", title_justify="left")
    for column in (
        "rule",
        "scenario",
        "value",
        "target",
        "status",
        "margin",
        "source" + (" / reason" if show_all else ""),
    ):
        table.add_column(column, no_wrap=column in ("rule", "scenario", "status"))
    for row in shown:
        detail = row.source.rsplit(" (", 1)[0] + (f" — {row.reason}" if row.reason else "")
        colour = colours[row.status]
        margin = (
            "—" if row.margin is None else _percent(row.margin, row.indicator).replace("%", " pp")
        )
        table.add_row(
            row.rule,
            row.scenario,
            (f"{row.element} " if row.element else "") + _percent(row.value, row.indicator),
            f"{row.comparator} {_percent(row.threshold, row.indicator)}",
            f"[{colour}]{row.status}[/{colour}]",
            margin if row.margin is None or row.margin < 0 else "+" + margin,
            escape(detail),
        )
    out.print(table)
    counts = {k: sum(r.status == k for r in rows) for k in colours}
    hidden = (
        "" if show_all or not counts["not applicable"] else " (--all lists those that do not apply)"
    )
    out.print(", ".join(f"{n} {k}" for k, n in counts.items()) + hidden)


def main() -> None:
    """Entry point of the ``critflow`` command."""
    try:
        app()
    except CritflowError as exc:
        count = len(exc.problems)
        err.print(
            f"[bold red]critflow: {count} problem{'s' if count > 1 else ''} found[/bold red]\n"
        )
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
            err.print()
        sys.exit(2)


if __name__ == "__main__":
    main()
