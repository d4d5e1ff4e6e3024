"""Life-cycle costing against hand calculations: CRF, NPV, IRR, levelised cost, price Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest

import critflow
from critflow.errors import CritflowError
from critflow.impact import assess, assess_cost, capital_recovery_factor, irr, npv
from tests.conftest import model_text

PLANT = """
critflow: 1
name: one-unit plant
time: {start: 2025, end: 2025}
unit: t/a
elements: [Co, rest]
processes:
  - {id: intake, kind: source}
  - id: refinery
    kind: transfer
    inventory: {electricity: 500 kWh/t, sulfuric_acid: 0.2 t/t}
    cost: {capex: 10 MEUR, lifetime: LIFE, opex_fixed: 1 MEUR/a}
    transfer:
      cobalt: {default: 0.0, Co: 1.0}
      waste: {default: 1.0, Co: 0.0}
  - {id: customers, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - {id: scrap, from: intake, to: refinery, value: 2000, composition: {Co: 0.1}, gate_fee: 0.2 EUR/kg}
  - {id: cobalt, from: refinery, to: customers, product: cobalt, price: COBALT}
  - {id: waste, from: refinery, to: landfill, fate: landfill}
economics:
  discount_rate: 0.08
  lifetime: 20 a
  prices: {electricity: 0.15 EUR/kWh, sulfuric_acid: 0.1 EUR/kg}
"""


def plant(life: str = "20 a", cobalt: str = "30 EUR/kg"):
    model = model_text(PLANT.replace("LIFE", life).replace("COBALT", cobalt))
    results = critflow.solve(model)
    return model, results, assess(model, results)


# Hand calculation, per year: revenue 200 t Co × 30 EUR/kg = 6.0 MEUR; gate fees 2000 t × 200 EUR/t
# = 0.4 MEUR; variable OPEX 2000 t × (500 kWh × 0.15 + 200 kg × 0.1) = 2000 × 95 = 0.19 MEUR;
# fixed OPEX 1 MEUR → operating cash flow 6.0 + 0.4 − 0.19 − 1.0 = 5.21 MEUR/a.
CASH = 6.0e6 + 0.4e6 - 0.19e6 - 1.0e6


def test_capital_recovery_factor():
    # Towler & Sinnott: r = 8 %, n = 20 years → 0.10185; r = 0 → 1/n
    assert capital_recovery_factor(0.08, 20) == pytest.approx(0.101852209, rel=1e-8)
    assert capital_recovery_factor(0.0, 20) == pytest.approx(0.05)


def test_npv_irr_and_levelised_cost_by_hand():
    model, results, impacts = plant()
    cost = assess_cost(model, results, impacts)
    annuity = (1 - 1.08**-20) / 0.08
    assert cost.npv[0] == pytest.approx(-10e6 + CASH * annuity, rel=1e-10)
    assert npv(cost.irr[0], cost.cash[0]) == pytest.approx(0.0, abs=1e-3)
    annual = cost.annual_table().iloc[0]
    assert annual["revenue"] == pytest.approx(6.0e6)
    assert annual["gate_fees"] == pytest.approx(0.4e6)
    assert annual["opex_variable"] == pytest.approx(0.19e6)
    assert annual["capex_annualised"] == pytest.approx(10e6 * 0.101852209, rel=1e-8)
    # levelised cost per tonne: (10 M + Σ 1.19 M/(1.08)^t) / Σ 2000/(1.08)^t
    per_t = (10e6 + 1.19e6 * annuity) / (2000 * annuity)
    assert cost.levelised_cost_per_t[0] == pytest.approx(per_t, rel=1e-10)
    assert cost.levelised_cost_per_kg_product[0] == pytest.approx(per_t * 2000 / 200e3, rel=1e-10)
    assert cost.break_even_gate_fee_per_t[0] == pytest.approx(per_t - 6.0e6 / 2000, rel=1e-10)


def test_reinvestment_when_the_equipment_lives_shorter_than_the_project():
    model, results, impacts = plant(life="10 a")
    cost = assess_cost(model, results, impacts)
    annuity = (1 - 1.08**-20) / 0.08
    assert cost.npv[0] == pytest.approx(-10e6 - 10e6 / 1.08**10 + CASH * annuity, rel=1e-10)


def test_irr_of_a_textbook_series():
    # −100 then +60, +60: 100 = 60/(1+r) + 60/(1+r)^2 → r = 13.066 %
    assert irr(np.array([-100.0, 60.0, 60.0])) == pytest.approx(0.130662, abs=1e-6)


def test_price_monte_carlo_has_the_analytical_mean():
    model, results, impacts = plant(
        cobalt="{value: 30 EUR/kg, distribution: triangular, low: 20 EUR/kg, high: 46 EUR/kg}"
    )
    cost = assess_cost(model, results, impacts, samples=20_000, seed=5)
    annuity = (1 - 1.08**-20) / 0.08
    mean_price = (20 + 30 + 46) / 3  # triangular mean
    expected = -10e6 + (CASH + 200e3 * (mean_price - 30)) * annuity
    npv_samples = cost.npv_samples[:, 0]
    assert abs(npv_samples.mean() - expected) < 4 * npv_samples.std() / np.sqrt(npv_samples.size)
    again = assess_cost(model, results, impacts, samples=20_000, seed=5)
    assert np.array_equal(npv_samples, again.npv_samples[:, 0])


def test_missing_item_price_is_named():
    text = PLANT.replace("LIFE", "20 a").replace("COBALT", "30 EUR/kg")
    text = text.replace(", sulfuric_acid: 0.1 EUR/kg", "")
    model = model_text(text)
    results = critflow.solve(model)
    with pytest.raises(CritflowError, match="missing: sulfuric_acid"):
        assess_cost(model, results, assess(model, results))


def test_wrong_currency_unit_is_named():
    text = PLANT.replace("LIFE", "20 a").replace("COBALT", "30 kWh/kg")
    model = model_text(text)
    results = critflow.solve(model)
    expected = r"model.yaml.*'30 kWh/kg' \(an energy per mass\) does not fit a price, which is measured in EUR"
    with pytest.raises(CritflowError, match=expected):
        assess_cost(model, results, assess(model, results))
