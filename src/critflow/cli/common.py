"""What every command module shares: the two consoles (set up once, here), the options several
commands take, and small helpers for arguments. Nothing heavy is imported at module level: the
command line starts without NumPy, pandas or SciPy, and each command imports what it needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
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


def check_format(value: str, command: str, formats: tuple[str, ...] = ("table", "json")) -> None:
    if value not in formats:
        raise CritflowError(
            "--format",
            f"'{value}' is not a format of {command}",
            f"Use {', '.join(formats[:-1])} or {formats[-1]}.",
        )


FORMATS = ("table", "json", "csv")
ResultFormat = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="table (for people), json or csv (for machines: one row per result). Default: from "
        "the output file's extension (.json, .csv), else table.",
    ),
]
ResultFile = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        "--out-file",
        help="Write the results to this file (in --format) instead of printing them.",
    ),
]
#: … for commands whose ``-o/--out`` is an output folder: the results file is ``--out-file``
ResultFileOnly = Annotated[
    Path | None,
    typer.Option(
        "--out-file",
        help="Write the printed results to this file (in --format) instead of printing them.",
    ),
]


def result_format(output_format: str | None, out_path: Path | None, command: str) -> str:
    """The format of a command's results: --format, else the output file's extension (.json,
    .csv), else table; a format that is not one of :data:`FORMATS` is a mistake."""
    if output_format is None:
        suffix = out_path.suffix.lower().lstrip(".") if out_path is not None else ""
        output_format = suffix if suffix in ("json", "csv") else "table"
    check_format(output_format, command, FORMATS)
    return output_format


def emit(
    output_format: str,
    out_path: Path | None,
    *,
    rows: list[dict] | None = None,
    document=None,
    table: Callable[[], None] | None = None,
) -> None:
    """Results in the chosen format, on standard output or in ``out_path``: json writes
    ``document`` (or ``rows``), csv writes ``rows`` (one line each), table calls ``table`` (which
    prints to :data:`out`; into a file as plain text)."""
    import io
    import json

    if output_format == "json":
        value = _finite(rows if document is None else document)
        text = json.dumps(value, indent=2, default=_plain, allow_nan=False) + "\n"
    elif output_format == "csv":
        import csv

        buffer = io.StringIO()
        records = rows or []
        columns = list(dict.fromkeys(k for r in records for k in r))
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow({k: _cell(v) for k, v in record.items()})
        text = buffer.getvalue()
    else:
        if out_path is None:
            table()
            return
        with out.capture() as captured:
            table()
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", captured.get())  # plain text, no colours
    if out_path is None:
        import sys

        sys.stdout.write(text)
        return
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CritflowError(
            str(out_path),
            f"the results cannot be written there ({exc.strerror or exc})",
            "Give a file you can write to (--out or --out-file).",
        ) from None
    err.print(f"Written: {out_path}")


def _finite(value):
    """``value`` with NumPy numbers as Python ones and NaN or infinity (no value) as None: JSON
    without the NaN that strict parsers refuse."""
    import math

    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _plain(value):
    """JSON for NumPy numbers and other objects the json module does not know."""
    try:
        return value.item()
    except AttributeError:
        return str(value)


def _cell(value):
    if isinstance(value, dict | list | tuple):
        import json

        return json.dumps(value, default=_plain)
    return "" if value is None else value


def deprecated_commas(values: list[str] | None, flag: str, single: str) -> list[str]:
    """A repeatable option's values; the old comma-separated form still works, with a note on
    standard error (``--scenarios a,b`` → ``-s a -s b``)."""
    items = split(values)
    if any("," in v for v in values or []):
        err.print(
            f"[yellow]Note[/yellow]: comma-separated {flag} is deprecated; repeat the option "
            f"instead ({' '.join(f'{single} {v}' for v in items)}).",
            soft_wrap=True,
        )
    return items


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
