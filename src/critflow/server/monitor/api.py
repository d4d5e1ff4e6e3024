"""The roadmap monitor's JSON API under /api/monitor (typed bodies; every refusal a problem
document naming the field path or the cell; a refused batch stores nothing)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Body, File, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from critflow.server.monitor import excel
from critflow.server.monitor.access import sight
from critflow.server.monitor.service import Monitor
from critflow.server.problems import RegistryError

MAX_UPLOAD = 900_000
"""Largest Excel upload in bytes (below the service's body limit; a workbook of 5,000 values is
about 150 kB)."""


class _Strict(BaseModel):
    """A request body taken as sent: an unknown (misspelt) field, or a value of another JSON type
    (a year as "2027", a number as text), is refused with its field path, not ignored or
    converted."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ProjectIn(_Strict):
    """A project of the roadmap's programme."""

    project_id: str = Field(
        min_length=1, max_length=60, description="your project id, e.g. REC-2025-01"
    )
    title: str = Field(min_length=1, max_length=300)
    instrument: str = Field(
        max_length=60, description="a funding instrument of the roadmap (cSBO, ICON …)"
    )
    domains: list[str] = Field(min_length=1, max_length=20, description="focus-domain ids (1.1 …)")
    partners: list[str] = Field(default_factory=list, max_length=100)
    start_year: int = Field(ge=1990, le=2100)
    end_year: int = Field(ge=1990, le=2100)
    organisation: str | None = Field(
        None,
        max_length=200,
        description="owning organisation (programme staff only; default: the key's)",
    )


class ValueIn(_Strict):
    """A KPI value of a project in a year."""

    project: str = Field(max_length=60)
    year: int
    kpi: str = Field(max_length=80)
    value: float
    unit: str = Field(max_length=40, description="a unit of the KPI's kind (pint); converted")


class VerdictIn(_Strict):
    """A rule verdict a model computed (``critflow monitor submit``)."""

    project: str = Field(max_length=60)
    year: int
    rule: str = Field(max_length=120)
    title: str = Field(max_length=300)
    indicator: str = Field(max_length=120)
    status: Literal["pass", "fail", "not applicable", "pending"]
    value: float | None = None
    comparator: str = Field(max_length=4)
    threshold: float
    margin: float | None = None


class SubmissionIn(_Strict):
    """A batch of values (and verdicts): stored whole, or not at all."""

    values: list[ValueIn] = Field(default_factory=list, max_length=5000)
    verdicts: list[VerdictIn] = Field(default_factory=list, max_length=5000)
    model_sha256: str | None = Field(
        None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the model file the values come from",
    )
    model_name: str | None = Field(None, max_length=200, description="the model file's name")


class ClassificationIn(_Strict):
    """UNFC-2019 classified quantities of one project."""

    quantities: list[dict[str, Any]] = Field(
        max_length=5000,
        description="[{source, source_type, element, tonnes, reference_point, e, f, g, "
        "justification | answers, date, evaluator, domain}]",
    )


XLSX_RESPONSE = {200: {"content": {excel.XLSX: {}}}}


def monitor_api(monitor: Monitor, errors: dict, key_header: Any) -> APIRouter:
    """The /api/monitor endpoints."""
    router = APIRouter(prefix="/api/monitor", responses=errors, tags=["roadmap monitor"])

    @router.get("/roadmap", operation_id="monitorRoadmap")
    def roadmap():
        """The roadmap the monitor follows: focus domains with their KPIs (unit, kind,
        reference, 2027/2030 targets, source) and the funding instruments."""
        road = monitor.roadmap
        return {
            "roadmap": road.id,
            "title": road.title,
            "domains": [
                {
                    "id": d.id,
                    "title": d.title,
                    "kpis": [
                        {
                            "id": k.id,
                            "name": k.name,
                            "unit": k.unit,
                            "kind": k.kind,
                            "direction": k.direction,
                            "reference": k.reference.text,
                            "target_2027": k.target_2027,
                            "target_2030": k.target_2030,
                            "source": str(k.source),
                        }
                        for k in d.kpis
                    ],
                }
                for d in road.domains
            ],
            "instruments": [{"id": i.id, "name": i.name} for i in road.instruments.values()],
        }

    @router.post("/projects", status_code=201, operation_id="monitorCreateProject")
    def create_project(project: ProjectIn, response: Response, api_key: str | None = key_header):
        """Register a project (a write key; a company's key files it under its organisation)."""
        result = monitor.create_project(monitor.caller(api_key), project.model_dump())
        response.headers["Location"] = f"/api/monitor/projects/{result['project_id']}"
        return result

    @router.get("/projects", operation_id="monitorProjects")
    def projects(api_key: str | None = key_header):
        """The projects the key may see (its organisation's; every one for programme staff)."""
        return {"projects": monitor.projects(monitor.caller(api_key))}

    @router.get("/projects/{project_id}", operation_id="monitorProject")
    def project(project_id: str, api_key: str | None = key_header):
        """A project with its values (latest per KPI and year, with provenance), verdicts and
        UNFC quantities."""
        return monitor.project(monitor.caller(api_key), project_id)

    @router.post("/submissions", status_code=201, operation_id="monitorSubmit")
    def submit(submission: SubmissionIn, api_key: str | None = key_header):
        """Submit KPI values (and a model's rule verdicts): all or nothing."""
        return monitor.submit(
            monitor.caller(api_key),
            [v.model_dump() for v in submission.values],
            [v.model_dump() for v in submission.verdicts],
            source="model" if submission.model_sha256 else "api",
            model_sha256=submission.model_sha256,
            upload_name=submission.model_name,
        )

    @router.post(
        "/projects/{project_id}/quantities", status_code=201, operation_id="monitorClassify"
    )
    def classify(
        project_id: str, classification: ClassificationIn, api_key: str | None = key_header
    ):
        """A project's UNFC-2019 classified resource quantities (E, F, G with a justification,
        or the questionnaire's answers): replaces its earlier classification, all or nothing."""
        return monitor.classify_quantities(
            monitor.caller(api_key), project_id, classification.quantities
        )

    @router.post("/uploads", status_code=201, operation_id="monitorUpload")
    async def upload(file: UploadFile = File(...), api_key: str | None = key_header):
        """Submit the values of an Excel workbook (the template's sheet 'values'): all or
        nothing, every wrong cell named by sheet, row and column."""
        raw = await file.read(MAX_UPLOAD + 1)
        if len(raw) > MAX_UPLOAD:
            raise RegistryError(
                413, "Upload too large", f"Uploads are limited to {MAX_UPLOAD:,} bytes."
            )
        return excel.upload(monitor, monitor.caller(api_key), raw, file.filename or "upload.xlsx")

    @router.get("/aggregates", operation_id="monitorAggregates")
    def aggregates():
        """The public aggregates per focus domain, KPI and year (each from at least three
        organisations, none recoverable by subtraction from another)."""
        return {"aggregates": [monitor.aggregate_dict(a) for a in monitor.aggregates()]}

    @router.get("/totals", operation_id="monitorTotals")
    def totals(api_key: str | None = key_header):
        """The programme totals per year (t SRM from recycling, t CO2-eq avoided): the public
        aggregate and the sum over the projects the caller may see."""
        return {"totals": monitor.programme_view(monitor.caller(api_key))}

    @router.get("/domains/{domain_id}", operation_id="monitorDomain")
    def domain(domain_id: str, api_key: str | None = key_header):
        """A focus domain as the caller may see it: per KPI reference, targets, the public
        aggregate and the visible projects' values; contributing projects; totals."""
        return monitor.domain_view(monitor.caller(api_key), domain_id)

    @router.post(
        "/screening",
        operation_id="monitorScreen",
        responses={200: {"content": {"application/pdf": {}, "text/html": {}}}},
    )
    def screening(
        proposal: dict[str, Any] = Body(
            description="title, acronym, instrument, domains, start_year, duration_years, "
            "partners [{organisation, kind, group, related_to}], claims [{kpi, value, year}]"
        ),
        sheet: Literal["html", "pdf"] | None = Query(
            None, description="answer with the one-page screening sheet instead of JSON"
        ),
        api_key: str | None = key_header,
    ):
        """Screen a proposal against the roadmap: eligibility for the instrument, the colour
        of each focus domain in the start year's window, the relevant targets and whether the
        claimed improvements meet them."""
        from critflow.server.monitor.screening import screen_proposal
        from critflow.server.monitor.screening import sheet as render

        result = screen_proposal(monitor, monitor.caller(api_key), proposal)
        if sheet is None:
            return result.as_dict()
        body, media, name = render(result, sheet)
        return Response(
            body, media_type=media, headers={"Content-Disposition": f'inline; filename="{name}"'}
        )

    @router.get("/template.xlsx", operation_id="monitorTemplate", responses=XLSX_RESPONSE)
    def template(api_key: str | None = key_header):
        """The Excel upload template (with the KPIs and the caller's projects)."""
        return Response(
            excel.template(monitor, monitor.caller(api_key)),
            media_type=excel.XLSX,
            headers={"Content-Disposition": 'attachment; filename="monitor-template.xlsx"'},
        )

    @router.get("/export.xlsx", operation_id="monitorExport", responses=XLSX_RESPONSE)
    def export(api_key: str | None = key_header):
        """Everything the caller may see as a workbook (the public: the aggregates only)."""
        principal = monitor.caller(api_key)
        return Response(
            excel.export(monitor, principal),
            media_type=excel.XLSX,
            headers={
                "Content-Disposition": f'attachment; filename="monitor-{sight(principal)}.xlsx"'
            },
        )

    return router
