"""Monte Carlo: reproducible draws, analytical moments, consistent transfer shares, the batched
solve against one solve per sample, and a real 2-worker Dask cluster against the in-process run."""

from __future__ import annotations

import numpy as np
import pytest

import critflow
from critflow.engine.balance import solve_flows
from critflow.engine.compile import evaluate
from critflow.engine.montecarlo import BINS, flow_statistics, monte_carlo
from critflow.errors import CritflowError
from critflow.model.uncertainty import Draws, Sampler, collect
from tests.conftest import EXAMPLE, model_text

PLANT = """
critflow: 1
name: uncertain plant
time: {start: 2025, end: 2026}
unit: t/a
elements: [Co, rest]
parameters:
  co_yield: {value: 0.9, distribution: triangular, low: 0.8, high: 0.95}
processes:
  - {id: intake, kind: source}
  - id: leach
    kind: transfer
    transfer:
      solution: {default: 0.3, Co: co_yield}
      residue: {default: 0.7, Co: 1 - co_yield}
  - id: refine
    kind: transfer
    transfer:
      product: {default: 0.1, Co: {value: 0.97, distribution: uniform, low: 0.94, high: 1.0}}
      loss: {default: 0.6, Co: 0.02}
      bleed: {default: 0.3, Co: 0.01}
  - {id: customers, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - {id: feed, from: intake, to: leach, value: {value: 1000, distribution: normal, sd: 50}, composition: {Co: 0.05}}
  - {id: solution, from: leach, to: refine}
  - {id: residue, from: leach, to: landfill}
  - {id: product, from: refine, to: customers}
  - {id: loss, from: refine, to: landfill}
  - {id: bleed, from: refine, to: landfill}
"""


def plant():
    return model_text(PLANT)


def test_same_seed_same_numbers_other_seed_other_numbers():
    model = plant()
    a = monte_carlo(model, 600, seed=4, chunk_size=250)
    b = monte_carlo(model, 600, seed=4, chunk_size=250)
    c = monte_carlo(model, 600, seed=5, chunk_size=250)
    assert np.array_equal(a.stats["flows"].mean, b.stats["flows"].mean)
    assert np.array_equal(a.stats["flows"].counts, b.stats["flows"].counts)
    assert not np.array_equal(a.stats["flows"].mean, c.stats["flows"].mean)


@pytest.mark.parametrize("sampler", ["random", "lhs", "sobol"])
def test_means_and_quantiles_match_the_distributions(sampler):
    model = plant()
    n = 8192
    mc = monte_carlo(model, n, seed=11, sampler=sampler, chunk_size=2048)
    topo = critflow.solve(model).inputs.topology
    co = topo.elements.index("Co")
    feed, solution = topo.flow_ids.index("feed"), topo.flow_ids.index("solution")
    # feed Co = 0.05 × N(1000, 50) (truncation at 0 is 20 sd away): mean 50, sd 2.5
    mean, sd = mc.mean("flows")[0, 0, co, feed], mc.sd("flows")[0, 0, co, feed]
    assert mean == pytest.approx(50.0, abs=4 * 2.5 / np.sqrt(n))
    assert sd == pytest.approx(2.5, rel=0.05)
    # solution Co = feed Co × yield, independent: E = 50 × (0.8 + 0.9 + 0.95) / 3
    expected = 50.0 * (0.8 + 0.9 + 0.95) / 3
    assert mc.mean("flows")[0, 0, co, solution] == pytest.approx(expected, rel=2e-3)
    # the median of feed Co: 50 (normal); the histogram is exact to one bin width
    stats = mc.stats["flows"]
    q = mc.quantile("flows", 0.5)[0, 0, co, feed]
    width = stats.width.reshape(mc.shapes["flows"])[0, 0, co, feed]
    assert abs(q - 50.0) < width + 4 * 2.5 * 1.25 / np.sqrt(n)
    assert width * BINS == pytest.approx(
        2 * (stats.maximum - stats.minimum).reshape(mc.shapes["flows"])[0, 0, co, feed], rel=0.5
    )


def test_drawn_shares_keep_every_process_summing_to_one():
    model = plant()
    inputs = collect(model.spec)
    draws = Sampler(tuple(inputs), 3).draws(0, 400, 400)
    evaluated = evaluate(model, None, draws)
    t = evaluated.transfer_coefficients  # (S·N, P, E, J)
    topo = evaluated.topology
    for u in np.unique(topo.transfer_process):
        total = t[..., topo.transfer_process == u].sum(axis=-1)
        assert np.abs(total - 1).max() < 1e-12
    # the fixed shares of refine's Co (0.02, 0.01) absorb the drawn product share in proportion
    j_loss = int(np.flatnonzero(topo.transfer_output == topo.flow_ids.index("loss"))[0])
    j_bleed = int(np.flatnonzero(topo.transfer_output == topo.flow_ids.index("bleed"))[0])
    co = topo.elements.index("Co")
    assert np.allclose(t[..., co, j_loss], 2 * t[..., co, j_bleed])


def test_batched_samples_equal_one_solve_per_sample():
    model = plant()
    inputs = tuple(collect(model.spec))
    draws = Sampler(inputs, 9).draws(0, 50, 50)
    batched = solve_flows(evaluate(model, None, draws))  # (S·N, P, E, F)
    for i in range(0, 50, 7):  # the reference: a Python loop of single-sample solves
        one = Draws(draws.values[i : i + 1], draws.column_of)
        single = solve_flows(evaluate(model, None, one))
        assert np.allclose(batched[i], single[0], rtol=1e-12, atol=1e-9)
    # mass balance closes in every sample
    results = critflow.FlowResults(evaluate(model, None, draws), batched)
    assert results.max_relative_residual() < 1e-9


def test_statistics_are_independent_of_chunking_up_to_rounding():
    model = plant()
    a = monte_carlo(model, 1000, seed=2, chunk_size=1000)
    b = monte_carlo(model, 1000, seed=2, chunk_size=1000)
    assert np.array_equal(a.stats["flows"].m2, b.stats["flows"].m2)


def test_distributed_run_equals_in_process_run():
    pytest.importorskip("distributed")
    from critflow.engine.cluster import dask_client

    model = plant()
    local = monte_carlo(model, 900, seed=21, chunk_size=200)
    with dask_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        remote = monte_carlo(model, 900, seed=21, chunk_size=200, client=client)
    for field in ("mean", "m2", "minimum", "maximum", "counts"):
        assert np.array_equal(
            getattr(local.stats["flows"], field), getattr(remote.stats["flows"], field)
        ), field


def test_flow_statistics_table_of_the_example():
    model = critflow.load_model(EXAMPLE)
    mc = monte_carlo(model, 200, seed=1, scenarios=["baseline"], chunk_size=100)
    results = critflow.solve(model, ["baseline"])
    table = flow_statistics(mc, results.inputs.topology, results.inputs.periods, results.unit)
    row = table[
        (table.flow == "nmc_cells") & (table.element == "Li") & (table.period == 2030)
    ].iloc[0]
    assert row["mean"] == pytest.approx(15000 * 0.0222) and row["sd"] < 1e-9  # the feed is certain
    assert (table["p5"] <= table["p50"] + 1e-9).all() and (
        table["p50"] <= table["p95"] + 1e-9
    ).all()


@pytest.mark.parametrize(
    ("distribution", "message"),
    [
        ("{value: 0.9, distribution: triangular, low: 0.95, high: 0.99}", "low <= value <= high"),
        ("{value: 0.9, distribution: normal, sd: 0}", "positive standard deviation"),
        ("{value: 0.9, distribution: normal, sd: -0.1}", "positive standard deviation"),
        ("{value: 0.9, distribution: weibull}", "distribution"),
        ("{value: 0.9, distribution: beta, alpha: 0, beta: 2}", "positive shapes"),
    ],
)
def test_impossible_distributions_are_named(distribution, message):
    text = PLANT.replace(
        "{value: 0.9, distribution: triangular, low: 0.8, high: 0.95}", distribution
    )
    with pytest.raises(CritflowError) as info:
        model_text(text)
    assert message in str(info.value) and "parameters.co_yield" in str(info.value)


def test_model_without_distributions_is_told_so():
    model = critflow.load_model(EXAMPLE)
    text = EXAMPLE.read_text()
    certain = model_text(
        text.replace("{value: 0.90, distribution: triangular, low: 0.80, high: 0.95}", "0.90")
        .replace("{value: 0.99, distribution: triangular, low: 0.95, high: 0.995}", "0.99")
        .replace("{value: 0.85, distribution: uniform, low: 0.80, high: 0.90}", "0.85")
        .replace("{value: 0.98, distribution: triangular, low: 0.95, high: 0.99}", "0.98")
    )
    assert collect(model.spec)
    with pytest.raises(CritflowError, match="no value with a distribution"):
        monte_carlo(certain, 10)
