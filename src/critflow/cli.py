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
