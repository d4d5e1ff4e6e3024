"""What the report shows, checked against independent calculations: the Sankey's fate colours and
per-element summary, display names, the targets matrix, the one recovery table, the uncertainty
section (P5/P95 against numpy percentiles of the samples, probabilities against counted samples),
the reconciled Sankey, --plotly, and the public plot API."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import critflow
from critflow import plot
from critflow.analysis import Run
from critflow.report.content import compliance_section, recovery_section
from critflow.report.sankey import (
    FATE_CLASSES,
    display_name,
    downstream_shares,
    exit_classes,
    human,
    sankey_data,
)
from tests.conftest import EXAMPLE, model_text
from tests.conftest import critflow_cli as critflow_run

LOOP = """
critflow: 1
name: loop
time: {start: 2025, end: 2025}
elements: [Cu, rest]
processes:
  - {id: feed_in, kind: source}
  - {id: smelter, kind: transfer, name: The smelter,
     transfer: {to_refinery: {default: 0.8}, slag: {default: 0.2}}}
  - {id: refinery, kind: transfer, transfer: {cathode: {default: 0.5}, anode_scrap: {default: 0.5}}}
  - {id: buyers, kind: sink}
  - {id: slag_heap, kind: sink}
flows:
  - {id: feed, from: feed_in, to: smelter, value: 100, composition: {Cu: 0.3}}
  - {id: to_refinery, from: smelter, to: refinery}
  - {id: slag, from: smelter, to: slag_heap, fate: landfill}
  - {id: cathode, from: refinery, to: buyers, fate: recycled, product: copper cathode}
  - {id: anode_scrap, from: refinery, to: smelter}
"""


@pytest.fixture(scope="module")
def example_run() -> Run:
    return Run.solve(critflow.load_model(EXAMPLE))


def test_display_names():
    assert display_name("liquor_split") == "Liquor Split"
    assert display_name("liquor_split", "Mother liquor split") == "Mother liquor split"
    data = sankey_data(critflow.solve(model := model_text(LOOP)), model.spec)
    assert data["labels"][:3] == ["Feed In", "The smelter", "Refinery"]


def test_fate_shares_of_a_recycle_loop_by_hand():
    # smelter input x = 100 + 0.5 · 0.8 x → x = 166.67; cathode 0.4 x = 66.67 (recycled), slag
    # 0.2 x = 33.33 (landfill → lost): of the feed, 2/3 ends recycled, 1/3 lost
    model = model_text(LOOP)
    results = critflow.solve(model)
    data = sankey_data(results, model.spec)
    fates = data["fates"]["baseline"]["2025"]["goods"]
    flows = data["flows"]
    recycled, lost = FATE_CLASSES.index("recycled"), FATE_CLASSES.index("lost")
    feed = fates["shares"][flows.index("feed")]
    assert feed[recycled] == pytest.approx(2 / 3, abs=1e-4)
    assert feed[lost] == pytest.approx(1 / 3, abs=1e-4)
    assert fates["leaving"][recycled] == pytest.approx(200 / 3, rel=1e-9)
    assert fates["leaving"][lost] == pytest.approx(100 / 3, rel=1e-9)
    assert fates["shares"][flows.index("slag")][lost] == 1.0  # a flow into a sink: its own fate


def test_fate_shares_carry_every_source_flow_to_where_it_leaves(example_run):
    """Σ over source flows of mass × share in a class = the mass leaving in that class, which is
    summed independently from the flow table and the model's fates."""
    results, spec = example_run.results, example_run.model.spec
    topo = results.inputs.topology
    classes = exit_classes(spec, topo)
    values = results.values  # (S, P, E, F)
    shares = downstream_shares(values, topo, classes)
    from_source = np.array(topo.process_kinds)[topo.flow_from] == "source"
    carried = np.einsum("spef,spefc->spec", values[..., from_source], shares[..., from_source, :])
    flows = results.flows()
    fate = {f.id: f.fate for f in spec.flows}
    loss = {"lost", "landfill", "incineration", "energy_recovery", "backfilling"}
    for e, element in enumerate(topo.elements):
        table = flows[(flows["element"] == element) & (flows["period"] == 2030)]
        table = table[table["scenario"] == "baseline"]
        recycled = table[table["flow"].map(lambda f: fate.get(f) == "recycled")]["value"].sum()
        lost = table[table["flow"].map(lambda f: fate.get(f) in loss)]["value"].sum()
        assert carried[0, -1, e, FATE_CLASSES.index("recycled")] == pytest.approx(
            recycled, rel=1e-6
        )
        assert carried[0, -1, e, FATE_CLASSES.index("lost")] == pytest.approx(lost, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_fate_shares_equal_one_dense_solve_per_row_on_generated_graphs(data):
    """On random process graphs (recycle loops, self-loops, closed loops with no way out, zero
    flows), the downstream-first group solve equals the plain dense system x = b + M x solved
    row by row, with the mass that can never leave the system ending nowhere."""
    from types import SimpleNamespace

    n_p = data.draw(st.integers(2, 9))
    kinds = data.draw(
        st.lists(
            st.sampled_from(["source", "transfer", "market", "sink", "stock"]),
            min_size=n_p,
            max_size=n_p,
        )
    )
    n_f = data.draw(st.integers(1, 16))
    pairs = data.draw(
        st.lists(
            st.tuples(st.integers(0, n_p - 1), st.integers(0, n_p - 1)), min_size=n_f, max_size=n_f
        )
    )
    pairs = [(a, b) for a, b in pairs if kinds[a] not in ("sink", "stock")] or [(0, 0)]
    kinds[pairs[0][0]] = (
        "transfer" if kinds[pairs[0][0]] in ("sink", "stock") else kinds[pairs[0][0]]
    )
    n_f = len(pairs)
    topo = SimpleNamespace(
        process_kinds=tuple(kinds),
        flow_from=np.array([a for a, _ in pairs]),
        flow_to=np.array([b for _, b in pairs]),
    )
    n_e = data.draw(st.integers(1, 3))
    amount = st.one_of(st.just(0.0), st.floats(1e-3, 1e3))
    values = np.array(
        data.draw(st.lists(amount, min_size=2 * n_e * n_f, max_size=2 * n_e * n_f))
    ).reshape(2, n_e, n_f)
    classes = np.array(
        data.draw(
            st.lists(st.integers(0, len(FATE_CLASSES) - 1), min_size=n_e * n_f, max_size=n_e * n_f)
        )
    ).reshape(n_e, n_f)
    passes = np.array([kinds[b] not in ("sink", "stock") for _, b in pairs])
    classes[:, passes] = -1
    shares = downstream_shares(values, topo, classes)
    for row in np.ndindex(2, n_e):
        v = values[row]
        outflow = np.zeros(n_p)
        np.add.at(outflow, topo.flow_from, v)
        split = np.divide(
            v, outflow[topo.flow_from], out=np.zeros(n_f), where=outflow[topo.flow_from] > 0
        )
        m = np.zeros((n_f, n_f))  # x_f = Σ_g m[f, g] x_g for f into a passing process
        b = np.zeros((n_f, len(FATE_CLASSES)))
        for f in range(n_f):
            if passes[f]:
                for g in range(n_f):
                    if topo.flow_from[g] == topo.flow_to[f]:
                        m[f, g] += split[g]
            else:
                b[f, classes[row[1], f]] = 1.0
        # mass that can never reach a flow out of the system ends nowhere (share 0); the
        # rest is the plain linear system on the flows that can
        reaches = ~passes
        while True:
            more = reaches | ((m > 0) & reaches[None, :]).any(axis=1)
            if (more == reaches).all():
                break
            reaches = more
        expected = np.zeros_like(b)
        r = np.nonzero(reaches)[0]
        expected[r] = np.linalg.solve(np.eye(len(r)) - m[np.ix_(r, r)], b[r])
        np.testing.assert_allclose(shares[row], expected, atol=1e-9)


def test_targets_matrix_cells_equal_the_rules_check(example_run):
    section = compliance_section(example_run)
    rows = [r for r in example_run.compliance if r.status != "not applicable"]
    assert section["scenarios"] == list(example_run.results.inputs.scenarios)
    assert len(section["rules"]) == len({r.rule for r in rows})  # one row per rule
    assert len(section["rules"]) * len(section["scenarios"]) == len(rows)
    by_rule = {r["rule"]: r for r in section["rules"]}
    for row in rows:
        cell = by_rule[row.rule]["cells"][row.scenario]
        assert (cell["status"], cell["value"], cell["margin"]) == (
            row.status,
            row.value,
            row.margin,
        )
        assert by_rule[row.rule]["source"] == row.source


def test_one_recovery_table_with_scenarios_as_columns(example_run):
    section = recovery_section(example_run)
    table = example_run.recovery_by_product
    table = table[table["period"] == 2030]
    for row in section["rows"]:
        for s, scenario in enumerate(section["scenarios"]):
            expected = table[
                (table["scenario"] == scenario)
                & (table["element"] == row["element"])
                & (table["product"] == row["product"])
            ]["recovery"].sum()
            assert row["values"][s] == pytest.approx(expected, abs=1e-12)
    li = [r for r in section["rows"] if r["element"] == "Li"]
    assert [r["product"] for r in li] == ["lithium carbonate"]


def test_numbers_are_formatted_for_people():
    assert human(24310.4) == "24,310"
    assert human(1065.2, "t/a") == "1,065 t/a"
    assert human(3.4219) == "3.422"
    assert human(0.05123) == "0.0512"
    assert "e" not in human(123456789.0)


def test_report_sections_as_html(example_run, tmp_path):
    from critflow.report.content import RunInfo
    from critflow.report.html import render

    html = render(example_run, RunInfo("m.yaml", "0" * 64))
    assert 'id="targets-matrix"' in html
    assert html.count("<tr data-rule=") == len(compliance_section(example_run)["rules"])
    assert (
        html.count('id="recovery-table"') == 1
        and "<caption" not in html.split('id="recovery"')[1].split("</section>")[0]
    )
    assert "credits: displaced primary production, avoided-burden view" in html
    assert "footprint, cut-off" in html
    shown = re.sub(r"<script.*?</script>", "", html, flags=re.S)  # what a reader sees
    assert not re.search(r"\d\.?\d*e\+\d\d", shown)  # no 2.4e+04


def _sampled(model, samples: int):
    from critflow.engine.montecarlo import monte_carlo
    from critflow.indicators.sampled import indicator_samples

    return monte_carlo(model, samples, 3, "random", None, 128, indicator_samples, keep=True)


def test_uncertainty_bands_equal_numpy_percentiles_of_the_samples(example_run):
    from critflow.report.uncertainty import share_meeting, uncertainty_data

    n = 400
    mc = _sampled(example_run.model, n)
    data = uncertainty_data(example_run, mc)
    scenarios = list(mc.scenarios)
    n_s, n_p = len(scenarios), example_run.results.inputs.periods.size

    def check(raw: np.ndarray, band: dict, width: float) -> None:
        ordered = np.sort(raw)
        for q, key in ((5, "p5"), (50, "p50"), (95, "p95")):
            k = q / 100 * (n - 1)
            low, high = ordered[int(np.floor(k)) - 1], ordered[min(int(np.ceil(k)) + 1, n - 1)]
            assert low - width <= band[key] <= high + width, (key, band[key], np.percentile(raw, q))
        assert band["mean"] == pytest.approx(raw.mean(), rel=1e-9)

    assert data["kpis"] and data["flows"]
    for kpi in data["kpis"]:
        name = "indicator:" + kpi["indicator"] + (f":{kpi['element']}" if kpi["element"] else "")
        raw = np.concatenate(mc.raw[name]).reshape(n, n_s, n_p)[:, :, -1]
        width = float(mc.stats[name].width.reshape(n_s, n_p)[0, -1])
        for s, scenario in enumerate(scenarios):
            check(raw[:, s], kpi["bands"][scenario], width)
    flow_ids = list(example_run.results.inputs.topology.flow_ids)
    raw_flows = np.concatenate(mc.raw["flows:goods"]).reshape(n, n_s, n_p, len(flow_ids))
    widths = mc.stats["flows:goods"].width.reshape(n_s, n_p, len(flow_ids))
    for flow in data["flows"]:
        f = flow_ids.index(flow["flow"])
        for s, scenario in enumerate(scenarios):
            check(raw_flows[:, s, -1, f], flow["bands"][scenario], widths[s, -1, f])
    # the probability of meeting a threshold set at each KPI's median: about one half, equal to
    # the share of samples counted on the passing side (to the samples within one bin of it)
    kpi = data["kpis"][0]
    name = "indicator:" + kpi["indicator"] + (f":{kpi['element']}" if kpi["element"] else "")
    raw = np.concatenate(mc.raw[name]).reshape(n, n_s, n_p)[:, 0, -1]
    stats = mc.stats[name]
    threshold = float(np.median(raw))
    width = float(stats.width.reshape(n_s, n_p)[0, -1])
    found = share_meeting(stats, ">=", threshold).reshape(n_s, n_p)[0, -1]
    counted = (raw >= threshold).mean()
    near = (np.abs(raw - threshold) <= width).mean()
    assert abs(found - counted) <= near + 1 / n
    assert 0.3 < found < 0.7
    assert share_meeting(stats, "<=", threshold).reshape(n_s, n_p)[0, -1] == pytest.approx(
        1 - found
    )


def test_target_probabilities_match_the_samples(example_run):
    from critflow.report.uncertainty import target_probabilities

    n = 200
    mc = _sampled(example_run.model, n)
    n_s, n_p = len(mc.scenarios), example_run.results.inputs.periods.size
    found = target_probabilities(example_run, mc)
    rules = {r.rule: r for r in example_run.compliance if r.status != "not applicable"}
    assert {t["rule"] for t in found} == set(rules)
    for target in found:
        rule = rules[target["rule"]]
        name = "indicator:" + rule.indicator + (f":{rule.element}" if rule.element else "")
        raw = np.concatenate(mc.raw[name]).reshape(n, n_s, n_p)[:, :, -1]
        width = mc.stats[name].width.reshape(n_s, n_p)[:, -1]
        for s, scenario in enumerate(mc.scenarios):
            counted = (raw[:, s] >= rule.threshold).mean()
            near = (np.abs(raw[:, s] - rule.threshold) <= width[s]).mean()
            assert abs(target["probability"][scenario] - counted) <= near + 1 / n


def test_report_command_plotly_modes(tmp_path):
    model = tmp_path / "plain.yaml"
    model.write_text(
        "critflow: 1\nname: plain\ntime: {start: 2025, end: 2025}\nelements: [Cu]\n"
        "processes: [{id: a, kind: source}, {id: b, kind: transfer}, {id: c, kind: sink}]\n"
        "flows: [{id: f1, from: a, to: b, value: 10}, {id: f2, from: b, to: c}]\n"
    )
    out = tmp_path / "out"
    assert critflow_run("run", model, "-o", out).returncode == 0
    inline = (out / "report.html").stat().st_size
    assert inline > 3_000_000  # plotly.js embedded: opens offline
    result = critflow_run("report", out, "--plotly", "cdn")
    assert result.returncode == 0, result.stderr
    html = (out / "report.html").read_text()
    version = re.search(r'src="https://cdn\.plot\.ly/plotly-(\d+\.\d+\.\d+)\.min\.js"', html)
    assert version and (out / "report.html").stat().st_size < 200_000
    result = critflow_run("report", out, "--plotly", "directory")
    assert result.returncode == 0, result.stderr
    assert '<script src="plotly.min.js"' in (out / "report.html").read_text()
    js = (out / "plotly.min.js").read_text()
    assert f"plotly.js v{version.group(1)}" in js[:500]
    assert "plotly.min.js" in json.loads((out / "run.json").read_text())["files"]
    assert critflow_run("run", model, "-o", out).returncode == 0  # the folder is still a run's
    assert not (out / "plotly.min.js").exists()  # the inline report left no stale copy behind
    (out / "other.html").write_text('<script src="plotly.min.js"></script>')
    assert critflow_run("report", out, "--plotly", "directory").returncode == 0
    assert critflow_run("report", out, "--plotly", "inline").returncode == 0
    assert (out / "plotly.min.js").is_file()  # kept: another page in the folder still loads it
    bad = critflow_run("report", out, "--plotly", "web")
    assert bad.returncode == 2 and "--plotly" in bad.stderr and "inline" in bad.stderr


def test_report_with_sensitivity_file(tmp_path):
    out = tmp_path / "out"
    model = tmp_path / "plain.yaml"
    model.write_text(
        "critflow: 1\nname: plain\ntime: {start: 2025, end: 2025}\nelements: [Cu]\n"
        "processes: [{id: a, kind: source}, {id: b, kind: transfer}, {id: c, kind: sink}]\n"
        "flows: [{id: f1, from: a, to: b, value: 10}, {id: f2, from: b, to: c}]\n"
    )
    assert critflow_run("run", model, "-o", out).returncode == 0
    document = {
        "output": "recycling_efficiency",
        "runs": 96,
        "mean": 0.5,
        "sd": 0.01,
        "indices": [
            {"input": "parameters.x", "S1": 0.7, "S1_conf": 0.05, "ST": 0.8, "ST_conf": 0.06}
        ],
    }
    (tmp_path / "sobol.json").write_text(json.dumps(document))
    result = critflow_run(
        "report", out, "--sensitivity", tmp_path / "sobol.json", "--plotly", "cdn"
    )
    assert result.returncode == 0, result.stderr
    html = (out / "report.html").read_text()
    assert (
        '<section id="sensitivity">' in html and "parameters.x" in html and "0.700 ± 0.050" in html
    )
    (tmp_path / "bad.json").write_text("{}")
    bad = critflow_run("report", out, "--sensitivity", tmp_path / "bad.json")
    assert bad.returncode == 2 and "bad.json" in bad.stderr and "critflow sensitivity" in bad.stderr


def test_reconciled_sankey_equals_the_reconciled_table(tmp_path):
    model = EXAMPLE.parent / "flotation_circuit_reconciliation.yaml"
    result = critflow_run("reconcile", model, "-o", tmp_path, "--plotly", "cdn")
    assert result.returncode in (0, 1), result.stderr
    html = (tmp_path / "reconciled.html").read_text()
    data = json.loads(re.search(r'id="reconciled-data">(.*?)</script>', html, re.S).group(1))
    goods = pd.read_csv(tmp_path / "reconciled_goods.csv")
    for case in data["cases"].values():
        rows = goods[(goods["scenario"] == case["scenario"]) & (goods["period"] == case["period"])]
        rows = rows.set_index("flow").loc[data["flows"]]
        values = case["values"]["goods"]
        assert np.allclose(
            [np.nan if v is None else v for v in values["value"]], rows["value"], equal_nan=True
        )
        assert np.allclose(
            [np.nan if v is None else v for v in values["sd"]], rows["sd"], equal_nan=True
        )
    measured = {
        m["flow"]
        for m in json.loads(
            json.dumps([m.model_dump() for m in critflow.load_model(model).spec.measurements])
        )
    }
    first = next(iter(data["cases"].values()))
    assert [f for f, m in zip(data["flows"], first["measured"], strict=True) if m] == [
        f for f in data["flows"] if f in measured
    ]


def test_plot_api_draws_the_flow_table(example_run):
    figure = plot.sankey(example_run, "no_decasing", 2027, "Li")
    flows = example_run.results.flows()
    li = flows[
        (flows["scenario"] == "no_decasing")
        & (flows["period"] == 2027)
        & (flows["element"] == "Li")
    ]
    assert np.allclose(
        figure.data[0].link.value,
        li.set_index("flow").loc[list(example_run.results.inputs.topology.flow_ids), "value"],
    )
    assert "Liquor Split" in figure.data[0].node.label
    colours = set(figure.data[0].link.color)
    assert len(colours) > 1  # coloured by fate, not all grey
    with pytest.raises(critflow.CritflowError, match="Did you mean 'baseline'"):
        plot.sankey(example_run, "baselin")


def test_plot_api_stock_chart():
    model = critflow.load_model(EXAMPLE.parent / "eu_ev_battery_stock.yaml")
    results = critflow.solve(model, ["baseline"])
    figure = plot.stocks(results, element="Li", model=model)
    table = results.stock_table()
    li = table[(table["element"] == "Li")].groupby("period")["in_use"].sum()
    assert np.allclose(figure.data[0].y, li.to_numpy())
    assert figure.layout.yaxis.range[0] == 0 and figure.layout.yaxis2.range[0] == 0
