"""openLCA JSON-LD export and import: read back with olca-schema, numbers equal critflow's."""

from __future__ import annotations

import math

import pytest
import yaml

import critflow
from critflow.analysis import Run
from critflow.errors import CritflowError
from critflow.model import load_model
from tests.conftest import ROOT
from tests.conftest import critflow_cli as critflow_command

o = pytest.importorskip("olca_schema")
from olca_schema import zipio  # noqa: E402

from critflow.impact.openlca import export_openlca, read_openlca_inventory  # noqa: E402

BATTERY = ROOT / "examples" / "battery_recycling_hydromet.yaml"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = load_model(BATTERY)
    run = Run(model, critflow.solve(model))
    path = tmp_path_factory.mktemp("olca") / "battery.zip"
    export_openlca(model, run.results, run.impacts, path, scenario="baseline", period=2030)
    with zipio.ZipReader(path) as reader:
        processes = {p.name: p for p in reader.read_each(o.Process)}
        systems = list(reader.read_each(o.ProductSystem))
    return model, run, path, processes, systems


def test_every_exchange_times_the_throughput_is_the_solved_flow(exported):
    model, run, _, processes, _ = exported
    flows = run.results.flows().query("scenario == 'baseline' and period == 2030")
    kg_per_unit = run.results.inputs.kg_per_unit
    mass = flows.groupby("flow", observed=True)["value"].sum() * kg_per_unit  # kg/a
    checked = 0
    for process in model.spec.processes:
        if process.kind in ("source", "sink"):
            continue
        exported_process = processes[process.id]
        basis = process.inventory_basis
        received = (
            mass[basis]
            if basis not in (None, "input", "output")
            else sum(mass[f.id] for f in model.spec.flows if f.to == process.id)
        )
        for exchange in exported_process.exchanges:
            if exchange.unit.name == "kg" and exchange.flow.name in mass.index:
                assert math.isclose(
                    exchange.amount * received, mass[exchange.flow.name], rel_tol=1e-9
                )
                checked += 1
    assert checked > 40


def test_each_exported_process_balances_its_goods(exported):
    model, _, _, processes, _ = exported
    goods = {f.id for f in model.spec.flows}
    on_a_flow = {p.id for p in model.spec.processes if p.inventory_basis not in (None, "input")}
    for process in processes.values():
        into = sum(e.amount for e in process.exchanges if e.is_input and e.flow.name in goods)
        out = sum(e.amount for e in process.exchanges if not e.is_input and e.flow.name in goods)
        assert math.isclose(into, out, rel_tol=1e-9), process.name
        if process.name not in on_a_flow:  # per kg of what it receives
            assert math.isclose(into, 1.0, rel_tol=1e-9)
        assert sum(e.is_quantitative_reference is True for e in process.exchanges) == 1
        factors = [f.value for f in process.allocation_factors or []]
        assert math.isclose(sum(factors), 1.0, rel_tol=1e-12)


def test_inventory_items_equal_the_model_file(exported):
    _, _, _, processes, _ = exported
    data = yaml.safe_load(BATTERY.read_text())
    leach = next(p for p in data["processes"] if p["id"] == "leaching")["inventory"]
    amounts = {e.flow.name: (e.amount, e.unit.name) for e in processes["leaching"].exchanges}
    assert amounts["sulfuric_acid"] == (
        pytest.approx(float(leach["sulfuric_acid"].split()[0])),
        "kg",
    )
    assert amounts["electricity"] == (pytest.approx(0.180), "kWh")  # 180 kWh/t
    assert amounts["natural_gas"] == (pytest.approx(0.0024), "GJ")  # 2.4 GJ/t


def test_the_product_system_links_every_flow_between_processes(exported):
    model, _, _, processes, systems = exported
    kinds = {p.id: p.kind for p in model.spec.processes}
    inner = [
        f
        for f in model.spec.flows
        if kinds[f.from_] not in ("source", "sink") and kinds[f.to] not in ("source", "sink")
    ]
    (system,) = systems
    assert len(system.process_links) == len(inner)
    assert {r.id for r in system.processes} == {p.id for p in processes.values()}


def test_import_gives_inputs_per_unit_of_the_reference(exported):
    _, _, path, processes, _ = exported
    inventory = read_openlca_inventory(path, "leaching")
    reference = next(e for e in processes["leaching"].exchanges if e.is_quantitative_reference)
    amount, unit = inventory["sulfuric_acid"].split(" ")
    assert float(amount) == pytest.approx(0.92 / reference.amount, rel=1e-12)
    assert unit == "kg/kg"
    with pytest.raises(CritflowError, match=r"no process 'leeching'.*leaching"):
        read_openlca_inventory(path, "leeching")


def test_a_mapping_links_items_to_existing_openlca_flows(tmp_path):
    mapping = tmp_path / "map.csv"
    uid = "66c93e71-f32b-4591-901c-55395db5c132"
    mapping.write_text(
        f"item,flow_id,flow_name,unit\nelectricity,{uid},market for electricity,kWh\n"
    )
    target = tmp_path / "b.zip"
    run = critflow_command("openlca", "export", BATTERY, target, "--mapping", mapping)
    assert run.returncode == 0, run.stderr
    with zipio.ZipReader(target) as reader:
        assert uid not in reader.ids_of(o.Flow)  # the user's database has it
        leach = next(p for p in reader.read_each(o.Process) if p.name == "leaching")
    assert any(e.flow.id == uid for e in leach.exchanges)
    bad = tmp_path / "bad.csv"
    bad.write_text("item,flow_id,flow_name,unit\nelectricity,not-a-uuid,x,kWh\n")
    refused = critflow_command("openlca", "export", BATTERY, tmp_path / "c.zip", "--mapping", bad)
    assert refused.returncode == 2 and "line 2" in refused.stderr and "not a UUID" in refused.stderr
    assert not (tmp_path / "c.zip").exists()


def test_a_model_without_inventories_and_a_broken_zip_are_explained(tmp_path):
    flotation = ROOT / "examples" / "eu_ev_battery_stock.yaml"
    run = critflow_command("openlca", "export", flotation, tmp_path / "x.zip")
    assert run.returncode == 2 and "no process declares an inventory" in run.stderr
    broken = tmp_path / "broken.zip"
    broken.write_text("not a zip")
    got = critflow_command("openlca", "import", broken, "anything")
    assert got.returncode == 2 and "cannot be read as an openLCA JSON-LD zip" in got.stderr
