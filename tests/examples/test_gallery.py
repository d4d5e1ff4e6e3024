"""Every model in examples/ validates, solves and closes its balances; every headline answer of the
gallery (examples/gallery.yaml, quoted in README "Gallery") is recomputed and must stay within its
stated tolerance, so a change that moves an answer is noticed."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml

import critflow
from critflow.cli.demo import is_blend_problem, load_gallery
from critflow.indicators.catalogue import Context, evaluate_indicator
from tests.conftest import ROOT, critflow_cli

EXAMPLES = ROOT / "examples"
MODELS = sorted(
    p
    for p in EXAMPLES.glob("*.yaml")
    if isinstance(doc := yaml.safe_load(p.read_text(encoding="utf-8")), dict) and "critflow" in doc
)
GALLERY = load_gallery(EXAMPLES)
#: what a headline measures: an indicator (the default), a life-cycle cost, gross kg CO2-eq per kg
#: of named elements recovered, or a scrap blend's outcome
KINDS = ("indicator", "cost", "impact", "blend")


def _what(h: dict) -> str:
    kinds = [k for k in KINDS if k in h]
    assert len(kinds) == 1, f"a headline names one of {KINDS}: {h}"
    return f"{kinds[0]}={h[kinds[0]]}"


HEADLINES = [
    pytest.param(
        entry,
        h,
        id=f"{entry['name']}-{_what(h)}-{h.get('element', '')}-{h.get('scenario', '')}"
        + (f"-{h['confidence']}" if "confidence" in h else ""),
    )
    for entry in GALLERY
    for h in entry.get("headline", [])
]


@cache
def _solved(path: Path):
    model = critflow.load_model(path)
    return model, critflow.solve(model)


def test_examples_are_found_and_the_gallery_names_only_models():
    # the glob must see the shipped models (a wrong folder would make the tests below vacuous)
    names = {p.name for p in MODELS}
    assert {"battery_recycling_hydromet.yaml", "ndfeb_magnet_recycling.yaml"} <= names
    assert "aluminium_scrap_blending.yaml" not in names  # a blend problem, not a model
    blends = {p.name for p in EXAMPLES.glob("*.yaml") if is_blend_problem(p)}
    assert "aluminium_scrap_blending.yaml" in blends
    assert {e["file"] for e in GALLERY} <= names | blends
    assert all(e.get("headline") for e in GALLERY)


def _check_reconciled(model):
    """A measured model 'solves' by reconciliation: every balance the reconciled values determine
    closes (goods, at every transfer process whose flows are all observable)."""
    from critflow.engine.compile import evaluate
    from critflow.engine.reconcile import reconcile

    topo = evaluate(model).topology
    kinds = np.array(topo.process_kinds)
    found = reconcile(model)
    assert found
    checked = 0
    for rec in found:
        for u in np.flatnonzero((kinds != "source") & (kinds != "sink")):
            flows = np.flatnonzero((topo.flow_to == u) | (topo.flow_from == u))
            if not rec.goods_observable[flows].all():
                continue
            into = rec.goods[topo.flow_to == u].sum()
            out = rec.goods[topo.flow_from == u].sum()
            assert abs(into - out) <= 1e-9 * max(into, out, 1.0)
            checked += 1
    assert checked  # at least one balance was observable and checked


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
def test_every_example_validates_solves_and_closes_its_balances(path):
    model = critflow.load_model(path)
    if model.spec.measurements:
        _check_reconciled(model)
        return
    from critflow.engine.compile import check_drawn_shares

    check_drawn_shares(model)  # distributions keep shares shares over their whole support
    _, results = _solved(path)
    into, out, stock = results.balance_arrays()
    kinds = np.array(results.inputs.topology.process_kinds)
    inner = (kinds != "source") & (kinds != "sink")
    residual = np.abs(into - out - stock)[..., inner]
    assert np.all(residual <= 1e-9 * np.maximum(np.maximum(into, out)[..., inner], 1e-30))
    # the whole system, per element: sources = sinks + what the stocks keep
    sources = out[..., kinds == "source"].sum(axis=-1)
    sinks = into[..., kinds == "sink"].sum(axis=-1) + stock.sum(axis=-1)
    np.testing.assert_allclose(sinks, sources, rtol=1e-9, atol=1e-9 * sources.max())
    assert (results.mass_kg >= -1e-9 * results.mass_kg.max()).all()  # no negative flow


@cache
def _blend(path: Path, confidence: float | None):
    from critflow.blend import assess_blend, load_problem

    return assess_blend(load_problem(path), None, confidence)


def blend_answer(path: Path, what: str, confidence: float | None = None) -> float:
    """A blend's cost, primary Cu saved against down-cycling (t; the problem's only critical raw
    material is Cu, so its CRM tonnes are Cu tonnes), or the CRM-use change."""
    outcome = _blend(path, confidence)
    if what == "cost":
        return outcome.totals["cost"]
    if what == "cost_saved":
        return outcome.baseline["cost"] - outcome.totals["cost"]
    if what == "primary_cu_saved_t":
        return outcome.baseline["crm_primary_t"] - outcome.totals["crm_primary_t"]
    if what == "crm_use_change":
        return outcome.crm_use_change
    raise AssertionError(f"unknown blend answer {what}")


def headline_value(entry: dict, headline: dict) -> float:
    """Recompute one headline answer from the model (or blend problem) it names."""
    path = EXAMPLES / entry["file"]
    if "blend" in headline:
        return blend_answer(path, headline["blend"], headline.get("confidence"))
    model, results = _solved(path)
    s = list(results.inputs.scenarios).index(headline["scenario"])
    periods = [int(p) for p in results.inputs.periods]
    p = periods.index(headline["year"]) if "year" in headline else len(periods) - 1
    if "cost" in headline:  # levelised cost per tonne of feed (critflow impact, cost_project.csv)
        return float(getattr(_run(path).costs, headline["cost"])[s])
    if "impact" in headline:  # gross kg CO2-eq per kg of the named elements counted as recovered
        assert headline["impact"] == "gross_per_kg_recovered"
        from critflow.indicators.recovery import recycling_arrays

        recycled, _ = recycling_arrays(model, results)
        index = [model.spec.elements.index(e) for e in headline["elements"]]
        return float(_run(path).impacts.total[s, p] / (recycled[s, p, index].sum()))
    ctx = Context(
        model, results, headline.get("reference"), reference_year=headline.get("reference_year")
    )
    values = np.asarray(evaluate_indicator(ctx, headline["indicator"], headline.get("element")))
    return float(values[s, p])


@cache
def _run(path: Path):
    from critflow.analysis import Run

    model, results = _solved(path)
    return Run(model, results)


@pytest.mark.parametrize(("entry", "headline"), HEADLINES)
def test_gallery_headline_answer(entry, headline):
    got = headline_value(entry, headline)
    assert abs(got - headline["value"]) <= headline["tolerance"], (
        f"{entry['name']}: {_what(headline)} {headline.get('element', '')} "
        f"({headline.get('scenario', '')}) is {got:.6g}, the README says {headline['value']} "
        f"± {headline['tolerance']}: explain the change in README 'Gallery' and update gallery.yaml"
    )


def test_ndfeb_hpms_return_equals_the_closed_form():
    # Nd returned by HPMS: drives 3000 t x 0.0364 x 0.256 at 0.90, rotors 1500 t x 0.10 x 0.20 at 0.97
    hdd, rotor = 3000 * 0.0364 * 0.256, 1500 * 0.10 * 0.20
    expected = (0.90 * hdd + 0.97 * rotor) / (hdd + rotor)
    model, results = _solved(EXAMPLES / "ndfeb_magnet_recycling.yaml")
    got = evaluate_indicator(Context(model, results), "nd_returned")
    assert abs(float(got[list(results.inputs.scenarios).index("hpms"), 0]) - expected) < 1e-12
    # hydromet: dismantling 0.90, leach 0.98, oxalate 0.967, for both feeds
    got = evaluate_indicator(Context(model, results), "nd_returned")
    assert (
        abs(float(got[list(results.inputs.scenarios).index("hydromet"), 0]) - 0.90 * 0.98 * 0.967)
        < 1e-12
    )


def test_demo_lists_the_gallery_and_refuses_an_unknown_name(tmp_path):
    listed = critflow_cli("demo", "--list")
    assert listed.returncode == 0
    for entry in GALLERY:
        assert entry["name"] in listed.stdout and entry["file"] in listed.stdout
    wrong = critflow_cli("demo", "ndfe")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "Did you mean 'ndfeb'" in " ".join(wrong.stderr.split())


def test_demo_runs_a_gallery_model_like_run(tmp_path):
    result = critflow_cli("demo", "pv", "--out", tmp_path / "pv")
    assert result.returncode == 0, result.stderr
    import pandas as pd

    recovery = pd.read_csv(tmp_path / "pv" / "material_recovery.csv")
    assert not recovery.empty
    assert (tmp_path / "pv" / "report.html").is_file()


# -- P5-P95: the README's bands, recomputed with the gallery's fixed Monte Carlo (item of issue 24)
_INDEX = yaml.safe_load((EXAMPLES / "gallery.yaml").read_text(encoding="utf-8"))
MONTE_CARLO = _INDEX["monte_carlo"]
BANDED = [pytest.param(entry, id=entry["name"]) for entry in GALLERY if entry.get("bands")]


def _sampled_indicators(model, results) -> dict[str, np.ndarray]:
    """What `critflow run --samples` computes per sample, plus the model's own indicators."""
    from critflow.indicators.catalogue import model_indicator
    from critflow.indicators.sampled import indicator_samples

    out = indicator_samples(model, results)
    ctx = Context(model, results)
    for name in model.spec.indicators:
        out[f"indicator:{name}"] = np.asarray(model_indicator(ctx, name), dtype=float)
    return out


@cache
def _bands(path: Path):
    """indicators_stats as `critflow run PATH --samples N --seed S` writes it (chunk as the CLI)."""
    from critflow.engine.montecarlo import indicator_statistics, monte_carlo

    model, results = _solved(path)
    mc = monte_carlo(
        model,
        MONTE_CARLO["samples"],
        MONTE_CARLO["seed"],
        MONTE_CARLO["sampler"],
        None,
        1000,
        _sampled_indicators,
    )
    return indicator_statistics(mc, results.inputs.periods), results


def test_every_model_with_ranges_has_its_bands_in_the_gallery():
    # a model carrying distributions must quote (and so test) at least one P5-P95 in the README
    from critflow.model.uncertainty import collect

    for entry in GALLERY:
        path = EXAMPLES / entry["file"]
        if is_blend_problem(path):
            continue
        if collect(critflow.load_model(path).spec):
            assert entry.get("bands"), f"{entry['name']} carries ranges but quotes no P5-P95"


@pytest.mark.parametrize("entry", BANDED)
def test_gallery_p5_p95_bands_are_those_the_readme_quotes(entry):
    stats, results = _bands(EXAMPLES / entry["file"])
    last = int(results.inputs.periods[-1])
    for band in entry["bands"]:
        rows = stats[
            (stats.indicator == band["indicator"])
            & (stats.scenario == band["scenario"])
            & (stats.period == band.get("year", last))
            & (stats.element.fillna("") == band.get("element", ""))
        ]
        assert len(rows) == 1, band
        row = rows.iloc[0]
        for q in ("p5", "p95"):
            assert abs(row[q] - band[q]) <= band["tolerance"] + 1e-12, (
                f"{entry['name']}: {q} of {band['indicator']} {band.get('element', '')} "
                f"({band['scenario']}) is {row[q]:.6g}, the README says {band[q]}"
            )
