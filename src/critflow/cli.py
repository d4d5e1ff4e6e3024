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
out = Console()
if not out.is_terminal:  # piped or captured: wide enough that tables keep one line per row
    out = Console(width=200)
err = Console(stderr=True)


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
) -> None:
    """Check a model file: schema, references, units, coefficients, and that its balances solve."""
    from critflow.engine import solve
    from critflow.model import load_model

    loaded = load_model(model)
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
) -> None:
    """Solve a model and write flows.csv, flows.parquet, balance.csv and results.xlsx."""
    from critflow.engine import FlowResults, solve_flows
    from critflow.model import load_model
    from critflow.model.evaluate import evaluate
    from critflow.report import write_tables

    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"Reading {model.name}", total=4)
        loaded = load_model(model)
        progress.update(task, advance=1, description="Evaluating parameters and values")
        inputs = evaluate(loaded, scenario)
        progress.update(task, advance=1, description="Solving balances")
        timings: dict[str, float] = {}
        results = FlowResults(inputs, solve_flows(inputs, timings), timings)
        progress.update(task, advance=1, description="Writing tables")
        target = out_dir or Path("out") / _slug(model.stem)
        paths = write_tables(loaded, results, target)
        progress.update(task, advance=1)
    _summary(loaded.name, results, top)
    out.print(
        f"\nSolved in {time.perf_counter() - started:.2f} s. Outputs in [bold]{target}/[/bold]:"
    )
    for name, path in paths.items():
        out.print(f"  {name:<14} {path}")


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


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _percent(value: float | None, indicator: str) -> str:
    if value is None:
        return "—"
    from critflow.indicators.registry import INDICATORS

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
        typer.Option(help="Reference scenario for relative targets (the roadmap's -10 % / -20 %)."),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list the rules that do not apply, with the reason.")
    ] = False,
) -> None:
    """Check a model against rule sets; exit code 1 when a rule fails (for use in CI)."""
    from critflow.engine import solve
    from critflow.model import load_model
    from critflow.rules import check as check_rules
    from critflow.rules import load_rule_sets

    if output_format not in ("table", "json"):
        raise CritflowError(
            "--format", f"'{output_format}' is not a format of check", "Use table or json."
        )
    names = _split(rules) or ([] if rule_file else ["battery-regulation", "crma", "roadmap"])
    rule_sets = load_rule_sets(names, rule_file)
    loaded = load_model(model)
    scenarios = _split(scenario) or None
    if reference and scenarios and reference not in scenarios:
        scenarios.append(reference)
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
