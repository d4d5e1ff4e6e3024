"""Breaking the Sankey's fate shares of recycle loops (the batched elimination of
critflow.report.sankey) from outside. Each case once gave a wrong share or ran out of memory; the
expected shares come from an exact solve in rational numbers of the same flows."""

from __future__ import annotations

import tracemalloc
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.report.sankey import FATE_CLASSES, downstream_shares

LOST, RECYCLED = FATE_CLASSES.index("lost"), FATE_CLASSES.index("recycled")


def _exact_shares(topo, values: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(F, C) shares of one row of flows, solved in fractions from the same float flows: each
    passing process's y = Σ over its outflows g of v_g / Σ v · (y of where g goes, or g's class).
    Every process of these graphs reaches a way out, so the system is regular."""
    kinds = topo.process_kinds
    n_f, n_c = values.size, len(FATE_CLASSES)
    outflow: dict[int, Fraction] = {}
    for f in range(n_f):
        outflow[topo.flow_from[f]] = outflow.get(topo.flow_from[f], Fraction(0)) + Fraction(
            float(values[f])
        )
    split = [Fraction(float(values[f])) / outflow[topo.flow_from[f]] for f in range(n_f)]
    passing = [p for p, kind in enumerate(kinds) if kind not in ("sink", "stock", "source")]
    at = {p: i for i, p in enumerate(passing)}
    k = len(passing)
    m = [[Fraction(int(i == j)) for j in range(k)] for i in range(k)]
    b = [[Fraction(0)] * n_c for _ in range(k)]
    for g in range(n_f):
        if topo.flow_from[g] not in at:
            continue
        i, to = at[topo.flow_from[g]], topo.flow_to[g]
        if to in at:
            m[i][at[to]] -= split[g]
        else:
            b[i][classes[g]] += split[g]
    for c in range(k):  # Gauss-Jordan, exact
        pivot = next(r for r in range(c, k) if m[r][c] != 0)
        m[c], m[pivot], b[c], b[pivot] = m[pivot], m[c], b[pivot], b[c]
        for r in range(k):
            if r != c and m[r][c] != 0:
                factor = m[r][c] / m[c][c]
                m[r] = [x - factor * y for x, y in zip(m[r], m[c], strict=True)]
                b[r] = [x - factor * y for x, y in zip(b[r], b[c], strict=True)]
    y = [[float(v / m[i][i]) for v in b[i]] for i in range(k)]
    out = np.zeros((n_f, n_c))
    for f in range(n_f):
        to = topo.flow_to[f]
        if to in at:
            out[f] = y[at[to]]
        else:
            out[f, classes[f]] = 1.0
    return out


def _two_process_loop(circulating: float):
    """feed → A; A ⇄ B carrying ``circulating`` t/a each way; A → sink 1 t/a (the feed)."""
    topo = SimpleNamespace(
        process_kinds=("source", "transfer", "transfer", "sink"),
        flow_from=np.array([0, 1, 2, 1]),
        flow_to=np.array([1, 2, 1, 3]),
    )
    classes = np.array([[-1, -1, -1, LOST]])
    return topo, np.array([[1.0, circulating, circulating, 1.0]]), classes


@pytest.mark.parametrize("circulating", [1e6, 1e12, 1e15, 1e16, 1e17, 1e20, 1e100, 1e300])
def test_a_loop_with_a_tiny_bleed_sends_all_its_feed_out_of_the_bleed(circulating):
    """The only way out of the loop is the 1 t/a bleed, so the feed's share there is 1 however
    much circulates. It was 0 from a recirculation of 1 - 1e-16 on (1 - 1·1 cancelled to a zero
    pivot and the division's inf/NaN became 0), and 0.99999999995 at 1e6 t/a circulating."""
    topo, values, classes = _two_process_loop(circulating)
    shares = downstream_shares(values, topo, classes)[0]
    assert shares[0, LOST] == pytest.approx(1.0, rel=1e-14)
    assert shares[1:3, LOST] == pytest.approx([1.0, 1.0], rel=1e-14)


def _ill_conditioned_loop(rng: np.random.Generator, k: int, bleed: float):
    """A ring of k transfer processes with random shortcuts, fed at the first; three of them
    bleed ``bleed`` times their circulation to a recycled, a lost and a product sink."""
    kinds = ["source"] + ["transfer"] * k + ["sink"] * 3
    edges = [(0, 1)] + [(1 + i, 1 + (i + 1) % k) for i in range(k)]
    edges += [
        (int(a), int(b)) for a, b in rng.integers(1, k + 1, size=(k, 2)) if a != b
    ]  # shortcuts and reverse links
    bleeding = rng.choice(np.arange(1, k + 1), size=min(k, 3), replace=False)
    edges += [(int(p), k + 1 + j) for j, p in enumerate(bleeding)]
    values = rng.uniform(1.0, 10.0, len(edges))
    values[-len(bleeding) :] *= bleed
    topo = SimpleNamespace(
        process_kinds=tuple(kinds),
        flow_from=np.array([a for a, _ in edges]),
        flow_to=np.array([b for _, b in edges]),
    )
    classes = np.array([[b - k - 1 if b > k else -1 for _, b in edges]])
    return topo, values, classes


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(2, 12),
    bleed=st.sampled_from([1e-3, 1e-6, 1e-9, 1e-12, 1e-14, 1e-15]),
)
def test_fate_shares_of_ill_conditioned_loops_equal_an_exact_solve(seed, k, bleed):
    """Loops that let out as little as 1e-15 of what circulates: the shares equal an exact solve
    of the same flows to 1e-12 (relative to 1). Elimination with subtraction (and LAPACK's
    np.linalg.solve alike) was off by up to 4e-2 at a bleed of 1e-14: its error grows with the
    loop's condition number, 1/bleed; the elimination that only adds stays at rounding level."""
    rng = np.random.default_rng(seed)
    topo, values, classes = _ill_conditioned_loop(rng, k, bleed)
    shares = downstream_shares(values[None], topo, classes)[0]
    expected = _exact_shares(topo, values, classes[0])
    np.testing.assert_allclose(shares, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_a_recycle_loop_of_400_processes_takes_memory_in_proportion():
    """A strongly connected group of k = 400 processes (a ring with shortcuts, as regions trading
    scrap make): its coefficients were gathered by a one-hot (k², flows) product built from an
    identity of k² × k² — 191 GiB at k = 400, a MemoryError at k = 200 (11.9 GiB) and 1.7 GB at
    k = 120. The shares must come out with a peak far below that and equal a dense solve."""
    rng = np.random.default_rng(7)
    k = 400
    topo, values, classes = _ill_conditioned_loop(rng, k, 1e-2)
    tracemalloc.start()
    try:
        shares = downstream_shares(values[None], topo, classes)[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100e6, f"peak {peak / 1e6:.0f} MB"
    # independent check: the dense system of the k processes by LAPACK (well conditioned here)
    n_f = values.size
    outflow = np.zeros(len(topo.process_kinds))
    np.add.at(outflow, topo.flow_from, values)
    split = values / outflow[topo.flow_from]
    m, b = np.eye(k), np.zeros((k, len(FATE_CLASSES)))
    for g in range(n_f):
        i, to = topo.flow_from[g] - 1, topo.flow_to[g]
        if i < 0:
            continue
        if 1 <= to <= k:
            m[i, to - 1] -= split[g]
        else:
            b[i, classes[0, g]] += split[g]
    y = np.linalg.solve(m, b)
    np.testing.assert_allclose(shares[0], y[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=0, atol=1e-12)
