"""PRODCOM tables users download (Eurostat's sold production by PRODCOM code) as element flows.

Eurostat publishes the PRODCOM survey (Regulation (EU) 2019/2152) as datasets such as DS-059358
(annual sold production, exports and imports by PRODCOM list, NACE Rev. 2), as SDMX-CSV::

    DATAFLOW,LAST UPDATE,freq,reporter,product,indicators,TIME_PERIOD,OBS_VALUE,OBS_FLAG
    ESTAT:DS-059358(1.0),…,A,BE,24451130,PRODQNT,2022,1234567,
    ESTAT:DS-059358(1.0),…,A,BE,24451130,QNTUNIT,2022,kg,

or as TSV (``freq,reporter,product,indicators\\TIME_PERIOD`` then a column per year). The production
quantity is the ``PRODQNT`` indicator, in the unit that the ``QNTUNIT`` indicator of the same
reporter, product and year names; a suppressed quantity (flag ``C``, confidential, in ``OBS_FLAG``,
after a ``:`` or in a ``PQNTFLAG`` indicator) is **not zero**: it is listed in
:attr:`ProductionTable.confidential`.

:func:`read_production_table` reads the table (reporters checked against ISO 3166 as for trade
tables, EU27_2020 kept apart as an aggregate); :func:`map_production` turns quantities into element
masses through the same mapping file as trade tables (:func:`critflow.model.trade_tables.read_mapping`,
codes are PRODCOM codes, 8 digits or their leading digits) and lists every code that maps to nothing
and every quantity that is not a mass (pieces, m³) with its unit; :func:`production_values` writes
the result as a model value keyed by region (``{region: {BE: {Ni: {2022: t}}}}``).

A unit such as ``kg NaOH`` or ``kg TiO2`` (the quantity of a named substance, not of the goods) is
read when the mapping row's ``compound`` is that substance; otherwise it is listed, never guessed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError, Problem
from critflow.model.trade_tables import (
    EU27,
    EXTRA_EU,
    MAX_GOODS_KG,
    WORLD,
    Countries,
    MappingRow,
    _capped,
    _code,
    _country,
    _mass,
    _ragged,
    _read_text,
    _year,
    mapping_lookup,
    tsv_cells,
)

_PLAIN_MASS_KG = {"kg": 1.0, "t": 1000.0, "g": 0.001}
"""PRODCOM quantity units that are a mass of the goods, in kg per unit."""
_REPORTER = ("reporter", "decl", "geo")
_PRODUCT = ("product", "prccode")
_QUANTITY = "prodqnt"
_UNIT = "qntunit"
_FLAG = "pqntflag"


@dataclass(frozen=True)
class ProductionRecord:
    """Sold production of one PRODCOM code by one reporter in one year: ``quantity`` in ``unit``
    (``kg`` for every plain mass unit, converted; otherwise the unit as PRODCOM writes it)."""

    year: int
    reporter: str  # ISO alpha-2, or EU27 for the Union's aggregate
    code: str
    quantity: float
    unit: str


@dataclass(frozen=True)
class ProductionTable:
    """What a PRODCOM table holds: the quantities, and the (reporter, code, year) whose quantity
    is confidential (suppressed, not zero)."""

    records: list[ProductionRecord]
    confidential: list[tuple[str, str, int]] = field(default_factory=list)


def _pick(header: list[str], names: tuple[str, ...]) -> str | None:
    lower = {h.strip().lower(): h for h in header}
    return next((lower[n] for n in names if n in lower), None)


def _columns(path: Path, header: list[str], times: bool) -> tuple[str, str, str]:
    reporter, product = _pick(header, _REPORTER), _pick(header, _PRODUCT)
    indicators = _pick(header, ("indicators",))
    missing = [
        name
        for name, column in (
            ("reporter", reporter),
            ("product", product),
            ("indicators", indicators),
        )
        if column is None
    ]
    if not times:
        missing += [c for c in ("TIME_PERIOD", "OBS_VALUE") if c not in header]
    if missing:
        raise CritflowError(
            f"{path}, line 1",
            f"not a Eurostat PRODCOM extract: no column for {', '.join(missing)}",
            "Download DS-059358 (sold production by PRODCOM code) as SDMX-CSV or TSV with the "
            "reporter, product and indicators dimensions (PRODQNT and QNTUNIT)"
            + ("." if times else ", TIME_PERIOD and OBS_VALUE."),
        )
    return reporter, product, indicators  # type: ignore[return-value]


def _cells(path: Path, text: str, problems: list[Problem]) -> Iterator[tuple[str, dict, str]]:
    """(where, row with reporter/product/indicator/year/value/flag, raw value) of every cell."""
    first = text.splitlines()[0] if text else ""
    if "\\" in first.split("\t")[0]:
        columns: list[str] = []

        def check(keys: list[str]) -> None:
            columns.extend(_columns(path, keys, True))

        for where, row, year, value in tsv_cells(path, text, problems, check):
            reporter, product, indicators = columns
            cell = {
                "reporter": row[reporter],
                "product": row[product],
                "indicator": row[indicators],
                "year": year,
                "flag": "",
            }
            yield where, cell, value
        return
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    reporter, product, indicators = _columns(path, header, False)
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if _ragged(row, reader, where, problems):
            continue
        yield (
            where,
            {
                "reporter": row[reporter] or "",
                "product": row[product] or "",
                "indicator": row[indicators] or "",
                "year": row["TIME_PERIOD"] or "",
                "flag": row.get("OBS_FLAG") or "",
            },
            row["OBS_VALUE"] or "",
        )


def _flags(value: str, flag: str) -> tuple[str, bool]:
    """The value without its flags, and whether a flag marks it confidential (C)."""
    text = value.strip()
    confidential = "c" in flag.strip().lower()
    if text.startswith(":"):
        return "", confidential or "c" in text[1:].lower()
    match = re.match(r"^(.*?\d)\s*([a-zA-Z]+)$", text)  # '123 p', '123c'
    if match:
        return match.group(1), confidential or "c" in match.group(2).lower()
    return text, confidential


def _unit(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip())


def read_production_table(path: str | Path, countries: Countries | None = None) -> ProductionTable:
    """Read a Eurostat PRODCOM extract (SDMX-CSV or TSV): the sold production quantity of each
    reporter, PRODCOM code and year with its unit; plain masses (kg, t, g) in kg. Every bad value is
    named with its file and line (the first 50, the rest counted); a reporter that is no ISO 3166
    code, a quantity without a unit, and a (reporter, code, year) given twice stop the read."""
    path = Path(path)
    countries = countries or Countries.load()
    text = _read_text(path, "PRODCOM table")
    problems: list[Problem] = []
    quantities: dict[tuple[str, str, int], tuple[float, str]] = {}
    units: dict[tuple[str, str, int], tuple[str, str]] = {}
    confidential: set[tuple[str, str, int]] = set()
    for where, row, value in _cells(path, text, problems):
        indicator = row["indicator"].strip().lower()
        if indicator not in (_QUANTITY, _UNIT, _FLAG):
            continue  # values in euro, exports, imports: not the production quantity
        reporter = _country(countries, row["reporter"], f"{where}, reporter", problems)
        code = _code(row["product"], f"{where}, product", problems)
        year = _year(row["year"], f"{where}, TIME_PERIOD", problems)
        if reporter is None or code is None or year is None:
            continue
        key = (reporter, code, year)
        if indicator == _UNIT:
            if value.strip() and value.strip() != ":":
                unit = _unit(value)
                if key in units and units[key][0].lower() != unit.lower():
                    problems.append(
                        Problem(
                            where,
                            f"{reporter} {code} {year}: the unit is given again as {unit!r} "
                            f"({units[key][1]} gave {units[key][0]!r}): the quantity would be "
                            "read in either",
                            "Keep one QNTUNIT row per reporter, product and year.",
                        )
                    )
                    continue
                units.setdefault(key, (unit, where))
            continue
        if indicator == _FLAG:
            if "c" in value.strip().lower():
                confidential.add(key)
            continue
        number_text, secret = _flags(value, row["flag"])
        if secret:
            confidential.add(key)
        if not number_text:
            continue
        quantity = _mass(number_text, f"{where}, value", problems)
        if quantity is None:
            continue
        if key in quantities:
            problems.append(
                Problem(
                    where,
                    f"{reporter} {code} {year}: the production quantity is given again "
                    f"({quantities[key][1]} gave it): it would be counted twice",
                    "Keep one PRODQNT row per reporter, product and year.",
                )
            )
            continue
        quantities[key] = (quantity, where)
    records: list[ProductionRecord] = []
    for key, (quantity, where) in quantities.items():
        unit = units.get(key)
        if unit is None:
            problems.append(
                Problem(
                    where,
                    f"{key[0]} {key[1]} {key[2]}: the quantity {quantity:g} has no unit (no "
                    "QNTUNIT row for this reporter, product and year)",
                    "Download the QNTUNIT indicator with PRODQNT.",
                )
            )
            continue
        factor = _PLAIN_MASS_KG.get(unit[0].lower())
        amount = quantity * factor if factor is not None else quantity
        if factor is not None and amount > MAX_GOODS_KG:  # checked before its unit was known
            problems.append(
                Problem(
                    where,
                    f"{quantity:g} {unit[0]} is no mass of goods ({amount:.3g} kg is more than "
                    f"{MAX_GOODS_KG:.0e} kg)",
                    "Write the quantity in the unit its QNTUNIT row names.",
                )
            )
            continue
        records.append(
            ProductionRecord(key[2], key[0], key[1], amount, "kg" if factor else unit[0])
        )
    if problems:
        raise _capped(problems)
    return ProductionTable(records, sorted(confidential - set(quantities)))


@dataclass(frozen=True)
class MappedProduction:
    """Element masses per (flow, stage, element, region, year) in kg/year, and what could not be
    mapped: codes the mapping does not know (kg, all years together), quantities that are no mass
    of the goods ({code: {unit: quantity}}), confidential quantities, and the EU-27 aggregate (kg: it would
    count the Member States twice)."""

    rows: list[dict[str, Any]]
    unmapped: dict[str, float]
    not_mass: dict[str, dict[str, float]]  # {code: {unit: quantity, all years together}}
    confidential: list[tuple[str, str, int]]
    aggregates: dict[str, float]
    # the flows each confidential (reporter, code, year) would feed through the mapping
    withheld: dict[tuple[str, str, int], frozenset[str]] = field(default_factory=dict)


def map_production(
    table: ProductionTable, mapping: list[MappingRow], countries: Countries | None = None
) -> MappedProduction:
    """Element masses of the produced goods through the mapping; a code maps through the longest
    mapping code it starts with. A quantity in ``kg X`` (a named substance) maps only through a
    row whose compound is X; one in pieces, m³ or another unit is listed in ``not_mass``."""
    countries = countries or Countries.load()
    lookup = mapping_lookup(mapping)
    rows: list[dict[str, Any]] = []
    unmapped: dict[str, float] = {}
    not_mass: dict[str, dict[str, float]] = {}

    def listed(record: ProductionRecord) -> None:
        units = not_mass.setdefault(record.code, {})
        units[record.unit] = units.get(record.unit, 0.0) + record.quantity

    aggregates: dict[str, float] = {}
    for record in table.records:
        if record.reporter in (EU27, WORLD, EXTRA_EU):
            if record.unit == "kg":
                aggregates[record.reporter] = aggregates.get(record.reporter, 0.0) + record.quantity
            continue
        found = lookup(record.code)
        if not found:
            if record.unit == "kg":
                unmapped[record.code] = unmapped.get(record.code, 0.0) + record.quantity
            else:
                listed(record)
            continue
        substance = record.unit[3:].strip() if record.unit.lower().startswith("kg ") else None
        readable = [
            m for m in found if record.unit == "kg" or (substance and m.compound == substance)
        ]
        if not readable:
            listed(record)
        for m in readable:
            rows.append(
                {
                    "year": record.year,
                    "flow": m.flow,
                    "stage": m.stage,
                    "code": record.code,
                    "element": m.element,
                    "region": record.reporter,
                    "region_group": countries.group(record.reporter),
                    "goods_kg": record.quantity,
                    "element_kg": record.quantity * m.content,
                    "source": m.source,
                }
            )
    withheld = {
        key: frozenset(m.flow for m in lookup(key[1]))
        for key in table.confidential
        if lookup(key[1]) and key[0] not in (EU27, WORLD, EXTRA_EU)
    }
    return MappedProduction(
        rows, unmapped, not_mass, list(table.confidential), aggregates, withheld
    )


def production_values(
    mapped: MappedProduction,
    flow: str,
    regions: dict[str, str],
    unit_kg: float = 1000.0,
    dimension: str = "region",
    leave_out_confidential: bool = False,
) -> dict[str, Any]:
    """The value of a production flow of the model, keyed by region: ``{dimension: {'BE-other':
    {Ni: {2022: t}}}}``. ``regions`` maps ISO codes and groups (EU27) to the model's coordinates
    ({'BE': 'BE-other', 'EU27': 'EU-other'}); several countries may map to one coordinate (their
    masses add up); a country it does not name goes to ``regions['*']`` if given, otherwise the call
    fails naming it. Masses in ``unit_kg`` (t). An element the table holds no production of is left
    out of a region's value, not set to zero: give it from another source (or 0). A confidential
    quantity that would feed ``flow`` stops the call (the region's total would be low without a
    word), unless ``leave_out_confidential`` says to add up the rest."""
    withheld = sorted(k for k, flows in mapped.withheld.items() if flow in flows)
    if withheld and not leave_out_confidential:
        named = ", ".join(f"{r} {c} {y}" for r, c, y in withheld[:10])
        more = f" and {len(withheld) - 10} more" if len(withheld) > 10 else ""
        raise CritflowError(
            "flow=",
            f"the production of '{flow}' is confidential for {named}{more}: the regions' totals "
            "would be too low",
            "Estimate those quantities from another source (a company report, the trade "
            "balance) and add them, or pass leave_out_confidential=True to add up the rest.",
        )
    values: dict[str, dict[str, dict[int, float]]] = {}
    unknown: set[str] = set()
    for row in mapped.rows:
        if row["flow"] != flow:
            continue
        coordinate = regions.get(row["region"], regions.get(row["region_group"], regions.get("*")))
        if coordinate is None:
            unknown.add(row["region"])
            continue
        by_element = values.setdefault(coordinate, {}).setdefault(row["element"], {})
        by_element[row["year"]] = by_element.get(row["year"], 0.0) + row["element_kg"] / unit_kg
    if unknown:
        raise CritflowError(
            "regions=",
            f"the production names countries the model's regions do not: "
            f"{', '.join(sorted(unknown))}",
            "Map them to a coordinate (or give '*': RoW for the rest).",
        )
    if not values:
        known = sorted({row["flow"] for row in mapped.rows})
        raise CritflowError(
            "flow=",
            f"no mapped production is for the flow '{flow}'",
            f"The mapping names the flows {', '.join(known)}."
            if known
            else "No code of the table is in the mapping: see mapped.unmapped.",
        )
    return {dimension: values}
