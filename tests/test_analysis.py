"""A Run computes the rules check and the LCA once, and its tables hold the library's numbers."""

from __future__ import annotations

import pandas as pd

import critflow
import critflow.impact.lca
import critflow.rules
from critflow import data
from critflow.analysis import Run
from critflow.impact import assess, assess_cost
from critflow.indicators.recovery import material_recovery, recovery, recycling_efficiency
from critflow.report.content import RunInfo
from critflow.report.html import render
from critflow.report.tables import write_tables
from critflow.rules import check, load_rule_sets
from tests.conftest import EXAMPLE, ROOT


def _counting(monkeypatch, module, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_tables_and_report_check_the_rules_and_assess_the_impacts_once(monkeypatch, tmp_path):
    # The shipped plant has inventories, economics and a rule on climate_intensity (CRMA / roadmap
    # sets): before the Run the tables and the report each ran the check and the LCA.
    model = critflow.load_model(EXAMPLE)
    run = Run(model, critflow.solve(model))
    lca = _counting(monkeypatch, critflow.impact.lca, "assess")
    rules = _counting(monkeypatch, critflow.rules, "check")
    write_tables(run, tmp_path)
    html = render(run, RunInfo("model.yaml", ""))
    assert len(lca) == 1 and len(rules) == 1
    assert "compliance" in html.lower() and (tmp_path / "impact_summary.csv").is_file()
    # a second pass reads the cached results
    write_tables(run, tmp_path / "again")
    assert len(lca) == 1 and len(rules) == 1
    # the rules need the LCA themselves (the roadmap's "equal or better environmental impact"
    # conditions read climate_intensity): the run's impacts are that same LCA
    fresh = Run(model, run.results)
    assert fresh.compliance is not None and len(lca) == 2
    assert fresh.impacts is not None and len(lca) == 2


def test_a_run_without_inventories_never_assesses(monkeypatch, tmp_path):
    model = critflow.load_model(ROOT / "examples" / "eu_ev_battery_stock.yaml")
    run = Run.solve(model, ["baseline"])
    lca = _counting(monkeypatch, critflow.impact.lca, "assess")
    write_tables(run, tmp_path)
    assert lca == [] and run.impacts is None and run.costs is None


def _csv(path) -> pd.DataFrame:
    return pd.read_csv(path)


def test_the_tables_hold_what_the_library_computes_directly(tmp_path):
    # Every table the run writes, against the library functions called on their own (the path
    # the tables took before the Run): same rows, same numbers.
    model = critflow.load_model(EXAMPLE)
    results = critflow.solve(model)
    write_tables(Run(model, results), tmp_path)
    impacts = assess(model, results)
    costs = assess_cost(model, results, impacts)
    rows = check(model, results, load_rule_sets(data.rule_set_names()))
    compliance = pd.DataFrame([r.as_dict() for r in rows])
    compliance["scope"] = compliance["scope"].astype(str)
    expected = {
        "recovery": recovery(model, results),
        "recycling_efficiency": recycling_efficiency(model, results),
        "material_recovery": material_recovery(model, results),
        "compliance": compliance,
        "impact_summary": impacts.summary_table(),
        "impact_processes": impacts.process_table(),
        "impact_items": impacts.item_table(),
        "impact_products": impacts.product_table(),
        "cost_annual": costs.annual_table(),
        "cost_project": costs.project_table(),
    }
    for name, frame in expected.items():
        direct = tmp_path / f"direct_{name}.csv"
        frame.to_csv(direct, index=False)
        written = _csv(tmp_path / f"{name}.csv")
        # Arrow writes 5700000.0 as 5700000 (pandas as 5700000.0), so a column of whole numbers
        # reads back as int64 from one file and float64 from the other: the values must be equal
        pd.testing.assert_frame_equal(
            written, _csv(direct), check_exact=True, check_dtype=False, obj=name
        )


def test_the_lca_is_not_kept_on_the_results():
    # the old cache lived in results.__dict__, keyed by id(model) (an id Python reuses once a model
    # is freed); the run keeps it now, and assess() computes what it is asked
    model = critflow.load_model(EXAMPLE)
    results = critflow.solve(model)
    first = assess(model, results)
    second = assess(model, results)
    assert not any("impact" in key for key in vars(results))
    assert second is not first and (second.intensity == first.intensity).all()
    run = Run(model, results)
    assert run.impacts is run.context().impacts() is run.impacts
