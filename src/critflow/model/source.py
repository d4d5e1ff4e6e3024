"""Reading model files: YAML or JSON text to plain data, remembering where every key stands.

Every error about a model names the file, line and column and the field path
(``processes[1].transfer.black_mass``), so a user can jump to the mistake in an editor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from critflow.errors import CritflowError

PathKey = tuple[str | int, ...]


def format_path(path: PathKey) -> str:
    """``('processes', 1, 'transfer')`` → ``processes[1].transfer``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


@dataclass
class SourceMap:
    """Where each field path of a model stands in its file (1-based line and column)."""

    file: str = "<model>"
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def where(self, *path: str | int | PathKey) -> str:
        """'file, line L, column C (path)' for the deepest known ancestor of a field path.

        The path is given as parts (``where('flows', 0, 'to')``) or as one tuple.
        """
        if len(path) == 1 and isinstance(path[0], tuple):
            path = path[0]
        probe = tuple(path)
        while probe and probe not in self.positions:
            probe = probe[:-1]
        position = self.positions.get(probe)
        text = self.file
        if position:
            text += f", line {position[0]}, column {position[1]}"
        if path:
            text += f" ({format_path(path)})"
        return text


class _MarkingLoader(yaml.SafeLoader):
    """A safe YAML loader that records the position of every mapping key and list item."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.key_marks: dict[int, dict[Any, tuple[int, int]]] = {}

    def construct_yaml_map(self, node: yaml.MappingNode):  # type: ignore[override]
        data: dict[Any, Any] = {}
        yield data
        self.flatten_mapping(node)
        marks: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in marks:
                line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise CritflowError(
                    f"line {line}, column {column}",
                    f"the key '{key}' appears twice in the same mapping (first at line {marks[key][0]})",
                    "Keep one of them; YAML would silently drop the first.",
                )
            data[key] = self.construct_object(value_node, deep=True)
            marks[key] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        self.key_marks[id(data)] = marks

    def construct_yaml_seq(self, node: yaml.SequenceNode):  # type: ignore[override]
        data: list[Any] = []
        yield data
        data.extend(self.construct_object(item, deep=True) for item in node.value)
        self.key_marks[id(data)] = {
            i: (item.start_mark.line + 1, item.start_mark.column + 1)
            for i, item in enumerate(node.value)
        }


_MarkingLoader.add_constructor("tag:yaml.org,2002:map", _MarkingLoader.construct_yaml_map)
_MarkingLoader.add_constructor("tag:yaml.org,2002:seq", _MarkingLoader.construct_yaml_seq)


def _collect(
    data: Any, marks: dict[int, dict[Any, tuple[int, int]]], path: PathKey, out: dict
) -> None:
    here = marks.get(id(data))
    if isinstance(data, dict):
        for key, value in data.items():
            if here and key in here:
                out[(*path, key)] = here[key]
            _collect(value, marks, (*path, key), out)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            if here and i in here:
                out[(*path, i)] = here[i]
            _collect(value, marks, (*path, i), out)


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[PathKey, tuple[int, int]]]:
    loader = _MarkingLoader(text)
    try:
        data = loader.get_single_data()
    except CritflowError as exc:
        problem = exc.problems[0]
        raise CritflowError(f"{file}, {problem.where}", problem.what, problem.fix) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}, line {mark.line + 1}, column {mark.column + 1}" if mark else file
        what = f"YAML syntax error: {exc.problem or exc}"
        if exc.context:
            what += f" ({exc.context})"
        raise CritflowError(
            where, what, "Check indentation, colons and quotes on that line and the one above it."
        ) from None
    except yaml.YAMLError as exc:
        raise CritflowError(file, f"YAML error: {exc}", "Check the file is valid YAML.") from None
    finally:
        loader.dispose()
    positions: dict[PathKey, tuple[int, int]] = {}
    _collect(data, loader.key_marks, (), positions)
    return data, positions


def parse_text(text: str, file: str = "<model>", fmt: str = "yaml") -> tuple[Any, SourceMap]:
    """Parse model text; ``fmt`` is 'yaml' or 'json'. Returns the data and its source map."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CritflowError(
                f"{file}, line {exc.lineno}, column {exc.colno}",
                f"JSON syntax error: {exc.msg}",
                "Check brackets, commas and quotes there.",
            ) from None
        try:  # JSON is YAML: reuse the YAML parser for line numbers only
            positions = _parse_yaml(text, file)[1]
        except CritflowError:
            positions = {}
        return data, SourceMap(file, positions)
    data, positions = _parse_yaml(text, file)
    return data, SourceMap(file, positions)


def read_file(path: str | Path) -> tuple[Any, SourceMap, str]:
    """Read a model file (``.yaml``/``.yml`` or ``.json``): its data, source map and text."""
    path = Path(path)
    if not path.is_file():
        raise CritflowError(
            str(path), "no such file", "Give the path of a model file (.yaml, .yml or .json)."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CritflowError(
            str(path), f"is not UTF-8 text ({exc})", "Save the file as UTF-8."
        ) from None
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return (*parse_text(text, str(path), fmt), text)
