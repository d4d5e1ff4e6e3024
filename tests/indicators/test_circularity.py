"""Circularity indicators against the methodology's anchors and hand calculations."""

from __future__ import annotations

import numpy as np
import pytest

import critflow
from critflow.indicators.catalogue import Context, IndicatorNotAvailableError, evaluate_indicator
from critflow.indicators.circularity import (
    eol_recycling_input_rate,
    material_circularity,
    old_scrap_ratio,
    recycled_content,
)
from tests.conftest import model_text


def test_mci_anchors_of_the_methodology():
    # EMF 2015: a fully linear product of average utility scores 0.1; a fully restorative one 1
    linear = material_circularity(mass=10.0)
    assert float(linear.lfi) == pytest.approx(1.0) and float(linear.mci) == pytest.approx(0.1)
    circular = material_circularity(
        mass=10.0,
        recycled_feedstock=1.0,
        collected_for_recycling=1.0,
        recycling_efficiency_eol=1.0,
        recycling_efficiency_feedstock=1.0,
    )
    assert float(circular.lfi) == pytest.approx(0.0) and float(circular.mci) == pytest.approx(1.0)
    # twice the average lifetime halves F(X): a linear product then scores 1 - 0.45 = 0.55
    assert float(material_circularity(lifetime_ratio=2.0).mci) == pytest.approx(0.55)


def test_mci_hand_calculation_both_denominators():
    # M = 1, F_R = 0.3, C_R = 0.6, E_C = 0.8, E_F = 0.75:
    # V = 0.7; W0 = 0.4; W_C = 0.2 * 0.6 = 0.12; W_F = 0.25 * 0.3 / 0.75 = 0.1; W = 0.4 + 0.11 = 0.51
    # LFI (EMF) = 1.21 / (2 + (0.1 - 0.12) / 2) = 1.21 / 1.99; with the simplified 2M: 1.21 / 2
    kwargs = dict(
        recycled_feedstock=0.3,
        collected_for_recycling=0.6,
        recycling_efficiency_eol=0.8,
        recycling_efficiency_feedstock=0.75,
    )
    emf = material_circularity(**kwargs, lfi_denominator="emf")
    simplified = material_circularity(**kwargs, lfi_denominator="2M")
    assert float(emf.waste) == pytest.approx(0.51)
    assert float(emf.mci) == pytest.approx(1 - 0.9 * 1.21 / 1.99, abs=1e-12)
    assert float(simplified.mci) == pytest.approx(1 - 0.9 * 1.21 / 2, abs=1e-12)


def test_mci_is_vectorised():
    shares = np.linspace(0, 1, 11)
    result = material_circularity(recycled_feedstock=shares, collected_for_recycling=shares)
    assert result.mci.shape == (11,)
    assert np.all(np.diff(result.mci) > 0)


def test_unep_and_eu_rates():
    # 60 t primary, 30 t old scrap, 10 t new scrap
    assert recycled_content(60, 30, 10) == pytest.approx(0.4)
    assert old_scrap_ratio(30, 10) == pytest.approx(0.75)
    assert eol_recycling_input_rate(60, 30, 10) == pytest.approx(0.3)


def test_circularity_indicators_from_a_model():
    model = model_text(
        """
        critflow: 1
        name: refinery
        time: {start: 2025, end: 2025}
        elements: [Cu]
        processes:
          - {id: mine, kind: source}
          - {id: plant_scrap, kind: source}
          - {id: collection, kind: source}
          - {id: refinery, kind: transfer, transfer: {cathode: {default: 0.95}, residue: {default: 0.05}}}
          - {id: users, kind: sink, consumption: true}
          - {id: dump, kind: sink}
        flows:
          - {id: ore, from: mine, to: refinery, value: 60}
          - {id: new_scrap, from: plant_scrap, to: refinery, value: 10, origin: pre_consumer}
          - {id: old_scrap, from: collection, to: refinery, value: 30, origin: post_consumer}
          - {id: cathode, from: refinery, to: users, fate: recycled, product: cathode}
          - {id: residue, from: refinery, to: dump, fate: landfill}
        """
    )
    ctx = Context(model, critflow.solve(model))
    value = lambda name: float(evaluate_indicator(ctx, name)[0, 0])  # noqa: E731
    # the users consume the cathode (consumption: true): the rates are taken on what they get,
    # 60 t primary, 10 t new and 30 t old scrap mixed in the refinery
    assert value("recycling_input_rate") == pytest.approx(0.4)
    assert value("old_scrap_ratio") == pytest.approx(0.75)
    assert value("eol_recycling_input_rate") == pytest.approx(0.3)
    # 95 % of every origin reaches the cathode: EOL-RR = 0.95; recycled content of the cathode 0.4
    assert value("eol_recycling_rate") == pytest.approx(0.95)
    assert value("recycled_content") == pytest.approx(0.4)


def test_rates_need_a_demand_not_a_plants_inputs():
    # the same refinery with nobody marked as consumption: its input mix is no region's supply
    model = model_text(
        """
        critflow: 1
        name: refinery
        time: {start: 2025, end: 2025}
        elements: [Cu]
        processes:
          - {id: collection, kind: source}
          - {id: refinery, kind: transfer}
          - {id: users, kind: sink}
        flows:
          - {id: old_scrap, from: collection, to: refinery, value: 30, origin: post_consumer}
          - {id: cathode, from: refinery, to: users, fate: recycled, product: cathode}
        """
    )
    ctx = Context(model, critflow.solve(model))
    for name in ("recycling_input_rate", "old_scrap_ratio", "eol_recycling_input_rate"):
        with pytest.raises(IndicatorNotAvailableError, match="does not represent demand"):
            evaluate_indicator(ctx, name)
    # EOL-RR needs no demand: all 30 t of old scrap reach the recycled cathode
    assert float(evaluate_indicator(ctx, "eol_recycling_rate")[0, 0]) == pytest.approx(1.0)


FABRICATION_LOOP = """
critflow: 1
name: fabrication with home scrap
time: {start: 2025, end: 2025}
elements: [Ni, rest]
processes:
  - {id: mine, kind: source}
  - {id: collection, kind: source}
  - {id: market, kind: market, balancing: primary}
  - {id: fabrication, kind: transfer, transfer: {products: {default: 0.9}, new_scrap: {default: 0.1}}}
  - {id: remelt, kind: transfer, transfer: {secondary: {default: 0.95}, remelt_loss: {default: 0.05}}}
  - {id: users, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mine, to: market}
  - {id: demand, from: market, to: fabrication}
  - {id: products, from: fabrication, to: users, value: 900, composition: {Ni: 0.5}, product: widget, fate: recycled}
  - {id: new_scrap, from: fabrication, to: remelt}
  - {id: old_scrap, from: collection, to: remelt, value: 100, composition: {Ni: 0.4}, origin: post_consumer}
  - {id: secondary, from: remelt, to: market}
  - {id: remelt_loss, from: remelt, to: landfill, fate: landfill}
"""


def test_eol_recycling_rate_counts_recycled_material_once():
    # 100 t of old scrap (40 t Ni) is remelted with the fabrication's home scrap; 95 % of what
    # enters the remelter goes back to the market. The old scrap's material reaches the demand
    # once (0.95 of it), even though part of it circles through the home-scrap loop and then
    # leaves in products tagged fate: recycled: EOL-RR = 0.95, never more than 1. (It was
    # 199 %: the old scrap was counted in the demand flow, again on each pass of the home-scrap
    # loop, and again in the products.)
    model = model_text(FABRICATION_LOOP)
    ctx = Context(model, critflow.solve(model))
    assert float(evaluate_indicator(ctx, "eol_recycling_rate", "Ni")[0, 0]) == pytest.approx(0.95)
    assert float(evaluate_indicator(ctx, "eol_recycling_rate")[0, 0]) == pytest.approx(0.95)
    # the shares of the demand are unchanged: x = 0.95 (40 + 50 x) / 500 for Ni
    assert float(evaluate_indicator(ctx, "eol_recycling_input_rate", "Ni")[0, 0]) == pytest.approx(
        38 / 452.5
    )
