"""Who sees what in the roadmap monitor: the audiences of ``monitor_access.csv`` (data, like the
passport audiences). A key with the ``programme`` audience sees every project's values; any other
key sees its own organisation's values; the anonymous public sees aggregates only."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from critflow import data
from critflow.server.auth import ADMIN, Principal

Sight = Literal["all", "own", "aggregates"]


@lru_cache(maxsize=1)
def monitor_audiences() -> dict[str, Sight]:
    """Each monitor audience and what it sees (``all``, ``own``, ``aggregates``)."""
    frame = data.table("monitor_access")
    return {str(row.audience): str(row.sees) for row in frame.itertuples(index=False)}  # type: ignore[misc]


def sight(principal: Principal) -> Sight:
    """What ``principal`` sees: all (programme staff, the registry's admin), own (a company key),
    aggregates (anonymous)."""
    if principal.anonymous:
        return monitor_audiences().get("public", "aggregates")
    table = monitor_audiences()
    if ADMIN in principal.audiences:
        return "all"
    sights = {table[a] for a in principal.audiences if a in table and a != "public"}
    if "all" in sights:
        return "all"
    return "own"
