"""Submitting a model's numbers to a monitor server (``critflow monitor submit``): solve the model,
check the roadmap's rules in the year the numbers stand for, and send the KPI values and the rule
verdicts with the model file's SHA-256 as provenance. Needs no server package: the standard
library's HTTP client talks to the server's JSON API."""

from __future__ import annotations

import hashlib
import json
import math
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


def request(
    server: str, method: str, path: str, key: str, body: Any = None, timeout: float = 60.0
) -> Any:
    """A JSON request to the monitor server; a problem document becomes a CritflowError with
    the server's problems (field paths) as its own."""
    url = server.rstrip("/") + path
    if not url.startswith(("http://", "https://")):
        raise CritflowError(
            "--server",
            f"'{server}' is not an http(s) URL",
            "Give e.g. https://monitor.example.org.",
        )
    data = None if body is None else json.dumps(body, allow_nan=False).encode()
    headers = {"X-API-Key": key, "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    call = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(call, timeout=timeout) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            problem = json.loads(exc.read())
        except ValueError:
            problem = {"title": exc.reason, "detail": ""}
        problems = [
            Problem(f"server: {p.get('where', '')}", p.get("what", ""), p.get("fix", ""))
            for p in problem.get("problems") or []
        ]
        raise CritflowError(
            problems
            or [
                Problem(
                    f"{method} {url}",
                    f"the server answered {exc.code} {problem.get('title', '')}: "
                    f"{problem.get('detail', '')}",
                    "Check --project, --key and --server.",
                )
            ]
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CritflowError(
            "--server",
            f"cannot reach {url} ({getattr(exc, 'reason', exc)})",
            "Check the server's address and that it is running (critflow serve).",
        ) from None


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
    project = request(server, "GET", f"/api/monitor/projects/{project_id}", key)
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
    return {**answer, "values": submission["values"], "skipped": skipped}
