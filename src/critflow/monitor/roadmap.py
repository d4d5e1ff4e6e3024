"""A funding programme's roadmap as data: focus domains, their KPIs with reference and 2027/2030
targets, the funding instruments with their eligibility rules, and the instrument colour code per
focus domain and window.

The shipped roadmap is ``critflow/data/roadmap/materinex-2030.yaml`` (read through
:mod:`critflow.data`); another programme's roadmap is another file of the same form, given by path.
KPI values are fractions (unit ``"1"``) or pint units; a ``relative_change`` KPI is the change
against the reference as a fraction (-0.10 = down 10 %).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from critflow import data
from critflow.errors import CritflowError, Problem, suggest

COLOUR_CODES = ("green", "blue", "orange", "red", "unknown")
"""The roadmap's four colours, and ``unknown`` for a cell its text does not give."""

CHECK_KEYS = {
    "min_research_groups": "partners of kind research_group",
    "min_research_centres": "distinct organisations among research groups and research centres",
    "min_companies": "partners of kind company",
    "min_unrelated_companies": "companies, related companies (related_to) counted once",
}
"""The eligibility checks a rule may state, and what each counts on a proposal's partners."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where an entry comes from: document, point (section, table, figure) and year."""

    document: str
    point: str
    year: int

    def __str__(self) -> str:
        return f"{self.document}, {self.point} ({self.year})"


class Reference(_Strict):
    """A KPI's reference: the roadmap's text ('state of the art') and a value where one is given."""

    text: str
    value: float | None = None
    year: int | None = None


class Kpi(_Strict):
    """One KPI of a focus domain. ``kind``: ``share`` (a fraction of a total, unit "1"),
    ``relative_change`` (change against the reference, -0.10 = down 10 %) or ``absolute`` (a
    quantity in ``unit``, e.g. tonnes, that the monitor adds up; no target)."""

    id: str
    domain: str
    name: str
    unit: str
    kind: Literal["share", "relative_change", "absolute"]
    direction: Literal["increase", "decrease"]
    reference: Reference
    target_2027: float | None
    target_2030: float | None
    rules: tuple[str, ...] = ()
    indicator: str | None = None
    element: str | None = None
    measured_as: str | None = None
    condition: str | None = None
    note: str | None = None
    source: Source

    def target(self, year: int) -> float | None:
        """The target in force in ``year``: the 2030 target from 2030 on, the 2027 target from
        2027 to 2029, none before 2027 (or when the roadmap sets none)."""
        if year >= 2030:
            return self.target_2030
        if year >= 2027:
            return self.target_2027
        return None

    def meets(self, value: float, target: float | None) -> bool | None:
        """Whether ``value`` reaches ``target`` in this KPI's direction (None without a target)."""
        if target is None:
            return None
        return value >= target if self.direction == "increase" else value <= target


class Domain(_Strict):
    """A focus domain (1.1-1.4, 2.1-2.3) or an enabler, with its KPIs."""

    id: str
    application_domain: str
    application_domain_title: str
    title: str
    title_nl: str | None = None
    target_text: str | None = None
    source: Source
    kpis: tuple[Kpi, ...] = ()


class EligibilityRule(_Strict):
    """One eligibility rule of an instrument. ``check`` holds the counts the software checks
    (:data:`CHECK_KEYS`); a rule without one is judged by the expert group."""

    id: str
    text: str
    text_nl: str | None = None
    check: dict[str, int] | None = None
    applies_if: dict[str, tuple[str, ...]] | None = None
    note: str | None = None
    source: Source

    @field_validator("check")
    @classmethod
    def _known_checks(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for key, count in (value or {}).items():
            if key not in CHECK_KEYS:
                raise ValueError(
                    f"unknown check '{key}'; {suggest(key, list(CHECK_KEYS), 'Known')}"
                )
            if count < 0:
                raise ValueError(f"{key} must be 0 or more, got {count}")
        return value

    @field_validator("applies_if")
    @classmethod
    def _known_conditions(cls, value: dict | None) -> dict | None:
        for key in value or {}:
            if key != "any_organisation_in":
                raise ValueError(f"unknown condition '{key}'; the one known is any_organisation_in")
        return value


class Instrument(_Strict):
    """A funding instrument (cSBO, ICON, feasibility study) and its eligibility rules.
    ``colour_column`` names the roadmap figures' column that rates it (none: not rated)."""

    id: str
    name: str
    name_nl: str | None = None
    colour_column: str | None = None
    prenotification: str | None = None
    rules: tuple[EligibilityRule, ...] = ()
    source: Source


class Window(_Strict):
    """A funding window of the colour code (2024-2027, 2028-2030), years inclusive."""

    id: str
    start: int
    end: int
    source: Source


class ColourMeaning(_Strict):
    meaning: str
    text_nl: str | None = None
    fundable: bool | str | None = None
    source: Source


class ColourCell(_Strict):
    code: Literal["green", "blue", "orange", "red", "unknown"]
    note: str | None = None
    source: Source | None = None


class _Colours(_Strict):
    status: str | None = None
    columns: tuple[str, ...]
    cells: dict[
        str, dict[str, dict[str, ColourCell | Literal["green", "blue", "orange", "red", "unknown"]]]
    ]
    source: Source


class ProcedureStep(_Strict):
    id: str
    text: str
    value: float | None = None
    unit: str | None = None
    source: Source


class _RoadmapFile(_Strict):
    roadmap: str
    title: str
    version: str
    language_of_source: str | None = None
    source: Source
    windows: tuple[Window, ...] = Field(min_length=1)
    colour_meanings: dict[Literal["green", "blue", "orange", "red", "unknown"], ColourMeaning]
    colour_note: str | None = None
    domains: tuple[Domain, ...] = Field(min_length=1)
    instruments: tuple[Instrument, ...] = Field(min_length=1)
    procedure: tuple[ProcedureStep, ...] = ()
    colours: _Colours


@dataclass(frozen=True)
class Colour:
    """The colour of a focus domain × instrument × window cell: ``code`` (green, blue, orange,
    red, unknown) and its ``meaning``; ``note`` says why a cell is unknown."""

    code: str
    meaning: str
    domain: str
    instrument: str
    window: str | None
    fundable: bool | str | None = None
    note: str = ""
    source: str = ""

    @property
    def too_late(self) -> bool:
        return self.code == "red"


@dataclass(frozen=True)
class Roadmap:
    """A roadmap: ``domains`` (in the file's order), ``kpis`` and ``instruments`` by id, the
    colour code (:meth:`colour`) and the windows (:meth:`window`)."""

    id: str
    title: str
    version: str
    file: str
    source: Source
    domains: tuple[Domain, ...]
    kpis: dict[str, Kpi]
    instruments: dict[str, Instrument]
    windows: tuple[Window, ...]
    colour_meanings: dict[str, ColourMeaning]
    colour_note: str = ""
    procedure: tuple[ProcedureStep, ...] = ()
    _cells: dict[tuple[str, str, str], ColourCell] = field(default_factory=dict, repr=False)
    _cells_source: str = ""

    @property
    def domain_ids(self) -> list[str]:
        return [d.id for d in self.domains]

    def domain(self, domain_id: str) -> Domain:
        """The focus domain ``domain_id``; a CritflowError naming the known ones otherwise."""
        for item in self.domains:
            if item.id == str(domain_id):
                return item
        raise CritflowError(
            f"roadmap {self.id}",
            f"there is no focus domain '{domain_id}'",
            suggest(str(domain_id), self.domain_ids, "Focus domains"),
        )

    def instrument(self, instrument_id: str) -> Instrument:
        """The instrument ``instrument_id``; a CritflowError naming the known ones otherwise."""
        if instrument_id not in self.instruments:
            raise CritflowError(
                f"roadmap {self.id}",
                f"there is no funding instrument '{instrument_id}'",
                suggest(str(instrument_id), list(self.instruments), "Instruments"),
            )
        return self.instruments[instrument_id]

    @property
    def horizon(self) -> tuple[int, int]:
        """First and last year of the roadmap's windows."""
        return self.windows[0].start, self.windows[-1].end

    def window(self, year: int) -> str:
        """The window (e.g. '2024-2027') holding ``year``; a CritflowError outside the horizon."""
        for item in self.windows:
            if item.start <= int(year) <= item.end:
                return item.id
        first, last = self.horizon
        raise CritflowError(
            f"roadmap {self.id}",
            f"the year {year} is outside the roadmap's horizon {first}-{last}",
            f"Give a year from {first} to {last}.",
        )

    def colour(self, domain_id: str, instrument_id: str, year_or_window: int | str) -> Colour:
        """The colour of ``domain_id`` for ``instrument_id`` in a window (given as its id, e.g.
        '2024-2027', or as a year in it). An instrument the figures do not rate (no colour column)
        and a cell the text does not give are ``unknown``, with a note."""
        self.domain(domain_id)
        instrument = self.instrument(instrument_id)
        window = self._window_id(year_or_window)
        if instrument.colour_column is None:
            rated = sorted({i.colour_column for i in self.instruments.values() if i.colour_column})
            return Colour(
                "unknown",
                "not rated by the roadmap's colour code",
                str(domain_id),
                instrument.id,
                window,
                note=f"the roadmap's colour code rates {', '.join(rated)} only; "
                f"{instrument.name} is not rated per window",
                source=str(instrument.source),
            )
        cell = self._cells.get((str(domain_id), window, instrument.colour_column))
        code = cell.code if cell else "unknown"
        meaning = self.colour_meanings[code]
        note = (cell.note if cell and cell.note else "") or (
            "to be filled: the roadmap's text does not give this cell's colour"
            if code == "unknown"
            else ""
        )
        source = cell.source if cell and cell.source else self._cells_source
        return Colour(
            code,
            meaning.meaning,
            str(domain_id),
            instrument.id,
            window,
            meaning.fundable,
            note,
            str(source),
        )

    def _window_id(self, year_or_window: int | str) -> str:
        if isinstance(year_or_window, int) or str(year_or_window).strip().isdigit():
            return self.window(int(year_or_window))
        ids = [w.id for w in self.windows]
        if year_or_window not in ids:
            raise CritflowError(
                f"roadmap {self.id}",
                f"there is no window '{year_or_window}'",
                suggest(str(year_or_window), ids, "Windows", then="Or give a year."),
            )
        return str(year_or_window)


def _with_kpi_domains(raw: dict[str, Any], source: Any) -> tuple[dict[str, Any], list[Problem]]:
    """The raw file with each KPI's domain id put into it (the file nests KPIs under their
    domain; a KPI that names another domain is a mistake)."""
    problems: list[Problem] = []
    domains = raw.get("domains")
    if not isinstance(domains, list):
        return raw, problems
    out = []
    for i, item in enumerate(domains):
        if not isinstance(item, dict) or not isinstance(item.get("kpis"), list):
            out.append(item)
            continue
        kpis = []
        for j, kpi in enumerate(item["kpis"]):
            if isinstance(kpi, dict):
                if "domain" in kpi and str(kpi["domain"]) != str(item.get("id")):
                    problems.append(
                        Problem(
                            source.where("domains", i, "kpis", j, "domain"),
                            f"KPI domain '{kpi['domain']}' differs from the domain it is listed "
                            f"under ('{item.get('id')}')",
                            "Leave 'domain' out (the enclosing domain is used).",
                        )
                    )
                kpi = {**kpi, "domain": str(item.get("id"))}
            kpis.append(kpi)
        out.append({**item, "kpis": kpis})
    return {**raw, "domains": out}, problems


def _rule_ids() -> set[str]:
    """Every rule id of the shipped rule sets."""
    ids: set[str] = set()
    for name in data.rule_set_names():
        raw = data.load_yaml(f"rules/{name}.yaml")
        ids |= {str(r.get("id")) for r in raw.get("rules", []) if isinstance(r, dict)}
    return ids


def _check(file: _RoadmapFile, domains: list[Domain], source: Any) -> list[Problem]:
    """Meaning checks the schema cannot make: unique ids, units, targets, rule ids, cells."""
    from critflow.units import registry

    problems: list[Problem] = []
    units = registry()
    rule_ids = _rule_ids()
    seen_domains: set[str] = set()
    seen_kpis: set[str] = set()
    for i, domain in enumerate(domains):
        if domain.id in seen_domains:
            problems.append(
                Problem(source.where("domains", i, "id"), f"domain id '{domain.id}' is given twice")
            )
        seen_domains.add(domain.id)
        for j, kpi in enumerate(domain.kpis):
            where = ("domains", i, "kpis", j)
            if kpi.id in seen_kpis:
                problems.append(
                    Problem(source.where(*where, "id"), f"KPI id '{kpi.id}' is given twice")
                )
            seen_kpis.add(kpi.id)
            if kpi.unit != "1":
                try:
                    units.Unit(kpi.unit)
                except Exception:
                    problems.append(
                        Problem(
                            source.where(*where, "unit"),
                            f"'{kpi.unit}' is not a unit pint knows",
                            "Write '1' for a fraction or a unit such as t, kg, t/a.",
                        )
                    )
            if kpi.kind in ("share", "relative_change") and kpi.unit != "1":
                problems.append(
                    Problem(
                        source.where(*where, "unit"),
                        f"a {kpi.kind} KPI has unit '1', not '{kpi.unit}'",
                    )
                )
            for name in ("target_2027", "target_2030"):
                value = getattr(kpi, name)
                if value is None:
                    continue
                if kpi.kind == "share" and not 0 <= value <= 1:
                    problems.append(
                        Problem(
                            source.where(*where, name),
                            f"a share is a fraction from 0 to 1, got {value}",
                            "Write 10 % as 0.10.",
                        )
                    )
                wrong_sign = value > 0 if kpi.direction == "decrease" else value < 0
                if kpi.kind == "relative_change" and (value < -1 or wrong_sign):
                    problems.append(
                        Problem(
                            source.where(*where, name),
                            f"a relative change of {value} does not fit direction '{kpi.direction}'",
                            "Write a decrease of 10 % as -0.10 with direction: decrease.",
                        )
                    )
            for k, rule in enumerate(kpi.rules):
                if rule not in rule_ids:
                    problems.append(
                        Problem(
                            source.where(*where, "rules", k),
                            f"there is no shipped rule '{rule}'",
                            suggest(rule, sorted(rule_ids), "Rules", limit=6),
                        )
                    )
    columns = set(file.colours.columns)
    for i, instrument in enumerate(file.instruments):
        if instrument.colour_column is not None and instrument.colour_column not in columns:
            problems.append(
                Problem(
                    source.where("instruments", i, "colour_column"),
                    f"there is no colour column '{instrument.colour_column}'",
                    suggest(instrument.colour_column, sorted(columns), "Columns (colours.columns)"),
                )
            )
    if len({i.id for i in file.instruments}) != len(file.instruments):
        problems.append(Problem(source.where("instruments"), "an instrument id is given twice"))
    windows = [w.id for w in file.windows]
    for a, b in zip(file.windows, file.windows[1:], strict=False):
        if b.start <= a.end:
            problems.append(
                Problem(
                    source.where("windows"),
                    f"windows {a.id} and {b.id} overlap or are out of order",
                )
            )
    for domain_id, by_window in file.colours.cells.items():
        if domain_id not in seen_domains:
            problems.append(
                Problem(
                    source.where("colours", "cells", domain_id),
                    f"there is no focus domain '{domain_id}'",
                    suggest(domain_id, sorted(seen_domains), "Focus domains"),
                )
            )
        for window, by_column in by_window.items():
            if window not in windows:
                problems.append(
                    Problem(
                        source.where("colours", "cells", domain_id, window),
                        f"there is no window '{window}'",
                        suggest(window, windows, "Windows"),
                    )
                )
            for column in by_column:
                if column not in columns:
                    problems.append(
                        Problem(
                            source.where("colours", "cells", domain_id, window, column),
                            f"there is no colour column '{column}'",
                            suggest(column, sorted(columns), "Columns"),
                        )
                    )
    for code in COLOUR_CODES:
        if code not in file.colour_meanings:
            problems.append(
                Problem(source.where("colour_meanings"), f"the meaning of '{code}' is missing")
            )
    return problems


def _read(name_or_path: str | Path) -> tuple[Any, Any, str]:
    """The raw data, source map and shown file name of a shipped roadmap or a roadmap file."""
    from critflow.model.source import parse_text

    text_name = str(name_or_path)
    if isinstance(name_or_path, str) and text_name in data.roadmap_names():
        shown = str(data.data_path(f"roadmap/{text_name}.yaml"))
        raw, source = parse_text(data.roadmap_text(text_name), shown)
        return raw, source, shown
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        from critflow.monitor._files import read_document

        raw, source = read_document(
            path,
            "roadmap file",
            f"Give a shipped roadmap ({', '.join(data.roadmap_names())}) or the path of a "
            "roadmap file (.yaml).",
        )
        return raw, source, str(path)
    raise CritflowError(
        "roadmap",
        f"there is no shipped roadmap '{text_name}' and no file of that name",
        suggest(
            text_name,
            data.roadmap_names(),
            "Shipped roadmaps",
            then="Or give the path of a roadmap file (.yaml).",
        ),
    )


def load_roadmap(name: str | Path = "materinex-2030") -> Roadmap:
    """A shipped roadmap by name ('materinex-2030') or a roadmap file by path. Mistakes in the
    file raise a CritflowError naming file, line and field."""
    if isinstance(name, str) and name in data.roadmap_names():
        return _shipped(name)
    return _load(name)


@lru_cache(maxsize=4)
def _shipped(name: str) -> Roadmap:
    return _load(name)


def _load(name: str | Path) -> Roadmap:
    from critflow.model.load import validate_as

    raw, source, shown = _read(name)
    if not isinstance(raw, dict):
        raise CritflowError(shown, "a roadmap file is a mapping (roadmap:, title:, domains:, …)")
    raw, problems = _with_kpi_domains(raw, source)
    if problems:
        raise CritflowError(problems)
    file = validate_as(_RoadmapFile, raw, source)
    domains = list(file.domains)
    problems = _check(file, domains, source)
    if problems:
        raise CritflowError(list(dict.fromkeys(problems)))
    cells: dict[tuple[str, str, str], ColourCell] = {}
    for domain_id, by_window in file.colours.cells.items():
        for window, by_column in by_window.items():
            for column, cell in by_column.items():
                cells[(domain_id, window, column)] = (
                    cell if isinstance(cell, ColourCell) else ColourCell(code=cell)
                )
    return Roadmap(
        id=file.roadmap,
        title=file.title,
        version=file.version,
        file=shown,
        source=file.source,
        domains=tuple(domains),
        kpis={k.id: k for d in domains for k in d.kpis},
        instruments={i.id: i for i in file.instruments},
        windows=file.windows,
        colour_meanings=dict(file.colour_meanings),
        colour_note=file.colour_note or "",
        procedure=file.procedure,
        _cells=cells,
        _cells_source=str(file.colours.source),
    )
