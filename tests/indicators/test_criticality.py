"""The EU criticality method: formulas, anchors from the studies, and the published 2023 list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from critflow.indicators.criticality import (
    concentration,
    economic_importance,
    hhi,
    hhi_wgi,
    import_reliance,
    is_critical,
    published_results,
    supply_risk,
    supply_shares,
    wgi_scaled,
)


def test_tantalum_anchor_of_the_2017_study():
    # 2017 study: Nigeria 81 % of EU tantalum supply, scaled WGI 6.92 (WGI -0.96) → HHI_WGI,EU ≈ 4.6,
    # of which Nigeria alone contributes 0.81² · 6.92 = 4.54
    assert float(wgi_scaled(-0.96)) == pytest.approx(6.92)
    nigeria = float(hhi_wgi(np.array([0.81]), np.array([6.92])))
    assert nigeria == pytest.approx(4.54, abs=0.005)
    assert nigeria <= 4.6


def test_supply_risk_and_economic_importance_formulas():
    # IR = (80 - 10) / (30 + 80 - 10) = 0.7; SR = (3 · 0.35 + 2 · 0.65) · (1 - 0.2) · 0.9
    ir = import_reliance(production=30, imports=80, exports=10)
    assert ir == pytest.approx(0.7)
    assert float(supply_risk(3.0, 2.0, ir, eol_rir=0.2, substitution_index=0.9)) == pytest.approx(
        2.35 * 0.8 * 0.9
    )
    assert import_reliance(production=100, imports=10, exports=50) == 0.0  # net exporter: floored
    # EI: 60 % in a sector of 100 000 M€, 40 % in one of 50 000 M€; largest sector 204 200 M€ (C28)
    ei = float(
        economic_importance(np.array([0.6, 0.4]), np.array([100_000, 50_000]), 204_200, 0.95)
    )
    assert ei == pytest.approx(10 * 80_000 / 204_200 * 0.95)
    assert float(hhi(np.array([0.5, 0.3, 0.2]))) == pytest.approx(0.38)


def test_published_2023_values_give_the_crma_list():
    # applying SR >= 1 and EI >= 2.8 to the 70 candidates of 2023 gives 32 critical materials; the
    # CRMA's 34 adds copper and nickel as strategic although below the SR threshold
    table = published_results()
    assert len(table) == 70
    critical = set(table.loc[table["critical"], "material"])
    assert len(critical) == 32
    assert {"Lithium", "Cobalt", "Gallium", "Natural graphite", "Manganese"} <= critical
    assert not {"Copper", "Nickel", "Indium", "Natural rubber"} & critical
    assert (
        bool(is_critical(1.0, 2.8))
        and not bool(is_critical(0.99, 5))
        and not bool(is_critical(3, 2.79))
    )


def test_concentration_flags_the_65_percent_benchmark():
    stages = {(s.stage, s.scope): s for s in concentration("Lithium")}
    eu = stages[("processing", "EU")]
    assert (
        eu.largest_country == "Chile" and eu.largest_share == pytest.approx(0.79) and eu.breaches_65
    )
    cobalt = {(s.stage, s.scope): s for s in concentration("Cobalt")}
    # EU cobalt processing: Finland 62 %, Belgium 29 % are Member States; the largest third country is China
    assert cobalt[("processing", "EU")].largest_country == "China"
    assert not cobalt[("processing", "EU")].breaches_65


def test_company_sourcing_overrides_shipped_shares():
    own = pd.DataFrame(
        {
            "material": ["Lithium"] * 2,
            "stage": ["processing"] * 2,
            "scope": ["EU"] * 2,
            "country": ["Chile", "Australia"],
            "share": [0.5, 0.5],
        }
    )
    stages = {(s.stage, s.scope): s for s in concentration("Lithium", supply_shares(own))}
    assert stages[("processing", "EU")].hhi == pytest.approx(0.5)
    assert not stages[("processing", "EU")].breaches_65
    assert stages[("processing", "global")].largest_country == "China"  # other stages unchanged
