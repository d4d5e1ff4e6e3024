"""Mass-balance tracing of origins through mixing and recycle loops."""

from __future__ import annotations

import numpy as np
import pytest

import critflow
from critflow.indicators import origin_masses
from critflow.indicators.registry import Context, evaluate_indicator
from tests.conftest import EXAMPLE, model_text

LOOP = """
critflow: 1
name: smelter with dross recycle
time: {start: 2025, end: 2025}
elements: [Cu]
processes:
  - {id: mine, kind: source}
  - {id: scrapyard, kind: source}
  - id: smelter
    kind: transfer
    transfer: {crude: {default: 0.9}, slag: {default: 0.1}}
  - id: refinery
    kind: transfer
    transfer: {cathode: {default: 0.8}, dross: {default: 0.2}}
  - {id: users, kind: sink, consumption: true}
  - {id: dump, kind: sink}
flows:
  - {id: ore, from: mine, to: smelter, value: 300}
  - {id: scrap, from: scrapyard, to: smelter, value: 100, origin: post_consumer}
  - {id: crude, from: smelter, to: refinery}
  - {id: dross, from: refinery, to: smelter}
  - {id: cathode, from: refinery, to: users, product: cathode}
  - {id: slag, from: smelter, to: dump}
"""


def test_origins_mix_in_proportion_through_a_loop():
    model = model_text(LOOP)
    results = critflow.solve(model)
    origins = origin_masses(model, results)
    # every process mixes its inputs, so every flow downstream of the smelter carries the feed ratio
    # 100 / 400 = 25 % post-consumer, the dross loop included
    topo = results.inputs.topology
    for flow in ("crude", "dross", "cathode", "slag"):
        f = topo.flow_index[flow]
        share = origins["post_consumer"][0, 0, 0, f] / results.mass_kg[0, 0, 0, f]
        assert share == pytest.approx(0.25, abs=1e-12), flow
    ctx = Context(model, results)
    np.testing.assert_allclose(evaluate_indicator(ctx, "recycled_content"), 0.25, atol=1e-12)
    np.testing.assert_allclose(evaluate_indicator(ctx, "secondary_supply_share"), 0.25, atol=1e-12)


def test_origins_sum_to_the_flows_of_the_example():
    model = critflow.load_model(EXAMPLE)
    results = critflow.solve(model)
    origins = origin_masses(model, results)
    total = sum(origins.values())
    np.testing.assert_allclose(total, results.mass_kg, rtol=1e-9, atol=1e-9 * results.mass_kg.max())
    np.testing.assert_allclose(origins["post_consumer"], results.mass_kg, rtol=1e-9, atol=1e-6)
