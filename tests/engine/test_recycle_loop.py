"""A flowsheet with a recycle loop, against its closed-form solution.

Leach with yield a (to product) sends the rest to a wash; the wash returns a share r to the
leach and sends 1 - r to waste. With feed F, the leach input is L = F / (1 - (1 - a) r), so
product = a F / (1 - (1 - a) r) and waste = (1 - a)(1 - r) F / (1 - (1 - a) r).
"""

from __future__ import annotations

import numpy as np

from tests.conftest import solve_text

LOOP = """
critflow: 1
name: leach with wash recycle
time: {start: 2030, end: 2030}
unit: t/a
elements: [Co, Ni]
parameters: {recycle_share: 0.7}
processes:
  - {id: mine, kind: source}
  - id: leach
    kind: transfer
    transfer:
      product: {Co: 0.9, Ni: 0.6}
      to_wash: {Co: 0.1, Ni: 0.4}
  - id: wash
    kind: transfer
    transfer:
      recycle: {default: recycle_share}
      waste:   {default: 1 - recycle_share}
  - {id: market, kind: sink}
  - {id: tailings, kind: sink}
flows:
  - {id: feed, from: mine, to: leach, value: {Co: 1000, Ni: 3000}}
  - {id: product, from: leach, to: market}
  - {id: to_wash, from: leach, to: wash}
  - {id: recycle, from: wash, to: leach}
  - {id: waste, from: wash, to: tailings}
scenarios:
  baseline: {}
  tight: {parameters: {recycle_share: 0.95}}
"""


def closed_form(feed: float, a: float, r: float) -> dict[str, float]:
    leach_in = feed / (1 - (1 - a) * r)
    return {
        "product": a * leach_in,
        "to_wash": (1 - a) * leach_in,
        "recycle": (1 - a) * r * leach_in,
        "waste": (1 - a) * (1 - r) * leach_in,
        "feed": feed,
    }


def test_recycle_loop_matches_closed_form_to_1e12():
    results = solve_text(LOOP)
    ds = results.to_dataset().flow_mass
    for scenario, r in (("baseline", 0.7), ("tight", 0.95)):
        for element, feed, a in (("Co", 1000.0, 0.9), ("Ni", 3000.0, 0.6)):
            expected = closed_form(feed, a, r)
            for flow, value in expected.items():
                got = float(ds.sel(scenario=scenario, period=2030, element=element, flow=flow))
                assert abs(got - value) <= 1e-12 * value, (scenario, element, flow, got, value)


def test_recycle_loop_balances_close():
    results = solve_text(LOOP)
    balance = results.balance()
    scale = balance[["input", "output"]].abs().max(axis=1)
    assert (balance["residual"].abs() <= 1e-12 * scale).all()
    system = balance[balance["process"] == "(system)"]
    np.testing.assert_allclose(system["input"], system["output"], rtol=1e-12)


def test_recycle_loop_over_many_periods_matches_closed_form():
    # 12 periods and one given value per element: the engine solves once for the response to the
    # feed and scales it per period; each period must still match the closed form
    text = LOOP.replace("time: {start: 2030, end: 2030}", "time: {start: 2030, end: 2041}").replace(
        "value: {Co: 1000, Ni: 3000}", "value: {Co: {2030: 1000, 2041: 2100}, Ni: 3000}"
    )
    ds = solve_text(text).to_dataset().flow_mass
    for year in range(2030, 2042):
        feed = 1000.0 + 100.0 * (year - 2030)
        for flow, value in closed_form(feed, 0.9, 0.7).items():
            got = float(ds.sel(scenario="baseline", period=year, element="Co", flow=flow))
            assert abs(got - value) <= 1e-12 * value, (year, flow, got, value)
