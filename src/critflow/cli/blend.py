"""``critflow blend``: the scrap blend that meets every alloy specification."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from critflow.cli.common import ResultFile, ResultFormat, emit, out, result_format
from critflow.errors import CritflowError


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
    output_format: ResultFormat = None,
    out_path: ResultFile = None,
) -> None:
    """The blend of scrap, primary metal and master alloys that meets every alloy specification.

    json is the whole outcome (recipe, compositions, totals, shadow prices in objective_unit
    per tonne or per percentage point);
    csv one row per product and material of the recipe (tonnes, share)."""
    from critflow.blend import assess_blend, load_problem

    output_format = result_format(output_format, out_path, "blend")
    arrays = load_problem(problem)
    outcome = assess_blend(arrays, _objective(objective), confidence)
    document = outcome.document()
    result = outcome.result
    rows = [
        {
            "product": product,
            "material": material,
            "tonnes": float(result.tonnes[i, j]),
            "share": float(result.tonnes[i, j] / arrays.demand[j]),
        }
        for j, product in enumerate(arrays.products)
        for i, material in enumerate(arrays.materials)
        if result.tonnes[i, j] > 1e-6
    ]
    emit(output_format, out_path, rows=rows, document=document, table=lambda: _show(outcome))


def _show(outcome) -> None:
    import numpy as np

    arrays, result = outcome.arrays, outcome.result
    nominal, baseline = outcome.nominal, outcome.baseline
    totals, change = outcome.totals, outcome.crm_use_change
    composition = result.composition()
    currency = arrays.problem.currency
    document = outcome.document()
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
            f"Cost of safety ({result.confidence:.0%} per limit): {outcome.cost_of_safety:,.0f} {currency} "
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
                f"{t.rule} ({t.comparator} {t.threshold:+.0%}): {t.status}" for t in outcome.targets
            )
            out.print(f"CRM use change against down-cycling: {change:+.1%} — {verdicts}.")
    else:
        out.print(
            "Down-cycling comparison: the products cannot be made from primary metal and master alloys alone."
        )
    worth = [(m, v) for m, v in document["value_of_one_more_tonne"].items() if v > 1e-6]
    if worth:
        out.print(
            f"Worth sorting for — {result.objective_name} saved per extra tonne available: "
            + ", ".join(
                f"{m} {v:,.1f} {result.objective_unit}/t"
                for m, v in sorted(worth, key=lambda x: -x[1])
            )
        )
    binding = sorted(
        document["value_of_relaxing_limit_per_percentage_point"].items(), key=lambda x: -abs(x[1])
    )[:8]
    if binding:
        out.print(
            f"Binding limits — {result.objective_name} saved per percentage point of relaxation: "
            + ", ".join(
                f"{k.replace(':', ' ')} {v:,.0f} {result.objective_unit}/pp" for k, v in binding
            )
        )
