"""``critflow impact``: climate impact and life-cycle cost of a model, with contributions."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from critflow.cli.common import (
    AllowOutsideFiles,
    ResultFileOnly,
    ResultFormat,
    emit,
    out,
    progress_bar,
    result_format,
    split,
)
from critflow.errors import CritflowError, known


def _year_index(periods, year: int | None) -> int:
    import numpy as np

    if year is None:
        return len(periods) - 1
    if year not in periods:
        raise CritflowError(
            "--year", f"the model has no period {year}", f"Periods: {periods[0]}–{periods[-1]}."
        )
    return int(np.flatnonzero(periods == year)[0])


def impact(
    model: Annotated[Path, typer.Argument(help="Model file with process inventories.")],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario (repeatable); all by default."),
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="Year to report; the model's last period by default.")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Reference scenario: % change of kg CO2-eq per kg product against it."),
    ] = None,
    samples: Annotated[
        int, typer.Option(help="Monte Carlo samples of uncertain factors and prices (0: none).")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same numbers).")] = 1,
    cost: Annotated[
        bool | None,
        typer.Option("--cost/--no-cost", help="Life-cycle cost; on when the model has economics:."),
    ] = None,
    top: Annotated[int, typer.Option(help="How many processes and items to list.")] = 8,
    sources: Annotated[
        bool, typer.Option("--sources", help="List the background factors used, with sources.")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Also write every table of every year as CSV into this folder."
        ),
    ] = None,
    output_format: ResultFormat = None,
    out_file: ResultFileOnly = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Climate impact (kg CO2-eq, GWP100) per process, item and product, and life-cycle cost.

    json holds the summary, products and processes of --year (and the cost); csv one row per
    scenario of the summary of --year (impact, credits, net in kg CO2-eq/a, intensity in kg/kg)."""
    from critflow.engine import solve
    from critflow.impact.cost import assess_cost
    from critflow.impact.lca import assess, source_table
    from critflow.model import load_model

    output_format = result_format(output_format, out_file, "impact")
    if samples < 0:
        raise CritflowError("--samples", f"{samples} is negative", "Give 0 or more samples.")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    names = split(scenario) or None
    if reference and names and reference not in names:
        names.append(reference)
    results = solve(loaded, names)
    if not any(p.inventory for p in loaded.spec.processes):
        raise CritflowError(
            str(model),
            "no process declares an inventory, so there is nothing to assess",
            "Add inventory: {electricity: '180 kWh/t', sulfuric_acid: '0.9 t/t'} to the "
            "processes (per tonne they process); see README, 'Impact and cost'.",
        )
    scen = list(results.inputs.scenarios)
    if reference and reference not in scen:
        raise CritflowError(
            "--reference", f"'{reference}' is not a scenario", f"Scenarios: {known(scen)}."
        )
    p = _year_index(results.inputs.periods, year)
    with progress_bar(spinner=False) as progress:
        task = progress.add_task("Monte Carlo", total=max(samples, 1), visible=samples > 0)
        impacts = assess(
            loaded, results, samples, seed, lambda done, n: progress.update(task, completed=done)
        )
    with_cost = loaded.spec.economics is not None if cost is None else cost
    costs = assess_cost(loaded, results, impacts, samples, seed) if with_cost else None

    summary = impacts.summary_table()
    products = impacts.product_table()
    processes = impacts.process_table()
    items = impacts.item_table()
    year_value = int(results.inputs.periods[p])
    if reference:
        base = dict(
            zip(results.inputs.periods, impacts.intensity[scen.index(reference)], strict=True)
        )
        reference_intensity = summary["period"].map(base)
        summary["intensity_change"] = summary["intensity"] / reference_intensity - 1
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        summary.to_csv(out_dir / "impact_summary.csv", index=False)
        products.to_csv(out_dir / "impact_products.csv", index=False)
        processes.to_csv(out_dir / "impact_processes.csv", index=False)
        items.to_csv(out_dir / "impact_items.csv", index=False)
        if costs is not None:
            costs.annual_table().to_csv(out_dir / "cost_annual.csv", index=False)
            costs.project_table().to_csv(out_dir / "cost_project.csv", index=False)
    at_year = lambda frame: frame[frame["period"] == year_value]  # noqa: E731
    document = {
        "model": loaded.name,
        "method": impacts.method.name,
        "unit": impacts.unit,
        "year": year_value,
        "end_of_life": impacts.end_of_life,
        "partition": impacts.partition,
        "notes": impacts.notes,
        "summary": at_year(summary).to_dict("records"),
        "products": at_year(products).to_dict("records"),
        "processes": at_year(processes).to_dict("records"),
    }
    if sources:
        frame = source_table(loaded, impacts)
        document["sources"] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    if costs is not None:
        document["cost"] = {
            "annual": at_year(costs.annual_table()).to_dict("records"),
            "project": costs.project_table().to_dict("records"),
        }

    def show() -> None:
        _print_tables(
            loaded.name, impacts, summary, products, processes, items, year_value, top, reference
        )
        if costs is not None:
            _print_cost(costs, p)
        if sources:
            _print_sources(source_table(loaded, impacts))
        for note in impacts.notes:
            out.print(f"[yellow]Note:[/yellow] {escape(note)}")
        if out_dir is not None:
            out.print(f"Tables written to [bold]{out_dir}/[/bold] (impact_*.csv, cost_*.csv).")

    emit(
        output_format,
        out_file,
        rows=at_year(summary).to_dict("records"),
        document=document,
        table=show,
    )


def _print_sources(frame) -> None:
    table = Table(title="Background factors used", title_justify="left")
    columns = {
        "item": "item",
        "used_as": "used as",
        "geography": "geography",
        "year": "year",
        "flow": "flow",
        "amount": "amount",
        "source": "source",
        "verify": "verify",
        "supply_route": "supply route",
        "gwp_basis": "GWP basis",
    }
    for label in columns.values():
        table.add_column(label)

    import numpy as np

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.4g}"
        return escape(str(value))

    for row in frame.to_dict("records"):
        table.add_row(*(cell(row[c]) for c in columns))
    out.print(table)


def _print_tables(name, impacts, summary, products, processes, items, year, top, reference) -> None:
    import numpy as np

    table = Table(
        title=f"{name}: climate change ({impacts.method.name}) in {year}", title_justify="left"
    )
    columns = [
        "scenario",
        "impact t CO2-eq/a",
        "credits t CO2-eq/a",
        "net t CO2-eq/a",
        "kg CO2-eq/kg product",
    ]
    if "intensity_change" in summary:
        columns.append(f"change vs {reference}")
    if "intensity_p5" in summary:
        columns.append("P5–P95 kg/kg")
    for column in columns:
        table.add_column(column, justify="right" if column != "scenario" else "left")
    for row in summary[summary["period"] == year].itertuples():
        cells = [
            row.scenario,
            f"{row.impact / 1e3:,.1f}",
            f"{row.credits / 1e3:,.1f}",
            f"{row.net / 1e3:,.1f}",
            f"{row.intensity:.3f}",
        ]
        if "intensity_change" in summary:
            cells.append("—" if np.isnan(row.intensity_change) else f"{row.intensity_change:+.1%}")
        if "intensity_p5" in summary:
            cells.append(f"{row.intensity_p5:.3f}–{row.intensity_p95:.3f}")
        table.add_row(*cells)
    out.print(table)

    first = summary["scenario"].iloc[0]
    rule = f"{impacts.end_of_life}, {impacts.partition} partition"
    if impacts.end_of_life == "cff":
        rule += f", A = {impacts.cff_a}"
    table = Table(title=f"Products ({rule}), {first}, {year}", title_justify="left")
    for column in (
        "product",
        "t/a",
        "share",
        "allocated kg/kg",
        "displaced kg/kg",
        "footprint kg CO2-eq/kg",
    ):
        table.add_column(column, justify="left" if column == "product" else "right")
    for row in products[
        (products["scenario"] == first) & (products["period"] == year)
    ].itertuples():
        table.add_row(
            row.product,
            f"{row.mass_kg / 1e3:,.1f}",
            f"{row.allocation_share:.1%}",
            f"{row.allocated_per_kg:.3f}",
            f"{row.displaced_per_kg:.3f}",
            f"{row.footprint_per_kg:.3f}",
        )
    out.print(table)

    for label, frame, key in (("Processes", processes, "process"), ("Items", items, "item")):
        part = frame[(frame["scenario"] == first) & (frame["period"] == year)]
        total = part["impact"].sum()
        part = part.reindex(part["impact"].abs().sort_values(ascending=False).index).head(top)
        table = Table(title=f"{label} contributing most, {first}, {year}", title_justify="left")
        table.add_column(key)
        table.add_column("t CO2-eq/a", justify="right")
        table.add_column("share", justify="right")
        for row in part.itertuples():
            value = row.impact
            table.add_row(
                getattr(row, key), f"{value / 1e3:,.1f}", f"{value / total:.1%}" if total else "—"
            )
        out.print(table)


def _print_cost(costs, p: int) -> None:
    import numpy as np

    money = costs.currency
    table = Table(
        title=f"Life-cycle cost ({money}, discount rate {costs.discount_rate:.0%}, "
        f"{costs.lifetime_a} years)",
        title_justify="left",
    )
    columns = [
        "scenario",
        f"NPV M{money}",
        "IRR",
        f"levelised {money}/t input",
        f"levelised {money}/kg product",
        f"break-even gate fee {money}/t",
    ]
    if costs.npv_samples is not None:
        columns += [f"NPV P5–P95 M{money}", "P(NPV > 0)"]
    for column in columns:
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for row in costs.project_table().itertuples():
        cells = [
            row.scenario,
            f"{row.npv / 1e6:,.1f}",
            "—" if np.isnan(row.irr) else f"{row.irr:.1%}",
            f"{row.levelised_cost_per_t_input:,.0f}",
            f"{row.levelised_cost_per_kg_product:,.2f}",
            f"{row.break_even_gate_fee_per_t:,.0f}",
        ]
        if costs.npv_samples is not None:
            cells += [
                f"{row.npv_p5 / 1e6:,.1f}–{row.npv_p95 / 1e6:,.1f}",
                f"{row.probability_npv_positive:.0%}",
            ]
        table.add_row(*cells)
    out.print(table)
