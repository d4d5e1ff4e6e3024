"""The dense path for small systems against the sparse path (issue 19: validate without SciPy).

Small systems are solved as batched dense blocks (``numpy.linalg.solve``) and their loops found by
a transitive closure; large ones by SciPy's sparse LU and ``csgraph``. Forcing each path in turn,
every shipped model and generated models (recycle loops, stocks, several elements, scenarios and
periods) must give the same flows, balances and stocks to 1e-12, both must close every process
balance, and the same bad models must give the same messages.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import critflow
from critflow.engine import linear
from critflow.errors import CritflowError
from tests.conftest import EXAMPLE, ROOT, model_text

MODELS = sorted(
    path
    for path in (ROOT / "examples").glob("*.yaml")
    if any(line.startswith("critflow:") for line in path.read_text(encoding="utf-8").splitlines())
)


@contextlib.contextmanager
def sparse_only():
    """Every system solved by the sparse LU, every graph by csgraph."""
    with mock.patch.multiple(linear, DENSE_MAX_FLOWS=0, DENSE_MAX_NODES=0):
        yield


@contextlib.contextmanager
def dense_only():
    """Every system solved as dense blocks, every graph by the closure, whatever its size."""
    big = 1 << 62
    with mock.patch.multiple(
        linear,
        DENSE_MAX_FLOWS=big,
        DENSE_MAX_WORK=big,
        DENSE_MAX_ENTRIES=big,
        DENSE_MAX_NODES=big,
        DENSE_MAX_CLOSURE=big,
    ):
        yield


@contextlib.contextmanager
def counting_dense():
    """Count the dense solves (to show the dense path is the one taken)."""
    calls = []
    original = linear.DenseBlocks.solve

    def solve(self, rhs):
        calls.append(rhs.shape)
        return original(self, rhs)

    with mock.patch.object(linear.DenseBlocks, "solve", solve):
        yield calls


def assert_same(dense: critflow.FlowResults, sparse: critflow.FlowResults) -> None:
    """Flows, balances and stocks agree to 1e-12 of the largest flow of their block; both close
    every process balance (an invariant of the equations, not of either solver)."""
    a, b = dense.mass_kg, sparse.mass_kg
    assert a.shape == b.shape
    scale = np.maximum(np.abs(b).max(axis=-1, keepdims=True), 1.0)
    assert (np.abs(a - b) <= 1e-12 * scale).all(), np.abs(a - b).max()
    for x, y in zip(dense.balance_arrays(), sparse.balance_arrays(), strict=True):
        big = np.maximum(np.abs(y).max(axis=-1, keepdims=True), 1.0)
        assert (np.abs(x - y) <= 1e-12 * big).all()
    assert dense.max_relative_residual() < 1e-12
    assert sparse.max_relative_residual() < 1e-12
    assert (dense.stocks is None) == (sparse.stocks is None)
    if dense.stocks is not None:
        s, t = dense.stocks.stock_kg, sparse.stocks.stock_kg
        assert (np.abs(s - t) <= 1e-12 * np.maximum(np.abs(t).max(), 1.0)).all()


def both_ways(model: critflow.Model) -> tuple[critflow.FlowResults, critflow.FlowResults]:
    with dense_only(), counting_dense() as calls:
        dense = critflow.solve(model)
    assert calls, "the dense path was not taken"
    with sparse_only(), counting_dense() as calls:
        sparse = critflow.solve(model)
    assert not calls, "the sparse path still solved densely"
    return dense, sparse


def test_the_shipped_models_are_found():
    names = {p.name for p in MODELS}
    assert {"battery_recycling_hydromet.yaml", "eu_ev_battery_stock.yaml"} <= names
    assert len(MODELS) >= 10


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_every_shipped_model_solves_the_same_both_ways(path: Path):
    model = critflow.load_model(path)
    if model.spec.measurements:  # reconciled, not solved (its splits come from the measurements)
        with pytest.raises(CritflowError, match="reconcile") as dense:
            critflow.solve(model)
        with sparse_only(), pytest.raises(CritflowError) as sparse:
            critflow.solve(model)
        assert str(dense.value) == str(sparse.value)
        return
    assert_same(*both_ways(model))


# --- generated models -------------------------------------------------------------------------

ELEMENTS = ["Li", "Co", "Ni", "Cu"]


@st.composite
def flowsheets(draw) -> str:
    """A random flowsheet: a chain of transfer processes, each with an exit to the next (so nothing
    is trapped) and maybe recycles backwards and outputs that skip ahead, feeds per element, a
    recycle share that differs by scenario and changes over the years, and maybe a stock (inside a
    loop when it returns to the first process)."""
    elements = ELEMENTS[: draw(st.integers(1, 4))]
    n_t = draw(st.integers(1, 6))
    last = 2020 + draw(st.integers(0, 4))
    weights = st.integers(1, 9)
    processes: list[dict] = [{"id": "mine", "kind": "source"}, {"id": "out", "kind": "sink"}]
    flows: list[dict] = []

    def shares(n: int) -> list[dict[str, float]]:  # n outputs, per element, sum 1, all > 0
        per = [[draw(weights) for _ in range(n)] for _ in elements]
        return [{e: w[i] / sum(w) for e, w in zip(elements, per, strict=True)} for i in range(n)]

    stock_at = draw(st.none() | st.integers(0, n_t - 1))
    loop_at = draw(st.none() | st.integers(1, max(n_t - 1, 1))) if n_t > 1 else None
    for i in range(n_t):
        targets = [f"T{j}" for j in range(i + 1, n_t)] + ["out"]
        outputs = [targets[0]]  # the exit, and the input of the next process
        if i > 0:
            outputs += [f"T{j}" for j in draw(st.lists(st.integers(0, i - 1), max_size=2))]
        outputs += draw(st.lists(st.sampled_from(targets), max_size=1))
        parameterised = i == loop_at and len(outputs) == 1 and i != stock_at
        if parameterised:  # a recycle to T0 whose share is the parameter r
            outputs.append("T0")
        if i == stock_at:  # an output through a stock, which returns it (maybe to T0: a loop)
            outputs.append("fleet")
            processes.append(
                {
                    "id": "fleet",
                    "kind": "stock",
                    "lifetime": {"distribution": "weibull", "shape": 2.0, "scale": 3.0},
                }
            )
            to = draw(st.sampled_from([targets[0], "T0"]))
            flows.append({"id": "eol", "from": "fleet", "to": to})
        names = [f"f{i}_{n}_{to}" for n, to in enumerate(outputs)]
        if parameterised:
            transfer = {names[0]: {"default": "1 - r"}, names[1]: {"default": "r"}}
        else:
            transfer = dict(zip(names, shares(len(outputs)), strict=True))
        processes.append({"id": f"T{i}", "kind": "transfer", "transfer": transfer})
        flows += [
            {"id": n, "from": f"T{i}", "to": to} for n, to in zip(names, outputs, strict=True)
        ]
    feeds = [0, *draw(st.lists(st.integers(0, n_t - 1), max_size=2, unique=True))]
    for n, i in enumerate(dict.fromkeys(feeds)):
        value = {e: float(draw(st.integers(1, 1000))) for e in elements}
        flows.append({"id": f"feed{n}", "from": "mine", "to": f"T{i}", "value": value})
    recycle = {2020: draw(st.floats(0.0, 0.9)), last: draw(st.floats(0.0, 0.9))}
    data = {
        "critflow": 1,
        "name": "generated",
        "time": {"start": 2020, "end": last},
        "unit": "t/a",
        "elements": elements,
        "parameters": {"r": recycle if last > 2020 else recycle[2020]},
        "processes": processes,
        "flows": flows,
        "scenarios": {
            f"s{k}": {"parameters": {"r": draw(st.floats(0.0, 0.95))}} if k else {}
            for k in range(draw(st.integers(1, 3)))
        },
    }
    return yaml.safe_dump(data, sort_keys=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=flowsheets())
def test_generated_flowsheets_solve_the_same_both_ways(text: str):
    dense, sparse = both_ways(model_text(text))
    assert_same(dense, sparse)
    # every feed reaches the sink or is in stock: mass is conserved over the system
    into, out, change = dense.balance_arrays()
    kinds = np.array(dense.inputs.topology.process_kinds)
    fed = out[..., kinds == "source"].sum(axis=-1)
    left = into[..., kinds == "sink"].sum(axis=-1) + change.sum(axis=-1)
    assert np.allclose(fed, left, rtol=1e-11, atol=1e-9)


def test_generated_flowsheets_include_loops_and_stocks():
    """The generator is not vacuous: it makes stocks, parameterised loops and several elements."""
    seen = {"stock": 0, "loop": 0, "elements": 0}

    @settings(
        max_examples=80,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(text=flowsheets())
    def look(text):
        seen["stock"] += "kind: stock" in text
        seen["loop"] += "default: r" in text
        seen["elements"] += "- Co" in text

    look()
    assert all(v > 0 for v in seen.values()), seen


# --- the same answers for models that cannot be solved ----------------------------------------

TRAPPED = """
critflow: 1
name: trapped
time: {start: 2020, end: 2021}
unit: t/a
elements: [Co, Ni]
processes:
  - {id: mine, kind: source}
  - id: a
    kind: transfer
    transfer: {ab: {Co: 1.0, Ni: 0.5}, out: {Co: 0.0, Ni: 0.5}}
  - id: b
    kind: transfer
    transfer: {ba: {default: 1.0}}
  - {id: sink, kind: sink}
flows:
  - {id: feed, from: mine, to: a, value: {Co: 10, Ni: 10}}
  - {id: ab, from: a, to: b}
  - {id: ba, from: b, to: a}
  - {id: out, from: a, to: sink}
"""

SINGULAR = """
critflow: 1
name: singular
time: {start: 2020, end: 2020}
unit: t/a
elements: [Co]
processes:
  - {id: mine, kind: source}
  - {id: a, kind: transfer, transfer: {out_a: {default: 1.0}}}
  - {id: b, kind: transfer, transfer: {out_b: {default: 1.0}}}
  - {id: sink, kind: sink}
flows:
  - {id: feed_a, from: mine, to: a, value: {Co: 10}}
  - {id: out_a, from: a, to: sink, value: {Co: 12}}
  - {id: feed_b, from: mine, to: b}
  - {id: out_b, from: b, to: sink}
"""


EIGHT = ["Co", "Ni", "Cu", "Fe", "Li", "Mn", "Al", "Zn"]
# eight elements with the same equations: the sparse path factorises the one distinct block only
# (it raised SciPy's "Factor is exactly singular" as a traceback before)
SINGULAR_SHARED = (
    SINGULAR.replace("elements: [Co]", f"elements: [{', '.join(EIGHT)}]")
    .replace("{Co: 10}", "{" + ", ".join(f"{e}: 10" for e in EIGHT) + "}")
    .replace("{Co: 12}", "{" + ", ".join(f"{e}: 12" for e in EIGHT) + "}")
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TRAPPED, "Co is trapped in a loop"),
        (SINGULAR, "does not determine"),
        (SINGULAR_SHARED, "(the same holds for Ni, Cu, Fe, Li, Mn, Al, Zn)"),
    ],
    ids=["trapped", "singular", "singular-shared-blocks"],
)
def test_unsolvable_models_get_the_same_message_both_ways(text: str, expected: str):
    with pytest.raises(CritflowError) as dense:
        critflow.solve(model_text(text))
    with sparse_only(), pytest.raises(CritflowError) as sparse:
        critflow.solve(model_text(text))
    assert expected in str(dense.value)
    assert str(dense.value) == str(sparse.value)


# --- the kernels ------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    n_blocks=st.integers(1, 4),
    n_nodes=st.integers(1, 9),
    edges=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 8), st.integers(0, 8))),
)
def test_strong_components_dense_equal_csgraph(n_blocks, n_nodes, edges):
    edges = [(b, i, j) for b, i, j in edges if b < n_blocks and i < n_nodes and j < n_nodes]
    block, source, target = np.array(edges, dtype=np.int64).reshape(-1, 3).T
    dense = linear.strong_components(n_blocks, n_nodes, block, source, target)
    with sparse_only():
        sparse = linear.strong_components(n_blocks, n_nodes, block, source, target)
    assert dense.tolist() == sparse.tolist()
    # independent check: same label ⇔ each reaches the other (depth-first search per block)
    adjacency = {n: set() for n in range(n_blocks * n_nodes)}
    for b, i, j in edges:
        adjacency[b * n_nodes + i].add(b * n_nodes + j)

    def reach(start):
        seen, todo = {start}, [start]
        while todo:
            for nxt in adjacency[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reached = [reach(n) for n in range(n_blocks * n_nodes)]
    for a in range(n_blocks * n_nodes):
        for b in range(n_blocks * n_nodes):
            assert (dense[a] == dense[b]) == (b in reached[a] and a in reached[b])


@settings(max_examples=100, deadline=None)
@given(
    groups=st.lists(st.integers(0, 5), max_size=12),
    rows=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_group_sum_equals_the_incidence_product(groups, rows, seed):
    group = np.array(groups, dtype=np.int64)
    values = np.random.default_rng(seed).normal(size=(rows, group.size))
    onehot = np.zeros((group.size, 6))
    onehot[np.arange(group.size), group] = 1.0
    # two sums of the same terms in another order differ by rounding, bounded by the number of
    # terms x machine epsilon x the sum of their magnitudes (not by the size of the result: terms
    # of ±0.5 may cancel to 0.002)
    bound = (group.size + 1) * np.finfo(float).eps * (np.abs(values) @ onehot)
    assert np.all(np.abs(linear.group_sum(values, group, 6) - values @ onehot) <= bound)


def test_the_dense_limits_choose_the_path():
    assert linear.use_dense(40, 30)  # the battery example: 4 scenarios x 10 elements, 30 flows
    assert linear.use_dense(6, 80)  # the regional example
    assert not linear.use_dense(1, linear.DENSE_MAX_FLOWS + 1)
    assert not linear.use_dense(1000, 30)  # 27 million of dense work: the sparse LU
    assert not linear.use_dense(1, 300)
    assert not linear.use_dense(70_000, 4)  # little work, but 1.1 million matrix entries


# --- start-up -----------------------------------------------------------------------------------


def test_validating_the_battery_example_imports_no_scipy():
    """The whole command, as a user runs it: `critflow validate` of the shipped example imports
    neither SciPy (its balances are small) nor periodictable (its compounds are plain formulas)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    probe = (
        "import sys, runpy\n"
        f"sys.argv = ['critflow', 'validate', {str(EXAMPLE)!r}]\n"
        "try:\n"
        "    runpy.run_module('critflow', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "heavy = ('scipy', 'periodictable', 'pyparsing')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "is valid" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
