"""Exports (AAS JSON/AASX, BatteryPass, JSON-LD), lot passports from a model, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyld import jsonld as pyld

import critflow
from critflow.errors import CritflowError
from critflow.passport.aas import aas_json, basyx_objects, read_aas, write_aas
from critflow.passport.datapoints import GUIDANCE_NAMESPACE, by_field
from critflow.passport.exports import batterypass_payload, from_batterypass, jsonld
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


#: the properties of the Battery Pass consortium's SAMM aspects (github.com/batterypass/
#: BatteryPassDataModel, io.BatteryPass.*/1.2.0/*.ttl, Performance 1.2.1), by namespace: every
#: attribute critflow's BatteryPass export writes must be one of these
BATTERYPASS_PROPERTIES = {
    "GeneralProductInformation": {
        "productIdentifier", "batteryPassportIdentifier", "batteryCategory",
        "manufacturerInformation", "manufacturingDate", "batteryStatus", "batteryMass",
        "manufacturingPlace", "operatorInformation", "puttingIntoService", "warrentyPeriod",
        "contactName", "postalAddress", "identifier", "emailAddress", "webAddress",
    },
    "Performance": {
        "originalPowerCapability", "ratedMaximumPower", "powerCapabilityRatio", "ratedEnergy",
        "expectedNumberOfCycles", "initialSelfDischarge", "roundtripEfficiency", "ratedCapacity",
        "initialInternalResistance", "expectedLifetime", "cRate", "nominalVoltage",
        "minimumVoltage", "maximumVoltage", "capacityThresholdForExhaustion",
        "lifetimeReferenceTest", "cRateLifeCycleTest", "temperatureRangeIdleState",
        "roundTripEfficiencyat50PerCentCycleLife", "roundTripEfficiencyFade", "powerFade",
        "energyThroughput", "capacityThroughput", "numberOfFullCycles", "stateOfCertifiedEnergy",
        "capacityFade", "remainingEnergy", "remainingCapacity", "negativeEvents",
        "temperatureInformation", "remainingPowerCapability", "evolutionOfSelfDischarge",
        "currentSelfDischargingRate", "internalResistanceIncrease",
        "remainingRoundTripEnergyEfficiency", "stateOfCharge", "remainingPowerCapabilityValue",
        "remainingRoundTripEnergyEfficiencyValue",
    },
    "Circularity": {
        "dismantlingAndRemovalInformation", "sparePartSources", "recycledContent",
        "safetyMeasures", "endOfLifeInformation", "renewableContent", "safetyInstructions",
        "extinguishingAgent", "wastePrevention", "separateCollection", "informationOnCollection",
    },
    "MaterialComposition": {
        "batteryChemistry", "batteryMaterials", "hazardousSubstances", "isCriticalRawMaterial",
    },
    "Labels": {"declarationOfConformity", "resultOfTestReport", "labels"},
    "CarbonFootprint": {
        "batteryCarbonFootprint", "carbonFootprintPerLifecycleStage",
        "carbonFootprintPerformanceClass", "carbonFootprintStudy", "absoluteCarbonFootprint",
    },
    "SupplyChainDueDiligence": {
        "supplyChainDueDiligenceReport", "thirdPartyAussurances", "supplyChainIndicies",
    },
}  # fmt: skip


def test_batterypass_attributes_are_the_models():
    """Each data point's BatteryPass attribute is a property of the consortium's model (a
    third part keys data points that share one, in camelCase); none is snake_case."""
    for point in by_field().values():
        if not point.batterypass_alias:
            continue
        aspect, attribute, *key = point.batterypass_alias.split(".")
        assert attribute in BATTERYPASS_PROPERTIES[aspect], point.batterypass_alias
        assert len(key) <= 1 and all(k[:1].islower() and "_" not in k for k in key), key


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda d: d["category"])
def test_batterypass_payload_reads_back(document):
    payload = batterypass_payload(document)
    assert payload["Performance"]["nominalVoltage"] == {"value": 370.0, "unit": "V"}
    if "recycled_cobalt_share" in document["data"]:
        assert (
            payload["Circularity"]["recycledContent"]["cobalt"]
            == (document["data"]["recycled_cobalt_share"])
        )

    def keys(node, depth=0):  # the payload's own keys, down to the data points' values
        if isinstance(node, dict) and depth < 3:
            for key, value in node.items():
                yield key
                if key not in ("batteryPassVersion",):
                    yield from keys(value, depth + 1)

    own = [k for k in keys(payload) if k not in ("value", "unit")]
    assert own and not [k for k in own if "_" in k]  # camelCase, as the BatteryPass model
    assert from_batterypass(json.loads(json.dumps(payload))) == document
    data_keys = {k for v in payload.values() if isinstance(v, dict) for k in v}
    assert "kind" not in payload and len(data_keys) > 20


def test_batterypass_payload_with_an_unknown_attribute_is_refused():
    payload = batterypass_payload(DOCUMENTS[0])
    payload["Performance"]["ratedCapacity"]["oops"] = 1
    with pytest.raises(CritflowError) as caught:
        from_batterypass(payload, "p.json")
    assert caught.value.problems[0].where == "p.json: Performance.ratedCapacity.oops"


def test_export_every_format_into_a_new_folder(tmp_path):
    document = ROOT / "examples" / "passports" / "ev_battery_passport.json"
    stem = tmp_path / "new" / "nested" / "passport.json"
    exported = run_critflow("passport", "export", document, "-f", "all", "-o", stem)
    assert exported.returncode == 0, exported.stderr
    files = sorted(p.name for p in stem.parent.iterdir())
    assert files == [
        "passport.aas.json", "passport.aasx", "passport.batterypass.json", "passport.jsonld"
    ]  # fmt: skip
    contents = [(stem.parent / f).read_bytes() for f in files]
    assert len(set(contents)) == 4
    original = json.loads(document.read_text())
    for f in ("passport.aas.json", "passport.aasx"):
        assert read_aas(stem.parent / f) == [original]
    validated = run_critflow("passport", "validate", stem.parent / "passport.batterypass.json")
    assert validated.returncode == 0, validated.stderr
    assert "valid battery passport" in validated.stdout
    expanded = pyld.expand(json.loads((stem.parent / "passport.jsonld").read_text()))[0]
    assert by_field()["battery_mass"].iri in expanded
    # one format at a time into the same stem: each writes its own file, none overwrites another
    again = run_critflow("passport", "export", document, "--format", "jsonld", "-o", stem)
    assert again.returncode == 0
    assert [(stem.parent / f).read_bytes() for f in files] == contents


@pytest.mark.parametrize("blocked", ["folder", "file-as-folder"])
def test_failed_aasx_export_is_a_message(tmp_path, blocked):
    document = ROOT / "examples" / "passports" / "ev_battery_passport.json"
    if blocked == "folder":
        (tmp_path / "p.aasx").mkdir()  # the target is a folder
        stem, named = tmp_path / "p", tmp_path / "p.aasx"
    else:
        (tmp_path / "plain").write_text("x")  # a file where a folder must be
        stem, named = tmp_path / "plain" / "p", tmp_path / "plain" / "p.aasx"
    failed = run_critflow("passport", "export", document, "--format", "aasx", "--out", stem)
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr and "ZipFile" not in failed.stderr
    assert str(named) in failed.stderr and "--out" in failed.stderr


def test_unknown_export_format_is_a_message(tmp_path):
    document = ROOT / "examples" / "passports" / "ev_battery_passport.json"
    failed = run_critflow("passport", "export", document, "-f", "xml", "-o", tmp_path / "p")
    assert failed.returncode == 2 and "'xml' is not an export format" in failed.stderr
    assert not any(tmp_path.iterdir())


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
