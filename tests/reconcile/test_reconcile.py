"""Data reconciliation against published and hand-checkable cases."""

from __future__ import annotations

import numpy as np
import pytest

from critflow.engine.reconcile import reconcile
from critflow.errors import CritflowError
from critflow.model import load_model
from tests.conftest import ROOT, model_text

# Benchmark P2 of Dovì & Solisio (2001), Chem. Eng. J. 84:309, as transcribed in
# EDSONCV/dr-ged-benchmarks (linear/P2: constraints x1 + x2 − x3 = 0, x3 − x2 − x4 = 0,
# x4 − x5 − x6 = 0): six streams, three nodes, stream 2 a recycle.
P2 = """
critflow: 1
name: P2
time: {start: 2025, end: 2025}
elements: [X]
processes:
  - {id: feed, kind: source}
  - {id: mixer, kind: transfer}
  - {id: splitter, kind: transfer}
  - {id: separator, kind: transfer}
  - {id: product5, kind: sink}
  - {id: product6, kind: sink}
flows:
  - {id: s1, from: feed, to: mixer}
  - {id: s2, from: splitter, to: mixer}
  - {id: s3, from: mixer, to: splitter}
  - {id: s4, from: splitter, to: separator}
  - {id: s5, from: separator, to: product5}
  - {id: s6, from: separator, to: product6}
measurements:
MEASUREMENTS
"""
Y = [11.0, 9.9, 21.25, 11.1, 7.0, 3.8]
VARIANCE = [0.032, 0.026, 0.120, 0.033, 0.052, 0.015]
# reconciled values and objective to the published precision (critflow flowsheet notes 3.2)
X_HAT = [11.029, 9.957, 20.986, 11.029, 7.178, 3.851]


def p2(measured=range(6), y=Y):
    lines = "\n".join(
        f"  - {{flow: s{i + 1}, value: {y[i]}, sd: {float(np.sqrt(VARIANCE[i]))!r}}}"
        for i in measured
    )
    return model_text(P2.replace("MEASUREMENTS", lines))


def test_p2_reconciled_values_and_global_test():
    (found,) = reconcile(p2())
    assert found.measurements["reconciled"].round(3).tolist() == X_HAT
    assert found.chi2 == pytest.approx(1.67, abs=0.005)
    assert found.dof == 3 and found.passed and not found.suspects
    # the closed form of linear WLS: x̂ = y − V Aᵀ (A V Aᵀ)⁻¹ A y
    a = np.array([[1, 1, -1, 0, 0, 0], [0, -1, 1, -1, 0, 0], [0, 0, 0, 1, -1, -1]], float)
    v = np.diag(VARIANCE)
    closed = np.array(Y) - v @ a.T @ np.linalg.solve(a @ v @ a.T, a @ np.array(Y))
    assert np.allclose(found.measurements["reconciled"], closed, rtol=1e-12)
    # reconciled values are more precise than the measurements and satisfy the balances
    assert (found.measurements["reconciled_sd"] < found.measurements["sd"]).all()
    assert np.abs(a @ found.measurements["reconciled"].to_numpy()).max() < 1e-9


def test_p2_classification_with_stream_3_unmeasured():
    (found,) = reconcile(p2(measured=[0, 1, 3, 4, 5]))
    table = found.measurements.set_index("measurement")
    # stream 2 only appears in balances with stream 3: it is not redundant and passes unchanged
    assert not table.loc["s2 goods", "redundant"]
    assert table.loc["s2 goods", "reconciled"] == pytest.approx(9.9)
    assert table.loc[["s1 goods", "s4 goods", "s5 goods", "s6 goods"], "redundant"].all()
    s3 = list(found.x[0]).__getitem__(2)
    assert found.observable[0, 2] and s3 == pytest.approx(found.x[0, 0] + 9.9)
    assert found.dof == 2


def test_gross_error_is_named():
    biased = list(Y)
    biased[0] += 1.5  # a bias on stream 1 (flowsheet notes 3.3)
    (found,) = reconcile(p2(measured=[0, 1, 3, 4, 5], y=biased))
    assert not found.passed and found.chi2 > found.critical
    assert found.suspects[0] == "s1 goods"


# Two-product separation (flowsheet notes 3.4): feed, concentrate and tailings measured as goods
# mass flows with two assays each; concentrations make the problem bilinear.
SEPARATION = """
critflow: 1
name: two-product node
time: {start: 2025, end: 2025}
elements: [A, B, rest]
processes:
  - {id: mill, kind: source}
  - {id: flotation, kind: transfer}
  - {id: smelter, kind: sink}
  - {id: dam, kind: sink}
flows:
  - {id: feed, from: mill, to: flotation}
  - {id: concentrate, from: flotation, to: smelter}
  - {id: tailings, from: flotation, to: dam}
measurements:
  - {flow: feed, value: 100, sd: 2}
  - {flow: concentrate, value: 12, sd: 0.5}
  - {flow: tailings, value: 90, sd: 3}
  - {flow: feed, element: A, concentration: 0.020, sd: 0.0005}
  - {flow: feed, element: B, concentration: 0.0050, sd: 0.0002}
  - {flow: concentrate, element: A, concentration: 0.150, sd: 0.004}
  - {flow: concentrate, element: B, concentration: 0.032, sd: 0.001}
  - {flow: tailings, element: A, concentration: 0.0025, sd: 0.0002}
  - {flow: tailings, element: B, concentration: 0.0012, sd: 0.0001}
"""


def test_bilinear_two_product_node():
    (found,) = reconcile(model_text(SEPARATION))
    table = found.measurements.set_index("measurement")
    goods = table.loc[["feed goods", "concentrate goods", "tailings goods"], "reconciled"]
    assert goods.round(2).tolist() == [100.55, 12.02, 88.53]
    assert found.chi2 == pytest.approx(0.58, abs=0.01) and found.passed
    # element balances close, and the two-product formula holds for the reconciled assays
    assert np.abs(found.x[:, 0] - found.x[:, 1] - found.x[:, 2]).max() < 1e-8
    f, c, t = (
        table.loc[f"{s} A concentration", "reconciled"] for s in ("feed", "concentrate", "tailings")
    )
    assert goods.iloc[1] / goods.iloc[0] == pytest.approx((f - t) / (c - t), rel=1e-8)
    recovery = found.x[0, 1] / found.x[0, 0]
    assert recovery == pytest.approx(0.891, abs=0.0005)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("  - {flow: s7, value: 3, sd: 0.1}", "the model has no flow 's7'"),
        ("  - {flow: s1, value: 3, sd: 0}", "standard deviation must be positive"),
        ("  - {flow: s1, value: 3, sd: -1}", "standard deviation must be positive"),
        ("  - {flow: s1, element: Q, value: 3, sd: 1}", "'Q' is not an element"),
        ("  - {flow: s1, concentration: 0.3, sd: 0.1}", "add element"),
    ],
)
def test_bad_measurements_are_named(line, message):
    text = P2.replace("MEASUREMENTS", "  - {flow: s2, value: 9.9, sd: 0.2}\n" + line)
    with pytest.raises(CritflowError) as info:
        reconcile(model_text(text))
    assert message in str(info.value) and "model.yaml" in str(info.value)


# A single balance: a gross error in any of its streams explains the data equally well.
SPLITTER = """
critflow: 1
name: one balance
time: {start: 2025, end: 2025}
elements: [X]
processes:
  - {id: feed, kind: source}
  - {id: splitter, kind: transfer}
  - {id: a, kind: sink}
  - {id: b, kind: sink}
flows:
  - {id: s1, from: feed, to: splitter}
  - {id: s2, from: splitter, to: a}
  - {id: s3, from: splitter, to: b}
measurements:
  - {flow: s1, value: 100, sd: 2}
  - {flow: s2, value: 80, sd: 1}
  - {flow: s3, value: 40, sd: 4}
"""


def test_suspects_of_a_single_balance_cannot_be_told_apart():
    (found,) = reconcile(model_text(SPLITTER))
    table = found.measurements
    # one balance s1 − s2 − s3 = 0 with residual r = −20: every a_i = sd_i² r / Σ sd², so
    # |z_i| = |r| / √Σ sd² = 20 / √21 for all three, whatever the sds
    assert np.allclose(table["z"], 20 / np.sqrt(21), rtol=1e-12)
    assert found.dof == 1 and not found.passed
    assert found.suspect_groups == [["s1 goods", "s2 goods", "s3 goods"]]
    assert table["tied_with"].iloc[0] == "s2 goods; s3 goods"


# Hand classification of examples/flotation_circuit_reconciliation.yaml (goods on six of seven
# streams, Cu assays on feed, rougher and final concentrate and final tailings, Fe on feed and final
# concentrate). Goods: the unmeasured rougher tailings close the rougher balance, the scavenger
# concentrate then cancels (non-redundant); feed + cleaner_tail = rougher_conc + final_tail and
# rougher_conc = final_conc + cleaner_tail remain, where rougher_conc and cleaner_tail enter in the
# same proportions (tied). Cu: the circuit balance feed = final_conc + final_tail is redundant (its
# three assays tied); the rougher concentrate assay fixes Cu in the cleaner loop only; the
# scavenger loop (rougher_tail, scavenger_conc) is free. Fe and the rest: known in feed, final
# concentrate and final tailings, free inside the circuit. ν = 2 (goods) + 1 (Cu) = 3.
def test_rougher_cleaner_scavenger_classification():
    (found,) = reconcile(load_model(ROOT / "examples" / "flotation_circuit_reconciliation.yaml"))
    inner = ["Fe", "rest"]
    assert found.unobservable_by_flow == {
        "rougher_conc": inner,
        "rougher_tail": ["Cu", *inner],
        "cleaner_tail": inner,
        "scavenger_conc": ["Cu", *inner],
    }
    assert found.unobservable_goods == [] and found.dof == 3
    table = found.measurements.set_index("measurement")
    assert set(table.index[~table["redundant"]]) == {
        "scavenger_conc goods",
        "feed Fe concentration",
        "rougher_conc Cu concentration",
        "final_conc Fe concentration",
    }
    groups = {tuple(g) for g in table.groupby("group").groups.values() if len(g) > 1}
    assert groups == {
        ("rougher_conc goods", "cleaner_tail goods"),
        ("feed Cu concentration", "final_conc Cu concentration", "final_tail Cu concentration"),
    }
    goods = dict(zip(found.flows, found.goods, strict=True))
    assert goods["rougher_tail"] == pytest.approx(
        goods["feed"] + goods["cleaner_tail"] + goods["scavenger_conc"] - goods["rougher_conc"],
        rel=1e-12,
    )
    assert goods["rougher_tail"] == pytest.approx(goods["scavenger_conc"] + goods["final_tail"])
    cu = dict(zip(found.flows, found.x[0], strict=True))
    assert cu["feed"] == pytest.approx(cu["final_conc"] + cu["final_tail"], rel=1e-12)


@pytest.mark.parametrize(
    ("line", "where", "message"),
    [
        ("  - {flow: s1, value: .nan, sd: 1}", "measurements[1].value", "the value is NaN"),
        ("  - {flow: s1, value: .inf, sd: 1}", "measurements[1].value", "the value is inf"),
        ("  - {flow: s1, value: 3, sd: .nan}", "measurements[1].sd", "the value is NaN"),
        ("  - {flow: s1, value: '1e999 t/a', sd: 1}", "measurements[1].value", "not a finite"),
        # a number written as text reaches the reconciliation, which refuses it itself
        ("  - {flow: s1, value: 3, sd: '1e999'}", "measurements[1]", "standard deviation is inf"),
    ],
)
def test_non_finite_measurements_are_refused(line, where, message):
    text = P2.replace("MEASUREMENTS", "  - {flow: s2, value: 9.9, sd: 0.2}\n" + line)
    with pytest.raises(CritflowError) as info:
        reconcile(model_text(text))
    assert message in str(info.value) and where in str(info.value)
