"""Battery passports as Asset Administration Shells: IDTA 02035 submodels plus DPP metadata.

Each passport becomes one shell (its id and global asset id are the Digital Link) with the IDTA
02035 submodels its data points belong to (column ``idta_submodel`` of the data-point file) and a
``DppMetadata`` submodel. Every element carries the data point's guidance IRI as semantic ID and
its access tier and data-point number as qualifiers. Quantities are collections ``{value, unit}``;
structured values are JSON text marked ``valueEncoding: application/json``.

:func:`aas_json` writes the AAS v3 JSON directly (fast, for bulk); :func:`basyx_objects` builds
the same content with basyx-python-sdk (used for AASX and as the reference the tests and the
benchmark compare against). :func:`read_aas` reads JSON or AASX back with basyx.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError
from critflow.passport.datapoints import DataPoint, by_field, idta_submodels

JSON_ENCODING = "application/json"
_QUANTITY, _DOUBLE, _INT, _TEXT, _JSON = range(5)


def _form(point: DataPoint, value: Any) -> int:
    if point.kind == "quantity" and isinstance(value, dict):
        return _QUANTITY
    if point.kind == "percent":
        return _DOUBLE
    if point.kind == "count":
        return _INT
    return _TEXT if isinstance(value, str) else _JSON


def _ref(value: str, kind: str = "GlobalReference") -> dict[str, Any]:
    return {"type": "ExternalReference", "keys": [{"type": kind, "value": value}]}


def _qualifier(kind: str, value: str) -> dict[str, Any]:
    return {"value": value, "kind": "ConceptQualifier", "valueType": "xs:string", "type": kind}


def _property(id_short: str, value_type: str, value: Any, extra: dict[str, Any] | None = None):
    element = {"idShort": id_short, "modelType": "Property", **(extra or {})}
    element["value"] = value
    element["valueType"] = value_type
    return element


def _element(point: DataPoint, value: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "semanticId": _ref(point.iri),
        "qualifiers": [
            _qualifier("accessLevel", point.access_tier),
            _qualifier("dataPoint", str(point.nr)),
        ],
    }
    form = _form(point, value)
    if form == _QUANTITY:
        return {
            "idShort": point.field,
            "modelType": "SubmodelElementCollection",
            **extra,
            "value": [
                _property("value", "xs:double", repr(float(value["value"]))),
                _property("unit", "xs:string", str(value["unit"])),
            ],
        }
    if form == _DOUBLE:
        return _property(point.field, "xs:double", repr(float(value)), extra)
    if form == _INT:
        return _property(point.field, "xs:int", str(int(value)), extra)
    if form == _JSON:
        extra["qualifiers"].append(_qualifier("valueEncoding", JSON_ENCODING))
        return _property(
            point.field, "xs:string", json.dumps(value, sort_keys=True, ensure_ascii=False), extra
        )
    return _property(point.field, "xs:string", value, extra)


def _shell_and_submodels(document: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = document["data"]
    uri = data["unique_identifier"]
    points = by_field()
    semantic = idta_submodels()
    groups: dict[str, list[dict[str, Any]]] = {}
    for field, value in data.items():
        point = points[field]
        groups.setdefault(point.idta_submodel, []).append(_element(point, value))
    metadata = [
        _property("digitalProductPassportId", "xs:string", uri),
        _property("uniqueProductIdentifier", "xs:string", uri),
        _property("granularity", "xs:string", "item"),
        _property("dppSchemaVersion", "xs:string", "critflow-battery-passport/1"),
        _property("dppStatus", "xs:string", str(data.get("battery_status", "original"))),
        _property("batteryCategory", "xs:string", document["category"]),
        _property(
            "lastUpdate",
            "xs:dateTime",
            document.get("last_update") or dt.datetime(2027, 2, 18, tzinfo=dt.UTC).isoformat(),
        ),
    ]
    groups = {"DppMetadata": metadata, **groups}
    submodels = [
        {
            "idShort": name,
            "modelType": "Submodel",
            "id": f"{uri}/submodel/{name}",
            "semanticId": _ref(semantic[name]),
            "submodelElements": elements,
        }
        for name, elements in groups.items()
    ]
    shell = {
        "idShort": "BatteryPassport",
        "modelType": "AssetAdministrationShell",
        "id": uri,
        "assetInformation": {"assetKind": "Instance", "globalAssetId": uri},
        "submodels": [
            {"type": "ModelReference", "keys": [{"type": "Submodel", "value": s["id"]}]}
            for s in submodels
        ],
    }
    return shell, submodels


def aas_json(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """AAS v3 JSON environment of battery passports (shells and submodels)."""
    shells, submodels = [], []
    for document in documents:
        shell, parts = _shell_and_submodels(document)
        shells.append(shell)
        submodels += parts
    return {"assetAdministrationShells": shells, "submodels": submodels}


def basyx_objects(documents: list[dict[str, Any]]):
    """The same environment as basyx-python-sdk objects (a DictIdentifiableStore)."""
    from basyx.aas import model

    types = {
        "xs:double": model.datatypes.Double,
        "xs:int": model.datatypes.Int,
        "xs:string": model.datatypes.String,
        "xs:dateTime": model.datatypes.DateTime,
    }

    def reference(ref: dict[str, Any]):
        return model.ExternalReference(
            (model.Key(model.KeyTypes.GLOBAL_REFERENCE, ref["keys"][0]["value"]),)
        )

    def element(spec: dict[str, Any]):
        common = {}
        if "semanticId" in spec:
            common["semantic_id"] = reference(spec["semanticId"])
        if "qualifiers" in spec:
            common["qualifier"] = [
                model.Qualifier(
                    type_=q["type"], value_type=model.datatypes.String, value=q["value"]
                )
                for q in spec["qualifiers"]
            ]
        if spec["modelType"] == "SubmodelElementCollection":
            return model.SubmodelElementCollection(
                id_short=spec["idShort"], value=[element(v) for v in spec["value"]], **common
            )
        value_type = types[spec["valueType"]]
        value = spec["value"]
        if value_type is model.datatypes.DateTime:
            value = model.datatypes.DateTime.fromisoformat(value)
        return model.Property(
            id_short=spec["idShort"],
            value_type=value_type,
            value=value_type(value) if value_type is not model.datatypes.DateTime else value,
            **common,
        )

    objects = []
    for document in documents:
        shell_spec, parts = _shell_and_submodels(document)
        submodels = [
            model.Submodel(
                id_=p["id"],
                id_short=p["idShort"],
                semantic_id=reference(p["semanticId"]),
                submodel_element=[element(e) for e in p["submodelElements"]],
            )
            for p in parts
        ]
        shell = model.AssetAdministrationShell(
            id_=shell_spec["id"],
            id_short=shell_spec["idShort"],
            asset_information=model.AssetInformation(
                asset_kind=model.AssetKind.INSTANCE, global_asset_id=shell_spec["id"]
            ),
            submodel={model.ModelReference.from_referable(s) for s in submodels},
        )
        objects += [shell, *submodels]
    return model.DictIdentifiableStore(objects)


def write_aas(documents: list[dict[str, Any]], path: Path) -> Path:
    """Write passports as AAS JSON (``.json``) or an AASX package (``.aasx``)."""
    if path.suffix == ".json":
        path.write_text(json.dumps(aas_json(documents), ensure_ascii=False), encoding="utf-8")
        return path
    if path.suffix != ".aasx":
        raise CritflowError(
            str(path), "is neither .json nor .aasx", "Name the output *.json or *.aasx."
        )
    from basyx.aas.adapter import aasx
    from basyx.aas.adapter.json import read_aas_json_file

    store = read_aas_json_file(io.StringIO(json.dumps(aas_json(documents))), failsafe=False)
    shells = [d["data"]["unique_identifier"] for d in documents]
    with aasx.AASXWriter(str(path)) as writer:
        writer.write_aas(
            aas_ids=shells,
            object_store=store,
            file_store=aasx.DictSupplementaryFileContainer(),
            write_json=True,
        )
    return path


def read_aas(path: Path) -> list[dict[str, Any]]:
    """Read passports back from AAS JSON or AASX (with basyx); the inverse of :func:`write_aas`."""
    from basyx.aas import model

    if path.suffix == ".aasx":
        from basyx.aas.adapter import aasx

        store = model.DictIdentifiableStore()
        with aasx.AASXReader(str(path)) as reader:
            reader.read_into(object_store=store, file_store=aasx.DictSupplementaryFileContainer())
    else:
        from basyx.aas.adapter.json import read_aas_json_file

        with path.open(encoding="utf-8") as handle:
            store = read_aas_json_file(handle, failsafe=False)
    points = by_field()
    documents = []
    for shell in (o for o in store if isinstance(o, model.AssetAdministrationShell)):
        data: dict[str, Any] = {}
        category = None
        for ref in shell.submodel:
            submodel = ref.resolve(store)
            for element in submodel.submodel_element:
                if submodel.id_short == "DppMetadata":
                    if element.id_short == "batteryCategory":
                        category = element.value
                    continue
                point = points[element.id_short]
                if isinstance(element, model.SubmodelElementCollection):
                    parts = {e.id_short: e.value for e in element.value}
                    data[point.field] = {"value": float(parts["value"]), "unit": parts["unit"]}
                    continue
                encoded = any(q.type == "valueEncoding" for q in element.qualifier)
                value = element.value
                if encoded:
                    value = json.loads(value)
                elif point.kind == "percent":
                    value = float(value)
                elif point.kind == "count":
                    value = int(value)
                else:
                    value = str(value)
                data[point.field] = value
        ordered = {p: data[p] for p in points if p in data}
        documents.append({"kind": "battery", "category": category, "data": ordered})
    return documents
