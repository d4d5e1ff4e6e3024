"""Impact and cost on top of solved flows: matrix LCA (GWP100 first), end-of-life rules, LCC.

>>> from critflow.impact import assess, assess_cost
>>> impacts = assess(model, results)             # kg CO2-eq per scenario, period, process, item
>>> impacts.product_table()                      # kg CO2-eq per kg of each product
>>> costs = assess_cost(model, results, impacts) # NPV, IRR, levelised cost
"""

from __future__ import annotations

from critflow.impact.circular_footprint import circular_footprint
from critflow.impact.cost import CostResults, assess_cost, capital_recovery_factor, irr, npv
from critflow.impact.lca import ImpactResults, assess

__all__ = [
    "CostResults",
    "ImpactResults",
    "assess",
    "assess_cost",
    "capital_recovery_factor",
    "circular_footprint",
    "irr",
    "npv",
]
