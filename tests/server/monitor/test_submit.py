"""``critflow monitor submit``: a model's KPI values and roadmap-rule verdicts reach the server with
the model file's SHA-256, computed independently here, as provenance."""

from __future__ import annotations

import hashlib

from critflow.analysis import Run
from critflow.model import load_model
from critflow.rules import check, load_rule_sets
from tests.conftest import ROOT, critflow_cli
from tests.server.monitor.conftest import headers, new_project
from tests.server.monitor.test_pages import _login

MODEL = ROOT / "examples" / "battery_recycling_hydromet.yaml"


def _submit(project: str, year: str, url: str, key: str):
    return critflow_cli(
        "monitor", "submit", MODEL, "--project", project, "--year", year, "--server", url,
        "--key", key,
    )  # fmt: skip


def test_submit_sends_values_verdicts_and_the_model_hash(live_monitor):
    url, keys, _app, client = live_monitor
    new_project(client, keys.a, "A-1", domains=("1.1",))
    result = _submit("A-1", "2027", url, keys.a)
    assert result.returncode == 0, result.stderr
    stored = client.get("/api/monitor/projects/A-1", headers=headers(keys.a)).json()
    sha = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert {v["provenance"]["model_sha256"] for v in stored["values"]} == {sha}
    assert {v["provenance"]["source"] for v in stored["values"]} == {"model"}
    # independently: the roadmap rules checked in 2027 on the same model, first scenario
    run = Run.solve(load_model(MODEL))
    rows = check(run.model, run.results, load_rule_sets(["roadmap"]), year=2027, cache=run.cache)
    rows = {r.rule: r for r in rows if r.scenario == run.inputs.scenarios[0]}
    co = next(v for v in stored["values"] if v["kpi"] == "1.1-battery-recovery-co")
    assert abs(co["value"] - rows["roadmap-1.1-rm-co-2027"].value) < 1e-12
    verdicts = {v["rule"]: v for v in stored["verdicts"]}
    assert verdicts["roadmap-1.1-rm-co-2027"]["status"] == rows["roadmap-1.1-rm-co-2027"].status
    assert verdicts["roadmap-1.1-re-lithium-2031"]["status"] == "not applicable"  # not yet in 2027
    assert "Stored" in result.stdout and sha in result.stdout.replace("\n", "")
    # the project page shows the trajectory and the verdicts with the model's hash
    page = _login(_app, keys.a).get("/monitor/projects/A-1").text
    assert "Rule verdicts" in page and "roadmap-1.1-rm-co-2027" in page and sha[:12] in page
    assert 'data-kpi="1.1-battery-recovery-co"' in page


def test_submit_refusals_are_messages(live_monitor):
    url, keys, _app, client = live_monitor
    new_project(client, keys.b, "B-1")
    # another organisation's project: the server's 404 is a message and exit code 2
    result = _submit("B-1", "2027", url, keys.a)
    assert result.returncode == 2 and "No such project" in result.stderr, result.stderr
    result = _submit("B-1", "2040", url, keys.b)
    assert result.returncode == 2 and "outside 2023-2035" in result.stderr
    result = _submit("B-1", "2027", "http://127.0.0.1:9", keys.b)
    assert result.returncode == 2 and "cannot reach" in result.stderr
