"""Proposal screening in the web service: a proposal (typed fields, a form, or an uploaded
proposal file) and optionally a model file go to :func:`critflow.monitor.screening.screen`; the
answer is the screening as JSON, or the one-page sheet as HTML or PDF. Screening needs a key
(running an uploaded model and printing a PDF cost the server seconds)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError, Problem
from critflow.server.auth import Principal
from critflow.server.monitor.service import Monitor
from critflow.server.problems import RegistryError

MODEL_SUFFIXES = (".yaml", ".yml", ".json", ".xlsx")


def _refused(exc: CritflowError, title: str = "Proposal refused") -> RegistryError:
    return RegistryError(422, title, str(exc)[:2000], exc.problems)


def screen_proposal(
    monitor: Monitor,
    principal: Principal,
    proposal: dict[str, Any] | None = None,
    proposal_file: tuple[bytes, str] | None = None,
    model_file: tuple[bytes, str] | None = None,
) -> Any:
    """Screen a proposal given as fields or as a file (YAML/JSON), with an optional model file;
    every mistake is a 422 naming the field (or the file's line)."""
    from critflow.analysis import Run
    from critflow.model import load_model
    from critflow.monitor.screening import load_proposal, screen

    monitor.require_key(principal)
    with tempfile.TemporaryDirectory(prefix="critflow-screening-") as folder:
        try:
            if proposal_file is not None:
                raw, name = proposal_file
                suffix = Path(name).suffix.lower()
                if suffix not in (".yaml", ".yml", ".json"):
                    raise CritflowError(
                        name, "is not a proposal file (.yaml or .json)", "Upload proposal.yaml."
                    )
                path = Path(folder) / f"proposal{suffix}"
                path.write_bytes(raw)
                proposal = load_proposal(path, monitor.roadmap)
            run = model_path = None
            if model_file is not None:
                raw, name = model_file
                suffix = Path(name).suffix.lower()
                if suffix not in MODEL_SUFFIXES:
                    raise CritflowError(
                        name,
                        f"is not a model file ({', '.join(MODEL_SUFFIXES)})",
                        "Upload the model as YAML, JSON or an Excel workbook.",
                    )
                model_dir = Path(folder) / "model"
                model_dir.mkdir()
                model_path = model_dir / Path(name).name
                model_path.write_bytes(raw)
                run = Run.solve(load_model(model_path))  # data files only beside the model
            return screen(proposal or {}, monitor.roadmap, run, model_file=model_path)
        except CritflowError as exc:
            raise _refused(exc) from None


def sheet(result: Any, kind: str) -> tuple[bytes, str, str]:
    """The screening sheet as (body, media type, file name); ``kind`` html or pdf."""
    from critflow.monitor.screening import render_sheet_html, render_sheet_pdf

    name = "".join(
        c if c.isalnum() or c in "-_" else "-" for c in result.proposal.acronym or "proposal"
    )
    if kind == "pdf":
        try:
            return render_sheet_pdf(result), "application/pdf", f"screening-{name}.pdf"
        except CritflowError as exc:
            raise RegistryError(503, "No PDF printer", str(exc), exc.problems) from None
    return render_sheet_html(result).encode(), "text/html; charset=utf-8", f"screening-{name}.html"


def form_proposal(form: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """A proposal from the screening page's form fields: partners one per line as
    'organisation | kind | group | related to, …', claims one per line as 'KPI value [year]'."""
    problems: list[Problem] = []
    partners = []
    for number, line in enumerate(str(form.get("partners") or "").splitlines(), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split("|")]
        partner: dict[str, Any] = {
            "organisation": cells[0],
            "kind": cells[1] if len(cells) > 1 else "",
        }
        if len(cells) > 2 and cells[2]:
            partner["group"] = cells[2]
        if len(cells) > 3 and cells[3]:
            partner["related_to"] = [r.strip() for r in cells[3].split(",") if r.strip()]
        partners.append(partner)
        if partner["kind"] not in ("company", "research_group", "research_centre"):
            problems.append(
                Problem(
                    f"partners, line {number}",
                    f"'{partner['kind']}' is not a kind of partner",
                    "Write 'organisation | company' (or research_group | research_centre).",
                )
            )
    claims = []
    for number, line in enumerate(str(form.get("claims") or "").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            claim: dict[str, Any] = {"kpi": parts[0], "value": float(parts[1])}
            if len(parts) > 2:
                claim["year"] = int(parts[2])
            claims.append(claim)
        except (IndexError, ValueError):
            problems.append(
                Problem(
                    f"claims, line {number}",
                    f"'{line.strip()[:80]}' is not 'KPI value [year]'",
                    "Write e.g. '2.2-climate-intensity-change -0.15 2029'.",
                )
            )

    def integer(name: str) -> int | None:
        text = str(form.get(name) or "").strip()
        if not text:
            return None
        if not text.isdigit():
            problems.append(
                Problem(name, f"'{text[:20]}' is not a whole number", "Write e.g. 2026.")
            )
            return None
        return int(text)

    proposal = {
        "title": str(form.get("title") or "").strip(),
        "acronym": str(form.get("acronym") or "").strip() or None,
        "instrument": str(form.get("instrument") or ""),
        "domains": list(form.get("domains") or []),
        "start_year": integer("start_year"),
        "partners": partners,
        "claims": claims,
    }
    duration = integer("duration_years")
    if duration is not None:
        proposal["duration_years"] = duration
    return proposal, problems
