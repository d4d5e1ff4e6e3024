"""Model-file features: per-element values, time series, units, markets, JSON, defaults."""

from __future__ import annotations

import json

import numpy as np
import yaml

import critflow
from tests.conftest import solve_text

SIMPLE = """
critflow: 1
name: sorter
time: {start: 2024, end: 2032}
unit: t/a
elements: [Cu, rest]
processes:
  - {id: supply, kind: source}
  - id: sorter
    kind: transfer
    transfer:
      cu_scrap: {default: 0.1, Cu: 0.9}
      residue: {default: 0.9, Cu: 0.1}
  - {id: smelter, kind: sink}
  - {id: dump, kind: sink}
flows:
  - {id: feed, from: supply, to: sorter, FEED}
  - {id: cu_scrap, from: sorter, to: smelter}
  - {id: residue, from: sorter, to: dump}
"""


def simple(feed: str) -> critflow.FlowResults:
    return solve_text(SIMPLE.replace("FEED", feed))


def values(results, flow, element):
    return (
        results.to_dataset().flow_mass.sel(scenario="baseline", flow=flow, element=element).values
    )


def test_time_series_linear_between_years_and_constant_outside():
    results = simple("value: {2026: 1000, 2030: 1500}, composition: {Cu: 0.2}")
    goods = (
        results.to_dataset().flow_mass.sel(scenario="baseline", flow="feed").sum("element").values
    )
    # years 2024..2032: flat 1000 before 2026, +125 t/a per year to 1500 in 2030, flat after
    np.testing.assert_allclose(
        goods, [1000, 1000, 1000, 1125, 1250, 1375, 1500, 1500, 1500], rtol=1e-12
    )


def test_quantity_strings_are_converted_to_the_model_unit():
    results = simple("value: '2 kt/a', composition: {Cu: 0.25}")
    np.testing.assert_allclose(values(results, "feed", "Cu"), 500.0, rtol=1e-12)
    results = simple("value: 2000000, unit: kg/a, composition: {Cu: 0.25}")
    np.testing.assert_allclose(values(results, "feed", "Cu"), 500.0, rtol=1e-12)


def test_per_element_value_downstream_is_solved_backwards():
    text = SIMPLE.replace("FEED", "value: {rest: 800}").replace(
        "{id: cu_scrap, from: sorter, to: smelter}",
        "{id: cu_scrap, from: sorter, to: smelter, value: {Cu: 90}}",
    )
    results = solve_text(text)
    # 90 t/a of Cu in the scrap at a share of 0.9 means 100 t/a of Cu in the feed
    np.testing.assert_allclose(values(results, "feed", "Cu"), 100.0, rtol=1e-12)
    np.testing.assert_allclose(values(results, "residue", "Cu"), 10.0, rtol=1e-12)


def test_market_balancing_input_closes_the_balance():
    text = """
    critflow: 1
    name: lithium market
    time: {start: 2025, end: 2030}
    unit: kt/a
    elements: [Li]
    processes:
      - {id: mines, kind: source}
      - {id: recyclers, kind: source}
      - {id: li_market, kind: market, balancing: primary}
      - {id: users, kind: sink}
    flows:
      - {id: primary, from: mines, to: li_market}
      - {id: secondary, from: recyclers, to: li_market, value: {2025: 2, 2030: 8}}
      - {id: demand, from: li_market, to: users, value: {2025: 20, 2030: 50}}
    """
    results = solve_text(text)
    primary = values(results, "primary", "Li")
    years = np.arange(6)
    np.testing.assert_allclose(primary, (20 + 6 * years) - (2 + 1.2 * years), rtol=1e-12)
    assert results.unit == "kt/a"


def test_single_output_transfer_needs_no_coefficients():
    text = """
    critflow: 1
    name: chain
    time: {start: 2025, end: 2025}
    elements: [Co]
    processes:
      - {id: mine, kind: source}
      - {id: discharge, kind: transfer}
      - {id: out, kind: sink}
    flows:
      - {id: a, from: mine, to: discharge, value: 5}
      - {id: b, from: discharge, to: out}
    """
    np.testing.assert_allclose(values(solve_text(text), "b", "Co"), 5.0)


def test_json_model_gives_the_same_flows_as_yaml(tmp_path, example_results):
    from tests.conftest import EXAMPLE

    data = yaml.safe_load(EXAMPLE.read_text())
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    from_json = critflow.solve(critflow.load_model(path))
    np.testing.assert_array_equal(from_json.mass_kg, example_results.mass_kg)


def test_coefficients_varying_by_period_use_one_factorisation_per_distinct_set():
    text = """
    critflow: 1
    name: improving sorter
    time: {start: 2025, end: 2030}
    elements: [Cu]
    parameters: {share: {2025: 0.8, 2027: 0.9}}
    processes:
      - {id: supply, kind: source}
      - id: sorter
        kind: transfer
        transfer:
          good: {default: share}
          bad: {default: 1 - share}
      - {id: sink1, kind: sink}
      - {id: sink2, kind: sink}
    flows:
      - {id: feed, from: supply, to: sorter, value: 100}
      - {id: good, from: sorter, to: sink1}
      - {id: bad, from: sorter, to: sink2}
    """
    results = solve_text(text)
    np.testing.assert_allclose(values(results, "good", "Cu"), [80, 85, 90, 90, 90, 90], rtol=1e-12)
    from critflow.engine.balance import period_groups

    first, group = period_groups(results.inputs.transfer_coefficients)
    assert first.size == 3  # 2025, 2026 and 2027-2030 share coefficients
    assert group.tolist() == [group[0], group[1], group[2], group[2], group[2], group[2]]


def test_results_as_xarray_and_balance_table(example_results):
    ds = example_results.to_dataset()
    assert ds.flow_mass.dims == ("scenario", "period", "element", "flow")
    assert ds.flow_mass.attrs["units"] == "t/a"
    balance = example_results.balance()
    assert {"input", "output", "stock_change", "residual"} <= set(balance.columns)
    assert "(system)" in set(balance["process"])
