"""Monte Carlo of models with stock processes: the samples, solved as more scenarios of the
period-by-period stock solve, against one deterministic solve per sample with the drawn values
written into the model; mass balance in every sample; a regional stock model (shaped like
benchmarks/regions.py) on a 2-worker Dask cluster against the in-process run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import critflow
from critflow.engine import solve_inputs
from critflow.engine.compile import evaluate
from critflow.engine.montecarlo import monte_carlo
from critflow.errors import CritflowError
from critflow.model.uncertainty import Sampler, collect
from tests.conftest import model_text

FLEET = """
critflow: 1
name: uncertain fleet
time: {start: 2020, end: 2040}
unit: t/a
elements: [Li, Co, rest]
parameters:
  life: LIFE
  scale: SCALE
  target: TARGET
  li_grid: LI_GRID
  grid_before: GRID_BEFORE
processes:
  - {id: mine, kind: source}
  - {id: production, kind: market, balancing: primary}
  - id: cars
    kind: stock
    lifetime: {distribution: normal, mean: life, std: 3}
    initial_stock: {total: 2000}
  - id: grid
    kind: stock
    lifetime: {distribution: weibull, shape: 2.3, scale: scale}
    driven_by: {until: 2029, then: stock}
    stock: {2030: target, 2040: 9000}
    initial_stock: {total: grid_before, cohorts: {2015: 300, 2018: grid_before - 300}}
  - id: collection
    kind: transfer
    transfer: {to_recycling: {default: 0.8, Li: SHARE}, lost: {default: 0.2, Li: LOST}}
  - id: recycling
    kind: transfer
    transfer: {secondary: {default: 0.9, rest: 0.0}, residue: {default: 0.1, rest: 1.0}}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mine, to: production}
  - {id: car_sales, from: production, to: cars, value: INFLOW, composition: {Li: 0.02, Co: 0.01}}
  - {id: grid_sales, from: production, to: grid, value: {2020: 300, 2040: 600},
     composition: {Li: li_grid, Co: 0.002}}
  - {id: car_eol, from: cars, to: collection}
  - {id: grid_eol, from: grid, to: collection}
  - {id: to_recycling, from: collection, to: recycling}
  - {id: lost, from: collection, to: landfill}
  - {id: secondary, from: recycling, to: production}
  - {id: residue, from: recycling, to: landfill}
scenarios:
  baseline: {}
  short: {parameters: {life: 7}, flows: {grid_sales: {composition: {Li: 0.03, Co: 0.002}}}}
"""

# the distributions, in file order (the order collect() finds them in); a lifetime parameter and a
# stock target take a distribution through a parameter
DRAWN = {
    "LIFE": "{value: 12, distribution: triangular, low: 8, high: 16}",
    "SCALE": "{value: 20, distribution: uniform, low: 15, high: 25}",
    "TARGET": "{value: 6000, distribution: normal, sd: 400}",
    "LI_GRID": "{value: 0.01, distribution: uniform, low: 0.005, high: 0.02}",
    "GRID_BEFORE": "{value: 1000, distribution: uniform, low: 800, high: 1500}",
    "SHARE": "{value: 0.7, distribution: uniform, low: 0.5, high: 0.9}",
    "INFLOW": "{value: 1000, distribution: triangular, low: 700, high: 1200}",
}


def fleet_text(**fixed: float) -> str:
    """The fleet with the distributions, or with the numbers ``fixed`` in their place."""
    text = FLEET
    for key, distribution in DRAWN.items():
        text = text.replace(key, repr(float(fixed[key])) if key in fixed else distribution)
    lost = 1.0 - fixed["SHARE"] if "SHARE" in fixed else 0.3  # the fixed share absorbs the rest
    return text.replace("LOST", repr(lost))


def _solved_samples(model, n: int, seed: int):
    inputs = collect(model.spec)
    draws = Sampler(tuple(inputs), seed, "random").draws(0, n, n)
    evaluated = evaluate(model, None, draws)
    return inputs, draws, solve_inputs(evaluated)


def test_drawn_inputs_are_the_seven_distributions():
    labels = [i.label for i in collect(model_text(fleet_text()).spec)]
    assert labels == [
        "parameters.life",
        "parameters.scale",
        "parameters.target",
        "parameters.li_grid",
        "parameters.grid_before",
        "processes.collection.transfer.to_recycling.Li",
        "flows.car_sales.value",
    ]


def test_batched_samples_equal_one_deterministic_solve_per_sample():
    model = model_text(fleet_text())
    n = 40
    inputs, draws, batched = _solved_samples(model, n, seed=7)
    assert batched.inputs.scenarios == tuple(
        f"{s}[{i}]" for s in ("baseline", "short") for i in range(n)
    )
    assert batched.stocks.stock_kg.shape == (2 * n, 21, 3, 2)
    # the samples differ: the draws reach the stocks (lifetime, target) and the flows after them
    goods = batched.stocks.stock_kg[:n].sum(axis=2)  # (N, P, K) in kg, baseline
    assert np.ptp(goods[:, -1, 0]) > 1e5 and np.ptp(goods[:, 10, 1]) > 1e5  # cars 2040, grid 2030
    assert np.ptp(goods[:, -1, 1]) < 1e-6  # the grid's 2040 target is certain
    # the drawn initial stock and inflow composition reach the grid's Li
    assert np.ptp(batched.stocks.initial_kg[:n, :, 1].sum(axis=1)) > 1e5
    assert np.ptp(batched.stocks.stock_kg[:n, 10, 0, 1] / goods[:, 10, 1]) > 1e-3
    keys = list(DRAWN)
    for i in (0, 13, 39):
        fixed = {
            key: float(draws.of(item.value)[i]) for key, item in zip(keys, inputs, strict=True)
        }
        single = critflow.solve(model_text(fleet_text(**fixed)))
        for s in range(2):  # scenario-major: scenario s, sample i at s · N + i
            for got, want in (
                (batched.mass_kg[s * n + i], single.mass_kg[s]),
                (batched.stocks.stock_kg[s * n + i], single.stocks.stock_kg[s]),
            ):
                scale = np.abs(want).max()
                assert np.abs(got - want).max() <= 1e-9 * scale, (s, i)


def test_mass_balance_closes_in_every_sample_with_the_stock_change():
    model = model_text(fleet_text())
    _, _, results = _solved_samples(model, 60, seed=3)
    topo = results.inputs.topology
    mass = results.mass_kg  # (S·N, P, E, F)
    stock = results.stocks.stock_kg  # (S·N, P, E, K) at the end of each year
    before = np.concatenate([results.stocks.initial_kg[:, None], stock[:, :-1]], axis=1)
    change = stock - before
    flow = {f: i for i, f in enumerate(topo.flow_ids)}
    primary = mass[..., flow["primary"]]
    landfill = mass[..., flow["lost"]] + mass[..., flow["residue"]]
    # what enters the system = what leaves it + what it adds to its stocks, per sample, year, element
    gap = primary - landfill - change.sum(axis=-1)
    assert np.abs(gap).max() <= 1e-9 * np.abs(primary).max()
    # and each stock: inflow - outflow = its change
    for k, (into, out) in enumerate((("car_sales", "car_eol"), ("grid_sales", "grid_eol"))):
        own = mass[..., flow[into]] - mass[..., flow[out]] - change[..., k]
        assert np.abs(own).max() <= 1e-9 * np.abs(mass[..., flow[into]]).max()
    assert (change[:, 0].sum(axis=-1) != change[0, 0].sum(axis=-1)).any()  # the samples differ


def test_monte_carlo_of_a_stock_model_reports_stock_statistics():
    model = model_text(fleet_text())
    mc = monte_carlo(model, 300, seed=5, chunk_size=100)
    assert mc.shapes["stocks"] == (2, 21, 3, 2)
    cars_2040 = mc.mean("stocks")[0, -1, :, 0].sum()
    central = critflow.solve(model).stocks.stock_kg[0, -1, :, 0].sum() / 1000.0
    # the mean over samples lies near the central solve, and the draws spread it
    assert abs(cars_2040 - central) < 0.1 * central
    assert mc.sd("stocks")[0, -1, :, 0].sum() > 0.01 * central


def test_a_sample_with_an_impossible_lifetime_is_named():
    text = (
        fleet_text()
        .replace("mean: life, std: 3", "mean: life - 9, std: 3")  # central 3, lowest draw -1
        .replace("life: 7}", "life: 12}")
    )
    with pytest.raises(CritflowError) as info:
        monte_carlo(model_text(text), 200, seed=1, chunk_size=100)
    problem = info.value.problems[0]
    assert "processes[2].lifetime" in problem.where
    assert "impossible for a normal lifetime" in problem.what
    assert "in a Monte Carlo sample" in problem.what and "Narrow the distributions" in problem.fix


BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def regional_model():
    """3 regions × 2 products × 3 elements × 20 years of the regions benchmark, with a distribution
    on the collection's recovery (of the first element) per region and one on the factor of
    every product's lifetime mean."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from regions import critflow_model, inputs, with_distributions
    finally:
        sys.path.remove(str(BENCHMARKS))
    from critflow.model.load import model_from_dict

    return model_from_dict(with_distributions(critflow_model(inputs(3, 2, 3, 20))))


def test_regional_stock_model_has_a_distribution_per_region_and_on_the_lifetime():
    labels = [i.label for i in collect(regional_model().spec)]
    assert len(labels) == 4 and len(set(labels)) == 4
    assert "parameters.lifetime_factor" in labels
    assert sum("collection" in label and "recovered" in label for label in labels) == 3


def test_distributed_stock_run_equals_in_process_run():
    pytest.importorskip("distributed")
    from critflow.engine.cluster import dask_client

    model = regional_model()
    local = monte_carlo(model, 120, seed=11, chunk_size=30)
    with dask_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        remote = monte_carlo(model, 120, seed=11, chunk_size=30, client=client)
    assert set(local.stats) == {"flows", "stocks"}
    for name in ("flows", "stocks"):
        assert local.stats[name].count == remote.stats[name].count == 120
        for field in ("mean", "m2", "minimum", "maximum", "counts"):
            assert np.array_equal(
                getattr(local.stats[name], field), getattr(remote.stats[name], field)
            ), (name, field)
    assert local.sd("stocks").max() > 0 and local.sd("flows").max() > 0


def test_run_writes_the_stocks_statistics(tmp_path):
    """`critflow run --samples` of a stock model writes stocks_stats.csv: every stock, scenario,
    year and element, with the statistics the engine's Monte Carlo gives for the same seed."""
    import pandas as pd

    from tests.conftest import critflow_cli

    path = tmp_path / "fleet.yaml"
    path.write_text(fleet_text(), encoding="utf-8")
    out = tmp_path / "run"
    result = critflow_cli("run", path, "--samples", "40", "--seed", "3", "--out", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "stocks_stats.csv")
    assert set(table["stock"]) == {"cars", "grid"}
    assert set(table["unit"]) == {"t"}
    assert len(table) == 2 * 2 * 21 * 3  # scenarios × stocks × years × elements
    model = model_text(fleet_text())
    mc = monte_carlo(model, 40, seed=3)
    n_s, n_p, n_e, n_k = mc.shapes["stocks"]
    mean = mc.stats["stocks"].mean.reshape(n_s, n_p, n_e, n_k)
    row = table[
        (table.scenario == "baseline")
        & (table.period == 2040)
        & (table.stock == "grid")
        & (table.element == "Li")
    ].iloc[0]
    assert row["mean"] == pytest.approx(mean[0, -1, 0, 1], rel=1e-12)
    assert row["p5"] <= row["p50"] <= row["p95"] and row["sd"] > 0
