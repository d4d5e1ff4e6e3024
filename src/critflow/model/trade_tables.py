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
import functools
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError, Problem, capped
from critflow.model.source import decode_utf8, read_limited

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
MAX_TABLE_BYTES = 256 * 1024 * 1024
"""Largest trade table or mapping file read (256 MiB): a larger one is refused with a message."""
MAX_GOODS_KG = 1e15
"""Largest goods mass of one row, kg (a million Mt: ten years of all the material the world
extracts); a larger one is a unit or typing mistake."""


def _read_text(path: Path, what: str) -> str:
    """The text of a table: UTF-8 (with or without BOM) or UTF-16 with its BOM; refused with a
    message naming the file (and the line of an undecodable byte) when missing, not a regular
    file, binary, too large or in another encoding."""
    if not path.exists():
        raise CritflowError(str(path), f"no such {what}", "Give the path of the downloaded file.")
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_TABLE_BYTES:
        raise CritflowError(
            str(path),
            f"the {what} has {size / 2**20:,.0f} MiB, more than critflow reads "
            f"({MAX_TABLE_BYTES / 2**20:,.0f} MiB)",
            "Download a narrower extract (the commodity codes of the mapping, the years and "
            "reporters of the model) or split it by year.",
        )
    # the reader of every file critflow reads: a folder, device or pipe is named and refused
    raw = read_limited(path, MAX_TABLE_BYTES, missing_fix="Give the path of the downloaded file.")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            pass
    text = decode_utf8(raw, str(path))
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise CritflowError(
            f"{path}, line {line}",
            f"the {what} holds NUL bytes: a binary file (a spreadsheet or an archive?), not CSV",
            "Export the table as CSV (UTF-8), or unzip the download first.",
        )
    return text


def _capped(problems: list[Problem]) -> CritflowError:
    """The error of a table's bad rows: the first :data:`critflow.errors.MAX_REPORTED` named, the rest counted."""
    return capped(
        problems,
        "bad value",
        "Fix the ones above; most often one mistake repeats (a column, a unit).",
    )


@dataclass(frozen=True)
class Countries:
    """ISO 3166-1 codes (``critflow/data/iso3166_countries.csv``) and the EU-27."""

    alpha2: dict[str, str]  # any accepted code → alpha-2
    eu27: frozenset[str]

    @classmethod
    @functools.cache
    def load(cls) -> Countries:
        """The shipped table, read once per process (it is immutable)."""
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
    compound: str | None = None  # the formula the content comes from, if given


def read_mapping(path: str | Path) -> list[MappingRow]:
    """Read a mapping file (CSV: code, flow, element, content or compound, source; stage
    optional). Raises a CritflowError naming the line of each bad row."""
    import periodictable

    from critflow.model.compound import parse_compound

    path = Path(path)
    text = _read_text(path, "mapping file")
    # comment lines are blanked, not removed, so that the reader's line numbers stay the file's
    lines = ["" if line.lstrip().startswith("#") else line for line in text.splitlines()]
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
    seen: dict[tuple[str, str, str], int] = {}
    for row in reader:
        n = reader.line_num
        where = f"{path}, line {n}"
        if _ragged(row, reader, where, problems):
            continue
        code = re.sub(r"[\s.]", "", row.get("code") or "")
        if not code.isdigit():
            problems.append(
                Problem(
                    where,
                    f"code {row.get('code')!r} is not a commodity code (HS, CN or PRODCOM)",
                    "Write digits (283691; dots and spaces are dropped: 24.45.11.30).",
                )
            )
            continue
        if not (row.get("source") or "").strip():
            problems.append(
                Problem(where, f"code {code} gives no source", "Say where the content comes from.")
            )
            continue
        element = (row.get("element") or "").strip()
        flow = (row.get("flow") or "").strip()
        if not flow:
            problems.append(
                Problem(where, f"code {code} names no flow", "Write the model's flow id (imports).")
            )
            continue
        try:
            periodictable.elements.symbol(element)
        except ValueError:
            problems.append(
                Problem(
                    where,
                    f"code {code}: {element!r} is not an element symbol",
                    "Write the symbol of the element the content is of (Li, Co, Ni).",
                )
            )
            continue
        earlier = seen.setdefault((code, flow, element), n)
        if earlier != n:
            problems.append(
                Problem(
                    where,
                    f"code {code} maps to {flow} {element} again (line {earlier} did): its "
                    "mass would be counted twice",
                    "Keep one row per code, flow and element.",
                )
            )
            continue
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
                flow,
                (row.get("stage") or "").strip() or None,
                element,
                content,
                row["source"].strip(),
                compound or None,
            )
        )
    if problems:
        raise _capped(problems)
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
    text = _read_text(path, "trade table")
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
    text = re.sub(r"(?<=[\d.])\s*[a-z]+$", "", text)  # Eurostat flags after a number: '123 p'
    if text in ("", ":", "NA", "n/a"):
        return None
    try:
        given = float(text)
    except ValueError:
        problems.append(Problem(where, f"{value!r} is not a mass", "Write a number (net weight)."))
        return None
    number = given * factor
    if not math.isfinite(given) or not abs(number) <= MAX_GOODS_KG:
        why = (
            "not a finite number"
            if not math.isfinite(given)
            else f"{number:.3g} kg is more than {MAX_GOODS_KG:.0e} kg"
        )
        problems.append(
            Problem(
                where,
                f"{value.strip()!r} is no mass of goods ({why})",
                "Write the net weight as a number; leave it empty or ':' where it is missing.",
            )
        )
        return None
    if number < 0:
        problems.append(Problem(where, f"the mass {number} is negative", "Masses are ≥ 0."))
        return None
    return number


def _year(value: Any, where: str, problems: list[Problem]) -> int | None:
    text = str(value or "").strip()
    if re.match(r"^(19|20|21)\d\d", text):
        return int(text[:4])
    problems.append(
        Problem(where, f"{text!r} is not a year", "Write the year (2022, or a period 2022M01).")
    )
    return None


def _ragged(row: dict, reader: csv.DictReader, where: str, problems: list[Problem]) -> bool:
    """True (and a problem) for a row with more or fewer values than the header: an unquoted
    comma in a description shifts every column after it."""
    if None not in row and None not in row.values():
        return False
    count = len(reader.fieldnames or []) + len(row.get(None) or []) - list(row.values()).count(None)
    problems.append(
        Problem(
            where,
            f"the row has {count} values, the header {len(reader.fieldnames or [])}",
            'Quote a value that holds a comma ("Lithium oxide, hydroxide"); give every column '
            "(empty is fine).",
        )
    )
    return True


def _comtrade(path: Path, text: str, countries: Countries) -> list[TradeRecord]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    columns = {key: _pick(header, names) for key, names in _COMTRADE.items()}
    missing = [key for key, column in columns.items() if column is None]
    if missing:
        raise CritflowError(
            f"{path}, line 1",
            f"not a UN Comtrade table: no column for {', '.join(missing)}",
            "Download from comtradeplus.un.org as CSV with refYear, reporterISO, partnerISO, "
            "flowCode, cmdCode and netWgt (or a Eurostat SDMX-CSV / TSV extract).",
        )
    records: list[TradeRecord] = []
    problems: list[Problem] = []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if _ragged(row, reader, where, problems):
            continue
        direction = _DIRECTIONS.get((row[columns["direction"]] or "").strip().lower())
        if direction is None:
            continue  # re-imports, re-exports: not the trade of the goods' origin
        reporter = _country(
            countries, row[columns["reporter"]] or "", f"{where}, {columns['reporter']}", problems
        )
        partner = _country(
            countries, row[columns["partner"]] or "", f"{where}, {columns['partner']}", problems
        )
        year = _year(row[columns["year"]], f"{where}, {columns['year']}", problems)
        code = _code(row[columns["code"]], f"{where}, {columns['code']}", problems)
        mass = _mass(row[columns["mass"]], f"{where}, {columns['mass']}", problems)
        if None in (reporter, partner, mass, year, code):
            continue
        records.append(TradeRecord(year, reporter, partner, direction, code, mass))
    if problems:
        raise _capped(problems)
    return records


def _code(value: str, where: str, problems: list[Problem]) -> str | None:
    code = re.sub(r"\D", "", value or "")
    if code:
        return code
    problems.append(
        Problem(where, f"{value!r} is no commodity code", "Write the HS/CN code (283691).")
    )
    return None


_EUROSTAT_KEYS = ("reporter", "partner", "product", "flow")


def _eurostat_columns(path: Path, keys: list[str], times: bool) -> None:
    missing = [k for k in _EUROSTAT_KEYS if k not in keys]
    if not ({"indicators", "unit"} & set(keys)):
        missing.append("indicators (or unit)")
    if missing:
        raise CritflowError(
            f"{path}, line 1",
            f"not a Eurostat Comext extract: no column for {', '.join(missing)}",
            "Download DS-045409 (or alike) as SDMX-CSV or TSV with the reporter, partner, "
            "product, flow and indicators dimensions"
            + (" and TIME_PERIOD, OBS_VALUE." if not times else "."),
        )


def _eurostat_csv(path: Path, text: str, countries: Countries) -> list[TradeRecord]:
    reader = csv.DictReader(io.StringIO(text))
    _eurostat_columns(path, list(reader.fieldnames or []), False)
    records: list[TradeRecord] = []
    problems: list[Problem] = []
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if _ragged(row, reader, where, problems):
            continue
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
        raise _capped(problems)
    return records


def tsv_cells(
    path: Path, text: str, problems: list[Problem], check: Callable[[list[str]], Any]
) -> Iterator[tuple[str, dict[str, str], str, str]]:
    """(where, labels by key, year, value) of every cell of a Eurostat TSV (``a,b,c\\TIME_PERIOD``
    then a column per year); ``check`` sees the keys first. A line whose labels or values do not
    fit the header is a problem named by its line."""
    lines = text.splitlines()
    head = lines[0].split("\t")
    keys = [k.strip() for k in head[0].split("\\")[0].split(",")]
    check(keys)
    years = [h.strip() for h in head[1:]]
    for i, year in enumerate(years):
        _year(year, f"{path}, line 1, column {i + 2}", problems)
    if problems:
        raise _capped(problems)
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        labels = cells[0].split(",")
        if len(labels) != len(keys) or len(cells) > len(years) + 1:
            problems.append(
                Problem(
                    f"{path}, line {n}",
                    f"the line has {len(labels)} labels and {len(cells) - 1} values, the header "
                    f"{len(keys)} and {len(years)}",
                    "Keep the TSV as downloaded: labels joined by ',', values by tabs.",
                )
            )
            continue
        row = dict(zip(keys, labels, strict=True))
        for year, value in zip(years, cells[1:], strict=False):
            yield f"{path}, line {n}, {year}", row, year, value


def _eurostat_tsv(path: Path, text: str, countries: Countries) -> list[TradeRecord]:
    problems: list[Problem] = []
    records: list[TradeRecord] = []
    check = lambda keys: _eurostat_columns(path, keys, True)  # noqa: E731
    for where, row, year, value in tsv_cells(path, text, problems, check):
        unit = (row.get("indicators") or row.get("unit") or "").strip().lower()
        if unit not in _UNITS_KG:
            continue  # values in euro, supplementary units: not a mass
        record = _eurostat_record(row, year, value, _UNITS_KG[unit], where, countries, problems)
        if record is not None:
            records.append(record)
    if problems:
        raise _capped(problems)
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
    number = _year(year, f"{where}, TIME_PERIOD", problems)
    code = _code(row.get("product", ""), f"{where}, product", problems)
    if None in (reporter, partner, mass, number, code):
        return None
    return TradeRecord(number, reporter, partner, direction, code, mass)


@dataclass(frozen=True)
class MappedTrade:
    """Element masses per (flow, stage, element, origin, destination, year) in kg/year, and the
    codes that map to nothing with their goods mass (kg, all years together)."""

    rows: list[dict[str, Any]]
    unmapped: dict[str, float]
    aggregates: dict[str, float]  # rows with a partner such as WORLD or EXTRA_EU27, kg (not mapped:
    # they would count the countries' trade twice)


def mapping_lookup(mapping: list[MappingRow]) -> Callable[[str], list[MappingRow]]:
    """The mapping rows of a code: those of the longest mapping code it starts with (282520 maps
    28252000), none if no mapping code is a prefix of it."""
    by_code: dict[str, list[MappingRow]] = {}
    for row in mapping:
        by_code.setdefault(row.code, []).append(row)
    prefixes = sorted(by_code, key=len, reverse=True)

    def lookup(code: str) -> list[MappingRow]:
        match = next((p for p in prefixes if code.startswith(p)), None)
        return by_code[match] if match is not None else []

    return lookup


def map_trade(
    records: list[TradeRecord], mapping: list[MappingRow], countries: Countries | None = None
) -> MappedTrade:
    """Element masses of the traded goods through the mapping; a code maps through the longest
    mapping code it starts with (282520 maps 28252000). Imports go from the partner (origin) to the
    reporter; exports from the reporter to the partner. Each country is also tagged with its group
    (EU27 for Member States)."""
    countries = countries or Countries.load()
    lookup = mapping_lookup(mapping)
    rows: list[dict[str, Any]] = []
    unmapped: dict[str, float] = {}
    aggregates: dict[str, float] = {}
    for record in records:
        if record.partner in (WORLD, EXTRA_EU) or (
            record.partner == EU27 and record.reporter == EU27
        ):
            aggregates[record.partner] = aggregates.get(record.partner, 0.0) + record.goods_kg
            continue
        found = lookup(record.code)
        if not found:
            unmapped[record.code] = unmapped.get(record.code, 0.0) + record.goods_kg
            continue
        origin, destination = (
            (record.partner, record.reporter)
            if record.direction == "import"
            else (record.reporter, record.partner)
        )
        for m in found:
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
