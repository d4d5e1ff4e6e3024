"""Trade tables users download (UN Comtrade CSV, Eurostat Comext CSV/TSV) as element flows.

A *mapping file* (CSV) says what each commodity code is in the model::

    code,flow,stage,element,content,compound,source
    283691,imports,refined,Li,,Li2CO3,"HS 2836.91 lithium carbonate; Li from the formula"
    750210,imports,refined,Ni,0.99,,"HS Ch. 75 subheading note 1(a): >= 99 % Ni"

Each row maps a code (HS/CN, the leading digits of a longer code too) to a flow of the model, the
stage of the material and the mass fraction of one element in the goods (``content``, or the
``compound`` it is traded as, whose formula gives the fraction); every row names its source. A code
with several elements has several rows.

:func:`read_trade_table` reads the table, checks every reporter and partner code against ISO 3166
(alpha-2, alpha-3 or numeric; Eurostat's EL for Greece; EU-27 and world aggregates as groups) and
returns goods masses in kg. :func:`map_trade` turns them into element masses per flow, origin,
destination and year, and lists **every code that maps to nothing** with its mass — nothing is
dropped silently. :func:`model_values` writes the result as a model value keyed by trade pair
(``{region: {CN>EU: {Li: {2022: …}}}}``).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError, Problem

EU27 = "EU27"
"""Group label of the EU-27 Member States (Eurostat EU27_2020; the model's Union)."""
WORLD = "WORLD"
EXTRA_EU = "EXTRA_EU27"
_GROUPS = {
    "EU27_2020": EU27,
    "EU27": EU27,
    "EU": EU27,
    "EU-27": EU27,
    "97": EU27,  # UN Comtrade partner code of the EU
    "EUR": EU27,
    "WORLD": WORLD,
    "W00": WORLD,
    "WLD": WORLD,
    "0": WORLD,  # UN Comtrade partner code 0: World
    "EXT_EU27_2020": EXTRA_EU,
}
_EUROSTAT_ALIASES = {"EL": "GR", "UK": "GB"}
"""Eurostat writes Greece EL and (until 2020) the United Kingdom UK."""
_UNITS_KG = {"kg": 1.0, "t": 1000.0, "100kg": 100.0, "quantity_in_100kg": 100.0}


@dataclass(frozen=True)
class Countries:
    """ISO 3166-1 codes (``critflow/data/iso3166_countries.csv``) and the EU-27."""

    alpha2: dict[str, str]  # any accepted code → alpha-2
    eu27: frozenset[str]

    @classmethod
    def load(cls) -> Countries:
        from critflow import data

        table = data.text_table("iso3166_countries")
        codes: dict[str, str] = {}
        for row in table.itertuples():
            for code in (row.alpha_2, row.alpha_3, row.numeric, str(int(row.numeric))):
                codes[code.upper()] = row.alpha_2
        for alias, code in _EUROSTAT_ALIASES.items():
            codes[alias] = code
        return cls(codes, frozenset(table.alpha_2[table.eu27 == "true"]))

    def resolve(self, code: str) -> str | None:
        """An ISO alpha-2 code or a group label (EU27, WORLD, EXTRA_EU27); None if unknown."""
        text = code.strip().upper()
        if text in _GROUPS:
            return _GROUPS[text]
        return self.alpha2.get(text)

    def group(self, code: str) -> str:
        """'EU27' for a Member State or the EU-27 itself, else the code (a third country)."""
        return EU27 if code in self.eu27 or code == EU27 else code


@dataclass(frozen=True)
class MappingRow:
    code: str
    flow: str
    stage: str | None
    element: str
    content: float
    source: str


def read_mapping(path: str | Path) -> list[MappingRow]:
    """Read a mapping file (CSV: code, flow, element, content or compound, source; stage
    optional). Raises a CritflowError naming the line of each bad row."""
    from critflow.model.compound import parse_compound

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    need = {"code", "flow", "element", "source"}
    missing = need - set(reader.fieldnames or [])
    if missing or not ({"content", "compound"} & set(reader.fieldnames or [])):
        raise CritflowError(
            str(path),
            f"the mapping file lacks the column(s) {sorted(missing) or ['content or compound']}",
            "Columns: code, flow, stage (optional), element, content or compound, source.",
        )
    rows: list[MappingRow] = []
    problems: list[Problem] = []
    for n, row in enumerate(reader, start=2):
        where = f"{path}, row {n}"
        code = re.sub(r"[\s.]", "", row.get("code") or "")
        if not code.isdigit():
            problems.append(
                Problem(
                    where,
                    f"code {row.get('code')!r} is not an HS/CN code",
                    "Write digits (283691).",
                )
            )
            continue
        if not (row.get("source") or "").strip():
            problems.append(
                Problem(where, f"code {code} gives no source", "Say where the content comes from.")
            )
            continue
        element = (row.get("element") or "").strip()
        content_text = (row.get("content") or "").strip()
        compound = (row.get("compound") or "").strip()
        try:
            if content_text:
                content = float(content_text)
            elif compound:
                content = parse_compound(compound).mass_fractions[element]
            else:
                raise ValueError("give content (a mass fraction) or compound (a formula)")
        except (ValueError, KeyError) as exc:
            what = f"{element} is not in {compound}" if isinstance(exc, KeyError) else str(exc)
            problems.append(
                Problem(
                    where,
                    f"code {code}: {what}",
                    "Give content as a fraction 0-1 or a compound holding the element.",
                )
            )
            continue
        if not 0 < content <= 1:
            problems.append(
                Problem(
                    where,
                    f"code {code}: content {content} is not a mass fraction",
                    "Write a number in (0, 1].",
                )
            )
            continue
        rows.append(
            MappingRow(
                code,
                (row.get("flow") or "").strip(),
                (row.get("stage") or "").strip() or None,
                element,
                content,
                row["source"].strip(),
            )
        )
    if problems:
        raise CritflowError(problems)
    return rows


@dataclass(frozen=True)
class TradeRecord:
    """One row of a trade table: goods mass in kg/year."""

    year: int
    reporter: str  # ISO alpha-2 or a group (EU27)
    partner: str
    direction: str  # 'import' or 'export' (as the reporter reports it)
    code: str
    goods_kg: float


_COMTRADE = {
    "year": ("refYear", "period", "Year", "refPeriodId"),
    "reporter": ("reporterISO", "reporterCode", "Reporter ISO", "Reporter Code"),
    "partner": ("partnerISO", "partnerCode", "Partner ISO", "Partner Code"),
    "direction": ("flowCode", "flowDesc", "Trade Flow", "Trade Flow Code"),
    "code": ("cmdCode", "Commodity Code"),
    "mass": ("netWgt", "NetWgt", "Netweight (kg)", "Net Weight (kg)"),
}
_DIRECTIONS = {
    "m": "import",
    "import": "import",
    "imports": "import",
    "1": "import",
    "x": "export",
    "export": "export",
    "exports": "export",
    "2": "export",
}


def _pick(header: list[str], names: tuple[str, ...]) -> str | None:
    lower = {h.lower(): h for h in header}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def read_trade_table(path: str | Path, countries: Countries | None = None) -> list[TradeRecord]:
    """Read a UN Comtrade CSV, a Eurostat SDMX-CSV or a Eurostat TSV (Comext DS-045409 and
    alike): goods mass per year, reporter, partner, direction and code. Country codes are checked
    against ISO 3166 (a code that is none stops the read, with its row); masses are net weight in
    kg (Comtrade netWgt) or Eurostat QUANTITY_IN_100KG × 100."""
    path = Path(path)
    countries = countries or Countries.load()
    text = path.read_text(encoding="utf-8-sig")
    first = text.splitlines()[0] if text else ""
    if "\\" in first.split("\t")[0]:
        return _eurostat_tsv(path, text, countries)
    header = next(csv.reader([first]))
    if "TIME_PERIOD" in header and "OBS_VALUE" in header:
        return _eurostat_csv(path, text, countries)
    return _comtrade(path, text, countries)


def _country(countries: Countries, code: str, where: str, problems: list[Problem]) -> str | None:
    found = countries.resolve(code)
    if found is None:
        problems.append(
            Problem(
                where,
                f"'{code}' is no ISO 3166 country code nor a known group",
                "Use ISO alpha-2/alpha-3/numeric codes (BE, BEL, 56) or EU27_2020, WORLD.",
            )
        )
    return found


def _mass(value: str, where: str, problems: list[Problem], factor: float = 1.0) -> float | None:
    text = value.strip().replace(",", "") if value else ""
    text = re.sub(r"\s*[a-z]+$", "", text)  # Eurostat flags: '123 p'
    if text in ("", ":", "NA", "n/a"):
        return None
    try:
        number = float(text) * factor
    except ValueError:
        problems.append(Problem(where, f"{value!r} is not a mass", "Write a number (net weight)."))
        return None
    if number < 0:
        problems.append(Problem(where, f"the mass {number} is negative", "Masses are ≥ 0."))
        return None
    return number


def _comtrade(path: Path, text: str, countries: Countries) -> list[TradeRecord]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    columns = {key: _pick(header, names) for key, names in _COMTRADE.items()}
    missing = [key for key, column in columns.items() if column is None]
    if missing:
        raise CritflowError(
            str(path),
            f"not a UN Comtrade table: no column for {', '.join(missing)}",
            "Download from comtradeplus.un.org as CSV with refYear, reporterISO, partnerISO, "
            "flowCode, cmdCode and netWgt (or a Eurostat SDMX-CSV / TSV extract).",
        )
    records: list[TradeRecord] = []
    problems: list[Problem] = []
    for n, row in enumerate(reader, start=2):
        where = f"{path}, row {n}"
        direction = _DIRECTIONS.get((row[columns["direction"]] or "").strip().lower())
        if direction is None:
            continue  # re-imports, re-exports: not the trade of the goods' origin
        reporter = _country(
            countries, row[columns["reporter"]] or "", f"{where}, {columns['reporter']}", problems
        )
        partner = _country(
            countries, row[columns["partner"]] or "", f"{where}, {columns['partner']}", problems
        )
        mass = _mass(row[columns["mass"]], f"{where}, {columns['mass']}", problems)
        if reporter is None or partner is None or mass is None:
            continue
        records.append(
            TradeRecord(
                int(str(row[columns["year"]])[:4]),
                reporter,
                partner,
                direction,
                re.sub(r"\D", "", row[columns["code"]]),
                mass,
            )
        )
    if problems:
        raise CritflowError(problems)
    return records


def _eurostat_csv(path: Path, text: str, countries: Countries) -> list[TradeRecord]:
    reader = csv.DictReader(io.StringIO(text))
    records: list[TradeRecord] = []
    problems: list[Problem] = []
    for n, row in enumerate(reader, start=2):
        where = f"{path}, row {n}"
        unit = (row.get("indicators") or row.get("unit") or "").strip().lower()
        if unit not in _UNITS_KG:
            continue  # values in euro, supplementary units: not a mass
        record = _eurostat_record(
            row,
            row.get("TIME_PERIOD", ""),
            row.get("OBS_VALUE", ""),
            _UNITS_KG[unit],
            where,
            countries,
            problems,
        )
        if record is not None:
            records.append(record)
    if problems:
        raise CritflowError(problems)
    return records


def _eurostat_tsv(path: Path, text: str, countries: Countries) -> list[TradeRecord]:
    lines = text.splitlines()
    head = lines[0].split("\t")
    keys = head[0].split("\\")[0].split(",")
    years = [h.strip() for h in head[1:]]
    records: list[TradeRecord] = []
    problems: list[Problem] = []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        row = dict(zip(keys, cells[0].split(","), strict=False))
        unit = (row.get("indicators") or row.get("unit") or "").strip().lower()
        if unit not in _UNITS_KG:
            continue
        for year, value in zip(years, cells[1:], strict=False):
            record = _eurostat_record(
                row, year, value, _UNITS_KG[unit], f"{path}, line {n}, {year}", countries, problems
            )
            if record is not None:
                records.append(record)
    if problems:
        raise CritflowError(problems)
    return records


def _eurostat_record(row, year, value, factor, where, countries, problems) -> TradeRecord | None:
    direction = _DIRECTIONS.get((row.get("flow") or "").strip().lower())
    if direction is None:
        problems.append(
            Problem(
                where,
                f"flow {row.get('flow')!r} is neither import (1) nor export (2)",
                "Keep the Comext flow column (1 = import, 2 = export).",
            )
        )
        return None
    reporter = _country(countries, row.get("reporter", ""), f"{where}, reporter", problems)
    partner = _country(countries, row.get("partner", ""), f"{where}, partner", problems)
    mass = _mass(value, f"{where}, value", problems, factor)
    if reporter is None or partner is None or mass is None:
        return None
    return TradeRecord(
        int(str(year).strip()[:4]),
        reporter,
        partner,
        direction,
        re.sub(r"\D", "", row.get("product", "")),
        mass,
    )


@dataclass(frozen=True)
class MappedTrade:
    """Element masses per (flow, stage, element, origin, destination, year) in kg/year, and the
    codes that map to nothing with their goods mass (kg, all years together)."""

    rows: list[dict[str, Any]]
    unmapped: dict[str, float]
    aggregates: dict[str, float]  # rows with a partner such as WORLD or EXTRA_EU27, kg (not mapped:
    # they would count the countries' trade twice)


def map_trade(
    records: list[TradeRecord], mapping: list[MappingRow], countries: Countries | None = None
) -> MappedTrade:
    """Element masses of the traded goods through the mapping; a code maps through the longest
    mapping code it starts with (282520 maps 28252000). Imports go from the partner (origin) to the
    reporter; exports from the reporter to the partner. Each country is also tagged with its group
    (EU27 for Member States)."""
    countries = countries or Countries.load()
    by_code: dict[str, list[MappingRow]] = {}
    for row in mapping:
        by_code.setdefault(row.code, []).append(row)
    prefixes = sorted(by_code, key=len, reverse=True)
    rows: list[dict[str, Any]] = []
    unmapped: dict[str, float] = {}
    aggregates: dict[str, float] = {}
    for record in records:
        if record.partner in (WORLD, EXTRA_EU) or (
            record.partner == EU27 and record.reporter == EU27
        ):
            aggregates[record.partner] = aggregates.get(record.partner, 0.0) + record.goods_kg
            continue
        match = next((p for p in prefixes if record.code.startswith(p)), None)
        if match is None:
            unmapped[record.code] = unmapped.get(record.code, 0.0) + record.goods_kg
            continue
        origin, destination = (
            (record.partner, record.reporter)
            if record.direction == "import"
            else (record.reporter, record.partner)
        )
        for m in by_code[match]:
            rows.append(
                {
                    "year": record.year,
                    "flow": m.flow,
                    "stage": m.stage,
                    "code": record.code,
                    "element": m.element,
                    "origin": origin,
                    "origin_group": countries.group(origin),
                    "destination": destination,
                    "destination_group": countries.group(destination),
                    "goods_kg": record.goods_kg,
                    "element_kg": record.goods_kg * m.content,
                    "source": m.source,
                }
            )
    return MappedTrade(rows, unmapped, aggregates)


def model_values(
    mapped: MappedTrade,
    flow: str,
    regions: dict[str, str],
    unit_kg: float = 1000.0,
    dimension: str = "region",
) -> dict[str, Any]:
    """The value of a trade flow of the model, keyed by trade pair: ``{dimension: {'CN>EU-other':
    {Li: {2022: t}}}}``. ``regions`` maps ISO codes and groups (EU27) to the model's coordinates
    ({'CN': 'CN', 'BE': 'BE-other', 'EU27': 'EU-other'}); a country it does not name goes to
    ``regions['*']`` if given, otherwise the call fails naming it. Masses in ``unit_kg`` (t)."""
    values: dict[str, dict[str, dict[int, float]]] = {}
    unknown: set[str] = set()

    def coordinate(code: str, group: str) -> str | None:
        found = regions.get(code, regions.get(group, regions.get("*")))
        if found is None:
            unknown.add(code)
        return found

    for row in mapped.rows:
        if row["flow"] != flow:
            continue
        a = coordinate(row["origin"], row["origin_group"])
        b = coordinate(row["destination"], row["destination_group"])
        if a is None or b is None:
            continue
        by_element = values.setdefault(f"{a}>{b}", {}).setdefault(row["element"], {})
        by_element[row["year"]] = by_element.get(row["year"], 0.0) + row["element_kg"] / unit_kg
    if unknown:
        raise CritflowError(
            "regions=",
            f"the trade names countries the model's regions do not: {', '.join(sorted(unknown))}",
            "Map them to a coordinate (or give '*': RoW for the rest).",
        )
    return {dimension: values}
