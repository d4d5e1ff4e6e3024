"""The validated model: its schema object, and where it came from (for error messages)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from critflow.model.schema import ModelFile
from critflow.model.source import SourceMap


@dataclass
class Model:
    """A validated model and where it came from."""

    spec: ModelFile
    source: SourceMap
    path: Path | None = None
    text_sha256: str | None = None
    allow_outside_files: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def stock_ids(self) -> frozenset[str]:
        """Ids of the model's stock processes."""
        return frozenset(p.id for p in self.spec.processes if p.kind == "stock")

    def where(self, *path: str | int) -> str:
        """Position of a field path in the model file, for error messages."""
        return self.source.where(path)
