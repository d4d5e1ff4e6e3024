"""Reading the monitor's own files (roadmaps, proposals, classifications) with line numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from critflow.errors import CritflowError


def read_document(path: str | Path, what: str, fix: str) -> tuple[Any, Any]:
    """The data and source map of a YAML or JSON file; a CritflowError saying which kind of
    file (``what``) was expected when it is missing or not a file."""
    from critflow.model.source import read_file

    path = Path(path)
    if not path.is_file():
        raise CritflowError(
            str(path),
            f"no such {what}" if not path.exists() else f"is not a file (a {what} was expected)",
            fix,
        )
    raw, source, _ = read_file(path)
    return raw, source


def validate_short(model: Any, raw: Any, source: Any, limit: int = 300) -> Any:
    """``validate_as`` with each problem's text cut to ``limit`` characters: a 2 MB title would
    otherwise be echoed whole in the message ("got 'AAAA…'")."""
    from critflow.model.load import validate_as

    try:
        return validate_as(model, raw, source)
    except CritflowError as exc:
        raise CritflowError([_cut(p, limit) for p in exc.problems]) from None


def _cut(problem: Any, limit: int) -> Any:
    from dataclasses import replace

    if len(problem.what) <= limit:
        return problem
    return replace(problem, what=problem.what[:limit] + f"… ({len(problem.what):,} characters)")


def no_control_characters(value: Any) -> Any:
    """``value`` (a text, or a tuple of texts) unchanged; a ValueError when it holds control
    characters (escape sequences could drive the reader's terminal: clear it, set its title)."""
    import unicodedata

    texts = value if isinstance(value, tuple | list) else (value,)
    for text in texts:
        if isinstance(text, str):
            for ch in text:
                if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r":
                    raise ValueError(
                        f"contains the control character U+{ord(ch):04X}; remove it "
                        "(texts are plain text)"
                    )
    return value
