"""The registry's HTTP API (FastAPI): JSON endpoints under /api, and the public passport page at
the GS1 Digital Link path (/01/{GTIN}/21/{serial}) that a phone opens after scanning the QR code.

Every error is an RFC 9457 problem document (``application/problem+json``). Request bodies are
limited in size; writes need an API key (``X-API-Key``) with write rights.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import Body, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from critflow import __version__
from critflow.passport.datapoints import by_field
from critflow.passport.identity import DigitalLink, IdentifierError
from critflow.registry.database import make_engine, upgrade
from critflow.registry.service import MAX_PAGE, Registry, RegistryError

MAX_BODY = 1_000_000
"""Largest request body in bytes (a passport is a few kB; a bulk batch of 1,000 updates fits)."""
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, problems: list | None = None) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if problems:
        body["problems"] = [{"where": p.where, "what": p.what, "fix": p.fix} for p in problems]
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


class RequestGuard:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on every request): refuses NUL
    characters in URLs, bodies over MAX_BODY, bodies that are not JSON, and NUL in JSON text."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = None
        target = unquote(scope.get("path", "")) + unquote(
            scope.get("query_string", b"").decode("latin-1")
        )
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if "\x00" in target:
            refusal = problem(400, "Bad request", "The URL contains a NUL character.")
        elif length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            refusal = problem(
                413, "Body too large", f"Request bodies are limited to {MAX_BODY:,} bytes."
            )
        if refusal is None and scope["method"] in ("POST", "PUT", "PATCH"):
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > MAX_BODY:
                    refusal = problem(
                        413, "Body too large", f"Request bodies are limited to {MAX_BODY:,} bytes."
                    )
                    break
                chunks.append(chunk)
                more = message.get("more_body", False)
            body = b"".join(chunks)
            kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
            if refusal is None and b"\\u0000" in body:
                refusal = problem(
                    422, "Invalid text", "Text values may not contain NUL characters."
                )
            elif refusal is None and body and kind != "application/json":
                refusal = problem(
                    415, "Unsupported media type", "Send the body as application/json."
                )
            if refusal is None:
                sent = False

                async def replay():
                    nonlocal sent
                    if not sent:
                        sent = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                await self.app(scope, replay, send)
                return
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


class PublicReads:
    """Pure ASGI fast path for the most frequent request, an anonymous read of a passport
    (``GET /api/passports/{key}`` without an API key, audience public): one indexed row of the
    stored public view is sent as it is, without routing, validation or a thread hop. Every other
    request goes to the application unchanged; the answers are the same (tested)."""

    PREFIX = "/api/passports/"

    def __init__(self, app, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        key = path[len(self.PREFIX) :] if path.startswith(self.PREFIX) else ""
        if (
            not key
            or "/" in key
            or scope["method"] != "GET"
            or scope.get("query_string", b"") not in (b"", b"audience=public")
            or any(name == b"x-api-key" for name, _ in scope.get("headers") or [])
        ):
            await self.app(scope, receive, send)
            return
        try:
            text, etag = self.registry.public_json(key)
        except RegistryError as exc:
            await problem(exc.status, exc.title, exc.detail, exc.problems)(scope, receive, send)
            return
        body = text.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"etag", f'"{etag}"'.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Created(BaseModel):
    key: str = Field(
        description="the registry's key of the passport (used in /api/passports/{key})"
    )
    passport_id: str
    version: int
    hash: str = Field(description="SHA-256 of the version; send it as If-Match to append")


class StatusChange(BaseModel):
    to: str = Field(description="new status: re-used, repurposed, remanufactured, waste, recycled")
    new_document: dict[str, Any] | None = Field(
        None, description="the new passport's document when the change gives one (repurposing)"
    )


class Ingest(BaseModel):
    updates: list[dict[str, Any]] = Field(
        description="[{passport_id, data: {dynamic data points}}], at most 1,000"
    )


def create_app(database: str | None = None, key_file: Path | None = None) -> FastAPI:
    """The registry application over ``database`` (runs migrations first)."""
    from critflow.registry.signing import registry_key

    engine = make_engine(database)
    upgrade(engine)
    registry = Registry(engine, registry_key(key_file, engine))
    app = FastAPI(
        title="critflow passport registry",
        version=__version__,
        description="Battery and material-lot passports with access levels (Regulation (EU) "
        "2023/1542, Art. 77-78), signed versions and QR pages.",
    )
    app.state.registry = registry

    app.add_middleware(PublicReads, registry=registry)
    app.add_middleware(RequestGuard)  # the outermost: every request is guarded first

    @app.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError):
        return problem(exc.status, exc.title, exc.detail, exc.problems)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(400, "Malformed JSON", "The request body is not valid JSON.")
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]
        )
        return problem(422, "Invalid request", details or "The request does not validate.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception):
        return problem(
            500, "Internal error", f"{type(exc).__name__}; the request was not completed."
        )

    def caller(api_key: str | None):
        return registry.principal(api_key)

    key_header = Header(None, alias="X-API-Key", description="API key (cfk_…)")
    errors = {
        s: {"model": dict, "content": {PROBLEM: {}}}
        for s in (400, 401, 403, 404, 409, 412, 413, 415, 422, 428)
    }

    @app.post("/api/passports", status_code=201, response_model=Created, responses=errors)
    def create_passport(
        response: Response,
        document: dict[str, Any] = Body(description="a battery or lot passport document"),
        api_key: str | None = key_header,
    ):
        """Create a passport (issuer keys only); returns its key and version hash (ETag)."""
        result = registry.create(caller(api_key), document)
        response.headers["ETag"] = f'"{result["hash"]}"'
        response.headers["Location"] = f"/api/passports/{result['key']}"
        return result

    @app.get("/api/passports", responses=errors)
    def list_passports(
        product: str | None = Query(None, max_length=200),
        status: str | None = Query(None, max_length=20),
        operator: str | None = Query(None, max_length=200),
        gtin: str | None = Query(None, max_length=14),
        kind: str | None = Query(None, max_length=20),
        passport_id: str | None = Query(None, max_length=300),
        cursor: str | None = Query(None, max_length=40),
        limit: int = Query(50, ge=1, le=MAX_PAGE),
    ):
        """List passports by product, status, operator, GTIN, kind or id; cursor pagination."""
        filters = {
            "product": product,
            "status": status,
            "operator": operator,
            "gtin": gtin,
            "kind": kind,
            "passport_id": passport_id,
        }
        return registry.list(filters, cursor, limit)

    @app.get("/api/passports/{key}", responses=errors)
    def read_passport(
        key: str,
        response: Response,
        audience: str | None = Query(None, max_length=40),
        api_key: str | None = key_header,
    ):
        """The passport as the caller's audience may read it (public without a key)."""
        if api_key is None and audience in (None, "public"):
            text, etag = registry.public_json(key)
            return Response(text, media_type="application/json", headers={"ETag": f'"{etag}"'})
        result = registry.read(caller(api_key), key, audience)
        response.headers["ETag"] = f'"{result["hash"]}"'
        return result

    @app.put("/api/passports/{key}", response_model=Created, responses=errors)
    def append_version(
        key: str,
        response: Response,
        document: dict[str, Any] = Body(description="the updated passport document"),
        if_match: str | None = Header(None, alias="If-Match"),
        api_key: str | None = key_header,
    ):
        """Append a version; If-Match must carry the current hash (stale → 412, nothing changes)."""
        result = registry.append(caller(api_key), key, document, if_match)
        response.headers["ETag"] = f'"{result["hash"]}"'
        return result

    @app.get("/api/passports/{key}/history", responses=errors)
    def history(
        key: str,
        audience: str | None = Query(None, max_length=40),
        api_key: str | None = key_header,
    ):
        """Every version (hash chain and documents as the audience may read them)."""
        return registry.history(caller(api_key), key, audience)

    @app.get("/api/passports/{key}/verify", responses=errors)
    def verify(key: str):
        """Check the passport's hash chain and signatures."""
        return registry.verify(key)

    @app.get("/api/passports/{key}/checkpoint", responses=errors)
    def checkpoint(key: str, response: Response):
        """The passport's latest version and head hash, signed by the registry (public; lets
        `critflow passport verify --checkpoint` detect withheld versions)."""
        response.headers["Cache-Control"] = "no-store"
        return registry.checkpoint(key)

    @app.post("/api/passports/{key}/status", responses=errors)
    def change_status(
        key: str,
        change: StatusChange,
        if_match: str | None = Header(None, alias="If-Match"),
        api_key: str | None = key_header,
    ):
        """Change status; repurposing starts a linked passport, recycling closes the chain."""
        return registry.change_status(
            caller(api_key), key, change.to, if_match, change.new_document
        )

    @app.get("/api/passports/{key}/qr.svg", responses=errors)
    def qr(key: str, request: Request):
        """QR code (SVG) of the passport's Digital Link."""
        import io

        import segno

        identifier = json.loads(registry.public_json(key)[0])["passport_id"]
        buffer = io.BytesIO()
        segno.make_qr(identifier, error="m").save(buffer, kind="svg", scale=6)
        return Response(buffer.getvalue(), media_type="image/svg+xml")

    @app.post("/api/ingest", responses=errors)
    def ingest(batch: Ingest, api_key: str | None = key_header):
        """Dynamic data (state of health, cycles, events) for many batteries: all or nothing."""
        return registry.ingest(caller(api_key), batch.updates)

    @app.get("/01/{gtin}/21/{serial}", response_class=HTMLResponse, responses=errors)
    def public_page(gtin: str, serial: str):
        """The public page a QR scan opens (public data points only, no JavaScript)."""
        try:
            link = DigitalLink.build(gtin, serial)
        except IdentifierError as exc:
            raise RegistryError(400, "Bad identifier", str(exc)) from None
        data = json.loads(registry.public_json(registry.key_of(link.gtin, link.serial))[0])
        return HTMLResponse(render_page(data))

    @app.get("/healthz")
    def health():
        return {"status": "ok", "version": __version__}

    return app


def render_page(public: dict[str, Any]) -> str:
    """A small, readable, mobile-friendly HTML page of the public view (no scripts)."""
    points = by_field()
    rows = []
    for field, value in public["document"].get("data", {}).items():
        point = points.get(field)
        label = point.name if point else field
        if isinstance(value, dict) and {"value", "unit"} <= set(value):
            shown = f"{value['value']:g} {value['unit']}"
        elif isinstance(value, dict | list):
            shown = json.dumps(value, ensure_ascii=False)
        else:
            shown = str(value) + (" %" if point is not None and point.kind == "percent" else "")
        rows.append(f"<tr><th>{html.escape(label)}</th><td>{html.escape(shown)}</td></tr>")
    title = html.escape(
        str(public["document"].get("data", {}).get("model_and_serial", public["passport_id"]))
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Battery passport — {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;max-width:48rem;color:#222}}
table{{border-collapse:collapse;width:100%}}
th,td{{text-align:left;padding:.4rem;border-bottom:1px solid #ddd;vertical-align:top}}
th{{width:45%;font-weight:600}}small{{color:#666;word-break:break-all}}</style></head>
<body><h1>Battery passport</h1><p>{title}<br><small>{html.escape(public["passport_id"])}</small></p>
<p>Status: <strong>{html.escape(str(public["status"]))}</strong> · version {public["version"]}</p>
<table>{"".join(rows)}</table>
<p><small>Public information (Regulation (EU) 2023/1542, Annex XIII point 1).
Version hash {html.escape(public["hash"])}.</small></p>
</body></html>"""
