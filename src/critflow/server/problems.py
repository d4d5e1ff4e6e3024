"""The registry's error type: an HTTP status, a title, details and per-field problems.

A refusal that must be audited carries the audit entry with it (``audit``); the service writes
that entry in its own transaction *after* the refused operation was rolled back, so a refused
request changes nothing but the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from critflow.errors import Problem


@dataclass
class RegistryError(Exception):
    """An error for the caller: HTTP status, a short title, details, and per-field problems."""

    status: int
    title: str
    detail: str
    problems: list[Problem] = field(default_factory=list)
    audit: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"
