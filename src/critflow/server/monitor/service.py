"""The roadmap monitor's operations, independent of HTTP: projects, KPI values (batches, all or
nothing), verdicts, UNFC quantities, and what each caller may see of them.

Who sees what (:mod:`critflow.server.monitor.access`): programme staff every project's values, a
company its own organisation's, the public nothing but aggregates. Every aggregate — on a page,
in the API, in an Excel export, for every role — comes from :meth:`Monitor.aggregates`, which
hands the stored values to :func:`critflow.monitor.confidentiality.public_aggregates`, the one
place of the rule (at least three organisations; nothing recoverable by subtraction), together
with every aggregate shown before (table ``monitor_published``: what was public stays public, so
a later aggregate must be safe with it — across restarts and workers).

A refused request changes nothing: every item of a batch is checked first, every problem is
reported with its field path (or its cell), and only a batch without problems is written, in one
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from critflow.errors import Problem, nearest
from critflow.server.auth import Principal
from critflow.server.models import Organisation
from critflow.server.monitor.access import sight
from critflow.server.monitor.models import (
    MonitorProject,
    MonitorPublished,
    MonitorQuantity,
    MonitorValue,
    MonitorVerdict,
)
from critflow.server.problems import RegistryError
from critflow.units import unit_factor

ROADMAP = "materinex-2030"
UNFC = "unfc:"
"""Prefix of the aggregates of UNFC-classified tonnes ('unfc:<class>:<element>')."""
PROGRAMME = "programme"
"""The group of the programme totals (the aggregates over every focus domain)."""
FIRST_YEAR, LAST_YEAR = 2023, 2035
"""Years a KPI value may be submitted for: the roadmap's reference year 2023 to five years past
its horizon 2030 (a project's effect is followed after it ends)."""
MAX_ITEMS = 5000
_PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,59}$")
RESERVED_PROJECT_IDS = frozenset(
    {
        "aggregate",  # the public aggregate's line on every chart (a project so named replaced it)
        "aggregates",
        PROGRAMME,  # the group of the programme totals
        "public",
        "reference",
        "target",
        "targets",
        "total",
        "totals",
        "all",
        "new",
        "template",  # monitor pages and API paths
        "export",
        "upload",
        "uploads",
        "screening",
        "login",
        "logout",
        "domains",
        "projects",
        "submissions",
        "roadmap",
    }
)
"""Words the monitor itself uses for a series, a group or a path: no project may be called so
(compared case-folded)."""
_CO2 = re.compile(r"\s*CO2[- ]?eq\.?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Measure:
    """What a value is submitted as: a roadmap KPI, its unit and how its values aggregate
    (absolute quantities such as tonnes add up; shares and relative changes are averaged over
    the contributing organisations)."""

    id: str
    name: str
    unit: str
    domains: tuple[str, ...]
    kpi: Any

    @property
    def adds_up(self) -> bool:
        return getattr(self.kpi, "kind", None) == "absolute"

    @property
    def co2(self) -> bool:
        return "co2" in self.id.lower() or "co2" in self.name.lower()


def convert_unit(value: float, unit: str, expected: str, co2: bool = False) -> float:
    """``value`` in ``unit`` expressed in ``expected`` (pint: '%' → '1' is 0.01, 'kt' → 't' is
    1000). A 'CO2-eq' after a mass unit is accepted for a CO2-equivalent KPI ('kt CO2-eq' for
    't') and refused for any other. Raises ValueError saying why the unit does not fit."""
    given, wanted = str(unit).strip(), str(expected).strip()
    if given == wanted:
        return value
    if _CO2.search(given) and not (co2 or _CO2.search(wanted)):
        raise ValueError(f"'{given}' is a CO2-equivalent, but the KPI is measured in {wanted}")
    given, wanted = _CO2.sub(" ", given).strip() or "1", _CO2.sub(" ", wanted).strip() or "1"
    return value * unit_factor(given, wanted)


@dataclass(frozen=True)
class ValueRange:
    """The plausible values of a KPI in its unit (``monitor_value_ranges.csv``) and why."""

    minimum: float
    maximum: float
    unit: str
    source: str

    def problem(
        self, where: str, what: str, value: float, given: float, unit: str
    ) -> Problem | None:
        """A problem naming ``where`` when ``value`` (in :attr:`unit`; ``given`` in ``unit``
        as sent) is outside the range; None when it is inside."""
        if self.minimum <= value <= self.maximum:
            return None
        side = "below" if value < self.minimum else "above"
        shown = f"{self.minimum:g} to {self.maximum:g} " + (
            "(as a fraction)" if self.unit.strip() == "1" else self.unit
        )
        if unit.strip() != self.unit.strip():
            try:
                low = convert_unit(self.minimum, self.unit, unit, True)
                high = convert_unit(self.maximum, self.unit, unit, True)
                shown += f" ({low:g} to {high:g} {unit})"
            except ValueError:
                pass
        return Problem(
            where,
            f"{given:g} {unit} is {side} the plausible range of {what}, {shown}",
            f"Check the value and its unit ({self.source}).",
        )


@dataclass
class ValueItem:
    """One value to store, after checking: where it came from (field path or cell)."""

    where: str
    project: MonitorProject
    year: int
    measure: Measure
    value: float
    given_value: float
    given_unit: str


@dataclass
class Checked:
    """A checked batch: values and verdicts to store, or the problems that refuse it."""

    values: list[ValueItem] = field(default_factory=list)
    verdicts: list[tuple[MonitorProject, dict[str, Any]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


class Monitor:
    """The roadmap monitor over the registry's database and accounts."""

    def __init__(self, registry: Any, roadmap: str = ROADMAP) -> None:
        self.registry = registry
        self.roadmap_name = roadmap
        self._lock = threading.Lock()
        self._cached: tuple[tuple, list[Any]] | None = None

    # --- the roadmap --------------------------------------------------------------------------
    @cached_property
    def roadmap(self) -> Any:
        from critflow.monitor.roadmap import load_roadmap

        return load_roadmap(self.roadmap_name)

    @cached_property
    def measures(self) -> dict[str, Measure]:
        """Every KPI a value may be submitted for (the roadmap's, by id)."""
        return {
            kpi.id: Measure(kpi.id, kpi.name, kpi.unit, (kpi.domain,), kpi)
            for kpi in self.roadmap.kpis.values()
        }

    @cached_property
    def ranges(self) -> dict[str, ValueRange]:
        """The plausible range of every KPI (``monitor_value_ranges.csv``: the KPI's own row,
        else its kind's, else 'any'; a row in another unit converted to the KPI's) and of UNFC
        tonnes (key ``unfc:tonnes``)."""
        from critflow import data

        rows: dict[str, Any] = {
            str(row.applies_to).strip(): row
            for row in data.table("monitor_value_ranges").itertuples(index=False)
        }

        def resolved(names: list[str], unit: str, co2: bool) -> ValueRange | None:
            for name in names:
                row = rows.get(name)
                if row is None:
                    continue
                given = "" if pd_missing(row.unit) else str(row.unit).strip()
                try:
                    low, high = (
                        (float(row.minimum), float(row.maximum))
                        if not given
                        else (
                            convert_unit(float(row.minimum), given, unit, co2),
                            convert_unit(float(row.maximum), given, unit, co2),
                        )
                    )
                except ValueError:
                    continue  # a row in a unit of another kind: the next one applies
                return ValueRange(low, high, unit, str(row.source))
            return None

        result = {}
        for measure in self.measures.values():
            found = resolved(
                [measure.id, f"kind:{getattr(measure.kpi, 'kind', '')}", "any"],
                measure.unit,
                measure.co2,
            )
            if found is not None:
                result[measure.id] = found
        tonnes = resolved(["unfc:tonnes"], "t", False)
        if tonnes is not None:
            result["unfc:tonnes"] = tonnes
        return result

    @cached_property
    def domain_ids(self) -> list[str]:
        return [d.id for d in self.roadmap.domains]

    def domain(self, domain_id: str) -> Any:
        for found in self.roadmap.domains:
            if found.id == domain_id:
                return found
        raise RegistryError(
            404,
            "No such focus domain",
            f"'{domain_id[:40]}' is not a focus domain of {self.roadmap.id}; "
            f"domains: {', '.join(self.domain_ids)}.",
        )

    # --- callers ------------------------------------------------------------------------------
    def caller(self, api_key: str | None) -> Principal:
        return self.registry.principal(api_key)

    @staticmethod
    def require_key(principal: Principal) -> None:
        if principal.anonymous:
            raise RegistryError(
                401,
                "API key required",
                "Projects and their values need an API key (X-API-Key); the public sees the "
                "aggregates per focus domain (/api/monitor/aggregates).",
            )

    @staticmethod
    def require_writer(principal: Principal) -> None:
        Monitor.require_key(principal)
        if not principal.can_write:
            raise RegistryError(
                403, "Not allowed to write", "This key has no write right (create it with --write)."
            )

    @staticmethod
    def may_see(principal: Principal, organisation: str) -> bool:
        seen = sight(principal)
        return seen == "all" or (seen == "own" and organisation == principal.organisation)

    @staticmethod
    def may_write(principal: Principal, organisation: str) -> bool:
        return principal.can_write and (
            sight(principal) == "all" or organisation == principal.organisation
        )

    # --- projects -----------------------------------------------------------------------------
    def create_project(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        """Store a project; a company key files it under its own organisation, programme staff
        under any registered organisation (``organisation``)."""
        self.require_writer(principal)
        problems: list[Problem] = []
        project_id = str(body["project_id"])
        if not _PROJECT_ID.match(project_id):
            problems.append(
                Problem(
                    "project_id",
                    f"'{project_id[:60]}' is not a project id",
                    "Use 1-60 letters, digits, '.', '_' or '-', starting with a letter or digit.",
                )
            )
        elif project_id.casefold() in RESERVED_PROJECT_IDS:
            problems.append(
                Problem(
                    "project_id",
                    f"'{project_id}' is a word the monitor uses itself (for the public "
                    "aggregate, the programme totals or a page)",
                    "Choose another id, e.g. with the instrument and year: ICON-2025-07.",
                )
            )
        organisation = body.get("organisation") or principal.organisation
        if organisation != principal.organisation and sight(principal) != "all":
            problems.append(
                Problem(
                    "organisation",
                    f"a key of '{principal.organisation}' cannot file a project of '{organisation}'",
                    "Leave organisation out (your own is used), or ask programme staff.",
                )
            )
        instruments = self.roadmap.instruments
        if body["instrument"] not in instruments:
            problems.append(
                Problem(
                    "instrument",
                    f"'{body['instrument']}' is not an instrument of {self.roadmap.id}",
                    f"{nearest(body['instrument'], list(instruments))} Instruments: "
                    f"{', '.join(instruments)}.".strip(),
                )
            )
        for index, domain in enumerate(body["domains"]):
            if domain not in self.domain_ids:
                problems.append(
                    Problem(
                        f"domains[{index}]",
                        f"'{domain}' is not a focus domain of {self.roadmap.id}",
                        f"Focus domains: {', '.join(self.domain_ids)}.",
                    )
                )
        if body["end_year"] < body["start_year"]:
            problems.append(
                Problem(
                    "end_year",
                    f"the project ends ({body['end_year']}) before it starts ({body['start_year']})",
                    "Give end_year at or after start_year.",
                )
            )
        if problems:
            raise RegistryError(422, "Invalid project", _summary(problems), problems)
        with self.registry.writing() as session:
            org = session.scalar(select(Organisation).where(Organisation.name == organisation))
            if org is None:
                raise RegistryError(
                    422,
                    "Invalid project",
                    f"organisation: no organisation '{organisation}'",
                    [
                        Problem(
                            "organisation",
                            f"no organisation '{organisation}' in the registry",
                            "Create a key for it first (critflow keys create --org …).",
                        )
                    ],
                )
            row = MonitorProject(
                project_id=project_id,
                title=body["title"],
                roadmap=self.roadmap.id[:60],
                instrument=body["instrument"],
                domains=json.dumps(list(dict.fromkeys(body["domains"]))),
                partners=json.dumps(list(body.get("partners") or [])),
                start_year=body["start_year"],
                end_year=body["end_year"],
                organisation_id=org.id,
                created_by=principal.key_id,
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                session.rollback()
                raise RegistryError(
                    409, "Project exists", f"A project '{project_id}' exists already."
                ) from None
            self.registry._audit(
                session, principal, "monitor:project", None, None, "allowed", project_id
            )
            session.commit()
        return self._project_dict(row, organisation)

    @staticmethod
    def _project_dict(row: MonitorProject, organisation: str) -> dict[str, Any]:
        return {
            "project_id": row.project_id,
            "title": row.title,
            "organisation": organisation,
            "roadmap": row.roadmap,
            "instrument": row.instrument,
            "domains": json.loads(row.domains),
            "partners": json.loads(row.partners),
            "start_year": row.start_year,
            "end_year": row.end_year,
        }

    def _projects(self, session: Session) -> list[tuple[MonitorProject, str]]:
        return [
            (p, name)
            for p, name in session.execute(
                select(MonitorProject, Organisation.name)
                .join(Organisation, Organisation.id == MonitorProject.organisation_id)
                .order_by(MonitorProject.project_id)
            ).all()
        ]

    def _visible_project(
        self, session: Session, principal: Principal, project_id: str
    ) -> tuple[MonitorProject, str]:
        """A project and its organisation's name; 404 when the caller may not see it (as if
        absent)."""
        found = session.execute(
            select(MonitorProject, Organisation.name)
            .join(Organisation, Organisation.id == MonitorProject.organisation_id)
            .where(MonitorProject.project_id == project_id)
        ).first()
        if found is None or not self.may_see(principal, found[1]):
            raise RegistryError(
                404, "No such project", f"No project '{project_id[:60]}' visible to this key."
            )
        return found[0], found[1]

    def projects(self, principal: Principal) -> list[dict[str, Any]]:
        """The projects whose values ``principal`` may see."""
        self.require_key(principal)
        with self.registry.sessions() as session:
            return [
                self._project_dict(p, org)
                for p, org in self._projects(session)
                if self.may_see(principal, org)
            ]

    def project(self, principal: Principal, project_id: str) -> dict[str, Any]:
        """A project with its trajectory (latest value per KPI and year, with provenance), its
        verdicts and UNFC quantities; 404 when the caller may not see it (as if absent)."""
        self.require_key(principal)
        with self.registry.sessions() as session:
            row, organisation = self._visible_project(session, principal, project_id)
            values = _latest(
                session.scalars(
                    select(MonitorValue)
                    .where(MonitorValue.project_pk == row.id)
                    .order_by(MonitorValue.id)
                ).all()
            )
            verdicts = session.scalars(
                select(MonitorVerdict)
                .where(MonitorVerdict.project_pk == row.id)
                .order_by(MonitorVerdict.id)
            ).all()
            quantities = session.scalars(
                select(MonitorQuantity)
                .where(MonitorQuantity.project_pk == row.id)
                .order_by(MonitorQuantity.id)
            ).all()
            if quantities:  # the latest classification counts
                quantities = [q for q in quantities if q.batch == quantities[-1].batch]
        result = self._project_dict(row, organisation)
        result["values"] = [_value_dict(v) for v in values]
        result["verdicts"] = [_verdict_dict(v) for v in _latest_verdicts(verdicts)]
        result["quantities"] = [_quantity_dict(q) for q in quantities]
        return result

    # --- submissions --------------------------------------------------------------------------
    def check_values(
        self,
        session: Session,
        principal: Principal,
        items: Iterable[tuple[str, dict[str, Any]]],
        labels: dict[str, str] | None = None,
    ) -> Checked:
        """Check values ``(where, {project, year, kpi, value, unit})``; ``labels`` names the
        fields as the caller wrote them (an Excel column header instead of the JSON name)."""
        label = {**{k: k for k in ("project", "year", "kpi", "value", "unit")}, **(labels or {})}
        projects = {p.project_id: (p, org) for p, org in self._projects(session)}
        checked = Checked()
        first_at: dict[tuple[str, str, Any], str] = {}
        for where, item in items:
            problems = checked.problems

            def at(name: str, _where: str = where) -> str:
                return f"{_where}, {label[name]}" if labels else f"{_where}.{label[name]}"

            found = projects.get(str(item.get("project")))
            if found is None or not self.may_see(principal, found[1]):
                problems.append(
                    Problem(
                        at("project"),
                        f"no project '{str(item.get('project'))[:60]}' of yours",
                        "Create the project first (POST /api/monitor/projects) or correct its id.",
                    )
                )
            elif not self.may_write(principal, found[1]):
                problems.append(
                    Problem(
                        at("project"),
                        f"project '{found[0].project_id}' belongs to '{found[1]}'",
                        "Submit values for your own organisation's projects only.",
                    )
                )
            year = item.get("year")
            if not isinstance(year, int) or isinstance(year, bool):
                problems.append(
                    Problem(at("year"), f"{year!r} is not a year", "Write a year such as 2027.")
                )
            elif not FIRST_YEAR <= year <= LAST_YEAR:
                problems.append(
                    Problem(
                        at("year"),
                        f"{year} is outside {FIRST_YEAR}-{LAST_YEAR}",
                        f"The monitor follows the roadmap from its reference year {FIRST_YEAR} "
                        f"to {LAST_YEAR}.",
                    )
                )
            measure = self.measures.get(str(item.get("kpi")))
            if measure is None:
                problems.append(
                    Problem(
                        at("kpi"),
                        f"'{str(item.get('kpi'))[:80]}' is not a KPI of {self.roadmap.id}",
                        f"{nearest(str(item.get('kpi')), list(self.measures))} KPIs: "
                        f"{', '.join(self.measures)}.".strip(),
                    )
                )
            value = item.get("value")
            if (
                not isinstance(value, int | float)
                or isinstance(value, bool)
                or not math.isfinite(value)
            ):
                problems.append(
                    Problem(
                        at("value"),
                        f"{value!r} is not a number",
                        "Write the value as a number, its unit in the unit column.",
                    )
                )
                value = None
            unit = str(item.get("unit") or "").strip()
            converted = None
            if measure is not None:
                if not unit:
                    problems.append(
                        Problem(
                            at("unit"),
                            "no unit",
                            f"Give the unit; {measure.id} is measured in {measure.unit}.",
                        )
                    )
                else:
                    try:
                        converted = convert_unit(
                            1.0 if value is None else float(value),
                            unit,
                            measure.unit,
                            measure.co2,
                        )
                    except ValueError as exc:
                        problems.append(
                            Problem(
                                at("unit"),
                                str(exc),
                                f"Write {measure.id} in {measure.unit} or a unit of the same kind.",
                            )
                        )
            if (
                measure is not None
                and converted is not None
                and value is not None
                and measure.id in self.ranges
            ):
                outside = self.ranges[measure.id].problem(
                    at("value"), measure.id, converted, float(value), unit
                )
                if outside is not None:
                    problems.append(outside)
                    converted = None
            if (
                found is not None
                and measure is not None
                and measure.kpi is not None
                and not set(measure.domains) & set(json.loads(found[0].domains))
            ):
                problems.append(
                    Problem(
                        at("kpi"),
                        f"{measure.id} is a KPI of focus domain {measure.domains[0]}, which "
                        f"project '{found[0].project_id}' does not address "
                        f"({', '.join(json.loads(found[0].domains))})",
                        "Submit the KPIs of the project's focus domains.",
                    )
                )
            if (
                found is not None
                and self.may_write(principal, found[1])
                and measure is not None
                and converted is not None
                and value is not None
                and isinstance(year, int)
                and FIRST_YEAR <= year <= LAST_YEAR
            ):
                # one value per project, KPI and year in a batch: which of two would count?
                once = (found[0].project_id, measure.id, year)
                earlier = first_at.setdefault(once, where)
                if earlier != where:
                    problems.append(
                        Problem(
                            where,
                            f"project '{once[0]}', {once[1]}, {once[2]} is given a second time "
                            f"in this batch (first at {earlier})",
                            "Give each project, KPI and year once per batch; send a correction "
                            "in a later batch (it supersedes the earlier value).",
                        )
                    )
                    continue
                checked.values.append(
                    ValueItem(where, found[0], year, measure, converted, float(value), unit)
                )
        return checked

    def check_verdicts(
        self, session: Session, principal: Principal, items: list[dict[str, Any]], checked: Checked
    ) -> None:
        projects = {p.project_id: (p, org) for p, org in self._projects(session)}
        first_at: dict[tuple[str, int, str], str] = {}
        for index, item in enumerate(items):
            where = f"verdicts[{index}]"
            earlier = first_at.setdefault((item["project"], item["year"], item["rule"]), where)
            if earlier != where:
                checked.problems.append(
                    Problem(
                        where,
                        f"the verdict of rule {item['rule'][:120]} for project "
                        f"'{item['project'][:60]}', {item['year']} is given a second time in "
                        f"this batch (first at {earlier})",
                        "Send each rule's verdict for a project and year once per batch.",
                    )
                )
                continue
            found = projects.get(item["project"])
            if found is None or not self.may_write(principal, found[1]):
                checked.problems.append(
                    Problem(
                        f"{where}.project",
                        f"no project '{item['project'][:60]}' of yours",
                        "Send verdicts for your own organisation's projects.",
                    )
                )
                continue
            if not FIRST_YEAR <= item["year"] <= LAST_YEAR:
                checked.problems.append(
                    Problem(
                        f"{where}.year",
                        f"{item['year']} is outside {FIRST_YEAR}-{LAST_YEAR}",
                        "Give the year the model stands for.",
                    )
                )
                continue
            checked.verdicts.append((found[0], item))

    def submit(
        self,
        principal: Principal,
        values: list[dict[str, Any]],
        verdicts: list[dict[str, Any]] | None = None,
        source: str = "api",
        model_sha256: str | None = None,
        upload_name: str | None = None,
        where: str = "values",
        labels: dict[str, str] | None = None,
        wheres: list[str] | None = None,
    ) -> dict[str, Any]:
        """Store a batch of values (and a model's verdicts): all of it, or nothing with every
        problem named (422)."""
        self.require_writer(principal)
        if len(values) + len(verdicts or []) > MAX_ITEMS:
            raise RegistryError(
                413, "Batch too large", f"At most {MAX_ITEMS} values and verdicts per batch."
            )
        if not values and not verdicts:
            raise RegistryError(
                422,
                "Nothing to submit",
                f"{where}: the batch holds no value",
                [Problem(where, "the batch holds no value", "Send at least one value.")],
            )
        places = wheres or [f"{where}[{i}]" for i in range(len(values))]
        batch = uuid.uuid4().hex
        with self.registry.writing() as session:
            checked = self.check_values(
                session, principal, zip(places, values, strict=True), labels
            )
            self.check_verdicts(session, principal, verdicts or [], checked)
            if checked.problems:
                session.rollback()
                raise RegistryError(
                    422,
                    "Submission refused",
                    f"{len(checked.problems)} problem(s); nothing was stored. "
                    + _summary(checked.problems),
                    checked.problems[:200],
                )
            stamp = dt.datetime.now(dt.UTC)
            provenance = {
                "source": source,
                "submitted_by": principal.key_id,
                "organisation": principal.organisation,
                "submitted_at": stamp,
                "model_sha256": model_sha256,
                "upload_name": upload_name,
                "batch": batch,
            }
            for item in checked.values:
                session.add(
                    MonitorValue(
                        project_pk=item.project.id,
                        year=item.year,
                        kpi=item.measure.id,
                        value=item.value,
                        unit=item.measure.unit,
                        given_value=item.given_value,
                        given_unit=item.given_unit,
                        **provenance,
                    )
                )
            for project, verdict in checked.verdicts:
                session.add(
                    MonitorVerdict(
                        project_pk=project.id,
                        year=verdict["year"],
                        rule=verdict["rule"],
                        title=verdict["title"],
                        indicator=verdict["indicator"],
                        status=verdict["status"],
                        value=verdict.get("value"),
                        comparator=verdict["comparator"],
                        threshold=verdict["threshold"],
                        margin=verdict.get("margin"),
                        **provenance,
                    )
                )
            self.registry._audit(
                session,
                principal,
                "monitor:submit",
                None,
                None,
                "allowed",
                f"{source} batch {batch}: {len(checked.values)} values, "
                f"{len(checked.verdicts)} verdicts",
            )
            session.commit()
        return {
            "batch": batch,
            "stored_values": len(checked.values),
            "stored_verdicts": len(checked.verdicts),
            "source": source,
            "model_sha256": model_sha256,
            "upload_name": upload_name,
        }

    # --- UNFC-2019 classified quantities ------------------------------------------------------
    def classify_quantities(
        self, principal: Principal, project_id: str, items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Store a project's UNFC-2019 classified quantities (each with E, F, G codes and a
        justification, or the questionnaire's answers): they replace the project's earlier
        classification, all of them or none (every problem named by field path)."""
        from pydantic import ValidationError

        from critflow.errors import CritflowError, validation_problems
        from critflow.monitor.unfc import ClassifiedQuantity, apply_answers

        self.require_writer(principal)
        if not items:
            raise RegistryError(
                422,
                "Nothing to classify",
                "quantities: the list is empty",
                [Problem("quantities", "the list is empty", "Send at least one quantity.")],
            )
        if len(items) > MAX_ITEMS:
            raise RegistryError(413, "Batch too large", f"At most {MAX_ITEMS} quantities.")
        batch = uuid.uuid4().hex
        with self.registry.writing() as session:
            project, organisation = self._visible_project(session, principal, project_id)
            if not self.may_write(principal, organisation):
                raise RegistryError(
                    403, "Not your project", f"Project '{project_id}' belongs to '{organisation}'."
                )
            domains = json.loads(project.domains)
            problems: list[Problem] = []
            quantities = []
            for index, raw in enumerate(items):
                where = f"quantities[{index}]"
                entry = {**raw, "project": project_id}
                entry.setdefault(
                    "domain", next((d for d in domains if d in ("1.3", "1.2")), domains[0])
                )
                if entry["domain"] not in domains:
                    problems.append(
                        Problem(
                            f"{where}.domain",
                            f"project '{project_id}' does not address focus domain "
                            f"'{entry['domain']}' ({', '.join(domains)})",
                            "Leave domain out, or give one of the project's focus domains.",
                        )
                    )
                    continue
                answers = entry.pop("answers", None)
                try:
                    if answers is not None:
                        mismatched = apply_answers(
                            entry, answers, lambda key, at=where: f"{at}.{key}"
                        )
                        if mismatched:
                            raise CritflowError(mismatched)
                    quantity = ClassifiedQuantity.model_validate(entry)
                    limit = self.ranges.get("unfc:tonnes")
                    outside = limit and limit.problem(
                        f"{where}.tonnes",
                        "a classified quantity",
                        quantity.tonnes,
                        quantity.tonnes,
                        "t",
                    )
                    if outside:
                        problems.append(outside)
                        continue
                    quantities.append(quantity)
                except CritflowError as exc:
                    problems.extend(exc.problems)
                except ValidationError as exc:
                    problems.extend(validation_problems(exc.errors(), where))
            if problems:
                raise RegistryError(
                    422,
                    "Classification refused",
                    f"{len(problems)} problem(s); nothing was stored. " + _summary(problems),
                    problems[:200],
                )
            stamp = dt.datetime.now(dt.UTC)
            for quantity in quantities:
                session.add(
                    MonitorQuantity(
                        project_pk=project.id,
                        year=quantity.date.year,
                        element=quantity.element,
                        tonnes=quantity.tonnes,
                        e=quantity.e,
                        f=quantity.f,
                        g=quantity.g,
                        class_name=quantity.unfc_class.label[:120],
                        justification=quantity.model_dump_json(),
                        anthropogenic=quantity.source_type != "ore",
                        source="api",
                        submitted_by=principal.key_id,
                        organisation=principal.organisation,
                        submitted_at=stamp,
                        batch=batch,
                    )
                )
            self.registry._audit(
                session,
                principal,
                "monitor:unfc",
                None,
                None,
                "allowed",
                f"{project_id}: {len(quantities)} quantities, batch {batch}",
            )
            session.commit()
        return {
            "batch": batch,
            "stored_quantities": len(quantities),
            "classes": [
                {
                    "element": q.element,
                    "tonnes": q.tonnes,
                    "code": q.unfc_class.code,
                    "class": q.unfc_class.label,
                }
                for q in quantities
            ],
        }

    def quantity_rows(self, principal: Principal | None = None) -> list[dict[str, Any]]:
        """The current classification of every project (its latest batch) — all projects
        (``principal`` None: for the aggregates) or those ``principal`` may see."""
        from critflow.monitor.unfc import ClassifiedQuantity

        with self.registry.sessions() as session:
            projects = {p.id: (p, org) for p, org in self._projects(session)}
            stored = session.scalars(select(MonitorQuantity).order_by(MonitorQuantity.id)).all()
        latest = {row.project_pk: row.batch for row in stored}
        result = []
        for row in stored:
            project, organisation = projects[row.project_pk]
            if row.batch != latest[row.project_pk]:
                continue
            if principal is not None and not self.may_see(principal, organisation):
                continue
            quantity = ClassifiedQuantity.model_validate_json(row.justification)
            result.append(
                {
                    "quantity": quantity,
                    "organisation": organisation,
                    "row": row,
                    "project": project.project_id,
                }
            )
        return result

    def unfc_view(self, principal: Principal, domain_id: str) -> dict[str, Any]:
        """Tonnes per UNFC class and element in a focus domain: summed over the projects the
        caller sees, and the public aggregate (through the confidentiality rule)."""
        from critflow.monitor.unfc import quantities_by_class

        seen = sight(principal)
        visible = [] if seen == "aggregates" else self.quantity_rows(principal)
        totals = quantities_by_class(
            [r["quantity"] for r in visible if r["quantity"].domain == domain_id]
        )
        public = [
            self.aggregate_dict(a)
            for a in self.aggregates()
            if a.key[0] == domain_id and str(a.key[1]).startswith(UNFC)
        ]
        return {
            "visible": [
                {"class": t.class_name, "element": t.element, "tonnes": t.tonnes, "count": t.count}
                for t in totals
            ],
            "public": [
                {**a, "class": a["kpi"].split(":")[1], "element": a["kpi"].split(":")[2]}
                for a in public
            ],
        }

    # --- reading values -----------------------------------------------------------------------
    def rows(self, principal: Principal | None = None) -> list[dict[str, Any]]:
        """The latest value per project, KPI and year, with the project's organisation and
        domains — every project (``principal`` None: for the aggregates only) or those
        ``principal`` may see."""
        with self.registry.sessions() as session:
            projects = {p.id: (p, org) for p, org in self._projects(session)}
            stored = _latest(session.scalars(select(MonitorValue).order_by(MonitorValue.id)).all())
        result = []
        for value in stored:
            project, organisation = projects[value.project_pk]
            if principal is not None and not self.may_see(principal, organisation):
                continue
            result.append(
                {
                    **_value_dict(value),
                    "project": project.project_id,
                    "title": project.title,
                    "organisation": organisation,
                    "domains": json.loads(project.domains),
                }
            )
        return result

    @cached_property
    def totals(self) -> dict[str, dict[str, Any]]:
        """Programme totals (``monitor_totals.csv``): total id → name, unit, the KPIs it adds."""
        from critflow import data

        result: dict[str, dict[str, Any]] = {}
        for row in data.table("monitor_totals").itertuples(index=False):
            if row.kpi not in self.measures:
                continue  # another roadmap's KPI
            entry = result.setdefault(
                str(row.total), {"name": str(row.name), "unit": str(row.unit), "kpis": []}
            )
            entry["kpis"].append(str(row.kpi))
        return result

    def _measure_of(self, key: tuple) -> tuple:
        """What a group measures, for the confidentiality rule: a KPI in a year, or — for the
        KPIs a programme total adds up — the total in a year, so the total and the domain
        aggregates it is made of are checked together against subtraction."""
        _group, kpi, year = key
        for total, entry in self.totals.items():
            if kpi == total or kpi in entry["kpis"]:
                return (total, year)
        return (kpi, year)

    def _version(self) -> tuple:
        """What the aggregates depend on, in one query: the stored values and quantities (rows
        are only ever added, so their count and largest id change with every submission)."""
        with self.registry.sessions() as session:
            return tuple(
                session.execute(
                    select(
                        select(func.count(MonitorValue.id)).scalar_subquery(),
                        select(func.max(MonitorValue.id)).scalar_subquery(),
                        select(func.max(MonitorQuantity.id)).scalar_subquery(),
                    )
                ).one()
            )

    def aggregates(self, published_only: bool = True) -> list[Any]:
        """The aggregates (cached per worker until the next submission: the rule's checks
        against subtraction take seconds for hundreds of organisations) — see
        :meth:`compute_aggregates`."""
        version = self._version()
        with self._lock:
            if self._cached is None or self._cached[0] != version:
                self._cached = (version, self.compute_aggregates())
            found = self._cached[1]
        return [a for a in found if a.published] if published_only else list(found)

    def compute_aggregates(self) -> list[Any]:
        """The aggregates per focus domain, KPI and year, and the programme totals per year,
        decided by :func:`critflow.monitor.confidentiality.public_aggregates` — the only
        aggregates the monitor shows anyone (``published_only``: those that passed the rule).
        A project's value counts in its KPI's focus domain when the project addresses it, and
        in the programme total the KPI belongs to; (project, KPI) is the item, so the value
        counted in both groups is one unknown to the rule."""
        from critflow.monitor.confidentiality import Contribution, public_aggregates

        total_of = {k: t for t, entry in self.totals.items() for k in entry["kpis"]}
        contributions = []
        for row in self.rows(None):
            measure = self.measures.get(row["kpi"])
            if measure is None:
                continue
            # a KPI belongs to one focus domain, so its group is alone in its measure and an
            # organisation's projects add up to one unknown (the rule's fast path); a KPI that
            # a programme total adds up is also counted there, as the same unknown (the item)
            item = (row["project"], row["kpi"]) if row["kpi"] in total_of else None
            for domain in row["domains"]:
                if domain in measure.domains:
                    contributions.append(
                        Contribution(
                            (domain, row["kpi"], row["year"]),
                            row["organisation"],
                            row["value"],
                            measure.unit,
                            item,
                        )
                    )
            if row["kpi"] in total_of:
                total = total_of[row["kpi"]]
                contributions.append(
                    Contribution(
                        (PROGRAMME, total, row["year"]),
                        row["organisation"],
                        row["value"],
                        self.totals[total]["unit"],
                        item,
                    )
                )
        for entry in self.quantity_rows(None):
            quantity = entry["quantity"]
            contributions.append(
                Contribution(
                    (
                        quantity.domain,
                        f"{UNFC}{quantity.unfc_class.name}:{quantity.element}",
                        quantity.date.year,
                    ),
                    entry["organisation"],
                    quantity.tonnes,
                    "t",
                    ("unfc", entry["row"].id),
                )
            )
        # what was published before stays public: each new aggregate must be safe together
        # with all of it (an organisation joining a group later is not its difference). The
        # rule runs outside the write lock; the new aggregates are recorded only if nobody
        # recorded others meanwhile (else the rule runs again with them)
        for _attempt in range(5):
            before, last = self._published_before()
            found = public_aggregates(
                contributions, measure=self._measure_of, published_before=before
            )
            if self._record_published(found, before, last):
                return found
        raise RegistryError(  # pragma: no cover - only under a storm of concurrent publishers
            503, "Aggregates busy", "Other workers kept publishing aggregates; try again."
        )

    def _published_before(self) -> tuple[list[Any], int]:
        """The aggregates published so far (table ``monitor_published``) as the rule's
        ``published_before``, and the largest row id read."""
        from critflow.monitor.confidentiality import Aggregate

        with self.registry.sessions() as session:
            rows = session.scalars(select(MonitorPublished).order_by(MonitorPublished.id)).all()
        result = []
        for row in rows:
            members = frozenset(
                (str(name), _tupled(item)) for name, item in json.loads(row.members)
            )
            organisations = frozenset(name for name, _item in members)
            result.append(
                Aggregate(
                    _tupled(json.loads(row.key)),
                    row.unit,
                    len(organisations),
                    row.value,
                    row.value / max(len(organisations), 1),
                    True,
                    "",
                    organisations,
                    members,
                )
            )
        return result, (rows[-1].id if rows else 0)

    def _record_published(self, found: list[Any], before: list[Any], last: int) -> bool:
        """Record the aggregates of ``found`` published for the first time (key, members and
        sum not among ``before``), in one transaction; False (nothing recorded) when another
        worker recorded aggregates after row ``last`` was read."""
        known = {(a.key, a.members, a.sum) for a in before}
        new = [a for a in found if a.published and (a.key, a.members, a.sum) not in known]
        if not new:
            return True
        with self.registry.writing() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("LOCK TABLE monitor_published IN SHARE ROW EXCLUSIVE MODE"))
            newest = session.scalar(select(func.max(MonitorPublished.id))) or 0
            if newest != last:
                session.rollback()
                return False
            stamp = dt.datetime.now(dt.UTC)
            for aggregate in new:
                session.add(
                    MonitorPublished(
                        key=json.dumps(list(aggregate.key)),
                        unit=aggregate.unit,
                        members=json.dumps(
                            sorted(
                                ([name, item] for name, item in aggregate.members),
                                key=json.dumps,
                            )
                        ),
                        value=aggregate.sum,
                        published_at=stamp,
                    )
                )
            session.commit()
        return True

    def aggregate_dict(self, aggregate: Any) -> dict[str, Any]:
        """A published aggregate as the public sees it: the sum for quantities that add up
        (tonnes), the mean over the organisations for shares and relative changes."""
        domain, kpi, year = aggregate.key
        measure = self.measures.get(kpi)
        adds_up = (
            kpi in self.totals
            or str(kpi).startswith(UNFC)
            or (measure is not None and measure.adds_up)
        )
        return {
            "domain": domain,
            "kpi": kpi,
            "year": year,
            "value": aggregate.sum if adds_up else aggregate.mean,
            "statistic": "sum" if adds_up else "mean over organisations",
            "sum": aggregate.sum,
            "mean": aggregate.mean,
            "unit": aggregate.unit,
            "organisations": aggregate.count,
        }

    def domain_view(self, principal: Principal, domain_id: str) -> dict[str, Any]:
        """A focus domain as ``principal`` may see it: per KPI its reference, 2027/2030 targets,
        the public aggregate per year and the visible projects' values per year; the visible
        contributing projects; the quantities that add up (t SRM, t CO2-eq avoided) summed per
        year over the projects the caller sees."""
        domain = self.domain(domain_id)
        seen = sight(principal)
        visible = [] if seen == "aggregates" else self.rows(principal)
        visible = [r for r in visible if domain_id in r["domains"]]
        public = [self.aggregate_dict(a) for a in self.aggregates() if a.key[0] == domain_id]
        kpis = []
        for kpi in domain.kpis:
            measure = self.measures[kpi.id]
            projects: dict[str, dict[int, float]] = defaultdict(dict)
            for row in visible:
                if row["kpi"] == kpi.id:
                    projects[row["project"]][row["year"]] = row["value"]
            kpis.append(
                {
                    "id": kpi.id,
                    "name": kpi.name,
                    "unit": kpi.unit,
                    "kind": kpi.kind,
                    "adds_up": measure.adds_up,
                    "direction": kpi.direction,
                    "reference": kpi.reference.text,
                    "reference_value": kpi.reference.value,
                    "target_2027": kpi.target_2027,
                    "target_2030": kpi.target_2030,
                    "source": str(kpi.source),
                    "aggregate": [a for a in public if a["kpi"] == kpi.id],
                    "projects": {k: dict(sorted(v.items())) for k, v in sorted(projects.items())},
                }
            )
        contributing = sorted({(r["project"], r["title"], r["organisation"]) for r in visible})
        totals: dict[str, dict[int, float]] = {}
        for item in kpis:
            if item["adds_up"]:
                per_year: dict[int, float] = defaultdict(float)
                for values in item["projects"].values():
                    for year, value in values.items():
                        per_year[year] += value
                totals[item["id"]] = dict(sorted(per_year.items()))
        return {
            "domain": domain_id,
            "title": domain.title,
            "sees": seen,
            "kpis": kpis,
            "projects": [
                {"project_id": p, "title": t, "organisation": o} for p, t, o in contributing
            ],
            "totals": totals,
        }

    def programme_view(self, principal: Principal) -> list[dict[str, Any]]:
        """The programme totals per year: the public aggregate (where it passed the rule) and
        the sum over the projects ``principal`` may see."""
        seen = sight(principal)
        visible = [] if seen == "aggregates" else self.rows(principal)
        public = [self.aggregate_dict(a) for a in self.aggregates() if a.key[0] == PROGRAMME]
        result = []
        for total, entry in self.totals.items():
            sums: dict[int, float] = defaultdict(float)
            for row in visible:
                if row["kpi"] in entry["kpis"]:
                    sums[row["year"]] += row["value"]
            result.append(
                {
                    "total": total,
                    "name": entry["name"],
                    "unit": entry["unit"],
                    "kpis": entry["kpis"],
                    "aggregate": [a for a in public if a["kpi"] == total],
                    "visible": dict(sorted(sums.items())),
                }
            )
        return result


# --- helpers -------------------------------------------------------------------------------
def _summary(problems: list[Problem]) -> str:
    shown = "; ".join(str(p) for p in problems[:5])
    return shown + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")


def pd_missing(value: Any) -> bool:
    """Whether a cell of a shipped table is empty (pandas reads it as NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _tupled(value: Any) -> Any:
    """A JSON value with its lists as tuples again (group keys and items are tuples)."""
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


def _latest(values: Iterable[MonitorValue]) -> list[MonitorValue]:
    """The latest row per project, KPI and year (rows come in id order)."""
    latest: dict[tuple[int, str, int], MonitorValue] = {}
    for value in values:
        latest[(value.project_pk, value.kpi, value.year)] = value
    return sorted(latest.values(), key=lambda v: (v.project_pk, v.kpi, v.year))


def _latest_verdicts(verdicts: Iterable[MonitorVerdict]) -> list[MonitorVerdict]:
    latest: dict[tuple[str, int], MonitorVerdict] = {}
    for verdict in verdicts:
        latest[(verdict.rule, verdict.year)] = verdict
    return sorted(latest.values(), key=lambda v: (v.year, v.rule))


def _provenance_dict(row: Any) -> dict[str, Any]:
    return {
        "source": row.source,
        "submitted_by": row.submitted_by,
        "organisation": row.organisation,
        "submitted_at": row.submitted_at.isoformat(timespec="seconds")
        if row.submitted_at
        else None,
        "model_sha256": row.model_sha256,
        "upload_name": row.upload_name,
        "batch": row.batch,
    }


def _value_dict(row: MonitorValue) -> dict[str, Any]:
    return {
        "year": row.year,
        "kpi": row.kpi,
        "value": row.value,
        "unit": row.unit,
        "given": {"value": row.given_value, "unit": row.given_unit},
        "provenance": _provenance_dict(row),
    }


def _verdict_dict(row: MonitorVerdict) -> dict[str, Any]:
    return {
        "year": row.year,
        "rule": row.rule,
        "title": row.title,
        "indicator": row.indicator,
        "status": row.status,
        "value": row.value,
        "comparator": row.comparator,
        "threshold": row.threshold,
        "margin": row.margin,
        "provenance": _provenance_dict(row),
    }


def _quantity_dict(row: MonitorQuantity) -> dict[str, Any]:
    return {
        "year": row.year,
        "element": row.element,
        "tonnes": row.tonnes,
        "e": row.e,
        "f": row.f,
        "g": row.g,
        "class": row.class_name,
        "anthropogenic": row.anthropogenic,
        "record": json.loads(row.justification),
        "provenance": _provenance_dict(row),
    }
