"""``critflow init NAME``: a commented starter model to edit (a small plant with a recycle loop)."""

from pathlib import Path
from typing import Annotated

import typer

from critflow.cli.common import out
from critflow.errors import CritflowError


def starter_text(name: str, file: str) -> str:
    """The starter model with its name and file filled in."""
    from critflow.model.convert import starter_text as text

    return text(name, file)


def init(
    name: Annotated[
        str,
        typer.Argument(
            help="Name of the model; the file is NAME.yaml (or NAME if it ends in .yaml)."
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Write a commented starter model (a small recycling plant with a recycle loop) to edit."""
    path = Path(name if name.lower().endswith((".yaml", ".yml")) else f"{name}.yaml")
    if path.name.lower() in (".yaml", ".yml") or any(not c.isprintable() for c in name):
        raise CritflowError(
            "NAME",
            f"{name!r} is not a name for a model file"
            + (" (it has no name before .yaml)" if path.name.lower() in (".yaml", ".yml") else ""),
            "Give a name such as my_plant (written as my_plant.yaml), without line breaks or "
            "control characters.",
        )
    if path.is_dir():
        raise CritflowError(str(path), "is a folder", "Choose another name.")
    if path.exists() and not force:
        raise CritflowError(
            str(path), "already exists", "Choose another name, or add --force to replace it."
        )
    title = path.stem.replace("_", " ").replace("-", " ")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter_text(title, str(path)), encoding="utf-8")
    except OSError as exc:
        raise CritflowError(
            str(path),
            f"cannot be written ({exc.strerror or exc})",
            "Choose a folder you can write to.",
        ) from None
    out.print(
        f"Written: [bold]{path}[/bold] — a small copper recycling plant with a recycle loop.\n"
        f"Next: critflow validate {path}  ·  critflow run {path}"
    )
