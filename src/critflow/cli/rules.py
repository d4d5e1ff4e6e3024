"""``critflow check``: a model against rule sets (Battery Regulation, CRMA, the roadmap)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from critflow.cli.common import (
    AllowOutsideFiles,
    ResultFile,
    ResultFormat,
    deprecated_commas,
    emit,
    out,
    percent,
    result_format,
    split,
    with_reference,
)


def check(
    model: Annotated[
        Path, typer.Argument(help="Model file (.yaml, .yml, .json or a model workbook .xlsx).")
    ],
    rules: Annotated[
        list[str] | None,
        typer.Option(
            "--rules",
            "-r",
            help="Shipped rule set (repeatable): battery-regulation, crma, roadmap; all three "
            "by default (none when --rule-file is given).",
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
    output_format: ResultFormat = None,
    out_path: ResultFile = None,
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

    output_format = result_format(output_format, out_path, "check")
    names = deprecated_commas(rules, "--rules", "-r") or (
        [] if rule_file else ["battery-regulation", "crma", "roadmap"]
    )
    rule_sets = load_rule_sets(names, rule_file)
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    scenarios = split(scenario) or None
    scenarios = with_reference(scenarios, reference)
    results = solve(loaded, scenarios)
    rows = check_rules(loaded, results, rule_sets, year, reference)
    if output_format in ("json", "csv"):
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
        emit(output_format, out_path, rows=[{k: r.as_dict()[k] for k in keys} for r in rows])
    else:
        emit(output_format, out_path, table=lambda: _check_table(loaded.name, rows, year, show_all))
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
            "—" if row.margin is None else percent(row.margin, row.indicator).replace("%", " pp")
        )
        table.add_row(
            row.rule,
            row.scenario,
            (f"{row.element} " if row.element else "") + percent(row.value, row.indicator),
            f"{row.comparator} {percent(row.threshold, row.indicator)}",
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
