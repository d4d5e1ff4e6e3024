"""Breaking regions and trade from outside (issue 23): each case once gave a wrong CRMA number, a
traceback, a hang or a memory blow-up. Expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import pytest

from critflow.engine import solve
from critflow.indicators.catalogue import Context, evaluate_indicator
from critflow.indicators.regional import system_table
from critflow.model.load import model_from_text


def _value(model, results, name, element=None):
    return float(evaluate_indicator(Context(model, results), name, element)[0, 0])


# Union EU = FL + EU-other. market[FL] takes 120 t from CN (its balancing import), keeps 60 for its
# use, re-exports 40 to CN and passes 20 on to market[EU-other], which imports 80 more from CN for
# its use of 100. Apparent consumption = imports - exports = 200 - 40 = 160 t (= use 60 + 100),
# not the 220 t entering the markets. Of FL's imports 1/3 leave the Union again, so CN supplies
# 120 * 2/3 + 80 = 160 t of the Union's consumption: 100 %, not 200/220 nor 200/160.
REEXPORT = """
critflow: 1
name: re-export
time: {start: 2030, end: 2030}
elements: [Li]
scope: {region: EU}
dimensions:
  region: {coordinates: [FL, EU-other, CN], groups: {EU: [FL, EU-other]}}
processes:
  - {id: world, kind: source}
  - {id: market, kind: market, over: {region: [FL, EU-other]}, balancing: imports, consumption: true}
  - {id: use, kind: sink, over: {region: [FL, EU-other]}}
  - {id: abroad, kind: sink, over: {region: [CN]}}
flows:
  - {id: imports, from: world, to: market, stage: refined, origin_shares: {region: {CN: 1}}}
  - {id: demand, from: market, to: use, value: {region: {FL: 60, EU-other: 100}}}
  - {id: reexport, from: market, to: abroad, stage: refined, trade: {region: {FL: [CN]}}, value: 40}
  - {id: intra, from: market, to: market, stage: refined, trade: {region: {FL: [EU-other]}},
     value: 20}
"""


def test_reexported_imports_are_not_consumption():
    model = model_from_text(REEXPORT)
    results = solve(model)
    table = system_table(model, results).iloc[0]
    assert table["consumption"] == pytest.approx(160.0)
    assert _value(model, results, "largest_third_country_share", "Li") == pytest.approx(1.0)
    assert table["largest_third_country_share"] == pytest.approx(1.0)


# A chain of two EU processing stages: 100 t concentrate → refinery[FL] (0.9 refined) → cathode[FL]
# (all of it as cathode material) → market[FL]; 10 t more imported from CN for a use of 100 t.
# Union processing output is the 90 t that leave the chain, not 90 + 90 = 180 t: 90 %.
CHAIN = """
critflow: 1
name: chain
time: {start: 2030, end: 2030}
elements: [Li]
scope: {region: EU}
dimensions:
  region: {coordinates: [FL, CN], groups: {EU: [FL]}}
processes:
  - {id: feed, kind: source}
  - {id: refinery, kind: transfer, over: {region: [FL]}, activity: processing,
     transfer: {refined: {default: 0.9}, slag: {default: 0.1}}}
  - {id: cathode, kind: transfer, over: {region: [FL]}, activity: processing,
     transfer: {cam: {default: 1.0}}}
  - {id: world, kind: source}
  - {id: market, kind: market, over: {region: [FL]}, balancing: imports, consumption: true}
  - {id: use, kind: sink, over: {region: [FL]}}
  - {id: waste, kind: sink}
flows:
  - {id: ore, from: feed, to: refinery, stage: concentrate, value: 100}
  - {id: refined, from: refinery, to: cathode, stage: refined}
  - {id: slag, from: refinery, to: waste}
  - {id: cam, from: cathode, to: market, stage: intermediate}
  - {id: imports, from: world, to: market, stage: intermediate, origin_shares: {region: {CN: 1}}}
  - {id: demand, from: market, to: use, value: 100}
"""


def test_processing_chain_output_counted_once():
    model = model_from_text(CHAIN)
    results = solve(model)
    assert _value(model, results, "eu_processing_share", "Li") == pytest.approx(0.9)
    table = system_table(model, results).iloc[0]
    assert table["processing"] == pytest.approx(90.0)
    assert table["largest_third_country_share"] == pytest.approx(0.1)


def _eu_model(coordinates: str, group: str) -> str:
    return f"""
critflow: 1
name: eu group
time: {{start: 2030, end: 2030}}
elements: [Li]
dimensions:
  region: {{coordinates: {coordinates}, groups: {{EU: {group}}}}}
processes:
  - {{id: world, kind: source}}
  - {{id: use, kind: sink, over: [region]}}
flows:
  - {{id: supply, from: world, to: use, value: 1}}
"""


EU27 = "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905


@pytest.mark.parametrize(
    ("coordinates", "group", "message"),
    [
        # a non-member inside the Union: Norway, the United Kingdom (Eurostat's UK), Switzerland
        ("[FL, EU-other, NO, CN]", "[FL, EU-other, NO]", "holds NO, not a Member State"),
        ("[DE, UK, EU-other, CN]", "[DE, UK, EU-other]", "holds UK (GB), not a Member State"),
        ("[FR, CHE, EU-other]", "[FR, CHE, EU-other]", "holds CHE (CH), not a Member State"),
        # a Member State outside the group would be counted as a third country
        ("[FL, EU-other, DE, CN]", "[FL, EU-other]", "DE is an EU-27 Member State of 'region'"),
        # every member by ISO code, one missing (Malta) and no coordinate for the rest
        (
            "[" + ", ".join(c for c in EU27 if c != "MT") + ", CN]",
            "[" + ", ".join(c for c in EU27 if c != "MT") + "]",
            "lacks MT (1 of the EU-27)",
        ),
    ],
    ids=["norway", "uk", "switzerland-alpha3", "member-outside", "malta-missing"],
)
def test_eu_group_is_the_eu27(coordinates, group, message):
    from critflow.errors import CritflowError

    with pytest.raises(CritflowError) as caught:
        model_from_text(_eu_model(coordinates, group))
    text = str(caught.value)
    assert message in text and "dimensions.region.groups.EU" in text, text


@pytest.mark.parametrize(
    ("coordinates", "group"),
    [
        ("[FL, BE-other, EU-other, CN, CH]", "[FL, BE-other, EU-other]"),  # FL: no ISO code
        ("[" + ", ".join(EU27) + ", CN]", "[" + ", ".join(EU27) + "]"),
        ("[BE-VLG, BE-WAL, BE-BRU, EU-other, CN]", "[BE-VLG, BE-WAL, BE-BRU, EU-other]"),
        ("[EL, DE, EU-other, US]", "[EL, DE, EU-other]"),  # Eurostat's EL for Greece
    ],
)
def test_eu_group_accepted(coordinates, group):
    model_from_text(_eu_model(coordinates, group))


TIE = """
critflow: 1
name: tie
time: {start: 2030, end: 2030}
elements: [Li]
scope: {region: EU}
dimensions:
  region: {coordinates: [FL, CN, CL], groups: {EU: [FL]}}
processes:
  - {id: world, kind: source}
  - {id: market, kind: market, over: {region: [FL]}, balancing: imports, consumption: true}
  - {id: use, kind: sink, over: {region: [FL]}}
flows:
  - {id: imports, from: world, to: market, stage: refined,
     origin_shares: {region: {CN: 0.5, CL: 0.5}}}
  - {id: demand, from: market, to: use, value: 100}
"""


def test_largest_supplier_tie_is_named_whole():
    # CN and CL supply 50 t each of 100 t: both are the largest third country, at 50 %
    model = model_from_text(TIE)
    results = solve(model)
    row = system_table(model, results).iloc[0]
    assert row["largest_third_country_share"] == pytest.approx(0.5)
    assert row["country"] == "CL, CN" and row["stage"] == "refined"


def test_largest_supplier_tie_in_supply_shares():
    import pandas as pd

    from critflow.indicators.criticality import largest_third_country_share

    shares = pd.Series({"China": 0.4, "Chile": 0.4, "Germany": 0.2})
    assert largest_third_country_share(shares) == ("Chile, China", 0.4)
    assert largest_third_country_share(pd.Series({"Chile": 0.3, "China": 0.4})) == ("China", 0.4)


def _trade_model(n_regions: int, years: tuple[int, int]) -> dict:
    """Every region's mine sends ore to every region's refinery (a full trade matrix of given
    values); E0 is refined at 0.5, every other element at 0.9. Ten elements share two matrices."""
    regions = [f"R{i:03d}" for i in range(n_regions)]
    elements = [f"E{i}" for i in range(10)]
    start, end = years
    return {
        "critflow": 1,
        "name": "trade matrix",
        "time": {"start": start, "end": end},
        "elements": elements,
        "dimensions": {"region": regions},
        "processes": [
            {"id": "mine", "kind": "source", "over": ["region"]},
            {
                "id": "refinery",
                "kind": "transfer",
                "over": ["region"],
                "transfer": {
                    "refined": {"E0": 0.5, "default": 0.9},
                    "slag": {"E0": 0.5, "default": 0.1},
                },
            },
            {"id": "use", "kind": "sink", "over": ["region"]},
            {"id": "waste", "kind": "sink"},
        ],
        "flows": [
            {
                "id": "ore",
                "from": "mine",
                "to": "refinery",
                "trade": {"region": {r: regions for r in regions}},
                "value": {
                    e: {start: 1.0 + i, end: 2.0 * (1.0 + i)} if end > start else 1.0 + i
                    for i, e in enumerate(elements)
                },
            },
            {"id": "refined", "from": "refinery", "to": "use"},
            {"id": "slag", "from": "refinery", "to": "waste"},
        ],
    }


def _refined_by_region(results, model, n_regions):
    """(P, E) refined mass of each region's refinery, in model units, region by region."""
    ids = [f.id for f in model.spec.flows]
    k = [ids.index(f"refined[R{i:03d}]") for i in range(n_regions)]
    return results.mass_kg[0][..., k] / results.inputs.kg_per_unit  # (P, E, R)


@pytest.mark.parametrize(("n_regions", "years"), [(40, (2030, 2030)), (3, (2030, 2040))])
def test_trade_matrix_solves_lean_and_right(n_regions, years):
    """40 regions: 1,600 given trade values for each of 10 elements in one period. The shared-matrix
    solve built the response of every flow to every given value for every block (10 × 1,680 ×
    1,600 floats, 215 MB; 1.3 GB at 60 regions); now it solves the blocks' own right-hand sides.
    3 regions over 11 years takes the other way (few given values, many periods)."""
    import tracemalloc

    import numpy as np

    from critflow.model.load import model_from_dict

    model = model_from_dict(_trade_model(n_regions, years))
    tracemalloc.start()
    try:
        results = solve(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 60e6, f"solve peaked at {peak / 1e6:.0f} MB"
    refined = _refined_by_region(results, model, n_regions)
    # by hand: each refinery takes n_regions × the ore value, refines 0.5 (E0) or 0.9 of it
    years_n = years[1] - years[0] + 1
    ramp = np.linspace(1.0, 2.0, years_n)[:, None] if years_n > 1 else np.ones((1, 1))
    share = np.array([0.5] + [0.9] * 9)
    expected = ramp * (n_regions * share * (1.0 + np.arange(10)))[None, :]
    np.testing.assert_allclose(refined, np.repeat(expected[..., None], n_regions, -1), rtol=1e-9)


def test_model_past_the_size_limit_is_refused_at_once():
    """1,000 regions × 1,000 products of one process and one flow: 2 million items; expanding it
    took minutes and gigabytes. It is refused, naming the items and the limit, before expansion."""
    import time

    from critflow.errors import CritflowError
    from critflow.model.dimensions import MAX_ITEMS
    from critflow.model.load import model_from_dict

    model = {
        "critflow": 1,
        "name": "too big",
        "time": {"start": 2030, "end": 2030},
        "elements": ["Li"],
        "dimensions": {
            "region": [f"R{i}" for i in range(1000)],
            "product": [f"P{i}" for i in range(1000)],
        },
        "processes": [
            {"id": "sales", "kind": "source", "over": ["region", "product"]},
            {"id": "use", "kind": "sink"},
        ],
        "flows": [{"id": "inflow", "from": "sales", "to": "use", "value": 1}],
    }
    start = time.perf_counter()
    with pytest.raises(CritflowError) as caught:
        model_from_dict(model)
    assert time.perf_counter() - start < 10
    text = str(caught.value)
    assert "2,000,001 items" in text and f"{MAX_ITEMS:,}" in text, text
    assert "process 'sales' × 1,000,000" in text and "processes[0]" in text, text
    # under the limit it loads (a model of 240,000 items loads in about 45 s, linearly)
    model["dimensions"] = {
        "region": [f"R{i}" for i in range(50)],
        "product": [f"P{i}" for i in range(40)],
    }
    assert len(model_from_dict(model).spec.flows) == 2000


# -- fuzzing the dimensions and trade fields ---------------------------------------------------

_JUNK = [
    None, 0, -1, 1.5, float("nan"), "", "x", "FL", "CN>FL", "default", [], [None], [[]], {},
    {"a": 1}, {"FL": None}, {"region": None}, {"region": 5}, {"region": []}, [{"x": 1}], True,
    ["FL", "FL"], {"coordinates": 5}, {"groups": 3}, {"coordinates": ["A"], "groups": {"EU": 5}},
    {"coordinates": ["A"], "groups": {"EU": [["A"]]}}, {"coordinates": ["A"], "groups": [1]},
    {"coordinates": [{"a": 1}]}, {"CN": 5}, {"CN": [5]}, {5: [1]}, {"region": {"CN": "abc"}},
    {"region": {"CN": {"Li": [1]}}}, {"region": {"CN": {"FL": 1}}}, {"region": {"CN": 0.5, 3: 1}},
]  # fmt: skip


def _paths(node, path=()):
    if path:
        yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*path, i))


def _fuzz_base():
    import yaml

    from tests.indicators.test_regional import SYSTEM

    base = yaml.safe_load(SYSTEM)
    paths = [p for p in _paths(base) if p[0] in ("dimensions", "processes", "flows", "scope")]
    return base, paths


_BASE, _PATHS = _fuzz_base()
_FIELDS = ["over", "trade", "origin_shares", "groups", "aggregates", "coordinates", "from", "to"]


def _mutate(data, path, value, add_field):
    node = data
    for key in path[:-1]:
        node = node[key]
    if add_field is not None and isinstance(node, dict):
        node[add_field] = value
    else:
        node[path[-1]] = value


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_PATHS),
            st.sampled_from(_JUNK),
            st.one_of(st.none(), st.sampled_from(_FIELDS)),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_fuzzed_dimensions_and_trade_give_messages(changes):
    """Junk anywhere in a regional model's dimensions, spans, trades and origin shares: a
    CritflowError naming a field path, never a traceback (unhashable coordinates, non-list groups,
    over: [{…}], over: {region: []}, processes: 1.5, from: {…} all raised TypeError or KeyError)."""
    import copy

    import yaml

    from critflow.errors import CritflowError

    data = copy.deepcopy(_BASE)
    for path, value, field in changes:
        try:
            _mutate(data, path, copy.deepcopy(value), field)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the path
    try:
        model = model_from_text(yaml.safe_dump(data))
        solve(model)
    except CritflowError as exc:
        assert all(p.where for p in exc.problems)
        assert "line" in str(exc) or "model" in str(exc), str(exc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((("dimensions", "region", "groups"), [1], None), "groups is a mapping"),
        ((("dimensions", "region", "groups", "EU"), 5, None), "group 'EU' names [5]"),
        ((("dimensions", "region", "coordinates", 0), {"a": 1}, None), "cannot be a coordinate"),
        ((("processes", 0, "over"), [{"a": 1}], None), "over is a list of dimensions"),
        ((("processes", 0, "over"), {"region": []}, None), "lists no coordinates of 'region'"),
        ((("flows", 0, "from"), {"a": 1}, None), "flows[0].from): no process {'a': 1}"),
        ((("flows", 0, "from"), "mien", None), "flows[0].from): no process 'mien'. Did you mean"),
        ((("flows", 7, "origin_shares"), 5, None), "origin_shares names one dimension"),
    ],
)
def test_fuzz_findings_name_the_field(change, message):
    import copy

    import yaml

    from critflow.errors import CritflowError

    data = copy.deepcopy(_BASE)
    _mutate(data, *change)
    with pytest.raises(CritflowError) as caught:
        model_from_text(yaml.safe_dump(data))
    assert message in str(caught.value), str(caught.value)


# -- trade tables (Comtrade, Eurostat) and mapping files ----------------------------------------

_H = "refYear,reporterISO,partnerISO,flowCode,cmdCode,netWgt\n"
_OK = "2022,BEL,CHL,M,283691,1000\n"
_TSV = "freq,reporter,partner,product,flow,indicators\\TIME_PERIOD\t2022 \n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # each once read silently wrong (NaN and 'inf' dropped as flags, 1e308 kept, 1e307 x 100
        # became inf) or raised a traceback (years, encodings, short rows, a missing file)
        ((_H + "2022,BEL,CHL,M,283691,nan\n").encode(), "line 2, netWgt: 'nan' is no mass"),
        ((_H + "2022,BEL,CHL,M,283691,inf\n").encode(), "line 2, netWgt: 'inf' is no mass"),
        ((_H + _OK + "2022,BEL,CHL,M,283691,1e308\n").encode(), "line 3, netWgt: '1e308' is no"),
        ((_TSV + "A,BE,CL,28369100,1,QUANTITY_IN_100KG\t1e307 \n").encode(), "line 2, 2022"),
        ((_H + "2022,BEL,CHL,M,283691,-5\n").encode(), "line 2, netWgt: the mass -5.0 is negative"),
        ((_H + "abcd,BEL,CHL,M,283691,5\n").encode(), "line 2, refYear: 'abcd' is not a year"),
        ((_TSV.replace("2022", "abc") + "A,BE,CL,1,1,QUANTITY_IN_100KG\t1\n").encode(), "line 1"),
        ((_H + "2022,BEL,CHL,M\n").encode(), "line 2: the row has 4 values, the header 6"),
        ((_H + '2022,BEL,CHL,M,283691,"Lithium, carbonate",5\n').encode(), "7 values, the header"),
        ((_H + "2022,BEL,CHL,M,,5\n").encode(), "line 2, cmdCode: '' is no commodity code"),
        ((_H + "2022,BEL,XXX,M,283691,5\n").encode(), "line 2, partnerISO: 'XXX' is no ISO 3166"),
        (_H.encode() + _OK.encode() + "2022,BEL,CHL,M,283691,caf\xe9\n".encode("latin-1"), "line 3"),
        (b"PK\x03\x04\x00\x00binary", "line 1: the trade table holds NUL bytes"),
        (b"freq,partner\\TIME_PERIOD\t2022 \nA,CL\t10 \n", "not a Eurostat Comext"),
        ((_TSV + "A,BE,CL,28369100,1\t10 \n").encode(), "line 2: the line has 5 labels"),
        (
            b"DATAFLOW,freq,reporter,partner,product,flow,indicators,TIME_PERIOD,OBS_VALUE\n"
            b"X,A,BE,CL,28369100,1,QUANTITY_IN_100KG,20x2,12\n",
            "line 2, TIME_PERIOD: '20x2' is not a year",
        ),
    ],
    ids=[
        "nan", "inf", "1e308", "tsv-overflow", "negative", "year", "tsv-year", "short-row",
        "unquoted-comma", "no-code", "unknown-country", "latin-1", "binary", "tsv-columns",
        "tsv-ragged", "eurostat-csv-year",
    ],
)  # fmt: skip
def test_trade_table_errors_name_file_and_line(tmp_path, content, message):
    from critflow.errors import CritflowError
    from critflow.model.trade_tables import read_trade_table

    path = tmp_path / "table.csv"
    path.write_bytes(content)
    with pytest.raises(CritflowError) as caught:
        read_trade_table(path)
    text = str(caught.value)
    assert str(path) in text and message in text, text


def test_trade_table_encodings_files_and_size(tmp_path, monkeypatch):
    from critflow.errors import CritflowError
    from critflow.model import trade_tables
    from critflow.model.trade_tables import read_trade_table

    for encoding, prefix in (("utf-16", b""), ("utf-8", b"\xef\xbb\xbf")):  # Excel's two exports
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes(prefix + (_H + _OK).encode(encoding))
        assert read_trade_table(path)[0].goods_kg == 1000.0
    for path, message in ((tmp_path / "none.csv", "no such trade table"), (tmp_path, "folder")):
        with pytest.raises(CritflowError, match=message):
            read_trade_table(path)
    # a huge file is refused by its size, before it is read
    monkeypatch.setattr(trade_tables, "MAX_TABLE_BYTES", 1000)
    path = tmp_path / "huge.csv"
    path.write_text(_H + _OK * 100)
    with pytest.raises(CritflowError, match="MiB, more than critflow reads"):
        read_trade_table(path)
    monkeypatch.undo()
    # a million bad rows: the first 50 are named, the rest counted (not a 1,000,000-line message)
    path.write_text(_H + "2022,BEL,CHL,M,283691,-1\n" * 20000)
    with pytest.raises(CritflowError) as caught:
        read_trade_table(path)
    assert len(caught.value.problems) == 51
    assert "and 19,950 more bad values" in str(caught.value)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # comment lines shifted every line number after them
        ("# a note\n# another\n283691,imports,refined,Li,abc,,src\n", "line 4: code 283691"),
        # the same code mapped twice to one flow and element: its mass counted twice
        (
            "283691,imports,refined,Li,,Li2CO3,a\n283691,imports,refined,Li,,Li2CO3,b\n",
            "line 3: code 283691 maps to imports Li again (line 2 did)",
        ),
        ("283691,,refined,Li,0.1,,src\n", "line 2: code 283691 names no flow"),
        ("283691,imports,refined,Xx,0.1,,src\n", "'Xx' is not an element symbol"),
        ("283691,imports,refined,Li,0.1\n", "the row has 5 values, the header 7"),
    ],
)
def test_mapping_file_errors(tmp_path, rows, message):
    from critflow.errors import CritflowError
    from critflow.model.trade_tables import read_mapping

    path = tmp_path / "mapping.csv"
    path.write_text("code,flow,stage,element,content,compound,source\n" + rows, encoding="utf-8")
    with pytest.raises(CritflowError) as caught:
        read_mapping(path)
    assert f"{path}, {message}" in str(caught.value) or message in str(caught.value), str(
        caught.value
    )


def test_schema_message_names_the_path_as_written():
    """An unknown key in a process spanning a dimension named the expanded model's index in its
    text ('unknown key in processes[3].lifetime' for the file's processes[2])."""
    from critflow.errors import CritflowError

    text = REEXPORT.replace(
        "  - {id: abroad,",
        "  - {id: stock, kind: stock, over: [region], lifetime: {distribution: fixed, value: 5}}\n"
        "  - {id: abroad,",
    )
    with pytest.raises(CritflowError) as caught:
        model_from_text(text)
    message = str(caught.value)
    assert (
        "(processes[3].lifetime.value, region FL): unknown key 'value' in processes[3]" in message
    )


@pytest.mark.parametrize(
    ("ore", "message"),
    [
        ("{id: ore, from: mine, to: market, value: 100}", "'mine' (CN) and 'market' (FL) share no"),
        ("{id: ore, from: mine, to: market, value: 100, trade: {region: {}}}", "lists no route"),
    ],
)
def test_flow_between_disjoint_coordinates_is_refused(ore, message):
    """A flow from a process at CN only to one at FL only expanded to no flow at all: its 100 t
    vanished and the model solved without it."""
    from critflow.errors import CritflowError

    text = f"""
critflow: 1
name: empty join
time: {{start: 2030, end: 2030}}
elements: [Li]
dimensions:
  region: {{coordinates: [FL, CN]}}
processes:
  - {{id: mine, kind: source, over: {{region: [CN]}}}}
  - {{id: market, kind: market, over: {{region: [FL]}}, balancing: supply}}
  - {{id: world, kind: source}}
  - {{id: use, kind: sink, over: {{region: [FL]}}}}
flows:
  - {ore}
  - {{id: supply, from: world, to: market}}
  - {{id: demand, from: market, to: use, value: 50}}
"""
    with pytest.raises(CritflowError) as caught:
        model_from_text(text)
    assert "flows[0]" in str(caught.value) and message in str(caught.value), str(caught.value)


def test_equal_pairs_is_nonzero_of_the_dense_comparison():
    import numpy as np
    from hypothesis import given
    from hypothesis import strategies as st

    from critflow.engine.topology import equal_pairs

    ints = st.lists(st.integers(0, 6), max_size=30).map(lambda v: np.array(v, dtype=np.int64))

    @settings(max_examples=200, deadline=None)
    @given(ints, ints)
    def check(a, b):
        want = np.nonzero(a[:, None] == b[None, :])
        got = equal_pairs(a, b)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])

    check()


def test_many_processes_solve_without_a_dense_process_by_flow_matrix():
    """80 regions × 80 products: 6,400 transfer processes, 12,800 flows. The balance equations
    were found through a dense (transfer entries × flows) comparison (82 MB here, 1.8 GB at 150 ×
    200, where the run peaked at 2.2 GB resident and now at 0.5 GB), and the process balances by a
    loop over processes scanning every flow."""
    import tracemalloc

    import numpy as np

    from critflow.model.load import model_from_dict

    n = 80
    model = model_from_dict(
        {
            "critflow": 1,
            "name": "many processes",
            "time": {"start": 2030, "end": 2030},
            "elements": ["Li"],
            "dimensions": {
                "region": [f"R{i}" for i in range(n)],
                "product": [f"P{i}" for i in range(n)],
            },
            "processes": [
                {"id": "sales", "kind": "source", "over": ["region", "product"]},
                {
                    "id": "mid",
                    "kind": "transfer",
                    "over": ["region", "product"],
                    "transfer": {"out": {"default": 0.75}, "loss": {"default": 0.25}},
                },
                {"id": "use", "kind": "sink"},
            ],
            "flows": [
                {"id": "inflow", "from": "sales", "to": "mid", "value": 2},
                {"id": "out", "from": "mid", "to": "use"},
                {"id": "loss", "from": "mid", "to": "use"},
            ],
        }
    )
    tracemalloc.start()
    try:
        results = solve(model)
        into = results.balance_arrays()[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40e6, f"solve and balance peaked at {peak / 1e6:.0f} MB"
    ids = [f.id for f in model.spec.flows]
    mass = results.mass_kg[0, 0, 0] / results.inputs.kg_per_unit
    outs = [k for k, i in enumerate(ids) if i.startswith("out[")]
    np.testing.assert_allclose(mass[outs], 1.5)  # 2 t × 0.75 in every region and product
    # every mid takes 2 t in and the sink takes its 1.5 + 0.5 t: 4 t per region and product
    np.testing.assert_allclose(into[0, 0, 0].sum() / results.inputs.kg_per_unit, 4 * n * n)


def test_many_bad_coordinates_are_counted_not_listed():
    """10,000 numeric coordinates (HS codes written unquoted) gave 10,000 paragraphs; the first 50
    are named, with how to write them, and the rest counted."""
    from critflow.errors import CritflowError
    from critflow.model.load import model_from_dict

    model = {
        "critflow": 1,
        "name": "numeric coordinates",
        "time": {"start": 2030, "end": 2030},
        "elements": ["Li"],
        "dimensions": {"product": list(range(280000, 290000))},
        "processes": [{"id": "a", "kind": "source", "over": ["product"]}],
        "flows": [],
    }
    with pytest.raises(CritflowError) as caught:
        model_from_dict(model)
    problems = caught.value.problems
    assert len(problems) == 51 and "and 9,951 more problems" in problems[-1].what
    assert "Quote it: '280000'" in problems[0].fix
