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
