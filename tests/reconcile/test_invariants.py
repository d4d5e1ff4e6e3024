"""Invariants of data reconciliation on generated multi-element networks.

Networks of 3-6 transfer units with 2-4 elements, recycle streams, some units with fixed transfer
coefficients and sometimes a given feed; measurements of goods masses only, or goods and element
masses mixed; sometimes a gross error. For every one, critflow's result must

* satisfy every balance, transfer relation and given value to 1e-9 of the largest measured or
  given mass (the scale critflow works in; never above the largest flow),
  for element and goods masses alike, wherever it reports a value;
* equal an independent closed-form WLS (Crowe's projection method, tests/reconcile/reference.py):
  reconciled values (to 1e-9 of the largest measured or given mass, or to the first-order
  rounding bound when the weighted problem is ill-conditioned), χ², ν, z, and the observability
  and redundancy classes;
* report NaN exactly for the unobservable quantities;
* group exactly the measurements whose columns of the reduced balances are parallel (equal |z|).
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from scipy import linalg

from critflow.engine.reconcile import reconcile
from tests.conftest import model_text
from tests.reconcile.reference import ELEMENTS, Network, crowe


@st.composite
def networks(draw: st.DrawFn) -> Network:
    n_el = draw(st.integers(2, 4))
    n_units = draw(st.integers(3, 6))
    elements = ELEMENTS[:n_el]
    units = [f"u{i}" for i in range(n_units)]
    flows = [("feed", "ore", "u0")]
    for i, u in enumerate(units):
        # every unit sends something forward (so no loop traps material) and somewhere else;
        # a unit after the first may send a recycle stream back to an earlier one
        flows.append((f"{u}_a", u, units[i + 1] if i + 1 < n_units else "product"))
        later = [*units[i + 1 :], "dam", "product"]
        flows.append((f"{u}_b", u, draw(st.sampled_from(later))))
        if i > 0 and draw(st.booleans()):
            flows.append((f"{u}_r", u, draw(st.sampled_from(units[:i]))))
    ids = [f for f, _, _ in flows]
    index = {f: k for k, f in enumerate(ids)}
    share = st.floats(0.05, 0.95)
    # the true state: splits of every unit and element, a feed; solved in the test
    splits = {}
    for u in units:
        outs = [f for f, a, _ in flows if a == u]
        raw = np.array([[draw(share) for _ in outs] for _ in elements])
        splits[u] = {
            o: dict(zip(elements, raw[:, k] / raw.sum(axis=1), strict=True))
            for k, o in enumerate(outs)
        }
    feed = np.array([draw(st.floats(0.5, 200.0)) for _ in elements])
    x = np.zeros((len(flows), n_el))
    for e, element in enumerate(elements):
        m, rhs = np.eye(len(flows)), np.zeros(len(flows))
        rhs[0] = feed[e]
        for u in units:
            ins = [index[f] for f, _, b in flows if b == u]
            for out, by_element in splits[u].items():
                m[index[out], ins] -= by_element[element]
        x[:, e] = np.linalg.solve(m, rhs)
    fixed = {u: splits[u] for u in units if draw(st.integers(0, 3)) == 0}
    given_feed = draw(st.booleans())
    given = {"feed": dict(zip(elements, feed, strict=True))} if given_feed else {}
    # measurements: goods only, or goods and element masses; never the goods mass together with
    # every element of one flow (those would repeat one quantity)
    goods_only = draw(st.booleans())
    quantities: list[tuple[str, str | None, float]] = []
    for k, f in enumerate(ids):
        if draw(st.integers(0, 4)) == 0:
            continue  # unmeasured
        goods = goods_only or draw(st.booleans())
        if goods:
            quantities.append((f, None, float(x[k].sum())))
        if not goods_only:
            chosen = [e for e in range(n_el) if draw(st.booleans())]
            if goods and len(chosen) == n_el:
                chosen = chosen[1:]
            quantities += [(f, elements[e], float(x[k, e])) for e in chosen]
    if not quantities:
        quantities.append(("feed", None, float(x[0].sum())))
    measurements = []
    for f, e, value in quantities:
        noise = draw(st.floats(-2.0, 2.0))
        relative = draw(st.sampled_from([0.01, 0.02, 0.05]))
        sd = relative * value
        if draw(st.booleans()):  # an absolute sd rounded as a user writes it
            sd = max(round(sd, 1), 0.1)
        measurements.append((f, e, round(value + noise * sd, 2), sd))
    if draw(st.booleans()):  # a gross error of 6-15 standard deviations
        k = draw(st.integers(0, len(measurements) - 1))
        f, e, value, sd = measurements[k]
        measurements[k] = (f, e, value + draw(st.floats(6.0, 15.0)) * sd, sd)
    return Network(elements, units, flows, fixed, given, measurements)


# 150 examples run in about 15 s; CRITFLOW_FUZZ_EXAMPLES=5000 hunts longer
EXAMPLES = int(os.environ.get("CRITFLOW_FUZZ_EXAMPLES", "150"))


def _rounding_allowance(net: Network, rank: int) -> float:
    """How far two double-precision solutions of this WLS problem may differ in an element flow.

    The first-order bound for a least-squares problem whose data are perturbed by ε (Golub & Van
    Loan, Matrix Computations, 4th ed., 2013, Theorem 5.3.1; Wedin 1973):
    ‖δt‖ ≤ ε (2κ / cos θ + κ² tan θ) ‖t‖, for the weighted measurements of the feasible
    directions, G = V^-½ H N (N orthonormal, so ‖δx‖ = ‖δt‖), with κ its condition number and
    sin θ = √χ² / ‖V^-½ (y − H x_p)‖. ε = 1e-15 (a few factorisations at unit roundoff 1.1e-16).
    Well-conditioned problems give far below 1e-9 of the largest flow; a gross error measured
    against much more precise measurements (κ ~ 1e4, tan θ ~ 0.1) gives ~1e-9.
    """
    if rank == 0:
        return 0.0
    a, b, _ = net.balances()
    h = net.measurement_matrix()
    y = np.array([m[2] for m in net.measurements])
    sd = np.array([m[3] for m in net.measurements])
    basis = linalg.null_space(a) if a.size else np.eye(net.n)
    x_p = np.linalg.lstsq(a, b, rcond=None)[0] if a.size else np.zeros(net.n)
    g = (h @ basis) / sd[:, None]
    w = (y - h @ x_p) / sd
    singular = np.linalg.svd(g, compute_uv=False)
    kappa = singular[0] / singular[rank - 1]
    t = np.linalg.lstsq(g, w, rcond=singular[rank - 1] / singular[0] / 2)[0]
    residual = np.linalg.norm(w - g @ t)
    sin = min(residual / max(np.linalg.norm(w), 1e-300), 1 - 1e-12)
    cos = np.sqrt(1 - sin**2)
    return 1e-15 * (2 * kappa / cos + kappa**2 * sin / cos) * np.linalg.norm(t)


def _by_reference_order(net: Network, values: np.ndarray) -> np.ndarray:
    """critflow's (E, F) array in the reference's flow-major order."""
    return values.T.reshape(-1)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_reconciled_results_close_every_balance_and_equal_closed_form_wls(net):
    note(net.yaml())
    (found,) = reconcile(model_text(net.yaml()))
    ref = crowe(net)
    table = found.measurements
    y = np.array([m[2] for m in net.measurements])
    scale = max(np.abs(y).max(), max((sum(g.values()) for g in net.given.values()), default=0))
    # equal to the closed form: to 1e-9 of the largest flow, or to what rounding allows when the
    # weighted problem is ill-conditioned (a measured goods mass sums up to four element flows)
    rounding = _rounding_allowance(net, len(y) - ref.dof)
    note(f"rounding allowance {rounding:.3g} (1e-9 of the largest flow: {1e-9 * scale:.3g})")
    assert table["measurement"].tolist() == net.labels()
    assert np.allclose(
        table["reconciled"], ref.reconciled, rtol=0, atol=max(1e-9 * scale, 2 * rounding)
    )
    assert found.dof == ref.dof
    assert np.isclose(found.chi2, ref.chi2, rtol=1e-7, atol=1e-9)
    assert (table["redundant"].to_numpy() == ref.redundant).all()
    # |z| to 1e-6 relative; near zero, rounding of the adjustment (1e-16 of the largest flow over
    # a tiny sd of the adjustment) limits both calculations to about 1e-5 absolute
    assert np.allclose(table["z"], ref.z, rtol=1e-6, atol=1e-4, equal_nan=True)
    observable = _by_reference_order(net, found.observable)
    assert (observable == ref.observable).all()
    assert (found.goods_observable == ref.goods_observable).all()
    x = _by_reference_order(net, found.x)
    # unobservable: no value; observable: the closed form's value
    assert (np.isnan(x) == ~observable).all()
    assert np.allclose(x[observable], ref.x[observable], rtol=0, atol=max(1e-9 * scale, rounding))
    # every balance, transfer relation and given value whose quantities have values closes
    a, b, _ = net.balances()
    known = ~(a[:, ~observable] != 0).any(axis=1)
    assert np.abs(a[known][:, observable] @ x[observable] - b[known]).max(initial=0) <= 1e-9 * scale
    # goods balances of every unit whose goods flows all have values
    goods = dict(zip(found.flows, found.goods, strict=True))
    for u in net.units:
        ins = [f for f, _, to in net.flows if to == u]
        outs = [f for f, frm, _ in net.flows if frm == u]
        values = [goods[f] for f in ins + outs]
        if not np.isnan(values).any():
            gap = sum(goods[f] for f in ins) - sum(goods[f] for f in outs)
            assert abs(gap) <= 1e-9 * scale, (u, gap)
    # measurements cannot be told apart exactly when their reduced columns are parallel
    group = table["group"].to_numpy()
    for i in range(len(y)):
        for j in range(i + 1, len(y)):
            both = ref.redundant[i] and ref.redundant[j]
            assert (group[i] == group[j]) == (both and ref.tied(i, j)), (i, j)
            if group[i] == group[j]:
                assert np.isclose(table["z"].iloc[i], table["z"].iloc[j], rtol=1e-6, atol=1e-4)
