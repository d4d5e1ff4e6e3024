"""Reading model files: YAML or JSON text to plain data, remembering where every key stands.

Every error about a model names the file, line and column and the field path
(``processes[1].transfer.black_mass``), so a user can jump to the mistake in an editor.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

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


class PendingWhere(str):
    """A field path's place in a JSON model, named without its line: a :class:`Problem` made
    with it calls ``resolve`` for the line, so valid models never pay for looking lines up."""

    def __new__(cls, text: str, locate: Callable[[], str]) -> PendingWhere:
        where = super().__new__(cls, text)
        where._locate = locate
        return where

    def __reduce__(self):  # pickled (sent to a worker) as the plain text
        return (str, (str(self),))

    def resolve(self) -> str:
        """The place with its line and column."""
        return self._locate()


class SourceMap:
    """Where each field path of a model stands in its file (1-based line and column), or — for a
    model workbook — a label that names the sheet, row, column and header.

    A JSON model's positions are found only when a message first asks for one (``json_text``):
    finding them takes the YAML reader, ten times the time of reading the JSON."""

    def __init__(
        self,
        file: str = "<model>",
        positions: dict[PathKey, tuple[int, int]] | None = None,
        labels: dict[PathKey, str] | None = None,
        *,
        json_text: str | None = None,
    ) -> None:
        self.file = file
        self._positions = positions if positions is not None else {}
        self.labels = labels if labels is not None else {}
        self._json_text = json_text

    @property
    def lines_pending(self) -> bool:
        """True while the line numbers of a JSON model have not been looked up."""
        return self._json_text is not None

    @property
    def positions(self) -> dict[PathKey, tuple[int, int]]:
        """Field path → (line, column)."""
        if self._json_text is not None:
            text, self._json_text = self._json_text, None
            try:  # JSON is YAML: the YAML reader gives the line numbers
                self._positions = _parse_yaml(text, self.file)[1]
            except CritflowError:
                self._positions = {}
        return self._positions

    def translate(self, path: PathKey) -> tuple[PathKey, str]:
        """The field path as written in the model file, and the coordinate it stands for: the
        path itself here; an expanded model's map (``ExpandedSource``) maps processes[3] back to
        the file's processes[2] at 'region FL'."""
        return tuple(path), ""

    def where(self, *path: str | int | PathKey) -> str:
        """'file, line L, column C (path)' for the deepest known ancestor of a field path.

        The path is given as parts (``where('flows', 0, 'to')``) or as one tuple.
        """
        if len(path) == 1 and isinstance(path[0], tuple):
            path = path[0]
        probe = tuple(path)
        if self.labels:
            while probe and probe not in self.labels:
                probe = probe[:-1]
            text = self.labels.get(probe, self.file)
            return text + (f" ({format_path(path)})" if path else "")
        if self._json_text is not None:  # the line is looked up only if a problem is raised
            text = self.file + (f" ({format_path(path)})" if path else "")
            return PendingWhere(text, lambda: self._located(path))
        return self._located(path)

    def _located(self, path: PathKey) -> str:
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


MAX_MODEL_BYTES = 4 * 1024 * 1024
"""Largest model file read (bytes). PyYAML reads about 0.2-0.5 MB/s, so this bounds reading to
seconds; long time series belong in CSV files (``value: {file: …, column: …}``)."""
MAX_DEPTH = 48
"""Deepest nesting of mappings and lists (a model file needs about ten levels)."""
MAX_ALIAS_NODES = 100_000
"""Most YAML nodes that aliases (``*name``) may add when expanded, all aliases together.
A model reuses a composition or a lifetime a few hundred times at most; an alias bomb
("billion laughs") would add 10⁹."""

_LIMIT_FIX = (
    "Model files from others may be built to exhaust memory or time; critflow stops reading "
    "them at these limits. Write the values out, or put long series in CSV files "
    "(value: {file: data/series.csv, column: tonnes})."
)


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


# YAML 1.2 core schema for plain scalars: 1.5e3 is a number (YAML 1.1 read it as a string),
# 010 is ten (not octal eight), and yes/no/on/off stay words (NO is Norway, not false).
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_MERGE = re.compile(r"^(?:<<)$")


_C_PARSER: type | None = getattr(getattr(yaml, "cyaml", None), "CParser", None)


class _CEvents(yaml.composer.Composer, _C_PARSER or object):  # type: ignore[misc]
    """Events from libyaml's C parser (about 10x faster than PyYAML's Python scanner), composed
    into nodes in Python, so the limits of :class:`_MarkingLoader` apply while the tree is built."""

    def __init__(self, stream: str) -> None:
        _C_PARSER.__init__(self, stream)  # type: ignore[union-attr]
        yaml.composer.Composer.__init__(self)


class _Marking:
    """A safe YAML loader that records the position of every mapping key and list item.

    It refuses what a hostile file could use to exhaust time or memory: nesting deeper than
    :data:`MAX_DEPTH`, aliases that expand to more than :data:`MAX_ALIAS_NODES` nodes, and
    aliases that refer to the collection they sit in (recursive data). Plain scalars follow the
    YAML 1.2 core schema.
    """

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]
        self._start_marking()

    def _start_marking(self) -> None:
        self.key_marks: dict[int, dict[Any, tuple[int, int]]] = {}
        self._depth = 0
        self._expanded = 0  # nodes added by aliases so far
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in it, aliases expanded

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._sizes.get(id(target))
                if size is None:  # the anchored collection is still being read
                    raise CritflowError(
                        _at(event.start_mark),
                        f"the alias *{event.anchor} refers to the collection it is part of "
                        "(recursive data)",
                        "Models are trees: copy the values instead of referring back to a parent.",
                    )
                self._expanded += size
                if self._expanded > MAX_ALIAS_NODES:
                    raise CritflowError(
                        _at(event.start_mark),
                        f"aliases (*name) expand to more than {MAX_ALIAS_NODES:,} values "
                        "(an alias bomb?)",
                        _LIMIT_FIX,
                    )
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise CritflowError(
                _at(self.peek_event().start_mark),
                f"mappings and lists are nested more than {MAX_DEPTH} levels deep",
                "A model file needs about ten levels; check for runaway brackets. " + _LIMIT_FIX,
            )
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            children = []
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:  # type: ignore[override]
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError, RecursionError) as exc:
            raise CritflowError(
                _at(node.start_mark),
                f"the value here cannot be read as {node.tag.rsplit(':', 1)[-1]} "
                f"({type(exc).__name__}: {str(exc)[:120]})",
                "Write a plain number, text in quotes, a list or a mapping.",
            ) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:  # type: ignore[override]
        text = str(self.construct_scalar(node)).replace("_", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-")
        if text[:2] in ("0o", "0x"):
            return sign * int(text[2:], 8 if text[1] == "o" else 16)
        return sign * int(text)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:  # type: ignore[override]
        text = str(self.construct_scalar(node)).replace("_", "").lower()
        sign = -1.0 if text.startswith("-") else 1.0
        text = text.lstrip("+-")
        if text == ".inf":
            return sign * float("inf")
        if text == ".nan":
            return float("nan")
        return sign * float(text)

    def construct_yaml_map(self, node: yaml.MappingNode):  # type: ignore[override]
        data: dict[Any, Any] = {}
        yield data
        self.flatten_mapping(node)
        marks: dict[Any, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            line, column = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key, str | int | float | bool | type(None)):
                raise CritflowError(
                    f"line {line}, column {column}",
                    f"a key is {type(key).__name__}, not a name or a number",
                    "Keys are names (or years): write 'name: value'.",
                )
            if key in marks:
                raise CritflowError(
                    f"line {line}, column {column}",
                    f"the key '{key}' appears twice in the same mapping (first at line {marks[key][0]})",
                    "Keep one of them; YAML would silently drop the first.",
                )
            data[key] = self.construct_object(value_node, deep=True)
            marks[key] = (line, column)
        self.key_marks[id(data)] = marks

    def construct_yaml_seq(self, node: yaml.SequenceNode):  # type: ignore[override]
        data: list[Any] = []
        yield data
        data.extend(self.construct_object(item, deep=True) for item in node.value)
        self.key_marks[id(data)] = {
            i: (item.start_mark.line + 1, item.start_mark.column + 1)
            for i, item in enumerate(node.value)
        }


class _PythonMarkingLoader(_Marking, yaml.SafeLoader):  # type: ignore[misc]
    """The loader on PyYAML's Python reader, scanner and parser (where libyaml is missing)."""


class _CMarkingLoader(  # type: ignore[misc]
    _Marking, _CEvents, yaml.constructor.SafeConstructor, yaml.resolver.Resolver
):
    """The loader on libyaml's events: the same nodes, marks, limits and values."""

    def __init__(self, stream: str) -> None:
        _CEvents.__init__(self, stream)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)
        self._start_marking()


for _loader in (_PythonMarkingLoader, _CMarkingLoader):
    _loader.yaml_implicit_resolvers = {}
    for _tag, _pattern, _first in (
        ("tag:yaml.org,2002:bool", _BOOL, "tTfF"),
        ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
        ("tag:yaml.org,2002:float", _FLOAT, "-+.0123456789"),
        ("tag:yaml.org,2002:merge", _MERGE, "<"),
        ("tag:yaml.org,2002:null", _NULL, ["~", "n", "N", ""]),
    ):
        _loader.add_implicit_resolver(_tag, _pattern, list(_first))
    for _tag, _method in (
        ("int", _Marking.construct_yaml_int),
        ("float", _Marking.construct_yaml_float),
        ("map", _Marking.construct_yaml_map),
        ("seq", _Marking.construct_yaml_seq),
    ):
        _loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _method)

_MarkingLoader: type = _CMarkingLoader if _C_PARSER is not None else _PythonMarkingLoader


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


_INNER_BOM = re.compile("(?<!^)\ufeff")


def _refuse_control_characters(text: str, file: str) -> None:
    """Refuse a character YAML forbids (libyaml would stop reading at a NUL, silently), and a
    byte-order mark after the first character (invisible; YAML readers disagree on it)."""
    found = yaml.reader.Reader.NON_PRINTABLE.search(text) or _INNER_BOM.search(text)
    if found is None:
        return
    at = found.start()
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    raise CritflowError(
        f"{file}, line {line}, column {column}",
        f"the file holds the control character U+{ord(found.group()):04X}, which YAML does not allow",
        "Delete it (files copied from other programs sometimes carry them); values may hold any "
        "printable character.",
    )


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[PathKey, tuple[int, int]]]:
    _refuse_control_characters(text, file)
    loader = None
    try:
        loader = _MarkingLoader(text)
        data = loader.get_single_data()
    except CritflowError as exc:
        problem = exc.problems[0]
        where = f"{file}, {problem.where}" if problem.where else file
        raise CritflowError(where, problem.what, problem.fix) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}, line {mark.line + 1}, column {mark.column + 1}" if mark else file
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own limit (1000 levels)
            raise _too_deep(where) from None
        what = f"YAML syntax error: {exc.problem or exc}"
        if exc.context:
            what += f" ({exc.context})"
        raise CritflowError(
            where, what, "Check indentation, colons and quotes on that line and the one above it."
        ) from None
    except yaml.YAMLError as exc:
        raise CritflowError(file, f"YAML error: {exc}", "Check the file is valid YAML.") from None
    finally:
        if loader is not None:
            loader.dispose()
    positions: dict[PathKey, tuple[int, int]] = {}
    _collect(data, loader.key_marks, (), positions)
    return data, positions


def _too_deep(file: str) -> CritflowError:
    return CritflowError(
        file,
        f"mappings and lists are nested more than {MAX_DEPTH} levels deep",
        "A model file needs about ten levels; check for runaway brackets. " + _LIMIT_FIX,
    )


def check_depth(data: Any, file: str = "<dict>") -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH` (or holding itself)."""
    if _depth(data) > MAX_DEPTH:
        raise _too_deep(file)


def _depth(data: Any) -> int:
    """Deepest nesting of dicts and lists in ``data`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                children = item.values() if isinstance(item, dict) else item
                # leaves (the numbers of a time series) are no deeper: only containers go on
                stack.extend(
                    (child, level + 1) for child in children if isinstance(child, dict | list)
                )
    return deepest


_LARGE_MODEL_FIX = (
    "Put long time series in CSV files next to the model (value: {file: data/series.csv, "
    "column: tonnes}), or split the model."
)


def parse_text(text: str, file: str = "<model>", fmt: str = "yaml") -> tuple[Any, SourceMap]:
    """Parse model text; ``fmt`` is 'yaml' or 'json'. Returns the data and its source map.

    Text longer than :data:`MAX_MODEL_BYTES`, nesting deeper than :data:`MAX_DEPTH` and YAML
    aliases expanding past :data:`MAX_ALIAS_NODES` nodes are refused before they cost time."""
    if len(text) > MAX_MODEL_BYTES:
        raise CritflowError(
            file,
            f"is {len(text):,} characters, more than the {MAX_MODEL_BYTES:,} critflow reads "
            "as a model",
            _LARGE_MODEL_FIX,
        )
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CritflowError(
                f"{file}, line {exc.lineno}, column {exc.colno}",
                f"JSON syntax error: {exc.msg}",
                "Check brackets, commas and quotes there.",
            ) from None
        except RecursionError:
            data, depth = None, MAX_DEPTH + 1
        except ValueError as exc:  # e.g. an integer with more digits than Python converts
            raise CritflowError(
                file, f"JSON value that cannot be read ({str(exc)[:120]})", "Write plain numbers."
            ) from None
        else:
            depth = _depth(data)
        if depth > MAX_DEPTH:
            raise _too_deep(file)
        return data, SourceMap(file, json_text=text)
    data, positions = _parse_yaml(text, file)
    return data, SourceMap(file, positions)


def read_limited(
    path: Path,
    limit: int,
    shown: str | None = None,
    *,
    missing_fix: str = "Check the path and that you may read the file.",
    large_fix: str = "Check that this is the file you meant; split large data over several files.",
) -> bytes:
    """The bytes of a regular file no larger than ``limit``, or a CritflowError naming ``shown``.

    Directories, devices (``/dev/zero``), pipes and sockets are refused before reading, and a pipe
    is opened without blocking, so nothing waits for a writer or reads without end; a file that
    grows past ``limit`` while being read is refused too."""
    shown = shown or str(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        what = (
            "no such file"
            if isinstance(exc, FileNotFoundError)
            else (f"cannot be opened ({exc.strerror or type(exc).__name__})")
        )
        raise CritflowError(shown, what, missing_fix) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kinds = (
                (stat.S_ISDIR, "a folder"),
                (stat.S_ISFIFO, "a named pipe"),
                (stat.S_ISCHR, "a device"),
                (stat.S_ISBLK, "a device"),
                (stat.S_ISSOCK, "a socket"),
            )
            kind = next((k for test, k in kinds if test(info.st_mode)), "not a regular file")
            raise CritflowError(shown, f"is {kind}, not a file", "Give the path of a regular file.")
        if info.st_size > limit:
            raise CritflowError(
                shown,
                f"is {info.st_size:,} bytes, more than the {limit:,} bytes critflow reads here",
                large_fix,
            )
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise CritflowError(
                    shown,
                    f"grew past {limit:,} bytes while being read",
                    "Read a file that is not being written.",
                )
        return b"".join(chunks)
    except OSError as exc:
        raise CritflowError(
            shown, f"cannot be read ({exc.strerror or type(exc).__name__})", "Check the file."
        ) from None
    finally:
        os.close(fd)


def decode_utf8(raw: bytes, shown: str) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or a CritflowError naming the line."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CritflowError(
            f"{shown}, line {line}",
            f"is not UTF-8 text (byte {exc.start + 1} cannot be decoded)",
            "Save the file as UTF-8 (in Excel: 'CSV UTF-8'; in an editor: encoding UTF-8).",
        ) from None


WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
"""Model workbooks (:mod:`critflow.model.workbook`): here, so that telling a workbook from a text
model file does not import the workbook reader."""


def read_file(path: str | Path) -> tuple[Any, SourceMap, str]:
    """Read a model file (``.yaml``/``.yml`` or ``.json``): its data, source map and text.

    The file must be a regular file of at most :data:`MAX_MODEL_BYTES` bytes of UTF-8."""
    path = Path(path)
    raw = read_limited(
        path,
        MAX_MODEL_BYTES,
        missing_fix="Give the path of a model file (.yaml, .yml or .json).",
        large_fix=_LARGE_MODEL_FIX,
    )
    text = decode_utf8(raw, str(path))
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return (*parse_text(text, str(path), fmt), text)
