"""The EU EV battery example, and time series read from CSV files."""

from __future__ import annotations

import numpy as np
import pytest

import critflow
from critflow.errors import CritflowError
from critflow.stocks import Lifetime, dynamic_stock
from tests.conftest import ROOT

EV = ROOT / "examples" / "eu_ev_battery_stock.yaml"


@pytest.fixture(scope="module")
def ev():
    return critflow.solve(critflow.load_model(EV), ["baseline"])


def _flow(results, flow, element=None):
    topo = results.inputs.topology
    values = results.values[0, :, :, topo.flow_ids.index(flow)]
    return values.sum(axis=1) if element is None else values[:, topo.elements.index(element)]


def test_sales_come_from_the_registrations_file(ev):
    years = list(ev.inputs.periods)
    # 2020: 538,734 cars × 50 kWh × (0.97 × 5.23 + 0.03 × 6.66) kg/kWh, in t
    expected = 538734 * 50 * (0.97 * 5.23 + 0.03 * 6.66) / 1000
    assert _flow(ev, "sales")[years.index(2020)] == pytest.approx(expected, rel=1e-12)


def test_fleet_follows_the_cohort_model_with_the_initial_cohorts(ev):
    lifetime = Lifetime.of("weibull", shape=2.3, scale=15.5)
    li = ev.inputs.topology.elements.index("Li")
    sales_li = _flow(ev, "sales", "Li")
    # the initial packs carry the 2015 composition of sales
    share_2015 = sales_li[0] / _flow(ev, "sales")[0]
    expected = dynamic_stock(
        lifetime,
        inflow=sales_li,
        initial_stock=14000 * share_2015,
        initial_cohorts=np.array([2000, 3000, 4000, 5000]) * share_2015,
    )
    fleet_li = ev.stocks.stock_kg[0, :, li, 0] / ev.inputs.kg_per_unit
    assert np.allclose(fleet_li, expected.stock, rtol=1e-12)
    assert np.allclose(_flow(ev, "end_of_life", "Li"), expected.outflow, rtol=1e-12)


def test_recycling_covers_a_growing_share_of_demand(ev):
    years = list(ev.inputs.periods)
    covered = _flow(ev, "secondary", "Li") / _flow(ev, "sales", "Li")
    at = [covered[years.index(y)] for y in (2030, 2040, 2050)]
    assert at[0] < at[1] < at[2] < 1
    # secondary Li = 0.9 collected × 0.8 recovered × end-of-life Li, every year
    assert np.allclose(
        _flow(ev, "secondary", "Li"), 0.72 * _flow(ev, "end_of_life", "Li"), rtol=1e-12
    )
    assert ev.max_relative_residual() < 1e-9


def _with_file(tmp_path, rows: str) -> str:
    (tmp_path / "series.csv").write_text(rows)
    text = EV.read_text().replace("data/eu_bev_registrations.csv", "series.csv")
    model = tmp_path / "model.yaml"
    model.write_text(text)
    with pytest.raises(CritflowError) as info:
        critflow.load_model(model)
    return str(info.value)


def test_a_gap_in_a_series_file_is_an_error(tmp_path):
    message = _with_file(tmp_path, "year,bev_registrations\n2020,1\n2021,2\n2023,3\n")
    assert "has no row for 2022" in message


def test_a_missing_column_names_the_columns(tmp_path):
    message = _with_file(tmp_path, "year,bev_registration\n2020,1\n")
    assert "has no column 'bev_registrations'" in message
    assert "Did you mean 'bev_registration'?" in message


def test_a_bad_number_names_the_line(tmp_path):
    message = _with_file(tmp_path, "year,bev_registrations\n2020,1\n2021,1 200\n")
    assert "series.csv, line 3" in message and "column 'bev_registrations'" in message
    assert "thousands separator" in message
    assert "1 200" not in message  # errors name lines and columns, never a file's content
