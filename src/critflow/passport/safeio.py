"""Reading passport files that may be hostile: bounded size, strict UTF-8 JSON, no YAML aliases.

Every passport document, signed version, checkpoint and key file is read through here, so a
file that is too large (``/dev/zero``), not UTF-8, nested too deep, ambiguous (a key twice in
one object) or not plain JSON data (NaN, infinity, integers beyond 2**53 that RFC 8785 cannot
canonicalise, lone surrogates) is refused with a :class:`~critflow.errors.CritflowError` naming
the file and the place — never a traceback, never a hang.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError

MAX_FILE_BYTES = 4_000_000
"""Largest passport file read (bytes); a battery passport version is about 5 kB."""
MAX_DEPTH = 32
"""Deepest nesting of objects and arrays accepted; a battery passport is 5 levels deep."""
MAX_INTEGER = 2**53 - 1
"""Largest integer magnitude: RFC 8785 serialises numbers as IEEE 754 doubles (section 3.2.2.3)."""


def read_limited(path: Path, limit: int = MAX_FILE_BYTES, *, regular_only: bool = False) -> bytes:
    """The bytes of ``path``, at most ``limit``; a larger (or endless) file is refused unread.

    ``regular_only`` refuses anything but a regular file (devices, FIFOs, folders) — for files
    found by scanning a folder, where a FIFO would block the reader for ever.
    """
    try:
        if regular_only and not path.is_file():
            raise CritflowError(
                str(path), "is not a regular file", "Remove it from the folder of versions."
            )
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except IsADirectoryError:
        raise CritflowError(str(path), "is a folder, not a file", "Give a file.") from None
    except OSError as exc:
        raise CritflowError(
            str(path), f"cannot be read ({exc.strerror or exc})", "Check the path."
        ) from None
    if len(data) > limit:
        raise CritflowError(
            str(path),
            f"is larger than {limit:,} bytes (or endless, like /dev/zero)",
            "Give the passport file itself; passport files are a few kilobytes.",
        )
    return data


def decode_utf8(data: bytes, where: str) -> str:
    """``data`` as UTF-8 text (a byte-order mark is refused, as RFC 8259 section 8.1 allows)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CritflowError(
            where,
            f"is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
            "Save it as UTF-8; passport files are UTF-8 JSON (RFC 8259).",
        ) from None
    if text.startswith("\ufeff"):
        raise CritflowError(where, "starts with a byte-order mark", "Save it as UTF-8 without BOM.")
    return text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the key '{key[:40]}' appears twice in one object")
        result[key] = value
    return result


def loads_json(data: bytes | str, where: str) -> Any:
    """Parse strict JSON (RFC 8259 as I-JSON, RFC 7493): UTF-8, unique keys, finite numbers,
    integers within ±(2**53 - 1), no lone surrogates, at most :data:`MAX_DEPTH` levels."""
    text = decode_utf8(data, where) if isinstance(data, bytes) else data
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except RecursionError:
        raise CritflowError(
            where, f"is nested deeper than {MAX_DEPTH} levels", "Passport files are shallow."
        ) from None
    except json.JSONDecodeError as exc:
        raise CritflowError(
            where,
            f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            "Fix the syntax.",
        ) from None
    except ValueError as exc:  # duplicate keys, NaN/Infinity, integers too long to convert
        raise CritflowError(
            where, f"is not valid passport JSON ({exc})", "Fix the value."
        ) from None
    check_json_value(value, where)
    return value


def check_json_value(value: Any, where: str) -> None:
    """Refuse anything that is not plain, canonicalisable JSON data (walks without recursion)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        here = f"{where}: {path or '(top)'}"
        if depth > MAX_DEPTH:
            raise CritflowError(
                where, f"is nested deeper than {MAX_DEPTH} levels", "Passport files are shallow."
            )
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise CritflowError(
                        here, f"has a key {key!r} that is not text", "Quote the key."
                    )
                _check_text(key, here)
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            _check_text(item, here)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if abs(item) > MAX_INTEGER:
                raise CritflowError(
                    here,
                    "is an integer beyond ±(2**53 - 1), which JSON numbers cannot hold exactly",
                    "Write it as a decimal number or as text.",
                )
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise CritflowError(here, "is not a finite number", "Give a finite number.")
        else:
            raise CritflowError(
                here,
                f"is a {type(item).__name__}, which is not JSON data",
                "Use text, numbers, true/false, null, lists and mappings only.",
            )


def _check_text(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CritflowError(
            where, "holds a lone surrogate (an invalid \\uD800-\\uDFFF escape)", "Fix the text."
        ) from None


def loads_yaml(data: bytes, where: str) -> Any:
    """Parse a YAML passport document: safe tags only, no anchors or aliases (no alias bombs),
    dates kept as text, at most :data:`MAX_DEPTH` levels; the result is checked as JSON data."""
    import yaml

    text = decode_utf8(data, where)
    try:
        value = yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CritflowError(
            where, f"is not valid YAML ({problem}{at})", "Fix the syntax."
        ) from None
    except RecursionError:
        raise CritflowError(
            where, f"is nested deeper than {MAX_DEPTH} levels", "Passport files are shallow."
        ) from None
    check_json_value(value, where)
    return value


@lru_cache(maxsize=1)
def _yaml_loader():  # built on first use: yaml is imported lazily
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader without aliases, timestamps or deep nesting."""

        _depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(
                    None, None, "anchors and aliases are not allowed", event.start_mark
                )
            event = self.peek_event()
            if getattr(event, "anchor", None):
                raise yaml.composer.ComposerError(
                    None, None, "anchors and aliases are not allowed", event.start_mark
                )
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH + 1:
                    raise yaml.composer.ComposerError(
                        None, None, f"nesting deeper than {MAX_DEPTH} levels", event.start_mark
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    # dates stay text (a JSON document has no date type); the rest of the safe resolvers remain
    Loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def read_document(path: Path) -> dict[str, Any]:
    """A passport document from JSON or YAML; a signed version file gives its document, a
    BatteryPass payload (``batteryPassVersion``, no ``kind``) the battery passport it keys.

    Read through :mod:`critflow.passport.safeio`: bounded size, UTF-8, no YAML aliases, limited
    nesting, plain JSON data only.
    """
    data = read_limited(path)
    loads = loads_json if path.suffix.lower() == ".json" else loads_yaml
    value = loads(data, str(path))
    if isinstance(value, dict) and "record" in value and "signature" in value:
        record = value["record"]
        value = record.get("document") if isinstance(record, dict) else None
    if not isinstance(value, dict):
        raise CritflowError(
            str(path),
            "does not hold a passport document (a mapping)",
            "A passport is {kind: battery, category: …, data: {…}} or {kind: lot, …}.",
        )
    from critflow.passport.exports import from_batterypass, is_batterypass

    if is_batterypass(value):  # as `critflow passport export --format batterypass` writes it
        return from_batterypass(value, str(path))
    return value
