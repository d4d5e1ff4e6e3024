"""Convert a model between its file formats: YAML, JSON and the model workbook (.xlsx).

The data carries over unchanged (a model converted YAML → Excel → YAML solves to the same flows);
comments in a YAML file do not — write sources you want to keep in ``description`` fields.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from critflow.errors import CritflowError
from critflow.model.load import load_model
from critflow.model.source import read_file
from critflow.model.workbook import WORKBOOK_SUFFIXES, read_workbook, write_workbook

FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".xlsx": "xlsx"}


def starter_text(name: str = "Starter plant", file: str = "starter.yaml") -> str:
    """The commented starter model (``critflow init``): a small copper plant with a recycle loop,
    with its name and file name filled in."""
    from critflow.data import data_path
    from critflow.model.workbook import _yaml_line

    template = data_path("starter_model.yaml").read_text(encoding="utf-8")
    # the name as a YAML text ('a: b', '#1', 'null' and '123' quoted), the file name on one line
    # (it stands in a comment)
    return template.format(name=_yaml_line(str(name)), file=" ".join(str(file).splitlines()))


def starter_data(name: str = "Starter plant") -> dict[str, Any]:
    """The starter model's data (what ``critflow template`` writes as a workbook)."""
    return yaml.safe_load(starter_text(name))


def format_of(path: Path, where: str) -> str:
    """'yaml', 'json' or 'xlsx' from a file name, or a CritflowError naming the endings."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CritflowError(
            where,
            f"'{path.name}' has no model file ending critflow writes",
            "End the name with .yaml, .json or .xlsx.",
        )
    return fmt


def read_model_data(path: str | Path) -> dict[str, Any]:
    """A model file's data (YAML, JSON or workbook) as written, not yet validated."""
    path = Path(path)
    if path.suffix.lower() in WORKBOOK_SUFFIXES:
        return read_workbook(path)[0]
    return read_file(path)[0]


def _plain(value: Any) -> Any:
    """Data YAML and JSON write as they read it (non-finite floats as YAML's .nan/.inf)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def write_model_data(data: dict[str, Any], target: str | Path) -> Path:
    """Write model data as YAML, JSON or a workbook, by ``target``'s ending."""
    target = Path(target)
    fmt = format_of(target, "target")
    try:
        return _write(data, target, fmt)
    except OSError as exc:
        raise CritflowError(
            str(target),
            f"cannot be written ({exc.strerror or exc})",
            "Give a file name in a folder you can write to.",
        ) from None


def _write(data: dict[str, Any], target: Path, fmt: str) -> Path:
    if target.is_dir():
        raise IsADirectoryError(21, "it is a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        return write_workbook(data, target)
    if fmt == "json":
        if any(isinstance(v, float) and not math.isfinite(v) for v in _floats(data)):
            raise CritflowError(
                str(target),
                "the model holds NaN or infinity, which JSON cannot write",
                "Write it as YAML (.yaml) or replace the value.",
            )
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    else:
        text = yaml.safe_dump(_plain(data), sort_keys=False, allow_unicode=True, width=100)
    target.write_text(text, encoding="utf-8")
    return target


def _floats(value: Any):
    if isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)
    elif isinstance(value, float):
        yield value


def convert_model(
    source: str | Path, target: str | Path, *, overwrite: bool = False, check: bool = True
) -> Path:
    """Convert the model ``source`` to ``target`` (format from the endings: .yaml, .json, .xlsx).

    With ``check`` (the default) the source is loaded and checked first, so a model with mistakes
    is reported in its own terms, not converted; an existing ``target`` is kept unless
    ``overwrite``."""
    source, target = Path(source), Path(target)
    format_of(target, "target")
    if target.exists() and (not overwrite or target.resolve() == source.resolve()):
        raise CritflowError(
            str(target),
            "exists already"
            + (" (it is the source)" if target.resolve() == source.resolve() else ""),
            "Give another name, or pass overwrite= to replace it.",
        )
    if check:
        load_model(source)
    return write_model_data(read_model_data(source), target)
