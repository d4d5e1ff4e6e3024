"""``critflow reconcile``: data reconciliation of measured flows, with gross-error tests."""

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from critflow.cli.common import (
    AllowOutsideFiles,
    ResultFileOnly,
    ResultFormat,
    emit,
    out,
    result_format,
    slug,
    split,
)
from critflow.errors import CritflowError


def reconcile(
    model: Annotated[Path, typer.Argument(help="Model file with measurements:.")],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario (repeatable); all by default."),
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="Year to reconcile; every period by default.")
    ] = None,
    alpha: Annotated[float, typer.Option(help="Significance level of the tests.")] = 0.05,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder; default out/<model>-reconciled/."),
    ] = None,
    output_format: ResultFormat = None,
    out_file: ResultFileOnly = None,
    plotly: Annotated[
        str,
        typer.Option(
            "--plotly",
            help="How reconciled.html gets plotly.js: inline (works offline), cdn or directory.",
        ),
    ] = "inline",
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Reconcile measurements with the balances (weighted least squares), test them for gross
    errors, and write the reconciled flows (CSV) and their Sankey with ± sd (reconciled.html)
    into the --out folder. Exit code 1 when the global test fails.

    json gives each scenario and year with its test and measurements; csv one row per
    measurement (scenario, period, measured, sd, reconciled, reconciled_sd, z, suspect …)."""
    import numpy as np

    from critflow.engine.reconcile import MAX_LISTED, flows_table, goods_table
    from critflow.engine.reconcile import reconcile as run_reconcile
    from critflow.model import load_model
    from critflow.report.html import check_plotly_mode
    from critflow.report.reconciled import write_reconciled_report

    output_format = result_format(output_format, out_file, "reconcile")
    check_plotly_mode(plotly)
    if not 0 < alpha < 1:
        raise CritflowError("--alpha", f"{alpha} is not a probability", "Use e.g. 0.05.")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    found = run_reconcile(loaded, split(scenario) or None, year, alpha)
    target = out_dir or Path("out") / f"{slug(model.stem)}-reconciled"
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
    write_reconciled_report(loaded, found, target / "reconciled.html", plotly)
    failed = [r for r in found if not r.passed]
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
    rows = [
        {"scenario": r.scenario, "period": r.period, **record, "test_passed": r.passed}
        for r in found
        for record in r.measurements.to_dict("records")
    ]

    def show() -> None:
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
            f"{target / 'measurements.csv'}; Sankey with ± sd: {target / 'reconciled.html'}"
        )

    emit(output_format, out_file, rows=rows, document=document, table=show)
    if failed:
        raise typer.Exit(1)
