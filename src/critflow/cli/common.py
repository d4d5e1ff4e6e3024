"""What every command module shares: the two consoles (set up once, here), the options several
commands take, and small helpers for arguments. Nothing heavy is imported at module level: the
command line starts without NumPy, pandas or SciPy, and each command imports what it needs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from critflow.errors import CritflowError

if TYPE_CHECKING:
    from rich.progress import Progress

out = Console()
if not out.is_terminal:  # piped or captured: wide enough that tables keep one line per row
    out = Console(width=200)
err = Console(stderr=True)


AllowOutsideFiles = Annotated[
    bool,
    typer.Option(
        "--allow-outside-files",
        help="Let the model read data files ({file: …}) outside its own folder. Off by default: "
        "a model from someone else could name any file on this machine.",
    ),
]


def progress_bar(spinner: bool = True) -> Progress:
    """A transient progress bar on standard error (standard output stays clean for --format json)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
    if spinner:
        columns.insert(0, SpinnerColumn())
    return Progress(*columns, console=err, transient=True)


def slug(text: str) -> str:
    """A folder name from a model file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "model"


def check_format(value: str, command: str) -> None:
    if value not in ("table", "json"):
        raise CritflowError(
            "--format", f"'{value}' is not a format of {command}", "Use table or json."
        )


def split(values: list[str] | None) -> list[str]:
    """Repeatable and comma-separated options as one list: ``-s a,b -s c`` → ``[a, b, c]``."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def with_reference(scenarios: list[str] | None, reference: str | None) -> list[str] | None:
    """The chosen scenarios plus the reference scenario that relative indicators compare with
    (a reference that is a year, '2023', is a period of the same scenarios)."""
    if reference and scenarios and reference not in scenarios and not reference.isdigit():
        return [*scenarios, reference]
    return scenarios


def percent(value: float | None, indicator: str) -> str:
    """An indicator value as people read it: a fraction in %, anything else with its unit."""
    if value is None:
        return "—"
    from critflow.indicators.catalogue import INDICATORS

    unit = INDICATORS[indicator].unit if indicator in INDICATORS else "fraction"
    return f"{value:.1%}" if unit == "fraction" else f"{value:.4g} {unit}"


def write_json(document, **options) -> None:
    """A JSON document on standard output (for machines: no markup, no wrapping)."""
    import json
    import sys

    sys.stdout.write(json.dumps(document, indent=2, **options) + "\n")


#: Python argument names whose command-line flag is not ``--`` + the name with dashes.
FLAGS = {
    "out_dir": "--out",
    "out_path": "--out",
    "output_format": "--format",
    "scenarios": "--scenario",
    "files": "--rule-file",
    "delegates": "--to",
    "new_document": "--new",
    "overwrite": "--force",
}
#: … and those that differ in one command.
COMMAND_FLAGS = {
    "compare": {"scenarios": "--scenarios"},
    "check": {"names": "--rules"},
    "passport": {"flow": "--output-flow"},
}
_ARGUMENT = re.compile(r"(?<![\w.=-])([a-z][a-z0-9_]*)=(?=$|[\s,.;:)'\"`])")


def flag(argument: str, command: str = "") -> str:
    """The flag of a Python argument name: ``chunk_size`` → ``--chunk-size``."""
    own = COMMAND_FLAGS.get(command, {})
    return own.get(argument) or FLAGS.get(argument) or "--" + argument.replace("_", "-")


def as_flags(text: str, command: str = "") -> str:
    """Text written for Python callers (``samples=``) as a command-line user reads it
    (``--samples``): an argument name followed by ``=`` and no value becomes its flag."""
    return _ARGUMENT.sub(lambda m: flag(m.group(1), command), text)
