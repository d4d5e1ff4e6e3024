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
from functools import cache
from pathlib import Path
from typing import Any

from critflow.errors import CritflowError
from critflow.passport.datapoints import DataPoint, by_field, data_points, idta_submodels

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


def _property(id_short: str, value_type: str, value: Any) -> dict[str, Any]:
    return {"idShort": id_short, "modelType": "Property", "value": value, "valueType": value_type}


@cache
def _static(nr: int) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """Semantic ID and qualifiers of a data point's element, built once and shared (read-only)."""
    point = data_points()[nr - 1]
    qualifiers = [
        _qualifier("accessLevel", point.access_tier),
        _qualifier("dataPoint", str(point.nr)),
    ]
    return _ref(point.iri), qualifiers, [*qualifiers, _qualifier("valueEncoding", JSON_ENCODING)]


def aas_json(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """AAS v3 JSON environment of battery passports (shells and submodels), as a dict."""
    return json.loads(aas_json_text(documents))


@cache
def _static_text(nr: int) -> tuple[str, str]:
    """Pre-serialised idShort, semantic ID and qualifiers of a data point (plain, JSON-encoded)."""
    semantic_id, qualifiers, json_qualifiers = _static(nr)
    point = data_points()[nr - 1]
    head = f'"idShort":{json.dumps(point.field)},"semanticId":{json.dumps(semantic_id)},'
    return (
        head + f'"qualifiers":{json.dumps(qualifiers)}',
        head + f'"qualifiers":{json.dumps(json_qualifiers)}',
    )


def _element_text(point: DataPoint, value: Any) -> str:
    plain, encoded = _static_text(point.nr)
    form = _form(point, value)
    if form == _QUANTITY:
        return (
            f'{{{plain},"modelType":"SubmodelElementCollection","value":['
            f'{{"idShort":"value","modelType":"Property","value":"{float(value["value"])!r}",'
            f'"valueType":"xs:double"}},{{"idShort":"unit","modelType":"Property",'
            f'"value":{json.dumps(str(value["unit"]))},"valueType":"xs:string"}}]}}'
        )
    if form == _DOUBLE:
        return (
            f'{{{plain},"modelType":"Property","value":"{float(value)!r}","valueType":"xs:double"}}'
        )
    if form == _INT:
        return f'{{{plain},"modelType":"Property","value":"{int(value)}","valueType":"xs:int"}}'
    if form == _JSON:
        text = json.dumps(json.dumps(value, sort_keys=True, ensure_ascii=False))
        return f'{{{encoded},"modelType":"Property","value":{text},"valueType":"xs:string"}}'
    return f'{{{plain},"modelType":"Property","value":{json.dumps(value)},"valueType":"xs:string"}}'


def _passport_text(document: dict[str, Any]) -> tuple[str, list[str]]:
    """JSON text of one passport's shell and of its submodels."""
    data = document["data"]
    uri = data["unique_identifier"]
    points = by_field()
    semantic = idta_submodels()
    groups: dict[str, list[str]] = {}
    for field, value in data.items():
        point = points[field]
        groups.setdefault(point.idta_submodel, []).append(_element_text(point, value))
    metadata = [json.dumps(e, separators=(",", ":")) for e in _metadata(document)]
    groups = {"DppMetadata": metadata, **groups}
    quoted_uri = json.dumps(uri)
    submodels = []
    references = []
    for name, elements in groups.items():
        sm_id = json.dumps(f"{uri}/submodel/{name}")
        submodels.append(
            f'{{"idShort":"{name}","modelType":"Submodel","id":{sm_id},'
            f'"semanticId":{json.dumps(_ref(semantic[name]))},'
            f'"submodelElements":[{",".join(elements)}]}}'
        )
        references.append(
            f'{{"type":"ModelReference","keys":[{{"type":"Submodel","value":{sm_id}}}]}}'
        )
    shell = (
        f'{{"idShort":"BatteryPassport","modelType":"AssetAdministrationShell","id":{quoted_uri},'
        f'"assetInformation":{{"assetKind":"Instance","globalAssetId":{quoted_uri}}},'
        f'"submodels":[{",".join(references)}]}}'
    )
    return shell, submodels


def _metadata(document: dict[str, Any]) -> list[dict[str, Any]]:
    data = document["data"]
    uri = data["unique_identifier"]
    return [
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


def aas_json_text(documents: list[dict[str, Any]]) -> str:
    """AAS v3 JSON environment of battery passports, written directly as text (bulk speed)."""
    shells, submodels = [], []
    for document in documents:
        shell, parts = _passport_text(document)
        shells.append(shell)
        submodels += parts
    return (
        f'{{"assetAdministrationShells":[{",".join(shells)}],"submodels":[{",".join(submodels)}]}}'
    )


def basyx_objects(documents: list[dict[str, Any]], environment: dict[str, Any] | None = None):
    """The same environment as basyx-python-sdk objects (a DictIdentifiableStore); basyx checks
    the AAS constraints while it builds them."""
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

    environment = environment if environment is not None else aas_json(documents)
    parts_by_id = {p["id"]: p for p in environment["submodels"]}
    objects = []
    for shell_spec in environment["assetAdministrationShells"]:
        parts = [parts_by_id[r["keys"][0]["value"]] for r in shell_spec["submodels"]]
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
        path.write_text(aas_json_text(documents), encoding="utf-8")
        return path
    if path.suffix != ".aasx":
        raise CritflowError(
            str(path), "is neither .json nor .aasx", "Name the output *.json or *.aasx."
        )
    from basyx.aas.adapter import aasx
    from basyx.aas.adapter.json import read_aas_json_file

    store = read_aas_json_file(io.StringIO(aas_json_text(documents)), failsafe=False)
    shells = [d["data"]["unique_identifier"] for d in documents]
    # the package is built in memory and written in one go: a path that cannot be written raises
    # one OSError here, not a ZipFile half-open on a missing file (whose __del__ prints a traceback)
    package = io.BytesIO()
    with aasx.AASXWriter(package) as writer:
        writer.write_aas(
            aas_ids=shells,
            object_store=store,
            file_store=aasx.DictSupplementaryFileContainer(),
            write_json=True,
        )
    path.write_bytes(package.getvalue())
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
