"""Models with dimensions (region, product, …): expansion into blocks, labelled results, errors.

The hand-computed numbers below follow from the model text in each test: every figure is a given
value times a transfer coefficient or a composition, as the comments say.
"""

from __future__ import annotations

import numpy as np
import pytest

from critflow.engine import solve
from critflow.errors import CritflowError
from critflow.model.load import model_from_text

TWO_REGIONS = """
critflow: 1
name: two regions
time: {start: 2020, end: 2021}
unit: t/a
elements: [Li, rest]
dimensions:
  region: {coordinates: [FL, EU-other, CN], groups: {EU: [FL, EU-other]}}
processes:
  - {id: mine, kind: source, over: {region: [CN]}}
  - {id: refining, kind: transfer, over: {region: [FL, CN]}, activity: processing,
     transfer: {refined: {default: 0.9},
                refined_cn: {default: {region: {CN>FL: 0.2, CN>EU-other: 0.6}}},
                slag: {default: {region: {FL: 0.1, CN: 0.2}}}}}
  - {id: ore_in, kind: source, over: {region: [FL]}}
  - {id: imports_src, kind: source}
  - {id: market, kind: market, over: {region: [FL, EU-other]}, balancing: imports,
     consumption: true}
  - {id: use, kind: sink, over: {region: [FL, EU-other]}}
  - {id: waste, kind: sink}
flows:
  - {id: ore, from: ore_in, to: refining, value: {2020: 100, 2021: 120}, composition: {Li: 0.02}}
  - {id: cn_ore, from: mine, to: refining, value: 1000, composition: {Li: 0.02}}
  - {id: refined, from: refining, to: market, stage: refined}
  - {id: refined_cn, from: refining, to: market, stage: refined,
     trade: {region: {CN: [FL, EU-other]}}}
  - {id: slag, from: refining, to: waste}
  - {id: imports, from: imports_src, to: market, stage: refined}
  - {id: demand, from: market, to: use, value: {region: {FL: 500, EU-other: 4000}},
     composition: {Li: 0.05}}
"""


def _li(results, period=2020):
    table = results.flows()
    return table[(table.period == period) & (table.element == "Li")]


def test_expanded_blocks_hand_computed():
    model = model_from_text(TWO_REGIONS)
    ids = [p.id for p in model.spec.processes]
    assert "refining[FL]" in ids and "refining[CN]" in ids and "refining[EU-other]" not in ids
    results = solve(model)
    li = _li(results)
    assert list(li.columns[:8]) == [
        "scenario",
        "period",
        "flow",
        "from",
        "to",
        "region",
        "from_region",
        "element",
    ]
    got = {
        (r.flow, r.from_region if isinstance(r.from_region, str) else None, r.region): r.value
        for r in li.itertuples()
    }
    # FL refining: 100 t ore x 2 % Li = 2 t Li; 0.9 -> refined 1.8, 0.1 -> slag 0.2
    assert got[("refined", "FL", "FL")] == pytest.approx(1.8)
    assert got[("slag", "FL", "FL")] == pytest.approx(0.2)
    # CN refining: 1000 t x 2 % = 20 t Li; 0.2 -> FL (4), 0.6 -> EU-other (12), 0.2 -> slag (4)
    assert got[("refined_cn", "CN", "FL")] == pytest.approx(4.0)
    assert got[("refined_cn", "CN", "EU-other")] == pytest.approx(12.0)
    assert got[("slag", "CN", "CN")] == pytest.approx(4.0)
    # FL demand 500 t x 5 % = 25 t Li = 1.8 domestic + 4 from CN + imports -> 19.2
    assert got[("imports", None, "FL")] == pytest.approx(19.2)
    # EU-other demand 4000 x 5 % = 200 t Li = 12 from CN + 188 imports
    assert got[("imports", None, "EU-other")] == pytest.approx(188.0)
    # 2021: FL ore 120 t -> 2.4 t Li, 2.16 refined
    assert _li(results, 2021).query("flow == 'refined'").value.item() == pytest.approx(2.16)
    assert results.max_relative_residual() < 1e-12
    balance = results.balance()
    assert {"process", "region"} <= set(balance.columns)
    assert set(balance.process) == {"refining", "market", "(system)"}


def test_dataset_carries_dimensions_as_coordinates():
    ds = solve(model_from_text(TWO_REGIONS)).to_dataset()
    li = ds.flow_mass.sel(element="Li", period=2020, scenario="baseline")
    assert float(li.sel(flow_id="refined_cn", region="FL", from_region="CN")) == pytest.approx(4.0)
    by_region = li.groupby("region").sum()
    # FL: ore 2 + refined 1.8 + refined_cn 4 + slag 0.2 + imports 19.2 + demand 25 = 52.2
    assert float(by_region.sel(region="FL")) == pytest.approx(52.2)
    assert set(ds.from_process.values) >= {"refining", "imports_src"}


def test_regions_solve_as_the_separate_plain_models():
    """Two regions without trade solve exactly as two plain models, one per region."""
    regional = model_from_text(
        """
critflow: 1
name: r
time: {start: 2020, end: 2020}
elements: [Co, rest]
dimensions: {region: [A, B]}
processes:
  - {id: feed, kind: source, over: [region]}
  - {id: plant, kind: transfer, over: [region],
     transfer: {product: {Co: {region: {A: 0.95, B: 0.8}}, default: 0.5},
                loss: {Co: {region: {A: 0.05, B: 0.2}}, default: 0.5}}}
  - {id: out, kind: sink}
  - {id: lost, kind: sink}
flows:
  - {id: in, from: feed, to: plant, value: {region: {A: 100, B: 40}}, composition: {Co: 0.1}}
  - {id: product, from: plant, to: out}
  - {id: loss, from: plant, to: lost}
"""
    )
    table = solve(regional).flows()
    for region, (share, mass) in {"A": (0.95, 100.0), "B": (0.8, 40.0)}.items():
        plain = model_from_text(
            f"""
critflow: 1
name: p
time: {{start: 2020, end: 2020}}
elements: [Co, rest]
processes:
  - {{id: feed, kind: source}}
  - {{id: plant, kind: transfer, transfer: {{product: {{Co: {share}, default: 0.5}},
     loss: {{Co: {1 - share}, default: 0.5}}}}}}
  - {{id: out, kind: sink}}
  - {{id: lost, kind: sink}}
flows:
  - {{id: in, from: feed, to: plant, value: {mass}, composition: {{Co: 0.1}}}}
  - {{id: product, from: plant, to: out}}
  - {{id: loss, from: plant, to: lost}}
"""
        )
        expected = solve(plain).flows().set_index(["flow", "element"]).value
        got = table[table.region == region].set_index(["flow", "element"]).value
        np.testing.assert_allclose(got.sort_index(), expected.sort_index(), rtol=1e-12)


def test_product_dimension_with_stock_lifetime_by_coordinate():
    model = model_from_text(
        """
critflow: 1
name: products
time: {start: 2020, end: 2024}
elements: [Li]
dimensions: {product: [EV, portable]}
processes:
  - {id: sales, kind: source, over: [product]}
  - {id: use, kind: stock, over: [product],
     lifetime: {distribution: fixed, mean: {product: {EV: 3, portable: 1}}}}
  - {id: eol, kind: sink}
flows:
  - {id: inflow, from: sales, to: use, value: {product: {EV: 10, portable: 2}}}
  - {id: outflow, from: use, to: eol}
"""
    )
    table = solve(model).flows()
    out = table[table.flow == "outflow"].pivot(index="period", columns="product", values="value")
    # fixed lifetimes: portable cohorts leave after 1 year (2 t/a from 2021), EV after 3 (10 t/a
    # from 2023)
    np.testing.assert_allclose(out["portable"].to_numpy(), [0, 2, 2, 2, 2])
    np.testing.assert_allclose(out["EV"].to_numpy(), [0, 0, 0, 10, 10])


def _error(text: str) -> str:
    with pytest.raises(CritflowError) as info:
        model_from_text(text)
    return str(info.value)


def test_error_names_the_field_path_and_coordinate():
    bad = TWO_REGIONS.replace(
        "slag: {default: {region: {FL: 0.1, CN: 0.2}}}", "slag: {default: {region: {FL: 0.1}}}"
    )
    message = _error(bad)
    assert "processes[1].transfer.slag.default.region" in message
    assert "no value for region CN" in message
    bad = TWO_REGIONS.replace("{FL: 0.1, CN: 0.2}", "{FL: 0.1, CN: yes}")
    message = _error(bad)
    assert "processes[1].transfer.slag.default.region.CN" in message
    bad = TWO_REGIONS.replace("{FL: 0.1, CN: 0.2}", "{FL: 0.1, CN: 0.3}")
    with pytest.raises(CritflowError) as info:  # the shares of refining[CN] sum to 1.1
        solve(model_from_text(bad))
    message = str(info.value)
    assert "processes[1].transfer" in message and "region CN" in message and "1.1" in message
    bad = TWO_REGIONS.replace("{FL: 0.1, CN: 0.2}", "{FL: 0.1, CN: 0.2, XX: 1}")
    assert "'XX' is not a coordinate of 'region'" in _error(bad)
    bad = TWO_REGIONS.replace("value: 1000", "value: {region: {CN: 1000}}").replace(
        "{id: waste, kind: sink}", "{id: waste, kind: sink}\n  - {id: x, kind: sink}"
    )
    model_from_text(bad)  # keyed by the coordinate the flow has: fine


def test_unknown_dimension_and_trade_errors():
    bad = TWO_REGIONS.replace("over: {region: [CN]}", "over: [country]")
    assert "the model declares no dimension 'country'" in _error(bad)
    bad = TWO_REGIONS.replace(
        "trade: {region: {CN: [FL, EU-other]}}", "trade: {region: {CN: [FL, US]}}"
    )
    assert "the to process has no coordinate 'US'" in _error(bad)
    bad = TWO_REGIONS.replace(
        "value: {2020: 100, 2021: 120}, composition: {Li: 0.02}",
        "value: {2020: 100, 2021: 120}, composition: {Li: {product: {EV: 0.02}}}",
    )
    assert "no dimension" not in _error(bad)  # 'product' is no dimension: a schema error
    plain = """
critflow: 1
name: p
time: {start: 2020, end: 2020}
elements: [Li]
processes:
  - {id: a, kind: source, over: [region]}
  - {id: b, kind: sink}
flows:
  - {id: f, from: a, to: b, value: 1}
"""
    message = _error(plain)
    assert "processes[0].over" in message and "declares none" in message


def test_dimension_named_like_an_element_is_refused():
    bad = TWO_REGIONS.replace(
        "coordinates: [FL, EU-other, CN], groups: {EU: [FL, EU-other]}}",
        "coordinates: [FL, EU-other, CN]}\n  Li: [a]",
    )
    assert "both an element and a dimension" in _error(bad)


def test_model_without_dimensions_is_unchanged():
    model = model_from_text(
        """
critflow: 1
name: p
time: {start: 2020, end: 2020}
elements: [Li]
processes:
  - {id: a, kind: source}
  - {id: b, kind: sink}
flows:
  - {id: f, from: a, to: b, value: 1}
"""
    )
    assert model.spec._expansion is None
    results = solve(model)
    assert list(results.flows().columns) == [
        "scenario",
        "period",
        "flow",
        "from",
        "to",
        "element",
        "value",
        "unit",
    ]
    assert list(results.to_dataset().flow_mass.dims) == ["scenario", "period", "element", "flow"]


SPLIT_IMPORTS = """
critflow: 1
name: split imports
time: {start: 2020, end: 2020}
elements: [Li]
dimensions:
  region: {coordinates: [FL, EU-other, CN, CL, AR], groups: {EU: [FL, EU-other]}}
processes:
  - {id: world, kind: source}
  - {id: recycling_in, kind: source, over: {region: [FL, EU-other]}}
  - {id: market, kind: market, over: {region: [FL, EU-other]}, balancing: imports,
     consumption: true}
  - {id: use, kind: sink, over: {region: [FL, EU-other]}}
flows:
  - {id: imports, from: world, to: market, stage: refined,
     origin_shares: {region: {CN: {region: {FL: 0.5, default: 0.6}}, CL: 0.3,
                              AR: {region: {FL: 0.2, default: 0.1}}}}}
  - {id: recycled, from: recycling_in, to: market, stage: scrap,
     value: {region: {FL: 10, EU-other: 50}}}
  - {id: demand, from: market, to: use, value: {region: {FL: 110, EU-other: 950}}}
"""


def test_balancing_import_split_by_origin_shares():
    results = solve(model_from_text(SPLIT_IMPORTS))
    table = results.flows()
    imports = table[table.flow == "imports"].set_index(["from_region", "region"]).value
    # FL imports 110 - 10 = 100: CN 0.5, CL 0.3, AR 0.2; EU-other 950 - 50 = 900: 0.6, 0.3, 0.1
    expected = {
        ("CN", "FL"): 50.0,
        ("CL", "FL"): 30.0,
        ("AR", "FL"): 20.0,
        ("CN", "EU-other"): 540.0,
        ("CL", "EU-other"): 270.0,
        ("AR", "EU-other"): 90.0,
    }
    assert {k: pytest.approx(v) for k, v in expected.items()} == imports.to_dict()
    # the generated split is no process of the tables: only markets and the system balance
    assert set(results.balance().process) == {"market", "(system)"}
    assert set(table["from"][table.flow == "imports"]) == {"world"}


def test_origin_shares_not_summing_to_one_names_the_flow():
    bad = SPLIT_IMPORTS.replace("CL: 0.3,", "CL: 0.4,")
    with pytest.raises(CritflowError) as info:
        solve(model_from_text(bad))
    message = str(info.value)
    assert "flows[0].origin_shares.region" in message and "region EU-other" in message


def test_stock_table_and_scenario_override_by_coordinate():
    model = model_from_text(
        """
critflow: 1
name: products
time: {start: 2020, end: 2022}
elements: [Li]
dimensions: {product: [EV, portable]}
processes:
  - {id: sales, kind: source, over: [product]}
  - {id: use, kind: stock, over: [product],
     lifetime: {distribution: fixed, mean: {product: {EV: 3, portable: 1}}}}
  - {id: eol, kind: sink}
flows:
  - {id: inflow, from: sales, to: use, value: {product: {EV: 10, portable: 2}}}
  - {id: outflow, from: use, to: eol}
scenarios:
  baseline: {}
  more_ev:
    flows: {inflow: {value: {product: {EV: 20, default: 2}}}}
"""
    )
    results = solve(model)
    stocks = results.stock_table()
    assert list(stocks.columns[:4]) == ["scenario", "period", "stock", "product"]
    last = stocks[(stocks.period == 2022)].set_index(["scenario", "product"]).in_use
    # EV: three cohorts of 10 (20 in more_ev) still in use at the end of 2022 (fixed 3-year life);
    # portable: one cohort of 2 (each leaves after a year)
    assert last[("baseline", "EV")] == pytest.approx(30.0)
    assert last[("more_ev", "EV")] == pytest.approx(60.0)
    assert last[("more_ev", "portable")] == pytest.approx(2.0)


def test_model_indicator_names_every_coordinate_of_a_flow():
    from critflow.indicators.catalogue import Context, evaluate_indicator

    text = (
        TWO_REGIONS
        + """
indicators:
  fl_refined_share: {numerator: [refined], denominator: [demand], element: Li}
"""
    )
    model = model_from_text(text)
    value = evaluate_indicator(Context(model, solve(model)), "fl_refined_share")[0, 0]
    # refined: FL only, 1.8 t Li; demand: 25 + 200 t Li over both markets
    assert value == pytest.approx(1.8 / 225)


@pytest.mark.parametrize("bad", ["true", "7", "'text'"])
def test_processes_that_are_no_list_are_named_not_a_traceback(bad):
    # was: TypeError 'bool' object is not iterable, while looking for dimensions
    text = (
        "critflow: 1\nname: x\ntime: {start: 2020, end: 2021}\nelements: [Li]\n"
        f"processes: {bad}\nflows: [{{id: f, from: a, to: b}}]\n"
    )
    with pytest.raises(CritflowError) as info:
        solve(model_from_text(text, file="model.yaml"))
    assert "model.yaml, line 5, column 1 (processes): Input should be a valid list" in str(
        info.value
    )
