"""``critflow reconcile``: data reconciliation of measured flows, with gross-error tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from critflow.cli.common import (
    AllowOutsideFiles,
    check_format,
    out,
    slug,
    split,
)
from critflow.errors import CritflowError


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
    import numpy as np

    from critflow.engine.reconcile import flows_table
    from critflow.engine.reconcile import reconcile as run_reconcile
    from critflow.model import load_model

    check_format(output_format, "reconcile")
    if not 0 < alpha < 1:
        raise CritflowError("--alpha", f"{alpha} is not a probability", "Use e.g. 0.05.")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    found = run_reconcile(loaded, split(scenario) or None, year, alpha)
    target = out_dir or Path("out") / f"{slug(model.stem)}-reconciled"
    target.mkdir(parents=True, exist_ok=True)
    flows = flows_table(loaded, found)
    flows.to_csv(target / "reconciled_flows.csv", index=False)
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
                out.print(
                    f"Suspect measurements (largest normalised adjustment first, |z| > "
                    f"{r.measurements['z_critical'].iloc[0]:.2f}, Šidák-corrected): "
                    + ", ".join(r.suspects)
                    + ". Check them, or remove the largest and reconcile again."
                )
            hidden = int((~r.observable).sum())
            if hidden:
                out.print(
                    f"{hidden} element flows are not observable from these measurements (NaN in the table)."
                )
        out.print(
            f"\nReconciled flows: [bold]{target / 'reconciled_flows.csv'}[/bold]; "
            f"measurements: {target / 'measurements.csv'}"
        )
    if failed:
        raise typer.Exit(1)
