"""The roadmap monitor's pages under /monitor: server-rendered HTML with inline SVG charts, no
script and no build step. A browser user logs in with an API key (a session cookie); without one
the pages show what the public sees, the aggregates that pass the confidentiality rule."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from critflow.errors import Problem
from critflow.server.auth import Principal
from critflow.server.monitor import excel
from critflow.server.monitor.access import sight
from critflow.server.monitor.charts import kpi_chart, number
from critflow.server.monitor.service import Monitor
from critflow.server.monitor.sessions import (
    COOKIE,
    LIFETIME,
    close_session,
    open_session,
    session_principal,
)
from critflow.server.problems import RegistryError

e = html.escape

STYLE = """body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#16324f;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}
header a{color:#fff}header form{margin:0}main{padding:1rem;max-width:70rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}
.who{margin-left:auto;font-size:.9rem}.note{color:#555;font-size:.9rem}.problems li{color:#a00}
.ok{color:#070}.kpi{border-top:1px solid #ccc;padding-top:.5rem;margin-top:1rem}
.colour{display:inline-block;width:.9rem;height:.9rem;border:1px solid #888;vertical-align:middle}
button,input[type=submit]{padding:.3rem .8rem}"""

SIGHT_TEXT = {
    "all": "programme staff: every project's values",
    "own": "your organisation's projects and the public aggregates",
    "aggregates": "the public aggregates (each from at least three organisations)",
}


def _who(principal: Principal) -> str:
    if principal.anonymous:
        return '<span class="who">public · <a href="/monitor/login">log in</a></span>'
    return (
        f'<span class="who">{e(principal.organisation or "")} ({e(sight(principal))}) '
        '<form method="post" action="/monitor/logout" style="display:inline">'
        '<button type="submit">Log out</button></form></span>'
    )


def layout(title: str, body: str, principal: Principal) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} — critflow roadmap monitor</title><style>{STYLE}</style></head>
<body><header><strong>Roadmap monitor</strong><a href="/monitor">focus domains</a>
<a href="/monitor/upload">upload</a><a href="/monitor/screening">screen a proposal</a>
<a href="/monitor/export.xlsx">export (Excel)</a>{_who(principal)}</header>
<main><h1>{e(title)}</h1>{body}</main></body></html>"""


def _problems(problems: list[Problem]) -> str:
    items = "".join(
        f"<li><strong>{e(p.where)}</strong>: {e(p.what)}{'. ' + e(p.fix) if p.fix else ''}</li>"
        for p in problems
    )
    return f'<ul class="problems">{items}</ul>'


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}" + (f" {e(unit)}" if unit else "")
    return e(str(value)) + (f" {e(unit)}" if unit and number(value) is not None else "")


def monitor_pages(monitor: Monitor) -> APIRouter:
    """The /monitor pages (HTML)."""
    router = APIRouter(prefix="/monitor", include_in_schema=False)
    registry = monitor.registry

    def principal_of(request: Request) -> Principal:
        return session_principal(registry, request.cookies.get(COOKIE))

    def page(request: Request, title: str, build: Callable[[Principal], str]) -> HTMLResponse:
        principal = principal_of(request)
        try:
            body = build(principal)
        except RegistryError as exc:
            body = f"<p>{e(exc.detail)}</p>" + (_problems(exc.problems) if exc.problems else "")
            return HTMLResponse(layout(exc.title, body, principal), status_code=exc.status)
        return HTMLResponse(layout(title, body, principal))

    def same_origin(request: Request) -> None:
        """Refuse a form posted from another site (the cookie is SameSite=Strict as well)."""
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            raise RegistryError(403, "Cross-site form", "Forms are accepted from this site only.")

    @router.get("", response_class=HTMLResponse)
    def index(request: Request):
        def build(principal: Principal) -> str:
            rows = []
            for domain in monitor.roadmap.domains:
                rows.append(
                    f'<tr><td><a href="/monitor/domains/{e(domain.id)}">{e(domain.id)}</a></td>'
                    f"<td>{e(domain.title)}</td><td>{len(domain.kpis)}</td></tr>"
                )
            projects = ""
            if not principal.anonymous:
                listed = monitor.projects(principal)
                projects = "<h2>Projects</h2>" + (
                    "<table><tr><th>project</th><th>title</th><th>organisation</th>"
                    "<th>instrument</th><th>focus domains</th><th>period</th></tr>"
                    + "".join(
                        f'<tr><td><a href="/monitor/projects/{e(p["project_id"])}">'
                        f"{e(p['project_id'])}</a></td><td>{e(p['title'])}</td>"
                        f"<td>{e(p['organisation'])}</td><td>{e(p['instrument'])}</td>"
                        f"<td>{e(', '.join(p['domains']))}</td>"
                        f"<td>{p['start_year']}-{p['end_year']}</td></tr>"
                        for p in listed
                    )
                    + "</table>"
                    if listed
                    else "<p>No projects yet (POST /api/monitor/projects).</p>"
                )
            return (
                f'<p class="note">{e(monitor.roadmap.title)} · you see '
                f"{e(SIGHT_TEXT[sight(principal)])}.</p>"
                "<table><tr><th>focus domain</th><th>title</th><th>KPIs</th></tr>"
                + "".join(rows)
                + "</table>"
                + _totals_table(monitor.programme_view(principal), principal)
                + projects
            )

        return page(request, "Focus domains", build)

    # --- log in and out -----------------------------------------------------------------------
    def login_form(message: str = "") -> str:
        return (
            (f'<p class="problems">{e(message)}</p>' if message else "")
            + '<form method="post" action="/monitor/login"><label>API key '
            '<input type="password" name="api_key" autocomplete="off" size="60" required></label> '
            '<button type="submit" id="login">Log in</button></form>'
            '<p class="note">The key is checked once; the browser then keeps a session cookie '
            "(Secure, HttpOnly, SameSite=Strict) for 12 hours or until you log out.</p>"
        )

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request):
        return page(request, "Log in", lambda _p: login_form())

    @router.post("/login", response_class=HTMLResponse)
    def login(request: Request, api_key: str = Form("", max_length=200)):
        try:
            same_origin(request)
            principal = registry.principal(api_key.strip() or None)
        except RegistryError as exc:
            return HTMLResponse(
                layout("Log in", login_form(exc.detail), principal_of(request)),
                status_code=exc.status,
            )
        if principal.anonymous:
            return HTMLResponse(
                layout("Log in", login_form("Give an API key."), principal), status_code=401
            )
        token = open_session(registry, principal)
        response = RedirectResponse("/monitor", status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(LIFETIME.total_seconds()),
            path="/monitor",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return response

    @router.post("/logout")
    def logout(request: Request):
        close_session(registry, request.cookies.get(COOKIE))
        response = RedirectResponse("/monitor", status_code=303)
        response.delete_cookie(
            COOKIE, path="/monitor", secure=True, httponly=True, samesite="strict"
        )
        return response

    # --- a focus domain -----------------------------------------------------------------------
    @router.get("/domains/{domain_id}", response_class=HTMLResponse)
    def domain_page(request: Request, domain_id: str):
        def build(principal: Principal) -> str:
            view = monitor.domain_view(principal, domain_id)
            return _domain_body(monitor, view) + _unfc_table(
                monitor.unfc_view(principal, domain_id), principal
            )

        return page(request, f"Focus domain {domain_id}", build)

    @router.get("/projects/{project_id}", response_class=HTMLResponse)
    def project_page(request: Request, project_id: str):
        def build(principal: Principal) -> str:
            return _project_body(monitor, monitor.project(principal, project_id))

        return page(request, f"Project {project_id}", build)

    # --- upload, template, export -------------------------------------------------------------
    def upload_form() -> str:
        return (
            '<p><a href="/monitor/template.xlsx" id="template">Download the template</a> '
            "(sheet 'values': project, year, kpi, value, unit; the sheets 'kpis' and 'projects' "
            "list what you can name).</p>"
            '<form method="post" action="/monitor/upload" enctype="multipart/form-data">'
            '<input type="file" name="file" accept=".xlsx" required> '
            '<button type="submit" id="upload">Upload</button></form>'
            '<p class="note">The whole workbook is stored, or nothing: every wrong cell is named.</p>'
        )

    @router.get("/upload", response_class=HTMLResponse)
    def upload_page(request: Request):
        def build(principal: Principal) -> str:
            if principal.anonymous:
                return '<p>Uploading needs a key: <a href="/monitor/login">log in</a>.</p>'
            return upload_form()

        return page(request, "Upload KPI values", build)

    @router.post("/upload", response_class=HTMLResponse)
    async def upload(request: Request, file: UploadFile = File(...)):
        from critflow.server.monitor.api import MAX_UPLOAD

        principal = principal_of(request)
        raw = await file.read(MAX_UPLOAD + 1)
        try:
            same_origin(request)
            if len(raw) > MAX_UPLOAD:
                raise RegistryError(
                    413, "Upload too large", f"Uploads are limited to {MAX_UPLOAD:,} bytes."
                )
            result = excel.upload(monitor, principal, raw, file.filename or "upload.xlsx")
        except RegistryError as exc:
            body = (
                f'<p class="problems" id="refused">{e(exc.detail)}</p>'
                + (_problems(exc.problems) if exc.problems else "")
                + upload_form()
            )
            return HTMLResponse(layout("Upload refused", body, principal), status_code=exc.status)
        body = (
            f'<p class="ok" id="stored">Stored {result["stored_values"]} values from '
            f"{e(result['upload_name'] or '')} (batch {e(result['batch'])}).</p>" + upload_form()
        )
        return HTMLResponse(layout("Upload KPI values", body, principal))

    # --- proposal screening -------------------------------------------------------------------
    def screening_form(values: dict[str, Any] | None = None) -> str:
        values = values or {}
        road = monitor.roadmap
        instruments = "".join(
            f'<option value="{e(i.id)}"{" selected" if values.get("instrument") == i.id else ""}>'
            f"{e(i.name)}</option>"
            for i in road.instruments.values()
        )
        domains = "".join(
            f'<label><input type="checkbox" name="domains" value="{e(d.id)}"'
            f"{' checked' if d.id in (values.get('domains') or []) else ''}> {e(d.id)} "
            f"{e(d.title[:70])}</label><br>"
            for d in road.domains
        )

        def text(name: str) -> str:
            return e(str(values.get(name) or ""))

        return f"""<form method="post" action="/monitor/screening" enctype="multipart/form-data" id="screening">
<p><label>Title <input name="title" size="70" value="{text("title")}"></label>
<label>Acronym <input name="acronym" size="12" value="{text("acronym")}"></label></p>
<p><label>Instrument <select name="instrument">{instruments}</select></label>
<label>Start year <input name="start_year" size="6" value="{text("start_year")}"></label>
<label>Duration (years) <input name="duration_years" size="3" value="{text("duration_years")}"></label></p>
<fieldset><legend>Focus domains</legend>{domains}</fieldset>
<p><label>Partners, one per line: organisation | company, research_group or research_centre | group | related to<br>
<textarea name="partners" rows="6" cols="90">{text("partners")}</textarea></label></p>
<p><label>Claimed improvements, one per line: KPI value [year] (a share 0.12; a change -0.15)<br>
<textarea name="claims" rows="4" cols="90">{text("claims")}</textarea></label></p>
<p><label>… or a proposal file (.yaml, .json; replaces the fields above)
<input type="file" name="proposal_file" accept=".yaml,.yml,.json"></label></p>
<p><label>Model file (optional: the model's values for the KPIs)
<input type="file" name="model_file" accept=".yaml,.yml,.json,.xlsx"></label></p>
<p><button type="submit" name="action" value="screen" id="screen">Screen</button>
<button type="submit" name="action" value="html">Download the sheet (HTML)</button>
<button type="submit" name="action" value="pdf">Download the sheet (PDF)</button></p></form>"""

    @router.get("/screening", response_class=HTMLResponse)
    def screening_page(request: Request):
        def build(principal: Principal) -> str:
            if principal.anonymous:
                return '<p>Screening needs a key: <a href="/monitor/login">log in</a>.</p>'
            return screening_form({"start_year": "", "instrument": "icon"})

        return page(request, "Screen a proposal", build)

    @router.post("/screening", response_class=HTMLResponse)
    async def screening(request: Request):
        from critflow.server.monitor.screening import form_proposal, screen_proposal, sheet

        principal = principal_of(request)
        form = await request.form()
        fields = {
            k: form.get(k)
            for k in (
                "title",
                "acronym",
                "instrument",
                "start_year",
                "duration_years",
                "partners",
                "claims",
            )
        }
        fields["domains"] = form.getlist("domains")
        files = {}
        for name in ("proposal_file", "model_file"):
            upload = form.get(name)
            if upload is not None and not isinstance(upload, str) and upload.filename:
                files[name] = (await upload.read(), upload.filename)
        try:
            same_origin(request)
            proposal, problems = form_proposal(fields)
            if problems and "proposal_file" not in files:
                raise RegistryError(422, "Proposal refused", "The form has mistakes.", problems)
            result = screen_proposal(
                monitor,
                principal,
                None if "proposal_file" in files else proposal,
                files.get("proposal_file"),
                files.get("model_file"),
            )
            action = form.get("action") or "screen"
            if action in ("html", "pdf"):
                body, media, name = sheet(result, str(action))
                return Response(
                    body,
                    media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'},
                )
            from critflow.monitor.screening import render_sheet_html

            verdict = (
                '<p class="problems" id="too-late">Too late: a focus domain is red for this '
                "instrument in the start year's window, or the start is past the roadmap.</p>"
                if result.too_late
                else ""
            )
            sheet_html = render_sheet_html(result)
            body = (
                verdict
                + '<iframe id="sheet" title="screening sheet" sandbox="" style="width:100%;height:60rem;'
                f'border:1px solid #ccc" srcdoc="{e(sheet_html)}"></iframe>'
                + "<h2>Screen again</h2>"
                + screening_form(fields)
            )
            return HTMLResponse(layout("Screening sheet", body, principal))
        except RegistryError as exc:
            body = (
                f'<p class="problems" id="refused">{e(exc.detail)}</p>'
                + (_problems(exc.problems) if exc.problems else "")
                + screening_form(fields)
            )
            return HTMLResponse(layout(exc.title, body, principal), status_code=exc.status)

    @router.get("/template.xlsx")
    def template(request: Request):
        return Response(
            excel.template(monitor, principal_of(request)),
            media_type=excel.XLSX,
            headers={"Content-Disposition": 'attachment; filename="monitor-template.xlsx"'},
        )

    @router.get("/export.xlsx")
    def export(request: Request):
        principal = principal_of(request)
        return Response(
            excel.export(monitor, principal),
            media_type=excel.XLSX,
            headers={
                "Content-Disposition": f'attachment; filename="monitor-{sight(principal)}.xlsx"'
            },
        )

    return router


def _colours(monitor: Monitor, domain_id: str) -> str:
    """The roadmap's colour code of the domain per instrument and window ('unknown' where the
    roadmap's text does not give the cell)."""
    road = monitor.roadmap
    windows = [w.id for w in road.windows]
    rows = []
    for instrument in road.instruments.values():
        cells = []
        for window in windows:
            colour = road.colour(domain_id, instrument.id, window)
            swatch = COLOURS.get(colour.code, "#fff")
            title = colour.note or colour.meaning
            cells.append(
                f'<td title="{e(title)}"><span class="colour" style="background:{swatch}"></span> '
                f"{e(colour.code)}: {e(colour.meaning)}</td>"
            )
        rows.append(f"<tr><th>{e(instrument.name)}</th>{''.join(cells)}</tr>")
    return (
        "<h2>Instruments: the roadmap's colour code</h2><table><tr><th></th>"
        + "".join(f"<th>{e(w)}</th>" for w in windows)
        + "</tr>"
        + "".join(rows)
        + "</table>"
    )


COLOURS = {"green": "#2ca02c", "blue": "#1f77b4", "orange": "#ff7f0e", "red": "#d62728"}


def _domain_body(monitor: Monitor, view: dict[str, Any]) -> str:
    parts = [
        f"<p>{e(view['title'])}</p>",
        f'<p class="note">You see {e(SIGHT_TEXT[view["sees"]])}. The black line is the '
        "public aggregate (the mean over organisations for shares and changes, the sum for "
        "tonnes) where at least three organisations contribute and no single one can be "
        "recovered by subtraction; coloured lines are projects you may see.</p>",
    ]
    if not view["kpis"]:
        parts.append("<p>The roadmap sets no KPI for this domain.</p>")
    for kpi in view["kpis"]:
        series = {"aggregate": {a["year"]: a["value"] for a in kpi["aggregate"]}}
        # a project may not take the aggregate's line (ids so named are refused; older ones
        # are shown as 'project aggregate')
        series.update(
            {(f"project {p}" if p in series else p): dict(v) for p, v in kpi["projects"].items()}
        )
        parts.append(
            f'<section class="kpi" id="kpi-{e(kpi["id"])}"><h2>{e(kpi["name"])} '
            f"<small>({e(kpi['id'])}, {e(kpi['unit'])})</small></h2>"
            f"<p>reference 2023: {_fmt(kpi['reference'])} · target 2027: "
            f"{_fmt(kpi['target_2027'], kpi['unit'])} · target 2030: "
            f"{_fmt(kpi['target_2030'], kpi['unit'])}</p>"
            + kpi_chart(
                kpi["id"],
                kpi["unit"],
                series,
                kpi["reference_value"],
                {2027: kpi["target_2027"], 2030: kpi["target_2030"]},
            )
            + _aggregate_table(kpi["aggregate"], kpi["unit"])
            + "</section>"
        )
    rows = []
    for kpi in view["kpis"]:
        if not kpi["adds_up"]:
            continue
        shown = view["totals"].get(kpi["id"]) or {}
        public = {a["year"]: a for a in kpi["aggregate"]}
        for year in sorted(set(shown) | set(public)):
            rows.append(
                f"<tr><td>{e(kpi['name'])}</td><td>{year}</td>"
                f"<td>{_fmt(shown.get(year), kpi['unit'])}</td>"
                f"<td>{_fmt(public[year]['value'], kpi['unit']) if year in public else '—'}</td></tr>"
            )
    if any(k["adds_up"] for k in view["kpis"]):
        parts.append(
            "<h2>What the projects add up to</h2>"
            + (
                '<table id="totals"><tr><th></th><th>year</th><th>projects you see</th>'
                "<th>public aggregate</th></tr>" + "".join(rows) + "</table>"
                if rows
                else "<p>No quantities reported yet (or none you may see).</p>"
            )
        )
    if view["projects"]:
        parts.append(
            "<h2>Contributing projects</h2><table><tr><th>project</th><th>title</th>"
            "<th>organisation</th></tr>"
            + "".join(
                f'<tr><td><a href="/monitor/projects/{e(p["project_id"])}">{e(p["project_id"])}'
                f"</a></td><td>{e(p['title'])}</td><td>{e(p['organisation'])}</td></tr>"
                for p in view["projects"]
            )
            + "</table>"
        )
    elif view["sees"] == "aggregates":
        parts.append(
            '<p class="note">Contributing projects and their values are shown to their '
            'organisations and programme staff; <a href="/monitor/login">log in</a>.</p>'
        )
    parts.append(_colours(monitor, view["domain"]))
    parts.append(
        '<p class="note">Not covered by the confidentiality rule: dominance (one organisation '
        "making up most of a sum) and values published elsewhere.</p>"
    )
    return "".join(parts)


def _totals_table(totals: list[dict[str, Any]], principal: Principal) -> str:
    rows = []
    for total in totals:
        public = {a["year"]: a for a in total["aggregate"]}
        for year in sorted(set(public) | set(total["visible"])):
            rows.append(
                f"<tr><td>{e(total['name'])}</td><td>{year}</td>"
                + (
                    ""
                    if principal.anonymous
                    else f"<td>{_fmt(total['visible'].get(year), total['unit'])}</td>"
                )
                + f"<td>{_fmt(public[year]['value'], total['unit']) if year in public else '—'}</td></tr>"
            )
    head = "<tr><th></th><th>year</th>" + (
        "" if principal.anonymous else "<th>projects you see</th>"
    )
    return "<h2>What the programme adds up to</h2>" + (
        f'<table id="programme-totals">{head}<th>public aggregate</th></tr>{"".join(rows)}</table>'
        if rows
        else '<p class="note">No totals to show yet.</p>'
    )


def _unfc_table(view: dict[str, Any], principal: Principal) -> str:
    if not view["visible"] and not view["public"]:
        return ""
    rows = {(t["class"], t["element"]): [t["tonnes"], None] for t in view["visible"]}
    for a in view["public"]:
        rows.setdefault((a["class"], a["element"]), [None, None])[1] = a["value"]
    head = "<tr><th>UNFC class</th><th>element</th>" + (
        "" if principal.anonymous else "<th>projects you see (t)</th>"
    )
    return (
        '<h2>UNFC-2019 classified quantities</h2><table id="unfc">'
        + head
        + "<th>public aggregate (t)</th></tr>"
        + "".join(
            f"<tr><td>{e(c)}</td><td>{e(el)}</td>"
            + ("" if principal.anonymous else f"<td>{_fmt(v)}</td>")
            + f"<td>{_fmt(p)}</td></tr>"
            for (c, el), (v, p) in rows.items()
        )
        + "</table>"
    )


def _aggregate_table(aggregate: list[dict[str, Any]], unit: str) -> str:
    if not aggregate:
        return '<p class="note">No public aggregate yet (fewer than three organisations).</p>'
    return (
        "<table><tr><th>year</th><th>aggregate</th><th>organisations</th></tr>"
        + "".join(
            f"<tr><td>{a['year']}</td><td>{_fmt(a['value'], unit)}</td>"
            f"<td>{a['organisations']}</td></tr>"
            for a in aggregate
        )
        + "</table>"
    )


def _project_body(monitor: Monitor, project: dict[str, Any]) -> str:
    parts = [
        "<table>"
        + "".join(
            f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
            for k, v in (
                ("title", project["title"]),
                ("organisation", project["organisation"]),
                ("instrument", project["instrument"]),
                ("focus domains", ", ".join(project["domains"])),
                ("partners", ", ".join(project["partners"]) or "—"),
                ("period", f"{project['start_year']}-{project['end_year']}"),
            )
        )
        + "</table>"
    ]
    by_kpi: dict[str, list[dict[str, Any]]] = {}
    for value in project["values"]:
        by_kpi.setdefault(value["kpi"], []).append(value)
    for kpi_id, values in by_kpi.items():
        measure = monitor.measures.get(kpi_id)
        kpi = measure.kpi if measure else None
        unit = measure.unit if measure else values[0]["unit"]
        reference = getattr(getattr(kpi, "reference", None), "value", None)
        parts.append(
            f'<section class="kpi"><h2>{e(measure.name if measure else kpi_id)} '
            f"<small>({e(kpi_id)}, {e(unit)})</small></h2>"
            + kpi_chart(
                kpi_id,
                unit,
                {project["project_id"]: {v["year"]: v["value"] for v in values}},
                reference,
                {2027: getattr(kpi, "target_2027", None), 2030: getattr(kpi, "target_2030", None)},
            )
            + "<table><tr><th>year</th><th>value</th><th>as given</th><th>source</th>"
            "<th>submitted</th><th>provenance</th></tr>"
            + "".join(
                f"<tr><td>{v['year']}</td><td>{_fmt(v['value'], unit)}</td>"
                f"<td>{_fmt(v['given']['value'])} {e(v['given']['unit'])}</td>"
                f"<td>{e(v['provenance']['source'])}</td>"
                f"<td>{e(v['provenance']['submitted_at'] or '')} by "
                f"{e(v['provenance']['submitted_by'] or '')}</td>"
                f"<td>{e(_provenance(v['provenance']))}</td></tr>"
                for v in values
            )
            + "</table></section>"
        )
    if not by_kpi:
        parts.append("<p>No values submitted yet.</p>")
    if project["verdicts"]:
        parts.append(
            "<h2>Rule verdicts</h2><table><tr><th>year</th><th>rule</th><th>status</th>"
            "<th>value</th><th>threshold</th><th>margin</th><th>model</th></tr>"
            + "".join(
                f"<tr><td>{v['year']}</td><td>{e(v['rule'])}<br><small>{e(v['title'])}</small>"
                f"</td><td>{e(v['status'])}</td><td>{_fmt(v['value'])}</td>"
                f"<td>{e(v['comparator'])} {_fmt(v['threshold'])}</td><td>{_fmt(v['margin'])}</td>"
                f"<td><small>{e((v['provenance']['model_sha256'] or '')[:12])}</small></td></tr>"
                for v in project["verdicts"]
            )
            + "</table>"
        )
    if project["quantities"]:
        parts.append(
            "<h2>UNFC-2019 classified quantities</h2><table><tr><th>year</th><th>element</th>"
            "<th>tonnes</th><th>E</th><th>F</th><th>G</th><th>class</th></tr>"
            + "".join(
                f"<tr><td>{q['year']}</td><td>{e(q['element'])}</td><td>{_fmt(q['tonnes'], 't')}"
                f"</td><td>{e(q['e'])}</td><td>{e(q['f'])}</td><td>{e(q['g'])}</td>"
                f"<td>{e(q['class'])}<br><small>{e(q['record'].get('justification', ''))}"
                "</small></td></tr>"
                for q in project["quantities"]
            )
            + "</table>"
        )
    return "".join(parts)


def _provenance(p: dict[str, Any]) -> str:
    if p.get("model_sha256"):
        return f"model {p.get('upload_name') or ''} sha256 {p['model_sha256'][:16]}…".replace(
            "  ", " "
        )
    if p.get("upload_name"):
        return f"upload {p['upload_name']}"
    return "API"
