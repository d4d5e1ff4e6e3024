"""Many stock processes stepped together in batches give what each stock gives alone.

The solver steps all stocks of one lifetime distribution as one cohort model (series over
stock × scenario × element). Here every stock of a generated model — exponential, normal,
lognormal, Weibull, fixed, folded normal, cohort-varying; inflow-driven, stock-driven or
switching; with and without an initial stock; fed by the recycled outflow of another stock (or of
itself) in the same period — is stepped again on its own, one period at a time, from the inflows
and targets of the solved model, and must give the same inflow, stock, outflow and retired mass.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critflow.engine import solve
from critflow.engine.stock_solve import cohort_model, stock_batches
from critflow.errors import CritflowError
from critflow.model.load import model_from_dict
from critflow.stocks import Lifetime, inflow_driven

START, END = 2000, 2024
ELEMENTS = ["Li", "Co", "rest"]
KINDS = ["exponential", "normal", "lognormal", "weibull", "fixed", "folded_normal", "varying"]


def lifetime_of(kind: str, uniform) -> dict:
    """A lifetime of ``kind``; ``uniform(low, high)`` picks its numbers."""
    if kind == "exponential":
        return {"distribution": "exponential", "mean": uniform(0.8, 30.0)}
    if kind in ("normal", "lognormal", "folded_normal"):
        mean = uniform(0.8, 30.0)
        return {"distribution": kind, "mean": mean, "std": mean * uniform(0.1, 0.8)}
    if kind == "weibull":
        return {"distribution": "weibull", "shape": uniform(0.7, 5.0), "scale": uniform(0.8, 30.0)}
    if kind == "fixed":
        return {"distribution": "fixed", "mean": float(round(uniform(1.0, 30.0)))}
    # cohort-varying: the Weibull scale changes with the year a cohort enters
    return {
        "distribution": "weibull",
        "shape": uniform(0.7, 5.0),
        "scale": {START: uniform(0.8, 30.0), END: uniform(0.8, 30.0)},
    }


def build(stocks: list[dict]) -> dict:
    """A model: each stock i is fed by ``make{i}`` and collected by ``coll{i}``, whose recovered
    part enters the next inflow-driven stock's ``make`` (the last one's its own) in the period."""
    processes: list[dict] = [{"id": "landfill", "kind": "sink"}]
    flows: list[dict] = []
    fed = [i for i, s in enumerate(stocks) if s["mode"] == "inflow"]
    for i, spec in enumerate(stocks):
        stock = {"id": f"use{i}", "kind": "stock", "lifetime": spec["lifetime"]}
        if spec["mode"] != "inflow":
            stock["driven_by"] = (
                "stock" if spec["mode"] == "stock" else {"until": 2010, "then": "stock"}
            )
            stock["stock"] = dict(zip([START, 2008, 2016, END], spec["target"], strict=True))
        if spec["initial"] == "total":
            stock["initial_stock"] = {"total": spec["initial_mass"]}
        elif spec["initial"] == "cohorts":
            stock["initial_stock"] = {
                "cohorts": {START - 6: spec["initial_mass"], START - 2: spec["initial_mass"] / 2},
                "composition": {"Li": 0.03, "Co": 0.02},
            }
        composition = {"Li": spec["li"], "Co": 0.02}
        recovered = spec["recovered"]
        processes += [
            {"id": f"src{i}", "kind": "source"},
            {"id": f"make{i}", "kind": "transfer", "transfer": {f"in{i}": {"default": 1.0}}}
            if spec["mode"] == "inflow"
            else {"id": f"make{i}", "kind": "market", "balancing": f"new{i}"},
            stock,
            {
                "id": f"coll{i}",
                "kind": "transfer",
                "transfer": {
                    f"rec{i}": {"default": recovered, "rest": recovered / 2},
                    f"loss{i}": {"default": 1 - recovered, "rest": 1 - recovered / 2},
                },
            },
        ]
        new = {"id": f"new{i}", "from": f"src{i}", "to": f"make{i}"}
        sales = {"id": f"in{i}", "from": f"make{i}", "to": f"use{i}", "composition": composition}
        given = {START: spec["inflow"][0], END: spec["inflow"][1]}
        if spec["mode"] == "inflow":
            new.update(value=given, composition=composition)
        elif spec["mode"] == "switch":
            sales["value"] = given
        flows += [
            new,
            sales,
            {"id": f"eol{i}", "from": f"use{i}", "to": f"coll{i}"},
            {"id": f"loss{i}", "from": f"coll{i}", "to": "landfill"},
        ]
    for i in range(len(stocks)):
        later = [j for j in fed if j > i]
        j = later[0] if later else fed[-1]
        flows.append({"id": f"rec{i}", "from": f"coll{i}", "to": f"make{j}"})
    return {
        "critflow": 1,
        "name": "many stocks",
        "time": {"start": START, "end": END},
        "unit": "t/a",
        "elements": ELEMENTS,
        "parameters": {"life": 8.0},
        "scenarios": {"baseline": {}, "longer": {"parameters": {"life": 15.0}}},
        "processes": processes,
        "flows": flows,
    }


@st.composite
def stock_specs(draw) -> list[dict]:
    n = draw(st.integers(3, 9))
    masses = st.floats(10.0, 5000.0)
    specs = []
    for i in range(n):
        kind = draw(st.sampled_from(KINDS))
        specs.append(
            {
                "lifetime": lifetime_of(kind, lambda low, high: draw(st.floats(low, high))),
                # the first is inflow-driven: there is always a stock the others recycle into
                "mode": "inflow"
                if i == 0
                else draw(st.sampled_from(["inflow", "stock", "switch"])),
                "target": draw(st.lists(masses, min_size=4, max_size=4)),
                "inflow": draw(st.lists(masses, min_size=2, max_size=2)),
                "initial": draw(st.sampled_from([None, "total", "cohorts"])),
                "initial_mass": draw(masses),
                "recovered": draw(st.floats(0.0, 0.9)),
                "li": draw(st.floats(0.001, 0.1)),
            }
        )
    if draw(st.booleans()):  # a lifetime that differs by scenario (a parameter)
        specs[0]["lifetime"] = {"distribution": "lognormal", "mean": "life", "std": "0.3 * life"}
    return specs


def each_stock_alone(results) -> None:
    """Step every stock of ``results`` on its own and compare with the batched solve."""
    inputs = results.inputs
    n_s, n_p, n_e, _ = results.mass_kg.shape
    n = n_s * n_e
    group = np.repeat(np.arange(n_s), n_e)
    flows = results.mass_kg.transpose(1, 0, 2, 3).reshape(n_p, n, -1)  # (P, S·E, F)
    scale = max(np.abs(results.mass_kg).max(), np.abs(results.stocks.stock_kg).max())
    for k, stock in enumerate(inputs.stocks):
        alone = cohort_model(stock, inputs)
        for t in range(n_p):
            if stock.stock_driven[t]:
                alone.reach_stock(
                    t,
                    stock.target_kg[:, t],
                    composition=stock.inflow_composition[:, t].reshape(n),
                    group=group,
                )
            else:
                alone.add_inflow(t, flows[t, :, stock.input_flow])
        batched = results.stocks.cohorts[k]
        where = f"stock {stock.process_id}"
        assert np.abs(alone.inflow - flows[:, :, stock.input_flow]).max() <= 1e-12 * scale, where
        assert np.abs(alone.outflow - flows[:, :, stock.output_flow]).max() <= 1e-12 * scale, where
        in_use = results.stocks.stock_kg[..., k].transpose(1, 0, 2).reshape(n_p, n)
        assert np.abs(alone.stock - in_use).max() <= 1e-12 * scale, where
        assert np.abs(alone.stock - batched.stock).max() <= 1e-12 * scale, where
        assert np.abs(alone.retired - batched.retired).max() <= 1e-12 * scale, where
        assert (alone.clipped_periods() == (batched.retire_factor < 1.0)).all(), where
        initial = results.stocks.initial_kg[..., k].reshape(n)
        assert np.abs(alone.initial_stock - initial).max() <= 1e-12 * scale, where


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stock_specs())
def test_batched_stocks_equal_each_stock_stepped_alone(specs):
    results = solve(model_from_dict(build(specs)))
    assert results.max_relative_residual() < 1e-9
    each_stock_alone(results)


def test_stocks_of_one_distribution_are_one_batch_and_loops_close():
    rng = np.random.default_rng(3)
    specs = []
    for i, kind in enumerate(KINDS * 3):
        specs.append(
            {
                "lifetime": lifetime_of(kind, lambda low, high: float(rng.uniform(low, high))),
                "mode": ["inflow", "stock", "switch", "inflow"][i % 4],
                "target": list(rng.uniform(100.0, 5000.0, 4)),
                "inflow": list(rng.uniform(100.0, 5000.0, 2)),
                "initial": None if i % 5 else "total",
                "initial_mass": 800.0,
                "recovered": 0.6,
                "li": 0.02,
            }
        )
    results = solve(model_from_dict(build(specs)))
    inputs = results.inputs
    batches = stock_batches(inputs.stocks, inputs)
    # one batch per distribution (cohort-varying apart), history length and policy
    keys = {
        (s.distribution, s.cohort_varying, s.initial_total_kg is not None) for s in inputs.stocks
    }
    assert len(batches) <= len(keys) + 3  # stocks with an initial stock may differ in history
    assert sum(b.members.size for b in batches) == len(inputs.stocks) == 21
    assert max(b.members.size for b in batches) >= 3
    each_stock_alone(results)
    # the recycle loop: each stock's recovered share re-enters the next inflow-driven stock
    topo = inputs.topology
    mass = results.mass_kg
    li = ELEMENTS.index("Li")

    def flow(name: str) -> np.ndarray:
        return mass[..., li, topo.flow_ids.index(name)]

    for i in range(21):
        assert np.allclose(flow(f"rec{i}"), 0.6 * flow(f"eol{i}"), rtol=1e-12, atol=0)
    # stock 20 (inflow-driven, the last) takes stock 19's recovered material and its own back
    fed = flow("new20") + flow("rec19") + flow("rec20")
    assert np.allclose(flow("in20"), fed, rtol=1e-12, atol=0)
    assert (flow("rec20") > 0.01 * flow("in20")).all()


def test_inflow_driven_stock_in_a_batch_equals_the_standalone_model():
    # independent of the engine: the plain cohort model of the stock's solved inflow
    specs = [
        {
            "lifetime": {"distribution": "normal", "mean": 5.0 + 3 * i, "std": 1.0 + i},
            "mode": "inflow",
            "target": [0.0] * 4,
            "inflow": [100.0 * (i + 1), 50.0],
            "initial": None,
            "initial_mass": 0.0,
            "recovered": 0.5,
            "li": 0.02,
        }
        for i in range(6)
    ]
    results = solve(model_from_dict(build(specs)))
    topo = results.inputs.topology
    for i in range(6):
        inflow = results.mass_kg[0, :, :, topo.flow_ids.index(f"in{i}")]
        expected = inflow_driven(inflow, Lifetime.of("normal", mean=5.0 + 3 * i, std=1.0 + i))
        scale = np.abs(expected.stock).max()
        outflow = results.mass_kg[0, :, :, topo.flow_ids.index(f"eol{i}")]
        assert np.abs(outflow - expected.outflow).max() <= 1e-12 * scale
        assert np.abs(results.stocks.stock_kg[0, :, :, i] - expected.stock).max() <= 1e-12 * scale


def test_negative_inflow_error_names_the_stock_and_scenario_inside_a_batch():
    base = {
        "lifetime": {"distribution": "weibull", "shape": 2.0, "scale": 10.0},
        "inflow": [100.0, 200.0],
        "initial": None,
        "initial_mass": 0.0,
        "recovered": 0.5,
        "li": 0.02,
    }
    specs = [
        dict(base, mode="inflow", target=[0.0] * 4),
        dict(base, mode="stock", target=[1000.0, 2000.0, 3000.0, 4000.0]),
        # falls from 2009 on: slowly in the baseline, faster than its cohorts leave in 'drop'
        dict(base, mode="stock", target=[1000.0, 5000.0, "low", "low"]),
    ]
    model = build(specs)
    use2 = next(p for p in model["processes"] if p["id"] == "use2")
    use2["negative_inflow"] = "error"
    model["parameters"] = {"life": 8.0, "low": 4800.0}
    model["scenarios"] = {"baseline": {}, "drop": {"parameters": {"low": 100.0}}}
    results = solve(model_from_dict(model), ["baseline"])
    assert results.stocks.stock_kg[0, 10:, :, 2].sum(axis=-1) == pytest.approx(
        np.interp(np.arange(2010, END + 1), [2008, 2016], [5000e3, 4800e3]), rel=1e-9
    )
    with pytest.raises(CritflowError) as info:
        solve(model_from_dict(model))
    text = str(info.value)
    assert "stock 'use2'" in text and "falls faster than its cohorts leave in 2009" in text
    assert "scenario 'drop'" in text
