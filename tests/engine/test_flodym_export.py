"""flodym export: flodym runs the exported model and gets critflow's flows and stocks."""

from __future__ import annotations

import importlib.util
import re
import shutil

import numpy as np
import pytest

import critflow
from critflow.engine.flodym_export import export_flodym, read_flodym_parameter
from critflow.errors import CritflowError
from critflow.model import load_model
from tests.conftest import ROOT
from tests.conftest import critflow_cli as critflow_command

pytest.importorskip("flodym")

EV = ROOT / "examples" / "eu_ev_battery_stock.yaml"


@pytest.fixture(scope="module")
def ev_without_initial_stock(tmp_path_factory):
    """The EV fleet example (sales from a CSV file, a Weibull lifetime, a market whose primary
    input balances, recycling back to the market) without its initial stock."""
    folder = tmp_path_factory.mktemp("ev")
    shutil.copytree(EV.parent / "data", folder / "data")
    text = re.sub(r"    initial_stock:.*?cohorts: \{[^}]*\}\n", "", EV.read_text(), flags=re.S)
    assert "initial_stock" not in text
    (folder / "ev.yaml").write_text(text)
    return load_model(folder / "ev.yaml")


def _run_export(path):
    spec = importlib.util.spec_from_file_location(f"export_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run(path.parent)


@pytest.mark.parametrize("scenario", ["baseline", "longer_life", "high_collection"])
def test_flodym_gets_the_same_flows_and_stock(ev_without_initial_stock, scenario, tmp_path):
    model = ev_without_initial_stock
    mfa = _run_export(export_flodym(model, tmp_path / "export", scenario))
    results = critflow.solve(model, [scenario])
    elements = list(results.inputs.topology.elements)
    table = results.flows()
    for flow in model.spec.flows:
        ours = (
            table[table.flow == flow.id]
            .pivot_table(index="period", columns="element", values="value", observed=True)[elements]
            .to_numpy()
        )
        theirs = mfa.flows[flow.id].values
        assert np.abs(ours - theirs).max() <= 1e-9 * np.abs(ours).max(), flow.id
    stock = results.stock_table()
    in_use = stock.pivot_table(index="period", columns="element", values="in_use", observed=True)[
        elements
    ]
    theirs = mfa.stocks["ev_fleet"].stock.values
    assert np.abs(in_use.to_numpy() - theirs).max() <= 1e-9 * np.abs(theirs).max()
    mfa.check_mass_balance()  # flodym's own balance check of every process


def test_what_flodym_cannot_follow_is_refused_with_the_reason(tmp_path):
    with pytest.raises(CritflowError, match=r"initial stock.*start empty"):
        export_flodym(load_model(EV), tmp_path / "a")
    battery = load_model(ROOT / "examples" / "battery_recycling_hydromet.yaml")
    with pytest.raises(CritflowError, match=r"do not follow from the given ones.*recycle loop"):
        export_flodym(battery, tmp_path / "b")


def test_flodym_parameter_files_become_critflow_parameters(tmp_path):
    series = tmp_path / "lifetime_mean.csv"
    series.write_text("Time,Product,value\n2020,car,12.5\n2021,car,13\n2020,bus,9\n2021,bus,9.5\n")
    assert read_flodym_parameter(series) == {
        "lifetime_mean_car": {2020: 12.5, 2021: 13.0},
        "lifetime_mean_bus": {2020: 9.0, 2021: 9.5},
    }
    scalar = tmp_path / "share.csv"
    scalar.write_text("value\n0.25\n")
    assert read_flodym_parameter(scalar, "collection") == {"collection": 0.25}
    bad = tmp_path / "bad.csv"
    bad.write_text('Time,value\n2020,1\n2021,"1,5"\n')
    with pytest.raises(CritflowError, match=r"bad\.csv, line 3.*column 'value'"):
        read_flodym_parameter(bad)
    printed = critflow_command("flodym", "import", series)
    assert printed.returncode == 0 and "lifetime_mean_car" in printed.stdout


def test_the_command_writes_a_model_flodym_runs(ev_without_initial_stock, tmp_path):
    run = critflow_command("flodym", "export", ev_without_initial_stock.path, tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "model.py").exists()
    refused = critflow_command("flodym", "export", EV, tmp_path / "x")
    assert refused.returncode == 2 and "initial stock" in refused.stderr
