"""``critflow monitor submit MODEL --project ID --year 2027 --server URL --key KEY``: run a model
and send the KPI values and roadmap-rule verdicts it computes to a monitor server, with the model
file's SHA-256 as provenance. The work is :mod:`critflow.server.monitor.client`; this module
parses options and prints."""

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from critflow.cli.common import AllowOutsideFiles, out
from critflow.errors import CritflowError


def submit(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .json or .xlsx).")],
    project: Annotated[str, typer.Option("--project", help="The project's id on the server.")],
    year: Annotated[
        int, typer.Option("--year", help="The year the numbers stand for (2023-2035).")
    ],
    server: Annotated[
        str | None,
        typer.Option("--server", help="The monitor server's URL (default: CRITFLOW_SERVER)."),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="An API key with write rights (default: CRITFLOW_API_KEY)."),
    ] = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Run MODEL and send its KPI values and rule verdicts for a project and year."""
    from critflow.server.monitor.client import submit_model

    server = server or os.environ.get("CRITFLOW_SERVER")
    key = key or os.environ.get("CRITFLOW_API_KEY")
    if not server:
        raise CritflowError(
            "--server", "no server given", "Give --server URL or set CRITFLOW_SERVER."
        )
    if not key:
        raise CritflowError("--key", "no API key given", "Give --key KEY or set CRITFLOW_API_KEY.")
    answer = submit_model(model, project, year, server, key, allow_outside_files)
    table = Table(title=f"Sent to {escape(server)} for {escape(project)}, {year}")
    for column in ("KPI", "value", "unit"):
        table.add_column(column)
    for value in answer["values"]:
        table.add_row(escape(value["kpi"]), f"{value['value']:.4g}", escape(value["unit"]))
    out.print(table)
    out.print(
        f"Stored {answer['stored_values']} values and {answer['stored_verdicts']} rule verdicts "
        f"(batch {answer['batch']}; model sha256 {answer['model_sha256']})."
    )
    for left in answer["skipped"]:
        out.print(f"Not computed by the model: {escape(left['kpi'])} ({escape(left['reason'])})")
