"""Sobol indices against the analytical values of an additive model."""

from __future__ import annotations

import pytest

from critflow.errors import CritflowError
from critflow.indicators.sensitivity import sobol_indices
from tests.conftest import model_text

# total = X1 + X2 with X1 ~ U(0, 100), X2 ~ U(0, 50): Var = 100²/12 + 50²/12, so
# S1 = ST = 0.8 for X1 and 0.2 for X2 (additive: no interaction).
ADDITIVE = """
critflow: 1
name: two feeds
time: {start: 2025, end: 2025}
elements: [Cu]
processes:
  - {id: mine_a, kind: source}
  - {id: mine_b, kind: source}
  - {id: smelter, kind: transfer}
  - {id: market, kind: sink}
flows:
  - {id: a, from: mine_a, to: smelter, value: {value: 50, distribution: uniform, low: 0, high: 100}}
  - {id: b, from: mine_b, to: smelter, value: {value: 25, distribution: uniform, low: 0, high: 50}}
  - {id: total, from: smelter, to: market}
"""


def test_sobol_indices_of_an_additive_model():
    model = model_text(ADDITIVE)
    found = sobol_indices(model, "flow:total", samples=2048, seed=3)
    table = found.table.set_index("input")
    assert table.loc["flows.a.value", "S1"] == pytest.approx(0.8, abs=0.05)
    assert table.loc["flows.b.value", "S1"] == pytest.approx(0.2, abs=0.05)
    assert table.loc["flows.a.value", "ST"] == pytest.approx(0.8, abs=0.05)
    assert table.loc["flows.b.value", "ST"] == pytest.approx(0.2, abs=0.05)
    assert found.output_mean == pytest.approx(75, rel=0.02)


def test_sobol_needs_a_power_of_two():
    model = model_text(ADDITIVE)
    with pytest.raises(CritflowError, match="power of 2"):
        sobol_indices(model, "flow:total", samples=1000)
