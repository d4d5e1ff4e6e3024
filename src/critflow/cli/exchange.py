"""``critflow convert`` and ``critflow template``: models as YAML, JSON or Excel workbooks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from critflow.cli.common import out


def convert(
    source: Annotated[Path, typer.Argument(help="Model to read (.yaml, .yml, .json or .xlsx).")],
    target: Annotated[Path, typer.Argument(help="File to write; its ending picks the format.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the target if it exists.")
    ] = False,
) -> None:
    """Convert a model between YAML, JSON and a model workbook (.xlsx), checking it first.

    The data carries over unchanged; comments in a YAML file do not."""
    from critflow.model.convert import convert_model

    written = convert_model(source, target, overwrite=force)
    out.print(f"Wrote {written} from {source}.")


def template(
    target: Annotated[Path, typer.Argument(help="Workbook (.xlsx) or model file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Write the starter model of `critflow init` as a model workbook (.xlsx) to fill in.

    The workbook has one sheet per part of the model, drop-down lists and a README sheet; the
    starter is a small copper plant with a recycle loop."""
    from critflow.errors import CritflowError
    from critflow.model.convert import format_of, starter_data, write_model_data

    format_of(target, "target")
    if target.exists() and not force:
        raise CritflowError(
            str(target), "exists already", "Give another name, or --force to replace it."
        )
    write_model_data(starter_data(target.stem.replace("_", " ")), target)
    out.print(
        f"Wrote {target}: a small copper plant with a recycle loop that validates. Edit it, then run "
        f"'critflow validate {target}' and 'critflow run {target}'."
    )
