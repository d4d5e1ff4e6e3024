"""Screening a project proposal against the roadmap, for the expert group that gives the GO.

:func:`screen` checks a proposal (focus domains, instrument, partners, start year, claimed KPI
improvements) against the roadmap: the instrument's eligibility rules, each rule passed or failed
with the reason; the colour of each domain for the instrument in the start year's window (red:
too late to start); the domains' 2027/2030 targets and whether each claimed improvement meets
them; and, when a solved model (:class:`critflow.analysis.Run`) is given, the model's own values
and verdicts for those KPIs (the roadmap rules of ``rules/roadmap.yaml`` checked in the model's
last period). :func:`render_sheet_html` writes the one-page screening sheet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from critflow.errors import CritflowError, Problem, suggest
from critflow.monitor.roadmap import Colour, Instrument, Kpi, Roadmap

if TYPE_CHECKING:
    from critflow.analysis import Run


class Partner(BaseModel):
    """A partner of a proposal. ``kind``: company, research_group (``organisation`` is the research
    centre it belongs to, ``group`` its name) or research_centre. ``related_to``: organisations
    (a parent company, a sister company) a company is related to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisation: str = Field(min_length=1)
    kind: Literal["company", "research_group", "research_centre"]
    group: str | None = None
    related_to: tuple[str, ...] = ()

    @field_validator("related_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value or ()


class Claim(BaseModel):
    """A claimed KPI improvement: ``value`` in the KPI's own terms (a share 0.12, a relative
    change -0.15) reached in ``year`` (the proposal's end, or 2030, when not given)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kpi: str
    value: float = Field(allow_inf_nan=False)
    year: int | None = Field(default=None, ge=2000, le=2100)
    note: str | None = None


class Proposal(BaseModel):
    """A project proposal as screened: title, instrument, focus domains, partners, start year
    (and duration), claimed KPI improvements."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1)
    acronym: str | None = None
    instrument: str
    domains: tuple[str, ...] = Field(min_length=1)
    start_year: int = Field(ge=2000, le=2100)
    duration_years: int | None = Field(default=None, ge=1, le=20)
    partners: tuple[Partner, ...] = Field(min_length=1)
    claims: tuple[Claim, ...] = ()
    summary: str | None = None

    @field_validator("domains", mode="before")
    @classmethod
    def _domains_as_text(cls, value: Any) -> Any:
        if isinstance(value, str | int | float):
            value = [value]
        return tuple(str(v) for v in value) if isinstance(value, list | tuple) else value

    @property
    def end_year(self) -> int | None:
        return self.start_year + self.duration_years - 1 if self.duration_years else None


@dataclass(frozen=True)
class RuleCheck:
    """One eligibility rule: ``passed`` True/False, or None when the expert group judges it."""

    rule: str
    text: str
    passed: bool | None
    reason: str
    source: str


@dataclass(frozen=True)
class DomainColour:
    """The colour of one focus domain for the proposal's instrument in its start year's window."""

    domain: str
    title: str
    colour: Colour | None
    verdict: str  # what the colour means for this proposal


@dataclass(frozen=True)
class ModelValue:
    """The model's value for a KPI: one roadmap rule checked on the solved model."""

    rule: str
    scenario: str
    period: int | None
    value: float | None
    threshold: float
    status: str
    reason: str


@dataclass(frozen=True)
class TargetCheck:
    """A KPI of the proposal's domains: its reference and targets, the claim (if any) and whether
    it meets the 2027 and 2030 targets, and the model's values."""

    kpi: Kpi
    claimed: float | None = None
    claimed_year: int | None = None
    meets_2027: bool | None = None
    meets_2030: bool | None = None
    meets_in_claimed_year: bool | None = None
    model: tuple[ModelValue, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Screening:
    """What the expert group reads: eligibility, colours, targets and claims, model values."""

    proposal: Proposal
    roadmap: Roadmap
    instrument: Instrument
    window: str | None
    eligibility: tuple[RuleCheck, ...]
    colours: tuple[DomainColour, ...]
    targets: tuple[TargetCheck, ...]
    notes: tuple[str, ...] = ()
    model_name: str | None = None
    model_hash: str | None = None
    model_note: str = ""
    created: str = field(default_factory=lambda: dt.date.today().isoformat())

    @property
    def eligible(self) -> bool | None:
        """False when a checked rule fails; True when every rule passes; None when all checked
        rules pass but some are left to the expert group."""
        if any(r.passed is False for r in self.eligibility):
            return False
        return None if any(r.passed is None for r in self.eligibility) else True

    @property
    def too_late(self) -> bool:
        return any(c.colour is not None and c.colour.too_late for c in self.colours) or (
            self.window is None and self.proposal.start_year > self.roadmap.horizon[1]
        )

    def as_dict(self) -> dict[str, Any]:
        """The screening as plain data (JSON-ready) for an API or a file."""
        return {
            "proposal": self.proposal.model_dump(mode="json"),
            "roadmap": self.roadmap.id,
            "instrument": self.instrument.id,
            "window": self.window,
            "eligible": self.eligible,
            "too_late": self.too_late,
            "eligibility": [
                {"rule": r.rule, "passed": r.passed, "reason": r.reason, "source": r.source}
                for r in self.eligibility
            ],
            "colours": [
                {
                    "domain": c.domain,
                    "colour": c.colour.code if c.colour else None,
                    "meaning": c.colour.meaning if c.colour else None,
                    "verdict": c.verdict,
                }
                for c in self.colours
            ],
            "targets": [
                {
                    "kpi": t.kpi.id,
                    "unit": t.kpi.unit,
                    "kind": t.kpi.kind,
                    "target_2027": t.kpi.target_2027,
                    "target_2030": t.kpi.target_2030,
                    "claimed": t.claimed,
                    "claimed_year": t.claimed_year,
                    "meets_2027": t.meets_2027,
                    "meets_2030": t.meets_2030,
                    "meets_in_claimed_year": t.meets_in_claimed_year,
                    "model": [m.__dict__ for m in t.model],
                    "note": t.note,
                }
                for t in self.targets
            ],
            "notes": list(self.notes),
            "model": {"name": self.model_name, "sha256": self.model_hash, "note": self.model_note},
            "created": self.created,
        }


# ------------------------------------------------------------------------------- loading


def _check_against(proposal: Proposal, roadmap: Roadmap, where) -> list[Problem]:
    """The proposal's references to the roadmap: instrument, domains, claimed KPIs."""
    problems = []
    if proposal.instrument not in roadmap.instruments:
        problems.append(
            Problem(
                where("instrument"),
                f"there is no funding instrument '{proposal.instrument}' in roadmap {roadmap.id}",
                suggest(proposal.instrument, list(roadmap.instruments), "Instruments"),
            )
        )
    for i, domain in enumerate(proposal.domains):
        if domain not in roadmap.domain_ids:
            problems.append(
                Problem(
                    where("domains", i),
                    f"there is no focus domain '{domain}' in roadmap {roadmap.id}",
                    suggest(domain, roadmap.domain_ids, "Focus domains"),
                )
            )
    for i, claim in enumerate(proposal.claims):
        if claim.kpi not in roadmap.kpis:
            problems.append(
                Problem(
                    where("claims", i, "kpi"),
                    f"there is no KPI '{claim.kpi}' in roadmap {roadmap.id}",
                    suggest(claim.kpi, list(roadmap.kpis), "KPIs", limit=8),
                )
            )
    return problems


def load_proposal(path: str | Path, roadmap: Roadmap | None = None) -> Proposal:
    """A proposal from a YAML (or JSON) file; mistakes — also references to domains, instruments
    or KPIs the roadmap does not have — are CritflowErrors naming file, line and field."""
    from critflow.model.load import validate_as
    from critflow.monitor._files import read_document

    raw, source = read_document(
        path,
        "proposal file",
        "Give the path of a proposal (.yaml), e.g. examples/monitor/proposal_icon_battery_recycling.yaml.",
    )
    if not isinstance(raw, dict):
        raise CritflowError(
            str(path),
            "a proposal file is a mapping (title:, instrument:, domains:, partners:, …)",
            "See examples/monitor/proposal_icon_battery_recycling.yaml.",
        )
    proposal = validate_as(Proposal, raw, source)
    if roadmap is not None:
        problems = _check_against(proposal, roadmap, source.where)
        if problems:
            raise CritflowError(problems)
    return proposal


# ----------------------------------------------------------------------------- eligibility


def _key(name: str) -> str:
    return " ".join(name.casefold().split())


def _unrelated_companies(partners: tuple[Partner, ...]) -> list[list[str]]:
    """The proposal's companies grouped by relation (related_to, either way, and through a shared
    parent): each group counts as one company."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    companies = [p for p in partners if p.kind == "company"]
    for p in companies:
        find(_key(p.organisation))
        for other in p.related_to:
            parent[find(_key(other))] = find(_key(p.organisation))
    groups: dict[str, list[str]] = {}
    seen: set[str] = set()
    for p in companies:
        if _key(p.organisation) in seen:
            continue
        seen.add(_key(p.organisation))
        groups.setdefault(find(_key(p.organisation)), []).append(p.organisation)
    return list(groups.values())


def _counts(partners: tuple[Partner, ...]) -> dict[str, tuple[int, str]]:
    groups = [p for p in partners if p.kind == "research_group"]
    research = {_key(p.organisation): p.organisation for p in partners if p.kind != "company"}
    companies = {_key(p.organisation): p.organisation for p in partners if p.kind == "company"}
    related = _unrelated_companies(partners)
    return {
        "min_research_groups": (
            len(groups),
            ", ".join(f"{p.group or 'a group'} ({p.organisation})" for p in groups) or "none",
        ),
        "min_research_centres": (len(research), ", ".join(research.values()) or "none"),
        "min_companies": (len(companies), ", ".join(companies.values()) or "none"),
        "min_unrelated_companies": (
            len(related),
            "; ".join(" + ".join(g) + (" (related)" if len(g) > 1 else "") for g in related)
            or "none",
        ),
    }


_COUNTED = {
    "min_research_groups": "research groups",
    "min_research_centres": "research centres (distinct organisations of the research partners)",
    "min_companies": "companies",
    "min_unrelated_companies": "unrelated companies",
}


def eligibility(proposal: Proposal, instrument: Instrument) -> tuple[RuleCheck, ...]:
    """Each eligibility rule of ``instrument`` checked on the proposal's partners."""
    counts = _counts(proposal.partners)
    names = {_key(p.organisation) for p in proposal.partners}
    out = []
    for rule in instrument.rules:
        source = str(rule.source)
        if rule.check is None:
            out.append(RuleCheck(rule.id, rule.text, None, "judged by the expert group", source))
            continue
        if rule.applies_if:
            listed = rule.applies_if.get("any_organisation_in", ())
            hits = [o for o in listed if _key(o) in names]
            if not hits:
                out.append(
                    RuleCheck(
                        rule.id,
                        rule.text,
                        True,
                        f"does not apply: no partner is one of {', '.join(listed)}",
                        source,
                    )
                )
                continue
        failed, parts = [], []
        for key, needed in rule.check.items():
            found, who = counts[key]
            parts.append(f"{_COUNTED[key]}: {found} (at least {needed}; {who})")
            if found < needed:
                failed.append(f"{needed - found} more needed ({_COUNTED[key].split(' (')[0]})")
        reason = "; ".join(parts) + (f" — {', '.join(failed)}" if failed else "")
        out.append(RuleCheck(rule.id, rule.text, not failed, reason, source))
    return tuple(out)


# ------------------------------------------------------------------------------- colours


def _colours(proposal: Proposal, roadmap: Roadmap, window: str | None) -> tuple[DomainColour, ...]:
    first, last = roadmap.horizon
    out = []
    for domain_id in proposal.domains:
        domain = roadmap.domain(domain_id)
        if window is None:
            after = proposal.start_year > last
            verdict = (
                f"too late: {proposal.start_year} is after the roadmap's horizon ({first}-{last})"
                if after
                else f"{proposal.start_year} is before the roadmap's horizon ({first}-{last})"
            )
            out.append(DomainColour(domain.id, domain.title, None, verdict))
            continue
        colour = roadmap.colour(domain.id, proposal.instrument, window)
        meaning = roadmap.colour_meanings[colour.code]
        if colour.code == "red":
            verdict = f"too late: {colour.meaning} ({window})"
        elif colour.code == "green":
            verdict = f"{colour.meaning} ({window})"
        elif colour.code in ("blue", "orange"):
            verdict = f"{colour.meaning} ({window}): fundable {meaning.fundable}"
        else:
            verdict = f"unknown for {window}: {colour.note or colour.meaning}"
        out.append(DomainColour(domain.id, domain.title, colour, verdict))
    return tuple(out)


# ------------------------------------------------------------------------------- targets


def _model_values(run: Run | None, kpi: Kpi) -> tuple[ModelValue, ...]:
    if run is None or not kpi.rules:
        return ()
    rows = run.compliance or []
    return tuple(
        ModelValue(r.rule, r.scenario, r.period, r.value, r.threshold, r.status, r.reason)
        for r in rows
        if r.rule in kpi.rules
    )


def _targets(proposal: Proposal, roadmap: Roadmap, run: Run | None) -> tuple[TargetCheck, ...]:
    claims: dict[str, Any] = {c.kpi: c for c in proposal.claims}
    kpis = [k for d in proposal.domains for k in roadmap.domain(d).kpis]
    kpis += [roadmap.kpis[c.kpi] for c in proposal.claims if roadmap.kpis[c.kpi] not in kpis]
    out = []
    for kpi in kpis:
        note = (
            ""
            if kpi.domain in proposal.domains
            else f"a KPI of {kpi.domain}, not one of the proposal's domains"
        )
        claim = claims.get(kpi.id)
        if claim is None:
            out.append(TargetCheck(kpi, model=_model_values(run, kpi), note=note))
            continue
        year = claim.year or proposal.end_year or 2030
        out.append(
            TargetCheck(
                kpi,
                claim.value,
                year,
                kpi.meets(claim.value, kpi.target_2027),
                kpi.meets(claim.value, kpi.target_2030),
                kpi.meets(claim.value, kpi.target(year)),
                _model_values(run, kpi),
                "; ".join(x for x in (note, claim.note or "") if x),
            )
        )
    return tuple(out)


def screen(
    proposal: Proposal | Mapping[str, Any],
    roadmap: Roadmap,
    run: Run | None = None,
    model_file: str | Path | None = None,
) -> Screening:
    """Screen ``proposal`` (a :class:`Proposal` or its fields as a mapping) against ``roadmap``;
    with ``run``, add the model's values for the KPIs (``model_file``: its file, hashed for the
    sheet's provenance). Mistakes in the proposal are CritflowErrors naming the field."""
    if not isinstance(proposal, Proposal):
        from pydantic import ValidationError

        from critflow.errors import validation_problems

        try:
            proposal = Proposal.model_validate(dict(proposal))
        except ValidationError as exc:
            raise CritflowError(validation_problems(exc.errors(), "proposal")) from None
    problems = _check_against(
        proposal, roadmap, lambda *path: "proposal: " + ".".join(str(p) for p in path)
    )
    if problems:
        raise CritflowError(problems)
    instrument = roadmap.instruments[proposal.instrument]
    first, last = roadmap.horizon
    window = roadmap.window(proposal.start_year) if first <= proposal.start_year <= last else None
    notes = []
    if window is None:
        notes.append(
            f"The start year {proposal.start_year} is outside the roadmap's horizon {first}-{last}."
        )
    if instrument.prenotification:
        notes.append(f"{instrument.name}: prenotification {instrument.prenotification}.")
    notes += [f"{step.text}" for step in roadmap.procedure if step.id == "go-validity"]
    model_name = model_hash = None
    model_note = ""
    if run is not None:
        model_name = run.model.name
        if model_file is not None:
            model_hash = hashlib.sha256(Path(model_file).read_bytes()).hexdigest()
        if run.compliance is None:
            model_note = (
                "The model's roadmap rules could not be checked (run 'critflow check' on the "
                "model to see why)."
            )
    return Screening(
        proposal,
        roadmap,
        instrument,
        window,
        eligibility(proposal, instrument),
        _colours(proposal, roadmap, window),
        _targets(proposal, roadmap, run),
        tuple(notes),
        model_name,
        model_hash,
        model_note,
    )


# ------------------------------------------------------------------------------- the sheet


def _fmt(value: float | None, kpi: Kpi) -> str:
    if value is None:
        return "—"
    if kpi.unit == "1":
        return f"{value:+.0%}" if kpi.kind == "relative_change" else f"{value:.0%}"
    return f"{value:,.4g} {kpi.unit}"


def _yes_no(value: bool | None) -> str:
    return {True: '<span class="ok">yes</span>', False: '<span class="no">no</span>'}.get(
        value, "—"
    )


_CSS = """
@page { size: A4; margin: 12mm; }
* { box-sizing: border-box; }
body { font: 8pt/1.2 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #111;
  margin: 0 auto; max-width: 190mm; padding: 4mm; }
h1 { font-size: 12.5pt; margin: 0 0 1mm; }
h2 { font-size: 10pt; margin: 3mm 0 1mm; border-bottom: 1px solid #999; }
.partners { margin: 1.5mm 0 0; }
ul.small { margin: 1mm 0; padding-left: 4mm; }
.meta { color: #444; margin: 0 0 2mm; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.6mm 1.5mm; border-bottom: 1px solid #ddd; }
th { font-weight: 600; background: #f2f2f2; }
td.num { text-align: right; white-space: nowrap; }
.ok { color: #11661f; font-weight: 600; } .no { color: #a10f0f; font-weight: 600; }
.open { color: #8a5a00; font-weight: 600; }
.chip { display: inline-block; min-width: 12mm; padding: 0 1.5mm; border-radius: 2mm; color: #fff;
  text-align: center; font-weight: 600; }
.green { background: #2e7d32; } .blue { background: #1565c0; } .orange { background: #e65100; }
.red { background: #b71c1c; } .unknown { background: #757575; }
.verdict { font-size: 10.5pt; font-weight: 700; margin: 1mm 0; }
.small { font-size: 7pt; color: #555; }
td.kpi { width: 38%; }
footer { margin-top: 3mm; }
@media print { body { padding: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def _model_cell(t: TargetCheck) -> str:
    """The model's values for a KPI, one line per rule: range over scenarios and verdicts."""
    e = html.escape
    lines = []
    by_rule: dict[str, list[ModelValue]] = {}
    for m in t.model:
        if m.value is not None:
            by_rule.setdefault(m.rule, []).append(m)
    for rule, values in by_rule.items():
        low = min(v.value for v in values if v.value is not None)
        high = max(v.value for v in values if v.value is not None)
        shown = _fmt(low, t.kpi) if low == high else f"{_fmt(low, t.kpi)} to {_fmt(high, t.kpi)}"
        statuses = sorted({v.status for v in values})
        css = "ok" if statuses == ["pass"] else "no" if "fail" in statuses else "open"
        period = values[0].period
        lines.append(
            f"{shown} <span class={css}>{e('/'.join(statuses))}</span>"
            f" <span class=small>{e(rule)}, {period}, {len(values)} scenario"
            f"{'s' if len(values) > 1 else ''}</span>"
        )
    if t.model and not lines:
        reason = t.model[0].reason
        return f"<span class=small>n/a: {e(reason[:110])}{'…' if len(reason) > 110 else ''}</span>"
    return "<br>".join(lines) or "—"


def render_sheet_html(screening: Screening) -> str:
    """The one-page screening sheet: a self-contained HTML page (inline CSS, no scripts) sized
    to print on one A4 page. KPIs without a target are listed only when claimed."""
    e = html.escape
    p = screening.proposal
    verdict = {
        True: '<span class="ok">eligible</span>',
        False: '<span class="no">not eligible</span>',
        None: '<span class="open">eligible on the checked rules; the rest for the expert group</span>',
    }[screening.eligible]
    late = ' — <span class="no">too late to start</span>' if screening.too_late else ""
    partners = "; ".join(
        f"{e(x.organisation)} <span class=small>({e(x.kind.replace('_', ' '))}"
        + (f", {e(x.group)}" if x.group else "")
        + (f", related to {e(', '.join(x.related_to))}" if x.related_to else "")
        + ")</span>"
        for x in p.partners
    )
    rules = "".join(
        f"<tr><td>{e(r.rule)}</td><td>"
        + (_yes_no(r.passed) if r.passed is not None else "<span class=open>expert group</span>")
        + f"</td><td>{e(r.text)}<br><span class=small>{e(r.reason)}</span></td></tr>"
        for r in screening.eligibility
    )
    colours = "".join(
        f"<tr><td>{e(c.domain)}</td><td>{e(c.title)}</td>"
        f"<td><span class='chip {e(c.colour.code if c.colour else 'unknown')}'>"
        f"{e(c.colour.code if c.colour else 'n/a')}</span></td><td>{e(c.verdict)}</td></tr>"
        for c in screening.colours
    )
    target_rows = []
    references = set()
    for t in screening.targets:
        if t.claimed is None and t.kpi.target_2027 is None and t.kpi.target_2030 is None:
            continue
        references.add(t.kpi.reference.text.split(";")[0])
        claimed = f"{_fmt(t.claimed, t.kpi)} ({t.claimed_year})" if t.claimed is not None else "—"
        meets = (
            f"{_yes_no(t.meets_2027)} / {_yes_no(t.meets_2030)}" if t.claimed is not None else "—"
        )
        note = f" <span class=small>({e(t.note)})</span>" if t.note else ""
        target_rows.append(
            f"<tr><td class=kpi>{e(t.kpi.id)}{note}<br><span class=small>{e(t.kpi.name)}</span></td>"
            f"<td class=num>{_fmt(t.kpi.target_2027, t.kpi)}</td>"
            f"<td class=num>{_fmt(t.kpi.target_2030, t.kpi)}</td>"
            f"<td class=num>{claimed}</td><td>{meets}</td><td>{_model_cell(t)}</td></tr>"
        )
    notes = "".join(f"<li>{e(n)}</li>" for n in screening.notes)
    if screening.model_name:
        model_line = f"Model: {e(screening.model_name)}" + (
            f", SHA-256 {e(screening.model_hash[:16])}…" if screening.model_hash else ""
        )
        model_line += f". {e(screening.model_note)}" if screening.model_note else ""
        notes += f"<li>{model_line}</li>"
    window = screening.window or "outside the horizon"
    reference = "; ".join(sorted(references)) or "—"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Screening: {e(p.acronym or p.title)}</title>
<style>{_CSS}</style></head>
<body>
<h1>Screening sheet: {e(p.title)}{f" ({e(p.acronym)})" if p.acronym else ""}</h1>
<p class="meta">{e(screening.instrument.name)} · focus domain{"s" if len(p.domains) > 1 else ""}
{e(", ".join(p.domains))} · start {p.start_year}{f"–{p.end_year}" if p.end_year else ""}
· window {e(window)} · {e(screening.roadmap.title)}</p>
<p class="verdict">{verdict}{late}</p>
<h2>Eligibility</h2>
<table><tr><th>rule</th><th>passed</th><th>rule, and what the partners give</th></tr>{rules}</table>
<p class="partners"><b>Partners:</b> {partners}</p>
<h2>Timing: instrument colour per focus domain</h2>
<table><tr><th>domain</th><th>title</th><th>colour</th><th>meaning for this proposal</th></tr>{colours}</table>
<h2>Targets and claimed improvements</h2>
<table><tr><th>KPI</th><th>2027</th><th>2030</th><th>claimed</th><th>meets 2027 / 2030</th><th>model</th></tr>
{"".join(target_rows)}</table>
<p class="small">Reference of the targets: {e(reference)}.</p>
<footer><ul class="small">{notes}</ul>
<p class="small">Sources: {e(str(screening.roadmap.source.document))};
eligibility: {e(screening.instrument.source.point)}.
Colours: {e(screening.roadmap.colour_note.strip())}
Generated by critflow on {e(screening.created)}.</p></footer>
</body></html>
"""


def chromium_path() -> str | None:
    """A headless Chromium to print the sheet with (BROWSER_PATH, or chromium on the PATH)."""
    import os
    import shutil

    configured = os.environ.get("BROWSER_PATH")
    if configured and Path(configured).exists():
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def render_sheet_pdf(screening: Screening, timeout: float = 90.0) -> bytes:
    """The screening sheet as PDF, printed by a headless Chromium from :func:`render_sheet_html`
    (no PDF library is installed with critflow). A CritflowError when no Chromium is found."""
    import subprocess
    import tempfile

    browser = chromium_path()
    if browser is None:
        raise CritflowError(
            "PDF sheet",
            "a PDF sheet is printed by a headless Chromium, and none was found",
            "Install Chromium (apt-get install chromium) or set BROWSER_PATH; or write the "
            "sheet as .html and print it from a browser.",
        )
    with tempfile.TemporaryDirectory(prefix="critflow-sheet-") as folder:
        page = Path(folder) / "sheet.html"
        target = Path(folder) / "sheet.pdf"
        page.write_text(render_sheet_html(screening), encoding="utf-8")
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={Path(folder) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CritflowError(
                "PDF sheet", f"Chromium did not print the sheet within {timeout:.0f} s", ""
            ) from None
        if not target.exists() or target.stat().st_size == 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
            raise CritflowError(
                "PDF sheet",
                f"Chromium ({browser}) did not print the sheet (exit {done.returncode}): {detail[0]}",
                "Write the sheet as .html instead.",
            )
        return target.read_bytes()
