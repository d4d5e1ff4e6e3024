"""Exports (AAS JSON/AASX, BatteryPass, JSON-LD), lot passports from a model, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyld import jsonld as pyld

import critflow
from critflow.passport.aas import aas_json, basyx_objects, read_aas, write_aas
from critflow.passport.datapoints import GUIDANCE_NAMESPACE, by_field
from critflow.passport.exports import batterypass_payload, jsonld
from critflow.passport.from_model import lot_from_flow
from critflow.passport.lot import validate_lot
from critflow.passport.samples import sample_battery
from tests.conftest import EXAMPLE, ROOT
from tests.conftest import critflow_cli as run_critflow

DOCUMENTS = [sample_battery(c, serial=f"S-{c}") for c in ("ev", "lmt", "industrial")]


@pytest.mark.parametrize("suffix", [".json", ".aasx"])
def test_aas_round_trip(tmp_path, suffix):
    path = write_aas(DOCUMENTS, tmp_path / f"passports{suffix}")
    back = read_aas(path)
    key = lambda d: d["data"]["unique_identifier"]  # noqa: E731
    assert sorted(back, key=key) == sorted(DOCUMENTS, key=key)


def test_direct_aas_json_equals_basyx():
    from basyx.aas.adapter.json import object_store_to_json

    def normal(environment):
        items = []
        for item in environment["assetAdministrationShells"] + environment["submodels"]:
            item = dict(item)
            if "submodels" in item:
                item["submodels"] = sorted(item["submodels"], key=json.dumps)
            items.append(json.dumps(item, sort_keys=True))
        return sorted(items)

    theirs = json.loads(object_store_to_json(basyx_objects(DOCUMENTS)))
    assert normal(aas_json(DOCUMENTS)) == normal(theirs)


def test_aas_elements_carry_semantic_ids_and_tiers():
    submodels = aas_json(DOCUMENTS[:1])["submodels"]
    elements = {e["idShort"]: e for s in submodels for e in s["submodelElements"]}
    mass = elements["battery_mass"]
    assert mass["semanticId"]["keys"][0]["value"] == GUIDANCE_NAMESPACE + "dp-10"
    assert {"type": "accessLevel", "value": "public"}.items() <= {
        "type": mass["qualifiers"][0]["type"],
        "value": mass["qualifiers"][0]["value"],
    }.items()
    assert elements["safety_measures"]["qualifiers"][0]["value"] == "legitimate_interest"


def test_jsonld_expands_every_field_to_its_data_point():
    document = DOCUMENTS[0]
    expanded = pyld.expand(jsonld(document))[0]
    fields = by_field()
    expected = {fields[f].iri for f in document["data"]}
    assert expected <= set(expanded)


def test_batterypass_payload_keeps_every_value():
    payload = batterypass_payload(DOCUMENTS[0])
    text = json.dumps(payload)
    assert payload["Performance"]["nominalVoltage"] == {"value": 370.0, "unit": "V"}
    assert set(payload["Circularity"]["recycledContent"]) == {
        "recycled_cobalt_share",
        "recycled_lithium_share",
        "recycled_nickel_share",
    }
    for value in DOCUMENTS[0]["data"].values():
        assert json.dumps(value) in text


def test_lot_passport_from_the_battery_example():
    model = critflow.load_model(EXAMPLE)
    results = critflow.solve(model, ["baseline"])
    lot = lot_from_flow(model, results, "nickel_sulfate", period=2027)
    validate_lot(lot)
    topo = results.inputs.topology
    f = topo.flow_ids.index("nickel_sulfate")
    p = list(results.inputs.periods).index(2027)
    # the example sells NiSO4·6H2O: the lot is the salt, 1 / w(Ni) times the modelled nickel, with
    # w(Ni) = 58.6934 / 262.8394 (IUPAC atomic weights; M = Ni + S + 10 O + 12 H)
    w_ni = 58.6934 / (58.6934 + 32.06 + 10 * 15.999 + 12 * 1.008)
    ni = topo.elements.index("Ni")
    nickel_t = results.mass_kg[0, p, ni, f] / 1000
    assert results.mass_kg[0, p, :, f].sum() / 1000 == pytest.approx(nickel_t, rel=1e-12)
    assert lot["mass"]["value"] == pytest.approx(nickel_t / w_ni, rel=1e-12)
    assert lot["composition"]["Ni"]["mass_fraction"] == pytest.approx(w_ni, rel=1e-12)
    # every input of the example is post-consumer (spent EV cells): all the nickel; the sulfate
    # and the water of crystallisation come from reagents
    assert lot["recycled_content"]["by_element"]["Ni"]["post_consumer"] == pytest.approx(1.0)
    assert lot["recycled_content"]["post_consumer"] == pytest.approx(w_ni, rel=1e-12)
    custody = sum(c["mass"]["value"] for c in lot["chain_of_custody"])
    assert custody == pytest.approx(nickel_t, rel=1e-9)  # the traced element mass per input lot
    # the example declares inventories: the LCA's burden per kg of the modelled flow (kg of Ni),
    # spread over the salt's mass, is the footprint per kg of lot
    from critflow.impact import assess

    impacts = assess(model, results)
    footprint = lot["carbon_footprint"]
    assert footprint["status"] == "declared"
    r = impacts.products.index("nickel sulfate")
    assert footprint["value"] == pytest.approx(impacts.footprint[0, p, r] * w_ni, rel=1e-12)
    assert "cut-off, economic partition" in footprint["note"]
    # a flow that is not a product has no footprint of its own
    assert (
        lot_from_flow(model, results, "pls", period=2027)["carbon_footprint"]["status"] == "pending"
    )


def test_passport_commands(tmp_path):
    document = ROOT / "examples" / "passports" / "ev_battery_passport.json"
    assert run_critflow("passport", "validate", str(document)).returncode == 0
    assert run_critflow("passport", "keygen", "--out", str(tmp_path / "issuer")).returncode == 0
    key = str(tmp_path / "issuer.key")
    chain = tmp_path / "chains" / "battery"
    signed = run_critflow("passport", "sign", str(document), "--key", key, "--chain", str(chain))
    assert signed.returncode == 0, signed.stderr
    verified = run_critflow(
        "passport", "verify", str(tmp_path / "chains"), "--trusted", str(tmp_path / "issuer.pub")
    )
    assert verified.returncode == 0 and "1 version(s) verify" in verified.stdout
    version = chain / "v0001.json"
    version.write_text(version.read_text().replace('"chemistry": "NMC811', '"chemistry": "NMC911'))
    broken = run_critflow("passport", "verify", str(tmp_path / "chains"))
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "v0001.json: its hash does not match its record" in broken.stdout
    bad = json.loads(document.read_text())
    bad["data"]["capacity"] = {"value": 75, "unit": "kWh"}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = run_critflow("passport", "validate", str(tmp_path / "bad.json"))
    assert (
        refused.returncode == 2
        and "data point 11" in refused.stderr
        and "Traceback" not in refused.stderr
    )
    exported = run_critflow(
        "passport", "export", str(document), "--format", "aasx", "--out", str(tmp_path / "p")
    )
    assert exported.returncode == 0 and (tmp_path / "p.aasx").stat().st_size > 1000
    assert np.isclose(read_aas(tmp_path / "p.aasx")[0]["data"]["battery_mass"]["value"], 450.0)
