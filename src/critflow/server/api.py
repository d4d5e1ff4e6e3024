"""The registry's HTTP API (FastAPI): JSON endpoints under /api, and the public passport page at
the GS1 Digital Link path (/01/{GTIN}/21/{serial}) that a phone opens after scanning the QR code.

Every error is an RFC 9457 problem document (``application/problem+json``). Request bodies are
limited in size and checked for JSON that has no number (NaN, Infinity, 1e999) or nests too
deep; writes need an API key (``X-API-Key``) with write rights. Every response body, ETag, list
filter, history and page goes through :mod:`critflow.server.disclosure`.

The routes are grouped in routers (passports, registry keys, admin, pages); :func:`create_app`
includes them, so a further group of routes is one more ``include_router``.
"""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Body, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from critflow import __version__
from critflow.errors import CritflowError, Problem, validation_message, validation_problems
from critflow.passport.datapoints import by_field
from critflow.passport.identity import DigitalLink, IdentifierError
from critflow.server.audit import WorkRefusedError
from critflow.server.auth import Limits, client_address, client_of, trusted_proxies
from critflow.server.database import make_engine, upgrade
from critflow.server.monitor import API_PREFIX as MONITOR_API
from critflow.server.monitor import FORM_PATHS
from critflow.server.monitor import field_path as monitor_path
from critflow.server.monitor import routers as monitor_routers
from critflow.server.problems import RegistryError
from critflow.server.service import MAX_PAGE, Registry, check_json

MAX_BODY = 1_000_000
"""Largest request body in bytes (a passport is a few kB; a bulk batch of 1,000 updates fits)."""
PROBLEM = "application/problem+json"
FORM_KINDS = ("application/x-www-form-urlencoded", "multipart/form-data")


def problem(
    status: int,
    title: str,
    detail: str,
    problems: list | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if problems:
        body["problems"] = [{"where": p.where, "what": p.what, "fix": p.fix} for p in problems]
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _refusal(exc: RegistryError) -> JSONResponse:
    return problem(exc.status, exc.title, exc.detail, exc.problems, exc.headers or None)


def _monitor_message(error: dict) -> str:
    """A validation error of a monitor body in words: what is wrong, with the type given."""
    kind = error.get("type", "")
    given = error.get("input")
    if kind == "extra_forbidden":
        return "is not a field of this request"
    if kind == "missing":
        return "is missing"
    if kind.endswith("_type") or kind.endswith("_parsing"):
        shown = type(given).__name__ if given is not None else "null"
        names = {"str": "text", "int": "whole number", "float": "number", "bool": "true/false"}
        return f"{validation_message(error, with_input=False)} (got {names.get(shown, shown)})"
    return validation_message(error, with_input=False)


def _monitor_fix(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "Leave it out (misspelt? the fields are in the schema at /docs)."
    if kind == "missing":
        return "Give it (the fields are in the schema at /docs)."
    if kind.endswith("_type") or kind.endswith("_parsing"):
        return "Send the JSON type the schema at /docs names (a number unquoted, a year as 2027)."
    return "See the request schema at /docs."


class RequestGuard:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware on every request): refuses NUL
    characters in URLs, bodies over MAX_BODY, bodies that are not JSON, NUL in JSON text, JSON
    numbers outside what JSON allows and nesting deeper than the service accepts (HTML forms
    and file uploads only on the roadmap monitor's FORM_PATHS); and records
    the client's address (see :func:`critflow.server.auth.client_of`) for the audit log."""

    def __init__(self, app, trusted: list | None = None) -> None:
        self.app = app
        self.trusted = trusted or []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        peer = (scope.get("client") or (None, None))[0]
        forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1") or None
        client_address.set(client_of(peer, forwarded, self.trusted))
        refusal = None
        target = unquote(scope.get("path", "")) + unquote(
            scope.get("query_string", b"").decode("latin-1")
        )
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
            form = kind in FORM_KINDS and scope.get("path", "").startswith(FORM_PATHS)
            if refusal is None and form:
                pass  # the monitor's forms and uploads: FastAPI parses and checks them
            elif refusal is None and b"\\u0000" in body:
                refusal = problem(
                    422, "Invalid text", "Text values may not contain NUL characters."
                )
            elif refusal is None and body and kind != "application/json":
                refusal = problem(
                    415, "Unsupported media type", "Send the body as application/json."
                )
            elif refusal is None and body:
                parsed, refusal = self._parse_body(body)
                if refusal is None and parsed is not NOT_JSON:
                    scope = {**scope, CHECKED_BODY: parsed}
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

    @staticmethod
    def _parse_body(body: bytes) -> tuple[Any, JSONResponse | None]:
        """(the parsed body, None) or (None, its refusal). NaN, Infinity, 1e999, deep nesting
        and a key given twice in one object get a problem naming the field path; text that is
        not JSON at all is (NOT_JSON, None): the application answers it (400 Malformed JSON).
        The body is parsed once, for all of these checks; the value passed on is made of plain
        dicts and lists."""
        duplicated = False

        def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
            nonlocal duplicated
            result = dict(items)
            if len(result) < len(items):
                duplicated = True
            return result

        try:
            parsed = json.loads(body, object_pairs_hook=pairs)
        except RecursionError:
            return None, problem(422, "Nested too deeply", "The JSON body nests too deeply.")
        except ValueError:
            return NOT_JSON, None
        try:
            check_json(parsed)
        except RegistryError as exc:
            return None, _refusal(exc)
        if duplicated:  # rare: parse again, marking objects, to name the first one
            where, key = _first_duplicate(json.loads(body, object_pairs_hook=_marked))
            what = f"the key '{key[:60]}' is given twice in one object"
            return None, problem(
                422,
                "Duplicate key",
                f"{where[:200]}: {what}",
                [Problem(where[:200], what, "Give each field once.")],
            )
        return parsed, None


NOT_JSON = object()
"""What :meth:`RequestGuard._parse_body` gives for a body that is not JSON at all."""

CHECKED_BODY = "critflow.checked_body"
"""Scope key of a JSON request body parsed and checked by :class:`RequestGuard` (plain dicts and
lists, no NaN/Infinity, no duplicate key, not too deep): the fast paths use it instead of
parsing the body again."""


def _marked(items: list[tuple[str, Any]]) -> _Object:
    result = _Object(items)
    if len(result) < len(items):
        seen: set[str] = set()
        for key, _value in items:
            if key in seen:
                result.duplicate = key
                break
            seen.add(key)
    return result


class _Object(dict):
    """A JSON object of a request body; ``duplicate`` is its first key given twice (RFC 8259
    leaves to the parser which one counts: Python keeps the last, others the first)."""

    duplicate: str | None = None


def _first_duplicate(parsed: Any) -> tuple[str, str]:
    """The field path and key of the first key given twice in ``parsed`` (which holds one)."""
    stack: list[tuple[Any, str]] = [(parsed, "")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, _Object):
            if value.duplicate is not None:
                return (f"{where}.{value.duplicate}" if where else value.duplicate), value.duplicate
            stack.extend(
                (item, f"{where}.{key}" if where else key)
                for key, item in reversed(list(value.items()))
            )
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in reversed(list(enumerate(value))))
    raise AssertionError("no duplicate key")  # pragma: no cover - called only with one


class PassportReads:
    """Pure ASGI fast path for the most frequent requests, reads of one passport
    (``GET /api/passports/{key}``, optionally ``?audience=…``): one indexed query, the body as
    the audience may read it, without routing, validation or a thread hop.

    - Anonymous (no ``X-API-Key``, audience public): the stored public view is sent as it is.
    - With a key verified lately by this worker (:meth:`KeyStore.remembered`): the read is
      prepared on the loop and its audit entry handed to the group committer; the answer is
      sent only after the entry is committed (the request awaits it without holding a thread).

    Everything else — a key not verified lately, a refused read (its refusal is audited by the
    application), other paths or parameters — goes to the application unchanged; the answers
    are the same (tested). Creates have a fast path too (:meth:`_create`)."""

    PREFIX = "/api/passports/"
    QUERY = re.compile(rb"audience=([a-z_]{1,40})")

    def __init__(self, app, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/api/passports" and scope["method"] == "POST" and CHECKED_BODY in scope:
            await self._create(scope, receive, send)
            return
        key = path[len(self.PREFIX) :] if path.startswith(self.PREFIX) else ""
        if not key or "/" in key or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        wanted = self.QUERY.fullmatch(query) if query else None
        if query and wanted is None:
            await self.app(scope, receive, send)
            return
        audience = wanted.group(1).decode() if wanted else None
        api_key = next((v for n, v in scope.get("headers") or [] if n == b"x-api-key"), None)
        if api_key is None:
            if audience not in (None, "public"):
                await self.app(scope, receive, send)
                return
            try:
                text, etag = self.registry.public_json(key, held=True)
            except RegistryError as exc:
                await _refusal(exc)(scope, receive, send)
                return
        else:
            principal = self.registry.keys.remembered(api_key.decode("latin-1"))
            if principal is None:
                await self.app(scope, receive, send)
                return
            try:
                text, etag, entry = self.registry.prepare_read(principal, key, audience, held=True)
            except RegistryError:  # the application answers, and audits the refusal
                await self.app(scope, receive, send)
                return
            if entry is not None:
                try:
                    await self.registry.committer.write_async(entry)
                except RegistryError as exc:
                    await _refusal(exc)(scope, receive, send)
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

    async def _create(self, scope, receive, send) -> None:
        """``POST /api/passports`` by a key verified lately: the body as RequestGuard parsed and
        checked it (not parsed again), validated and signed on the loop, inserted in the group
        committer's next transaction (SQLite) or in a transaction of its own in a thread
        (PostgreSQL, see :attr:`Registry.groups_creates`); answered 201 only once that is
        committed. A refusal, or a key not verified lately, goes to the application, which
        answers (and audits) it — nothing of a refused create was written."""
        api_key = next((v for n, v in scope.get("headers") or [] if n == b"x-api-key"), None)
        principal = self.registry.keys.remembered(api_key.decode("latin-1")) if api_key else None
        if principal is None or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        registry = self.registry
        try:
            prepared = registry.prepare_create(principal, scope[CHECKED_BODY], checked=True)
        except RegistryError:  # a refusal: the application answers and audits it
            await self.app(scope, receive, send)
            return
        except Exception as exc:  # a bug, not a failed commit: answered as the application does
            failed = problem(
                500, "Internal error", f"{type(exc).__name__}; the request was not completed."
            )
            await failed(scope, receive, send)
            return
        try:
            if registry.groups_creates:  # SQLite: in the group committer's next transaction
                result = await registry.committer.run_async(
                    lambda session: registry.insert_created(session, principal, prepared),
                    orm=False,
                )
            else:  # PostgreSQL: a transaction of its own, in a thread (the loop goes on)
                result = await run_in_threadpool(registry.store_created, principal, prepared)
        except (RegistryError, WorkRefusedError):
            await self.app(scope, receive, send)
            return
        except Exception:  # the commit failed: not stored (a retry that finds it answers 409)
            refusal = problem(
                503,
                "Not stored",
                "The passport could not be committed; retry shortly.",
                headers={"Retry-After": "1"},
            )
            await refusal(scope, receive, send)
            return
        body = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"content-type", b"application/json"),
                    (b"etag", f'"{result["hash"]}"'.encode()),
                    (b"location", f"/api/passports/{result['key']}".encode()),
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
    to: str = Field(
        max_length=40,
        description="new status: re-used, repurposed, remanufactured, waste, recycled",
    )
    new_document: dict[str, Any] | None = Field(
        None, description="the new passport's document when the change gives one (repurposing)"
    )


class Ingest(BaseModel):
    updates: list[dict[str, Any]] = Field(
        description="[{passport_id, data: {dynamic data points}}], at most 1,000"
    )


class OrganisationIdentifiers(BaseModel):
    gs1_company_prefixes: list[str] = Field(
        default_factory=list, max_length=100, description="GS1 Company Prefixes (4-12 digits)"
    )
    operator_ids: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="economic-operator identifiers its passports carry",
    )


ERRORS = {
    s: {"model": dict, "content": {PROBLEM: {}}}
    for s in (400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 429, 503)
}
KEY_HEADER = Header(None, alias="X-API-Key", description="API key (cfk_…)", max_length=200)

_PASSPORT_LINKS = {
    "ReadPassport": {"operationId": "readPassport", "parameters": {"key": "$response.body#/key"}},
    "AppendVersion": {
        "operationId": "appendVersion",
        "parameters": {"key": "$response.body#/key", "header.If-Match": "$response.header.ETag"},
    },
    "ChangeStatus": {
        "operationId": "changeStatus",
        "parameters": {"key": "$response.body#/key", "header.If-Match": "$response.header.ETag"},
    },
    "History": {"operationId": "history", "parameters": {"key": "$response.body#/key"}},
    "Verify": {"operationId": "verifyPassport", "parameters": {"key": "$response.body#/key"}},
    "Ingest": {
        "operationId": "ingest",
        "requestBody": {
            "updates": [
                {"passport_id": "$response.body#/passport_id", "data": {"number_of_cycles": 1}}
            ]
        },
    },
}
"""OpenAPI links (create → read, append, status, history, verify, ingest) for stateful tests
and clients."""


def passport_routes(registry: Registry) -> APIRouter:
    """The passport endpoints under /api."""
    router = APIRouter()

    def caller(api_key: str | None):
        return registry.principal(api_key)

    @router.post(
        "/api/passports",
        status_code=201,
        response_model=Created,
        operation_id="createPassport",
        responses={**ERRORS, 201: {"description": "Created", "links": _PASSPORT_LINKS}},
    )
    def create_passport(
        response: Response,
        document: dict[str, Any] = Body(description="a battery or lot passport document"),
        api_key: str | None = KEY_HEADER,
    ):
        """Create a passport (issuer keys, under the organisation's GS1 Company Prefixes only);
        returns its key and version hash (ETag)."""
        result = registry.create(caller(api_key), document)
        response.headers["ETag"] = f'"{result["hash"]}"'
        response.headers["Location"] = f"/api/passports/{result['key']}"
        return result

    @router.get("/api/passports", responses=ERRORS, operation_id="listPassports")
    def list_passports(
        product: str | None = Query(None, max_length=200),
        status: str | None = Query(None, max_length=20),
        operator: str | None = Query(None, max_length=200),
        gtin: str | None = Query(None, max_length=14),
        kind: str | None = Query(None, max_length=20),
        passport_id: str | None = Query(None, max_length=300),
        cursor: str | None = Query(None, max_length=40),
        limit: int = Query(50, ge=1, le=MAX_PAGE),
        api_key: str | None = KEY_HEADER,
    ):
        """List passports by product, status, operator, GTIN, kind or id; cursor pagination.
        A filter on a restricted data point (status) matches only passports whose status the
        caller may read."""
        filters = {
            "product": product,
            "status": status,
            "operator": operator,
            "gtin": gtin,
            "kind": kind,
            "passport_id": passport_id,
        }
        return registry.list(caller(api_key), filters, cursor, limit)

    @router.get(
        "/api/passports/{key}",
        responses={**ERRORS, 200: {"links": {"Verify": _PASSPORT_LINKS["Verify"]}}},
        operation_id="readPassport",
    )
    def read_passport(
        key: str,
        audience: str | None = Query(None, max_length=40),
        api_key: str | None = KEY_HEADER,
    ):
        """The passport as the caller's audience may read it (public without a key). The ETag
        is the version hash for the issuer and a digest of the body for everyone else."""
        if api_key is None and audience in (None, "public"):
            text, etag = registry.public_json(key)
        else:
            text, etag = registry.read(caller(api_key), key, audience)
        return Response(text, media_type="application/json", headers={"ETag": f'"{etag}"'})

    @router.put(
        "/api/passports/{key}",
        response_model=Created,
        responses={
            **ERRORS,
            200: {
                "description": "Appended",
                "links": {
                    k: _PASSPORT_LINKS[k] for k in ("AppendVersion", "ChangeStatus", "Ingest")
                },
            },
        },
        operation_id="appendVersion",
    )
    def append_version(
        key: str,
        response: Response,
        document: dict[str, Any] = Body(description="the updated passport document"),
        if_match: str | None = Header(None, alias="If-Match", max_length=100),
        api_key: str | None = KEY_HEADER,
    ):
        """Append a version; If-Match must carry the current hash (stale → 412, nothing changes)."""
        result = registry.append(caller(api_key), key, document, if_match)
        response.headers["ETag"] = f'"{result["hash"]}"'
        return result

    @router.get("/api/passports/{key}/history", responses=ERRORS, operation_id="history")
    def history(
        key: str,
        audience: str | None = Query(None, max_length=40),
        api_key: str | None = KEY_HEADER,
    ):
        """Every version (documents as the audience may read them; hashes for the issuer)."""
        return registry.history(caller(api_key), key, audience)

    @router.get("/api/passports/{key}/verify", responses=ERRORS, operation_id="verifyPassport")
    def verify(
        key: str,
        audience: str | None = Query(None, max_length=40),
        api_key: str | None = KEY_HEADER,
    ):
        """Check the passport's hash chain, signatures and the signing keys' validity periods."""
        return registry.verify(caller(api_key), key, audience)

    @router.get(
        "/api/passports/{key}/checkpoint", responses=ERRORS, operation_id="passportCheckpoint"
    )
    def checkpoint(key: str, response: Response):
        """The passport's latest version and head hash, signed by the registry (public; lets
        `critflow passport verify --checkpoint` detect withheld versions)."""
        response.headers["Cache-Control"] = "no-store"
        return registry.checkpoint(key)

    @router.post(
        "/api/passports/{key}/status",
        responses={
            **ERRORS,
            200: {
                "description": "Changed",
                "links": {
                    "ReadPassport": _PASSPORT_LINKS["ReadPassport"],
                    "Verify": _PASSPORT_LINKS["Verify"],
                },
            },
        },
        operation_id="changeStatus",
    )
    def change_status(
        key: str,
        change: StatusChange,
        if_match: str | None = Header(None, alias="If-Match", max_length=100),
        api_key: str | None = KEY_HEADER,
    ):
        """Change status; repurposing starts a linked passport, recycling closes the chain."""
        return registry.change_status(
            caller(api_key), key, change.to, if_match, change.new_document
        )

    @router.get("/api/passports/{key}/qr.svg", responses=ERRORS, operation_id="qrCode")
    def qr(key: str):
        """QR code (SVG) of the passport's Digital Link."""
        import io

        import segno

        identifier = json.loads(registry.public_json(key)[0])["passport_id"]
        buffer = io.BytesIO()
        segno.make_qr(identifier, error="m").save(buffer, kind="svg", scale=6)
        return Response(buffer.getvalue(), media_type="image/svg+xml")

    @router.post("/api/ingest", responses=ERRORS, operation_id="ingest")
    def ingest(batch: Ingest, api_key: str | None = KEY_HEADER):
        """Dynamic data (state of health, cycles, events) for many batteries: all or nothing."""
        return registry.ingest(caller(api_key), batch.updates)

    @router.get("/api/registry/keys", operation_id="registryKeys")
    def registry_keys():
        """The registry's public signing keys (Ed25519) with their validity periods: a version
        verifies with the key that was valid when it was issued."""
        return {"keys": registry.registry_keys()}

    return router


def admin_routes(registry: Registry) -> APIRouter:
    """Administration (keys with the admin audience): organisations' GS1 Company Prefixes and
    operator identifiers, API keys."""
    from critflow.server import organisations
    from critflow.server.auth import list_keys, revoke_key

    router = APIRouter(prefix="/api/admin", responses=ERRORS)

    def admin(api_key: str | None, action: str):
        principal = registry.principal(api_key)
        registry.require_admin(principal, action)
        return principal

    def run(principal, action: str, work):
        try:
            with registry.sessions() as session:
                result = work(session)
        except organisations.IdentifierTakenError as exc:
            registry.log_admin(principal, action, "denied", str(exc))
            raise RegistryError(409, "Identifier taken", str(exc), exc.problems) from None
        except CritflowError as exc:
            raise RegistryError(422, "Invalid request", str(exc), exc.problems) from None
        registry.log_admin(principal, action, "allowed", None)
        return result

    @router.get("/organisations", operation_id="adminOrganisations")
    def list_organisations(api_key: str | None = KEY_HEADER):
        """Every organisation with its GS1 Company Prefixes and operator identifiers."""
        admin(api_key, "admin:organisations")
        with registry.sessions() as session:
            return {"organisations": organisations.everyone(session)}

    @router.put("/organisations/{name}", operation_id="adminRegisterIdentifiers")
    def register_identifiers(
        name: str, identifiers: OrganisationIdentifiers, api_key: str | None = KEY_HEADER
    ):
        """Register GS1 Company Prefixes and operator identifiers to an organisation (added to
        what it has; refused when one belongs to, or overlaps, another organisation's)."""
        principal = admin(api_key, "admin:register")
        found = run(
            principal,
            "admin:register",
            lambda s: organisations.register(
                s, name, identifiers.gs1_company_prefixes, identifiers.operator_ids
            ),
        )
        return {
            "organisation": found.organisation,
            "gs1_company_prefixes": list(found.prefixes),
            "operator_ids": list(found.operator_ids),
        }

    @router.delete(
        "/organisations/{name}/identifiers/{value}", operation_id="adminRemoveIdentifier"
    )
    def remove_identifier(name: str, value: str, api_key: str | None = KEY_HEADER):
        """Remove a prefix or operator identifier from an organisation."""
        principal = admin(api_key, "admin:unregister")
        run(principal, "admin:unregister", lambda s: organisations.unregister(s, name, value))
        return {"removed": value}

    @router.get("/keys", operation_id="adminKeys")
    def keys(api_key: str | None = KEY_HEADER):
        """Every API key (ids, organisations, audiences; never a secret)."""
        admin(api_key, "admin:keys")
        with registry.sessions() as session:
            return {"keys": list_keys(session)}

    @router.post("/keys/{key_id}/revoke", operation_id="adminRevokeKey")
    def revoke(key_id: str, api_key: str | None = KEY_HEADER):
        """Revoke a key; every worker refuses it within seconds."""
        principal = admin(api_key, "admin:revoke")
        revoked, organisation = run(principal, "admin:revoke", lambda s: revoke_key(s, key_id))
        return {"revoked": revoked, "organisation": organisation}

    return router


def page_routes(registry: Registry) -> APIRouter:
    """The public HTML page a QR scan opens, and the health check."""
    router = APIRouter()

    @router.get(
        "/01/{gtin}/21/{serial}",
        response_class=HTMLResponse,
        responses=ERRORS,
        operation_id="publicPage",
    )
    def public_page(gtin: str, serial: str):
        """The public page a QR scan opens (public data points only, no JavaScript)."""
        try:
            link = DigitalLink.build(gtin, serial)
        except IdentifierError as exc:
            raise RegistryError(400, "Bad identifier", str(exc)) from None
        data = json.loads(registry.public_json(registry.key_of(link.gtin, link.serial))[0])
        return HTMLResponse(render_page(data))

    @router.get("/healthz", operation_id="health")
    def health():
        return {"status": "ok", "version": __version__}

    return router


def create_app(
    database: str | None = None,
    key_file: Path | None = None,
    limits: Limits | None = None,
    trusted: str | None = None,
) -> FastAPI:
    """The registry application over ``database`` (runs migrations first).

    The registry's signing key must exist (``critflow keys init-registry``, or ``critflow serve``
    creates it before starting workers) and be the registry's current key; otherwise this raises
    CritflowError and no worker starts. ``trusted`` lists proxy addresses whose X-Forwarded-For
    is believed (default: ``CRITFLOW_TRUSTED_PROXIES``; none).
    """
    from critflow.server import signing

    engine = make_engine(database)
    upgrade(engine)
    path = signing.key_path(key_file, engine)
    key = signing.load_registry_key(path)
    signing.attach(engine, key)
    from critflow.units import registry as unit_registry

    unit_registry()  # built at start-up (0.3-1 s), not inside the first request that checks a unit
    registry = Registry(engine, key, path, limits)
    app = FastAPI(
        title="critflow passport registry",
        version=__version__,
        description="Battery and material-lot passports with access levels (Regulation (EU) "
        "2023/1542, Art. 77-78), signed versions and QR pages.",
    )
    app.state.registry = registry

    app.add_middleware(PassportReads, registry=registry)
    app.add_middleware(  # the outermost: every request is guarded first
        RequestGuard,
        trusted=trusted_proxies(
            trusted if trusted is not None else os.environ.get("CRITFLOW_TRUSTED_PROXIES")
        ),
    )

    @app.exception_handler(RegistryError)
    async def registry_error(_request: Request, exc: RegistryError):
        return _refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return problem(400, "Malformed JSON", "The request body is not valid JSON.")
        if request.url.path.startswith(MONITOR_API):  # the monitor's field paths, listed
            found = [
                Problem(monitor_path(e.get("loc", ())), _monitor_message(e), _monitor_fix(e))
                for e in list(exc.errors())[:20]
            ]
            found = list(dict.fromkeys(found))
            return problem(
                422,
                "Invalid request",
                "; ".join(f"{p.where}: {p.what}" for p in found[:10]),
                found,
            )
        details = "; ".join(
            str(p) for p in validation_problems(list(exc.errors())[:10], with_input=False)
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

    app.include_router(passport_routes(registry))
    app.include_router(admin_routes(registry))
    app.include_router(page_routes(registry))
    for router in monitor_routers(registry, ERRORS, KEY_HEADER):
        app.include_router(router)
    return app


def render_page(public: dict[str, Any]) -> str:
    """A small, readable, mobile-friendly HTML page of the public view (no scripts). It shows
    only what the public body holds: no status, no hash of a battery passport."""
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
    status = (
        f"Status: <strong>{html.escape(str(public['status']))}</strong> · "
        if "status" in public
        else ""
    )
    footer = f"Version hash {html.escape(public['hash'])}." if "hash" in public else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Battery passport — {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:0;padding:1rem;max-width:48rem;color:#222}}
table{{border-collapse:collapse;width:100%}}
th,td{{text-align:left;padding:.4rem;border-bottom:1px solid #ddd;vertical-align:top}}
th{{width:45%;font-weight:600}}small{{color:#666;word-break:break-all}}</style></head>
<body><h1>Battery passport</h1><p>{title}<br><small>{html.escape(public["passport_id"])}</small></p>
<p>{status}version {public["version"]}</p>
<table>{"".join(rows)}</table>
<p><small>Public information (Regulation (EU) 2023/1542, Annex XIII point 1). {footer}</small></p>
</body></html>"""
