"""The roadmap monitor in the registry's web service: organisations (the registry's), projects,
KPI values per project and year with provenance, rule verdicts and UNFC quantities; who sees what
(programme staff all, a company its own, the public only aggregates that pass
:mod:`critflow.monitor.confidentiality`); the JSON API under /api/monitor and the pages under
/monitor. :func:`routers` gives both to :func:`critflow.server.api.create_app`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client (critflow monitor submit) runs without the server's packages
    from fastapi import APIRouter

FORM_PATHS = ("/monitor/", "/api/monitor/uploads")
"""Paths that take HTML forms and file uploads (form or multipart bodies) instead of JSON."""


API_PREFIX = "/api/monitor"
"""The monitor's JSON API: its bodies are strict (no unknown field, no type coerced; a key given
twice is refused in every JSON body, by the request guard) and its validation errors name the
field path as the monitor does (values[0].year)."""


def field_path(loc: tuple | list) -> str:
    """A FastAPI error location as the monitor names fields: ('body', 'values', 0, 'year') ->
    'values[0].year'."""
    from critflow.model.source import format_path

    parts = tuple(loc)[1:] if loc and loc[0] == "body" else tuple(loc)
    return format_path(parts) or "(body)"


def routers(registry: Any, errors: dict, key_header: Any) -> list[APIRouter]:
    """The monitor's API and page routers over ``registry``; the roadmap is the shipped
    materinex-2030, or ``CRITFLOW_ROADMAP`` (a shipped name or the path of another programme's
    roadmap file)."""
    import os

    from critflow.server.monitor.api import monitor_api
    from critflow.server.monitor.pages import monitor_pages
    from critflow.server.monitor.service import ROADMAP, Monitor

    monitor = Monitor(registry, os.environ.get("CRITFLOW_ROADMAP") or ROADMAP)
    monitor.roadmap  # noqa: B018 (a roadmap file with mistakes stops the worker at start-up)
    registry.monitor = monitor
    return [monitor_api(monitor, errors, key_header), monitor_pages(monitor)]
