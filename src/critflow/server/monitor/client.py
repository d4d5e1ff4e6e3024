"""Submitting a model's numbers to a monitor server (``critflow monitor submit``): solve the model,
check the roadmap's rules in the year the numbers stand for, and send the KPI values and the rule
verdicts with the model file's SHA-256 as provenance. Needs no server package: the standard
library's HTTP client talks to the server's JSON API."""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError, Problem


def sha256_of(path: Path) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


MAX_ANSWER = 10_000_000
"""Largest answer read from the server in bytes (a project with its values is a few kB)."""


def shown(text: Any, limit: int = 300) -> str:
    """Text from the server as it may be printed: control characters (escape sequences that
    would drive the terminal) dropped, at most ``limit`` characters."""
    cleaned = "".join(ch for ch in str(text) if unicodedata.category(ch)[0] != "C" or ch == " ")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: urllib would send the API key along to wherever it points (another
    host, or http:// after https://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _json(raw: bytes, what: str) -> Any:
    if len(raw) > MAX_ANSWER:
        raise CritflowError(
            "--server",
            f"the answer to {what} is larger than {MAX_ANSWER:,} bytes",
            "Check that --server is a critflow monitor (critflow serve).",
        )
    try:
        return json.loads(raw or b"null")
    except (ValueError, RecursionError):
        raise CritflowError(
            "--server",
            f"the answer to {what} is not JSON (it starts {shown(raw[:60].decode('utf-8', 'replace'), 60)!r})",
            "Check that --server is a critflow monitor (critflow serve), not a web page or "
            "a proxy's login page.",
        ) from None


def request(
    server: str, method: str, path: str, key: str, body: Any = None, timeout: float = 60.0
) -> Any:
    """A JSON request to the monitor server; a problem document becomes a CritflowError with
    the server's problems (field paths) as its own. Follows no redirect; an answer that is not
    JSON, too large, or a problem document of the wrong shape is a CritflowError too."""
    url = server.rstrip("/") + path
    if not url.startswith(("http://", "https://")):
        raise CritflowError(
            "--server",
            f"'{shown(server, 100)}' is not an http(s) URL",
            "Give e.g. https://monitor.example.org.",
        )
    what = f"{method} {shown(url, 200)}"
    data = None if body is None else json.dumps(body, allow_nan=False).encode()
    headers = {"X-API-Key": key, "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    call = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(call, timeout=timeout) as response:
            return _json(response.read(MAX_ANSWER + 1), what)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            raise CritflowError(
                "--server",
                f"{what} answered {exc.code}, a redirect to "
                f"{shown(exc.headers.get('Location', '(nowhere)'), 200)}; critflow follows no "
                "redirect (the API key would go along)",
                "Give the address the server redirects to as --server, if you trust it.",
            ) from None
        try:
            problem = json.loads(exc.read(MAX_ANSWER))
        except (ValueError, RecursionError, OSError):
            problem = None
        if not isinstance(problem, dict):
            problem = {"title": exc.reason, "detail": ""}
        listed = problem.get("problems")
        problems = [
            Problem(
                f"server: {shown(p.get('where', ''), 200)}",
                shown(p.get("what", "")),
                shown(p.get("fix", "")),
            )
            for p in (listed if isinstance(listed, list) else [])[:50]
            if isinstance(p, dict)
        ]
        raise CritflowError(
            problems
            or [
                Problem(
                    what,
                    f"the server answered {exc.code} {shown(problem.get('title', ''), 100)}: "
                    f"{shown(problem.get('detail', ''))}",
                    "Check --project, --key and --server.",
                )
            ]
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CritflowError(
            "--server",
            f"cannot reach {shown(url, 200)} ({shown(getattr(exc, 'reason', exc), 200)})",
            "Check the server's address and that it is running (critflow serve).",
        ) from None


def _unexpected(what: str, found: Any) -> CritflowError:
    return CritflowError(
        "--server",
        f"the answer to {what} is not what a critflow monitor sends "
        f"({shown(json.dumps(found)[:80], 80)})",
        "Check that --server is a critflow monitor (critflow serve) of the same version.",
    )


def model_submission(
    model_path: Path,
    project: dict[str, Any],
    year: int,
    roadmap: str = "materinex-2030",
    allow_outside_files: bool = False,
) -> dict[str, Any]:
    """The submission of a model for ``project`` (as the server describes it: its focus
    domains) and ``year``: the value of each KPI of the project's domains that the model
    computes (the indicator of the KPI's roadmap rules, first scenario), the verdicts of those
    rules checked in ``year``, and the model file's SHA-256. Also returns what was left out."""
    from critflow.analysis import Run
    from critflow.model import load_model
    from critflow.monitor.roadmap import load_roadmap
    from critflow.rules import check, load_rule_sets

    road = load_roadmap(roadmap)
    model = load_model(model_path, allow_outside_files=allow_outside_files)
    run = Run.solve(model)
    rows = check(run.model, run.results, load_rule_sets(["roadmap"]), year=year, cache=run.cache)
    first = run.inputs.scenarios[0]
    rows = [r for r in rows if r.scenario == first]
    kpis = [k for d in project["domains"] for k in road.domain(d).kpis]
    values, verdicts, skipped = [], [], []
    for kpi in kpis:
        own = [r for r in rows if r.rule in kpi.rules]
        computed = [r for r in own if r.value is not None and math.isfinite(r.value)]
        if computed:
            values.append(
                {
                    "project": project["project_id"],
                    "year": year,
                    "kpi": kpi.id,
                    "value": float(computed[0].value),
                    "unit": kpi.unit,
                }
            )
        else:
            reason = next((r.reason for r in own if r.reason), "no roadmap rule computes it")
            skipped.append({"kpi": kpi.id, "reason": reason})
        for r in own:
            verdicts.append(
                {
                    "project": project["project_id"],
                    "year": year,
                    "rule": r.rule,
                    "title": r.title[:300],
                    "indicator": (r.indicator + (f"[{r.element}]" if r.element else ""))[:120],
                    "status": r.status,
                    "value": r.value if r.value is not None and math.isfinite(r.value) else None,
                    "comparator": r.comparator,
                    "threshold": r.threshold,
                    "margin": r.margin
                    if r.margin is not None and math.isfinite(r.margin)
                    else None,
                }
            )
    return {
        "values": values,
        "verdicts": verdicts,
        "model_sha256": sha256_of(model_path),
        "model_name": model_path.name[:200],
        "skipped": skipped,
    }


def submit_model(
    model_path: Path,
    project_id: str,
    year: int,
    server: str,
    key: str,
    allow_outside_files: bool = False,
) -> dict[str, Any]:
    """Run ``model_path`` and send its KPI values and rule verdicts for ``project_id`` and
    ``year``; returns the server's answer with the KPIs left out and why."""
    if not 2023 <= year <= 2035:
        raise CritflowError("--year", f"{year} is outside 2023-2035", "Give a year such as 2027.")
    from urllib.parse import quote

    project = request(server, "GET", f"/api/monitor/projects/{quote(project_id, safe='')}", key)
    road_domains = None
    if isinstance(project, dict) and isinstance(project.get("domains"), list):
        from critflow.monitor.roadmap import load_roadmap

        road_domains = set(load_roadmap("materinex-2030").domain_ids)
    if (
        road_domains is None
        or project.get("project_id") != project_id
        or not all(isinstance(d, str) and d in road_domains for d in project["domains"])
    ):
        raise _unexpected(f"GET project {shown(project_id, 60)}", project)
    submission = model_submission(
        model_path, project, year, allow_outside_files=allow_outside_files
    )
    skipped = submission.pop("skipped")
    if not submission["values"] and not submission["verdicts"]:
        raise CritflowError(
            str(model_path),
            f"computes none of the KPIs of project {project_id}'s focus domains "
            f"({', '.join(project['domains'])})",
            "; ".join(f"{s['kpi']}: {s['reason']}" for s in skipped)[:800],
        )
    answer = request(server, "POST", "/api/monitor/submissions", key, submission)
    counts = ("stored_values", "stored_verdicts")
    if not (
        isinstance(answer, dict)
        and all(type(answer.get(k)) is int and answer[k] >= 0 for k in counts)
        and isinstance(answer.get("batch"), str)
        and re.fullmatch(r"[0-9a-f]{1,64}", answer["batch"])
    ):
        raise _unexpected("the submission", answer)
    return {
        "batch": answer["batch"],
        "stored_values": answer["stored_values"],
        "stored_verdicts": answer["stored_verdicts"],
        "model_sha256": submission["model_sha256"],  # computed here, not the server's word
        "values": submission["values"],
        "skipped": skipped,
    }
