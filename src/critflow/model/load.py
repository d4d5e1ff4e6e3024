"""Load and validate a model: file → plain data → pydantic schema → semantic checks.

Schema errors from pydantic are rewritten as :class:`~critflow.errors.CritflowError` problems that
name the file, line and field path, and suggest the nearest valid key or id.
"""

from __future__ import annotations

import math
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from critflow.errors import CritflowError, Problem, known, nearest, validation_message
from critflow.model.checks import check_model
from critflow.model.core import Model
from critflow.model.schema import EXPANDED, ModelFile
from critflow.model.series_files import resolve_series_files
from critflow.model.source import (
    WORKBOOK_SUFFIXES,
    PathKey,
    SourceMap,
    check_depth,
    format_path,
    parse_text,
    read_file,
)
from critflow.model.uncertainty import collect


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated/Optional wrappers."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _field_keys(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _resolve(
    loc: tuple[Any, ...], root: type[BaseModel] = ModelFile
) -> tuple[PathKey, type[BaseModel] | None]:
    """Follow a pydantic error location through the schema.

    Returns the location as a data path (discriminator tags removed) and the model class that
    holds the last key (to list valid keys for an unknown one).
    """
    path: list[str | int] = []
    current: Any = root
    holder: type[BaseModel] | None = None
    i = 0
    while i < len(loc):
        part = loc[i]
        options = _members(current)
        models = [m for m in options if isinstance(m, type) and issubclass(m, BaseModel)]
        tagged = {
            typing.get_args(_unwrap(m.model_fields["kind"].annotation))[0]: m
            for m in models
            if "kind" in m.model_fields
        }
        if len(tagged) > 1 and part in tagged:  # discriminated union: pydantic puts the tag in loc
            current = tagged[part]
            i += 1
            continue
        if models:
            holder = models[0]
            path.append(part)
            current = _field_keys(holder).get(part)
            i += 1
            continue
        origin = typing.get_origin(current)
        path.append(part)
        current = typing.get_args(current)[-1] if origin in (list, dict) else None
        holder = None
        i += 1
    return tuple(path), holder


def describe_error(
    err: dict[str, Any], source: SourceMap, root: type[BaseModel] = ModelFile
) -> Problem:
    """One pydantic error as a Problem with file, line, field path and a suggestion."""
    path, holder = _resolve(tuple(err["loc"]), root)
    kind = err["type"]
    key = path[-1] if path else ""
    if kind == "extra_forbidden" and path:
        parent = path[:-1]
        valid = list(_field_keys(holder)) if holder else []
        hint = nearest(str(key), valid)
        return Problem(
            source.where(path),
            f"unknown key '{key}' in {format_path(source.translate(parent)[0]) or 'the top level'}",
            (hint + " " if hint else "") + (f"Valid keys here: {known(valid)}." if valid else ""),
        )
    if kind == "missing":
        return Problem(
            source.where(path),
            f"the required key '{key}' is missing",
            f"Add '{key}:' to {format_path(source.translate(path[:-1])[0]) or 'the top level'}.",
        )
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return Problem(
            source.where((*path, "kind")),
            f"kind '{ctx.get('tag')}' is not a process kind critflow knows",
            f"Use one of {ctx.get('expected_tags')}.",
        )
    if kind == "union_tag_not_found":
        return Problem(
            source.where(path),
            "this process has no 'kind'",
            "Add kind: source, sink, transfer, market or stock.",
        )
    if kind == "literal_error" and path == ("critflow",):
        return Problem(
            source.where(path),
            f"format version {err.get('input')!r} is not one this critflow reads",
            "Write 'critflow: 1' (the current model-file format).",
        )
    return Problem(source.where(path), validation_message(err), "")


def validate_as(schema: type[BaseModel], raw: Any, source: SourceMap, context: dict | None = None):
    """Validate ``raw`` against a pydantic schema; errors become a CritflowError with positions."""
    try:
        return schema.model_validate(raw, context=context)
    except ValidationError as exc:
        problems = [describe_error(err, source, schema) for err in exc.errors()]
        raise CritflowError(list(dict.fromkeys(problems))) from None


def validate_data(
    data: Any, source: SourceMap | None = None, *, expanded: bool = False
) -> ModelFile:
    """Validate plain data against the schema; raise a CritflowError naming each mistake."""
    source = source or SourceMap()
    if not isinstance(data, dict):
        raise CritflowError(
            source.file,
            f"a model file must be a mapping of keys at the top level, got {type(data).__name__}",
            "Start the file with 'critflow: 1' and 'name: …'.",
        )
    return validate_as(ModelFile, data, source, {EXPANDED: True} if expanded else None)


def _fine(value: Any) -> bool:
    """True for a leaf that is surely no problem (a finite float, a small int, a string)."""
    kind = type(value)
    return (
        kind is str
        or (kind is float and math.isfinite(value))
        or (kind is int and abs(value) <= 1e300)
    )


def _number_problems(data: Any, source: SourceMap) -> list[Problem]:
    """NaN, infinity and integers too large for a float anywhere in the raw data, by field path.

    YAML writes them ``.nan``/``.inf``, JSON ``NaN``/``Infinity``/``1e999``; a CSV series may hold
    them too. Nothing in a model means "not a number", so each is refused where it stands."""
    problems: list[Problem] = []
    stack: list[tuple[Any, PathKey]] = [(data, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            stack.extend(((v, (*path, k)) for k, v in item.items() if not _fine(v)))
        elif isinstance(item, list):
            stack.extend(((v, (*path, i)) for i, v in enumerate(item)))
        elif isinstance(item, float) and not math.isfinite(item):
            what = "NaN (not a number)" if math.isnan(item) else f"{item} (infinite)"
            problems.append(
                Problem(
                    source.where(path),
                    f"the value is {what}",
                    "Write a finite number. critflow refuses NaN and infinity anywhere in a model "
                    "(.nan, .inf, NaN, Infinity, 1e999); where a value is unknown, leave it out "
                    "(a flow without a value is solved for) or give it a distribution.",
                )
            )
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > 1e300:
            problems.append(
                Problem(
                    source.where(path),
                    f"the integer has {len(str(abs(item)))} digits, too large to compute with",
                    "Write a number below 1e300 (and check its unit).",
                )
            )
    return sorted(set(problems), key=lambda p: p.where)


def _load_empirical(model: Model, base: Path) -> None:
    """Read the samples of every empirical distribution now, so a bad file fails validation."""
    problems: list[Problem] = []
    for item in collect(model.spec):
        if item.value.distribution == "empirical":
            try:
                item.value.load(base, model.where(*item.path), model.allow_outside_files)
            except CritflowError as exc:
                problems += exc.problems
    if problems:
        raise CritflowError(problems)


def uses_dimensions(data: Any) -> bool:
    """True for model data that declares dimensions or spans them (only such data imports
    :mod:`critflow.model.dimensions`, to expand it)."""
    if not isinstance(data, dict):
        return False
    if "dimensions" in data:
        return True
    return any(
        isinstance(item, dict) and ("over" in item or "trade" in item or "origin_shares" in item)
        for key in ("processes", "flows")
        if isinstance(data.get(key), list)  # anything else: the schema names what is wrong
        for item in data[key]
    )


def _finish(
    data: Any, source: SourceMap, path: Path | None, text: str, allow_outside_files: bool
) -> Model:
    import hashlib

    base = path.parent if path is not None else Path.cwd()
    resolved = resolve_series_files(data, source, base, allow_outside_files)
    problems = _number_problems(resolved, source)
    if problems:
        raise CritflowError(problems)
    expansion = None
    if uses_dimensions(resolved):
        from critflow.model.dimensions import expand  # on use: ~15 ms to import

        resolved, source, expansion = expand(resolved, source)
    spec = validate_data(resolved, source, expanded=expansion is not None)
    spec._expansion = expansion
    model = Model(
        spec,
        source,
        path,
        hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
        allow_outside_files,
    )
    _load_empirical(model, base)
    check_model(model)
    return model


def load_model(path: str | Path, *, allow_outside_files: bool = False) -> Model:
    """Load a model file (YAML, JSON or a model workbook .xlsx), check it, and return the
    :class:`Model`.

    Data files the model names (``value: {file: …}``, empirical distributions) must lie in the
    model file's folder or below, unless ``allow_outside_files`` (the command line's
    ``--allow-outside-files``): a model from someone else cannot read other files."""
    if Path(path).suffix.lower() in WORKBOOK_SUFFIXES:
        from critflow.model.workbook import read_workbook  # on use: ~10 ms to import

        data, source, text = read_workbook(path)
    else:
        data, source, text = read_file(path)
    return _finish(data, source, Path(path), text, allow_outside_files)


def model_from_text(
    text: str, fmt: str = "yaml", file: str = "<model>", *, allow_outside_files: bool = False
) -> Model:
    """Build a :class:`Model` from YAML or JSON text; data files resolve in the working folder."""
    data, source = parse_text(text, file, fmt)
    return _finish(data, source, None, text, allow_outside_files)


def model_from_dict(data: dict[str, Any], *, allow_outside_files: bool = False) -> Model:
    """Build a :class:`Model` from a Python mapping with the model file's structure."""
    import json

    check_depth(data)
    return _finish(
        data,
        SourceMap("<dict>"),
        None,
        json.dumps(data, sort_keys=True, default=str),
        allow_outside_files,
    )
