"""PRODCOM tables (Eurostat SDMX-CSV and TSV) through a mapping file.

The extracts below are synthetic, written in Eurostat's download format (DS-059358: reporter,
product, indicators PRODQNT / QNTUNIT / PRODVAL, TIME_PERIOD, OBS_VALUE, OBS_FLAG) to test the
reader; their numbers and codes are no data. Expected element masses are quantity x content, the
content from the mapping's number or from the compound's formula by hand (NiSO4: 58.693 / (58.693 +
32.06 + 4 x 15.999) = 0.37928).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.errors import CritflowError
from critflow.model.load import model_from_dict
from critflow.model.production_tables import (
    map_production,
    production_values,
    read_production_table,
)
from critflow.model.trade_tables import read_mapping

NISO4 = 58.693 / (58.693 + 32.06 + 4 * 15.999)

MAPPING = """code,flow,stage,element,content,compound,source
# synthetic PRODCOM codes for the test
11111111,refining,refined,Ni,0.998,,test: nickel metal
22222222,refining,refined,Ni,,NiSO4,test: nickel sulphate by formula
333333,refining,refined,Co,0.5,,test: a 6-digit prefix
44444444,refining,refined,Co,0.7,,test: counted in pieces
"""

HEADER = "DATAFLOW,LAST UPDATE,freq,reporter,product,indicators,TIME_PERIOD,OBS_VALUE,OBS_FLAG\n"
D = "ESTAT:DS-059358(1.0),01/06/24,A"
CSV = (
    HEADER
    + "\n".join(
        f"{D},{row}"
        for row in [
            "BE,11111111,PRODQNT,2022,1000,",
            "BE,11111111,QNTUNIT,2022,kg,",
            "BE,11111111,PRODVAL,2022,25000,",  # euro: not a quantity
            "FR,11111111,PRODQNT,2022,2,",
            "FR,11111111,QNTUNIT,2022,t,",
            "EL,22222222,PRODQNT,2022,500,",  # Eurostat's EL: Greece
            "EL,22222222,QNTUNIT,2022,kg NiSO4,",
            "DE,22222222,PRODQNT,2022,,c",  # confidential, not zero
            "DE,22222222,QNTUNIT,2022,kg NiSO4,",
            "IT,22222222,PQNTFLAG,2022,:C,",  # confidential through the flag indicator
            "BE,33333399,PRODQNT,2022,300,",
            "BE,33333399,QNTUNIT,2022,kg,",
            "BE,44444444,PRODQNT,2022,40,",
            "BE,44444444,QNTUNIT,2022,p/st,",  # pieces: no mass
            "BE,99999999,PRODQNT,2022,7,",
            "BE,99999999,QNTUNIT,2022,kg,",  # no mapping: listed
            "EU27_2020,11111111,PRODQNT,2022,9000,",
            "EU27_2020,11111111,QNTUNIT,2022,kg,",  # the aggregate: kept apart
        ]
    )
    + "\n"
)

TSV = (
    "freq,reporter,product,indicators\\TIME_PERIOD\t2021 \t2022 \n"
    "A,BE,11111111,PRODQNT\t: \t1000 \n"
    "A,BE,11111111,QNTUNIT\t: \tkg \n"
    "A,FR,11111111,PRODQNT\t5 \t2 \n"
    "A,FR,11111111,QNTUNIT\tt \tt \n"
    "A,EL,22222222,PRODQNT\t: \t500 \n"
    "A,EL,22222222,QNTUNIT\t: \tkg NiSO4 \n"
    "A,DE,22222222,PRODQNT\t:c \t:c \n"
    "A,BE,33333399,PRODQNT\t: \t300 p\n"
    "A,BE,33333399,QNTUNIT\t: \tkg \n"
)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def mapping(tmp_path):
    return read_mapping(_write(tmp_path, "prodcom_mapping.csv", MAPPING))


def _mass(mapped, region, element, year=2022):
    return sum(
        r["element_kg"]
        for r in mapped.rows
        if r["region"] == region and r["element"] == element and r["year"] == year
    )


def test_sdmx_csv_through_the_mapping(tmp_path, mapping):
    table = read_production_table(_write(tmp_path, "prodcom.csv", CSV))
    mapped = map_production(table, mapping)
    assert _mass(mapped, "BE", "Ni") == pytest.approx(1000 * 0.998, rel=1e-12)
    assert _mass(mapped, "FR", "Ni") == pytest.approx(2000 * 0.998, rel=1e-12)  # t → kg
    assert _mass(mapped, "GR", "Ni") == pytest.approx(500 * NISO4, rel=1e-4)  # kg NiSO4
    assert _mass(mapped, "BE", "Co") == pytest.approx(300 * 0.5, rel=1e-12)  # by its prefix
    assert mapped.unmapped == {"99999999": 7.0}
    assert mapped.not_mass == {"44444444": {"p/st": 40.0}}
    assert mapped.aggregates == {"EU27": 9000.0}
    assert mapped.confidential == [("DE", "22222222", 2022), ("IT", "22222222", 2022)]
    assert {r["region_group"] for r in mapped.rows} == {"EU27"}


def test_tsv_gives_what_the_csv_gives(tmp_path, mapping):
    from_tsv = map_production(read_production_table(_write(tmp_path, "p.tsv", TSV)), mapping)
    from_csv = map_production(read_production_table(_write(tmp_path, "p.csv", CSV)), mapping)
    for region, element in [("BE", "Ni"), ("FR", "Ni"), ("GR", "Ni"), ("BE", "Co")]:
        assert _mass(from_tsv, region, element) == pytest.approx(_mass(from_csv, region, element))
    assert _mass(from_tsv, "FR", "Ni", 2021) == pytest.approx(5000 * 0.998)
    assert ("DE", "22222222", 2021) in from_tsv.confidential


def test_a_substance_unit_maps_only_through_its_own_compound(tmp_path):
    wrong = read_mapping(
        _write(tmp_path, "m.csv", "code,flow,element,compound,source\n22222222,refining,Ni,NiO,t\n")
    )
    text = HEADER + f"{D},EL,22222222,PRODQNT,2022,500,\n{D},EL,22222222,QNTUNIT,2022,kg NiSO4,\n"
    mapped = map_production(read_production_table(_write(tmp_path, "p.csv", text)), wrong)
    assert mapped.rows == []  # kg of NiSO4 is not kg of NiO: never guessed
    assert mapped.not_mass == {"22222222": {"kg NiSO4": 500.0}}


def test_production_values_feed_a_regional_model(tmp_path, mapping):
    mapped = map_production(read_production_table(_write(tmp_path, "p.csv", CSV)), mapping)
    # DE's and IT's nickel sulphate is confidential: the totals would be low without a word
    with pytest.raises(CritflowError, match=r"confidential for DE 22222222 2022, IT 22222222 2022"):
        production_values(mapped, "refining", {"BE": "BE", "*": "EU-other"})
    value = production_values(
        mapped, "refining", {"BE": "BE", "*": "EU-other"}, leave_out_confidential=True
    )
    assert value["region"]["BE"]["Ni"][2022] == pytest.approx(0.998)  # t
    # FR and GR go to one coordinate: their masses add up
    assert value["region"]["EU-other"]["Ni"][2022] == pytest.approx(
        (2000 * 0.998 + 500 * NISO4) / 1000, rel=1e-4
    )
    # an element the table has no production of is left out, not set to zero: here it is none
    assert "Co" not in value["region"]["EU-other"]
    value["region"]["EU-other"]["Co"] = {2022: 0.0}
    model = model_from_dict(
        {
            "critflow": 1,
            "name": "production into a regional model",
            "time": {"start": 2022, "end": 2022},
            "unit": "t/a",
            "elements": ["Ni", "Co"],
            "dimensions": {"region": ["BE", "EU-other"]},
            "processes": [
                {"id": "refinery", "kind": "source", "over": ["region"]},
                {"id": "market", "kind": "sink", "over": ["region"]},
            ],
            "flows": [
                {"id": "refining", "from": "refinery", "to": "market", "value": value},
            ],
        }
    )
    from critflow.engine import solve

    flows = solve(model).flows()
    ni = flows[(flows.flow == "refining") & (flows.element == "Ni")].set_index("region")
    assert ni.loc["BE", "value"] == pytest.approx(0.998)
    with pytest.raises(CritflowError, match="regions do not: FR, GR"):
        production_values(mapped, "refining", {"BE": "BE"}, leave_out_confidential=True)
    with pytest.raises(CritflowError, match="no mapped production is for the flow 'imports'"):
        production_values(mapped, "imports", {"*": "BE"})


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("BE,11111111,PRODQNT,2022,nan,", "not a finite number"),
        ("BE,11111111,PRODQNT,2022,inf,", "not a finite number"),
        ("BE,11111111,PRODQNT,2022,1e308,", "more than"),
        ("BE,11111111,PRODQNT,2022,-5,", "negative"),
        ("BE,11111111,PRODQNT,2022,lots,", "is not a mass"),
        ("XX,11111111,PRODQNT,2022,5,", "no ISO 3166 country code"),
        ("BE,11111111,PRODQNT,last year,5,", "is not a year"),
        ("BE,,PRODQNT,2022,5,", "is no commodity code"),
        ("BE,11111111,PRODQNT,2022,5,,extra", "the row has 10 values, the header 9"),
    ],
)
def test_bad_values_are_named_with_their_line(tmp_path, row, message):
    text = HEADER + f"{D},BE,11111111,QNTUNIT,2022,kg,\n{D},{row}\n"
    with pytest.raises(CritflowError, match=message) as error:
        read_production_table(_write(tmp_path, "p.csv", text))
    assert "p.csv, line 3" in str(error.value)


def test_table_level_mistakes_are_refused_with_a_fix(tmp_path):
    twice = HEADER + "\n".join(
        f"{D},{r}"
        for r in [
            "BE,11111111,PRODQNT,2022,5,",
            "BE,11111111,PRODQNT,2022,5,",
            "BE,11111111,QNTUNIT,2022,kg,",
        ]
    )
    with pytest.raises(CritflowError, match=r"given again .*line 2.*counted twice"):
        read_production_table(_write(tmp_path, "twice.csv", twice))
    no_unit = HEADER + f"{D},BE,11111111,PRODQNT,2022,5,\n"
    with pytest.raises(CritflowError, match=r"has no unit.*Download the QNTUNIT"):
        read_production_table(_write(tmp_path, "nounit.csv", no_unit))
    trade = "DATAFLOW,freq,reporter,partner,flow,TIME_PERIOD,OBS_VALUE\nX,A,BE,CN,1,2022,5\n"
    with pytest.raises(
        CritflowError, match="not a Eurostat PRODCOM extract: no column for product"
    ):
        read_production_table(_write(tmp_path, "trade.csv", trade))
    binary = tmp_path / "p.xlsx"
    binary.write_bytes(b"PK\x03\x04\x00\x00binary")
    with pytest.raises(CritflowError, match="NUL bytes"):
        read_production_table(binary)
    with pytest.raises(CritflowError, match="no such PRODCOM table"):
        read_production_table(tmp_path / "missing.csv")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BE", "FR", "DE", "NL", "EU27_2020"]),
            st.sampled_from(["11111111", "33333301", "44444444", "55555555"]),
            st.integers(2015, 2024),
            st.floats(0, 1e9, allow_nan=False),
            st.sampled_from(["kg", "t", "p/st", "m3"]),
        ),
        max_size=30,
        unique_by=lambda r: r[:3],
    )
)
def test_nothing_is_dropped_silently(tmp_path_factory, cells):
    """Every quantity lands once: in the mapped rows, the unmapped codes, the non-mass units or
    the aggregate — and the mapped element mass is the quantity in kg times the content."""
    tmp = tmp_path_factory.mktemp("prodcom")
    mapping = read_mapping(_write(tmp, "m.csv", MAPPING))
    lines = [HEADER.strip()]
    for reporter, code, year, quantity, unit in cells:
        lines.append(f"{D},{reporter},{code},PRODQNT,{year},{quantity!r},")
        lines.append(f"{D},{reporter},{code},QNTUNIT,{year},{unit},")
    mapped = map_production(read_production_table(_write(tmp, "p.csv", "\n".join(lines))), mapping)
    content = {"11111111": 0.998, "33333301": 0.5, "44444444": 0.7}
    factor = {"kg": 1.0, "t": 1000.0}
    expected_rows = 0
    for reporter, code, year, quantity, unit in cells:
        kg = quantity * factor[unit] if unit in factor else None
        if reporter == "EU27_2020":
            continue
        if code not in content:
            if kg is None:
                assert unit in mapped.not_mass[code]
            else:
                assert code in mapped.unmapped
            continue
        if kg is None:
            assert unit in mapped.not_mass[code]
            continue
        expected_rows += 1
        (row,) = [
            r for r in mapped.rows if (r["region"], r["code"], r["year"]) == (reporter, code, year)
        ]
        assert math.isclose(row["element_kg"], kg * content[code], rel_tol=1e-12, abs_tol=1e-12)
    assert len(mapped.rows) == expected_rows
    aggregate = sum(q * factor[u] for r, _, _, q, u in cells if r == "EU27_2020" and u in factor)
    assert mapped.aggregates.get("EU27", 0.0) == pytest.approx(aggregate)
    unmapped = sum(
        q * factor[u]
        for r, c, _, q, u in cells
        if r != "EU27_2020" and c == "55555555" and u in factor
    )
    assert sum(mapped.unmapped.values()) == pytest.approx(unmapped)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet=",\t\\:;\"'\n abcCpkgtPRODQNTUNIT0123456789.-eE", max_size=60),
            st.sampled_from(
                [
                    "A,BE,11111111,PRODQNT\t1 \t:c ",
                    f"{D},BE,11111111,PRODQNT,2022,1,",
                    f"{D},BE,11111111,QNTUNIT,2022,kg,",
                    "freq,reporter,product,indicators\\TIME_PERIOD\t2022 ",
                ]
            ),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_hostile_tables_give_a_message_never_a_traceback(tmp_path_factory, lines, csv_header):
    tmp = tmp_path_factory.mktemp("hostile")
    text = (HEADER if csv_header else "") + "\n".join(lines)
    try:
        table = read_production_table(_write(tmp, "p.csv", text))
    except CritflowError as error:
        assert str(error).strip()
    else:
        assert all(r.quantity >= 0 and math.isfinite(r.quantity) for r in table.records)
