"""A time series whose points are expressions: each point is the expression at its own year."""

from __future__ import annotations

import numpy as np

from tests.conftest import solve_text

MODEL = """
critflow: 1
name: series of expressions
time: {start: 2000, end: 2024}
unit: t/a
elements: [Li]
parameters:
  base: 4800
  growing: {2000: 10, 2024: 34}
processes:
  - {id: mine, kind: source}
  - {id: customers, kind: sink}
flows:
  - {id: sales, from: mine, to: customers, value: {2000: 1000, 2008: 5000, 2016: base, 2020: growing}}
"""


def test_series_points_are_evaluated_at_their_year():
    # was: a point's expression was summed over the periods by its interpolation weights, so
    # `base` at 2016 became 4800 × 8 = 38,400 and `growing` at 2020 a weighted total
    results = solve_text(MODEL)
    sales = results.mass_kg[0, :, 0, 0] / 1000.0
    growing_2020 = 10 + (2020 - 2000)  # the parameter series at 2020
    expected = np.interp(
        np.arange(2000, 2025), [2000, 2008, 2016, 2020], [1000, 5000, 4800, growing_2020]
    )
    assert np.allclose(sales, expected, rtol=1e-12, atol=0)


def test_points_before_and_after_the_model_years_take_the_parameters_of_their_own_year():
    """A point written before the model starts (a historical anchor) or after it ends reads the
    parameters at that year, not at the first or last period."""
    text = """
critflow: 1
name: anchors outside the years
time: {start: 2020, end: 2025}
unit: t/a
elements: [Li]
parameters:
  x: {2010: 1, 2030: 5}
processes:
  - {id: mine, kind: source}
  - {id: customers, kind: sink}
flows:
  - {id: sales, from: mine, to: customers, value: {2010: 'x * 100', 2030: 'x * 100'}}
"""
    sales = solve_text(text).mass_kg[0, :, 0, 0] / 1000.0
    x = np.interp(np.arange(2020, 2026), [2010, 2030], [1.0, 5.0])
    assert np.allclose(sales, 100 * x, rtol=1e-12, atol=0)  # was 350 ... 375: x held at 2020/2025
