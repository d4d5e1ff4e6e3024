"""Breaking flows.csv as a stream table (a row per flow, a column per element) and the run folder
it lives in, from outside: element names that head its columns, a regional model with generated
flows re-rendered by `critflow report`, and flows.csv against flows.parquet number for number."""

from __future__ import annotations

import csv
import math
import shutil
import textwrap

import numpy as np
import pyarrow.parquet as pq
import pytest

import critflow as cf
from critflow.report import tables
from critflow.report.run_dir import read_run
from tests.conftest import ROOT
from tests.conftest import critflow_cli as critflow

REGIONS = ROOT / "examples" / "eu_battery_materials_regions.yaml"

NAMED = """
critflow: 1
name: element names
time: {{start: 2020, end: 2021}}
unit: t/a
elements: {elements}
processes:
  - {{id: src, kind: source}}
  - {{id: mix, kind: transfer, transfer: {{out1: {{default: 0.25}}, out2: {{default: 0.75}}}}}}
  - {{id: sink1, kind: sink}}
  - {{id: sink2, kind: sink}}
flows:
  - {{id: feed, from: src, to: mix, value: 100, composition: {composition}}}
  - {{id: out1, from: mix, to: sink1}}
  - {{id: out2, from: mix, to: sink2}}
scenarios: {{baseline: {{}}, other: {{}}}}
"""


@pytest.mark.parametrize(
    ("elements", "said"),
    [
        ("[goods, Li, rest]", "what critflow calls the sum of the elements"),
        ('[Li, "", rest]', "blank"),
        ('[Li, " Co", rest]', "spaces around it"),
        ('[Li, "Co\\nNi", rest]', "line break"),
        ('["=SUM(A1:A9)", rest]', "formula"),
    ],
)
def test_an_element_name_that_cannot_head_a_column_is_refused(tmp_path, elements, said):
    """An element named 'goods' made flows.csv's header 'goods [t/a]' twice and `critflow run`
    end in a traceback (AttributeError: 'DataFrame' object has no attribute 'dtype', from the
    workbook); a blank name headed a column ' [t/a]', a line break split the header in two, and
    '=…' was written to the workbook as a broken formula. Each is refused with the element named,
    and nothing is written."""
    model = tmp_path / "model.yaml"
    model.write_text(NAMED.format(elements=elements, composition="{}"), encoding="utf-8")
    result = critflow("run", str(model), "--out", str(tmp_path / "o"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot be an element name" in result.stderr and said in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def _csv_rows(path):
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _assert_csv_holds_the_parquet(out):
    """Every number of flows.csv equals flows.parquet's for the same labels and element (bit for
    bit, sign of zero included), goods is their sum, and each parquet row appears once."""
    table = pq.read_table(out / "flows.parquet").to_pylist()
    labels = [c for c in table[0] if c not in ("element", "value", "unit")]
    unit = table[0]["unit"]
    elements = list(dict.fromkeys(r["element"] for r in table))
    expected: dict[tuple, dict[str, float]] = {}
    for r in table:
        key = tuple("" if r[c] is None else str(r[c]) for c in labels)
        expected.setdefault(key, {})[r["element"]] = r["value"]
    header, body = _csv_rows(out / "flows.csv")
    assert header == labels + [f"{e} [{unit}]" for e in ["goods", *elements]]
    seen = set()
    for row in body:
        key = tuple(row[: len(labels)])
        assert key not in seen, key
        seen.add(key)
        numbers = [float(v) for v in row[len(labels) :]]
        want = [expected[key][e] for e in elements]
        for got, value in zip(numbers[1:], want, strict=True):
            assert got == value and math.copysign(1, got) == math.copysign(1, value), key
        assert numbers[0] == pytest.approx(math.fsum(want), rel=1e-15, abs=0), key
    assert seen == set(expected)


def test_flows_csv_of_odd_element_names_holds_the_parquet_numbers(tmp_path):
    """Commas, quotes, non-ASCII and label-like names ('flow', 'from') are kept in the header,
    quoted as CSV quotes them, and the numbers under them are the parquet's."""
    model = tmp_path / "model.yaml"
    elements = '["a,b", "q\\"x", "Ünï €", flow, from, rest]'
    composition = '{"a,b": 0.3, "q\\"x": 0.15, "Ünï €": 0.05, flow: 0.2, from: 0.1}'
    model.write_text(NAMED.format(elements=elements, composition=composition), encoding="utf-8")
    out = tmp_path / "o"
    result = critflow("run", str(model), "--out", str(out), "--excel", "full")
    assert result.returncode == 0, result.stderr
    header, _ = _csv_rows(out / "flows.csv")
    assert header[5:] == [
        f"{e} [t/a]" for e in ["goods", "a,b", 'q"x', "Ünï €", "flow", "from", "rest"]
    ]
    _assert_csv_holds_the_parquet(out)


def test_flows_csv_of_a_regional_model_in_many_blocks_holds_the_parquet_numbers(
    tmp_path, monkeypatch
):
    """The regional example with two scenarios, written 500 rows a block (the periods of a
    scenario split over several blocks): flows.csv has each visible flow once per scenario and
    period with its region, product and origin, and the parquet's numbers."""
    shutil.copytree(ROOT / "examples" / "data", tmp_path / "data")
    model = tmp_path / "regions.yaml"
    model.write_text(
        REGIONS.read_text(encoding="utf-8")
        + textwrap.dedent(
            """
            scenarios:
              baseline: {}
              heavy_packs: {parameters: {lfp_kg_per_kwh: 8.0}}
            """
        ),
        encoding="utf-8",
    )
    loaded = cf.load_model(model)
    results = cf.solve(loaded)
    monkeypatch.setattr(tables, "BATCH_ROWS", 500)
    out = tmp_path / "o"
    tables.write_bulk_tables(results, out)
    _assert_csv_holds_the_parquet(out)
    n_s, n_p = len(results.inputs.scenarios), results.inputs.periods.size
    shown = sum(not f.hidden for f in results.inputs.topology.labels.flows)
    assert len(_csv_rows(out / "flows.csv")[1]) == n_s * n_p * shown


def test_report_re_renders_a_regional_run_with_split_imports(tmp_path):
    """`critflow report RUN_DIR` on the regional example's run said 'flows.parquet: has 16632
    rows where the model copy needs 17280. The folder mixes outputs of different runs' — the
    parquet leaves out the generated totals of the supplies split by origin. The totals are
    what their splits pass on: the flows read back equal the solve, the generated ones too."""
    out = tmp_path / "o"
    assert critflow("run", str(REGIONS), "--out", str(out), "--excel", "none").returncode == 0
    (out / "report.html").unlink()
    result = critflow("report", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "report.html").stat().st_size > 0
    run, _ = read_run(out)
    solved = cf.solve(cf.load_model(REGIONS))
    hidden = np.array([f.hidden for f in solved.inputs.topology.labels.flows])
    assert hidden.any()
    np.testing.assert_allclose(run.results.mass_kg, solved.mass_kg, rtol=1e-13, atol=1e-9)
    assert run.results.max_relative_residual() < 1e-9


def test_the_summary_workbooks_flows_sheet_is_flows_csv_of_the_period_shown(tmp_path):
    """The summary workbook's flows sheet of the regional example listed the generated helpers
    (supply.total[FL] into supply.by_origin[FL]) under expanded ids, 80 rows, where flows.csv has
    77 rows for that period with region, product and origin columns. It is now flows.csv's rows
    of the period shown: same columns, same labels, same numbers."""
    import pandas as pd

    out = tmp_path / "o"
    assert critflow("run", str(REGIONS), "--out", str(out)).returncode == 0
    sheet = pd.read_excel(out / "results.xlsx", sheet_name="flows", engine="openpyxl")
    flows = pd.read_csv(out / "flows.csv")
    shown = flows[flows["period"] == flows["period"].max()].reset_index(drop=True)
    assert list(sheet.columns) == list(shown.columns)
    assert not sheet["flow"].str.contains(r"\.total|\[", regex=True).any()
    labels = [c for c in shown.columns if not c.endswith("]")]
    pd.testing.assert_frame_equal(sheet[labels], shown[labels], check_dtype=False)
    numbers = [c for c in shown.columns if c.endswith("]")]
    np.testing.assert_allclose(sheet[numbers], shown[numbers], rtol=1e-15, atol=0)
