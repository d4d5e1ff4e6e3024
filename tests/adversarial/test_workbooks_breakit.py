"""Breaking the model workbook, `critflow init` and `critflow template` from outside (h19): each
case once made critflow print a traceback, hang, read the wrong data silently, or write a starter
that does not validate."""

from __future__ import annotations

import io
import re
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest

from critflow.errors import CritflowError
from critflow.model import load_model
from critflow.model import workbook as wb
from critflow.model.convert import read_model_data, starter_data, write_model_data
from tests.conftest import critflow_cli


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return write_model_data(starter_data("plant"), tmp_path / "plant.xlsx")


def _edit(path: Path, change) -> Path:
    workbook = openpyxl.load_workbook(path)
    change(workbook)
    workbook.save(path)
    return path


def _patch_part(path: Path, part: str, change) -> Path:
    """Rewrite one part of the zip (sheet XML) as an attacker would."""
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            target.writestr(info.filename, change(data) if info.filename == part else data)
    path.write_bytes(buffer.getvalue())
    return path


PARAMETERS = "xl/worksheets/sheet3.xml"  # README, model, parameters, … in that order
ENTITY = b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/hostname">]>'
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(b"<!ENTITY %c '%s'>" % (98 + i, (b"&%c;" % (97 + i)) * 10) for i in range(9))
    + b"]>"
)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: ENTITY + b.replace(b"sorting_yield</t>", b"&x;</t>"), id="xxe"),
        pytest.param(lambda b: LAUGHS + b.replace(b"sorting_yield</t>", b"&j;</t>"), id="laughs"),
        pytest.param(lambda b: b[:-30], id="truncated-xml"),
        pytest.param(lambda b: b.replace(b"<v>0.95</v>", b"<v>nan</v>"), id="bad-number"),
        pytest.param(
            lambda b: b.replace(b'<c r="B2" t="n"><v>0.95</v>', b'<c r="B2" t="s"><v>999</v>'),
            id="shared-string-index",
        ),
        pytest.param(
            lambda b: b.replace(b'<c r="B2" t="n"><v>0.95</v>', b'<c r="B2" t="d"><v>x</v>'),
            id="bad-date",
        ),
        pytest.param(lambda b: b.replace(b'r="B2"', b'r="ZZZZZ2"'), id="bad-cell-reference"),
    ],
)
def test_broken_sheet_xml_is_a_message_naming_the_sheet(book, change):
    _patch_part(book, PARAMETERS, change)
    with pytest.raises(CritflowError, match=r"sheet 'parameters': cannot be read \(\w+"):
        load_model(book)


def test_broken_sheet_xml_prints_no_traceback(book):
    _patch_part(book, PARAMETERS, lambda b: ENTITY + b.replace(b"sorting_yield</t>", b"&x;</t>"))
    result = critflow_cli("validate", book)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "sheet 'parameters'" in result.stderr


def test_a_small_file_of_many_cells_is_refused_before_openpyxl_spends_minutes(book):
    """97 kB of shared strings took 91 s to read, 14 MB of dense cells 272 s."""
    strings = b"<si><t>x</t></si>" * 300_000
    source = zipfile.ZipFile(io.BytesIO(book.read_bytes()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
        target.writestr("xl/sharedStrings.xml", b"<sst>" + strings + b"</sst>")
    book.write_bytes(buffer.getvalue())
    assert book.stat().st_size < 100_000
    started = time.perf_counter()
    with pytest.raises(CritflowError, match=r"more than 1,000,000 XML tags"):
        load_model(book)
    assert time.perf_counter() - started < 10


def test_the_tag_limit_leaves_room_for_every_shipped_model():
    assert wb.MAX_XML_TAGS >= 100 * 5_000  # the largest example workbook holds about 4,500 tags


def test_a_value_in_a_column_without_header_is_refused_not_dropped(book):
    _edit(book, lambda w: w["flows"].__setitem__("F1", None))  # the header 'value' deleted
    with pytest.raises(CritflowError, match=r"sheet 'flows', row 2, column F: holds a value"):
        load_model(book)
    fresh = write_model_data(starter_data("plant"), book.parent / "far.xlsx")
    _edit(fresh, lambda w: w["parameters"].__setitem__("Z9", 0.5))
    with pytest.raises(CritflowError, match=r"sheet 'parameters', row 9, column Z: holds a value"):
        load_model(fresh)


@pytest.mark.parametrize(
    ("sheet", "change", "expected"),
    [
        ("transfer", lambda s: s.delete_rows(1), "'process', 'output'"),
        ("transfer", lambda s: s.delete_cols(2, 10), "'process', 'output'"),
        ("scenarios", lambda s: s.delete_cols(3, 5), "'scenario', 'section', 'key', 'value'"),
        ("inventories", lambda s: (s.delete_cols(2, 5), s.__setitem__("A2", "sorting")), "'item'"),
        ("flows", lambda s: s.__setitem__("A1", "ID"), "the header 'id'"),
    ],
)
def test_headers_missing_or_moved_are_named(book, sheet, change, expected):
    """These raised ValueError/IndexError tracebacks, or read the first data row as headers."""
    _edit(book, lambda w: change(w[sheet]))
    with pytest.raises(CritflowError) as caught:
        load_model(book)
    text = str(caught.value)
    assert f"sheet '{sheet}', row 1: the headers are" in text and expected in text


def test_columns_in_another_order_read_the_same(book):
    def swap(w):
        sheet = w["flows"]
        for r in range(1, sheet.max_row + 1):
            a, c = sheet.cell(r, 1).value, sheet.cell(r, 3).value
            sheet.cell(r, 1).value, sheet.cell(r, 3).value = c, a

    expected = read_model_data(book)
    assert read_model_data(_edit(book, swap)) == expected


@pytest.mark.parametrize(
    ("title", "renamed"),
    [("flows", "Flows data"), ("transfer", "Transfer coefficients"), ("model", "model ")],
)
def test_a_renamed_sheet_is_named_not_ignored(book, title, renamed):
    def rename(w):
        w[title].title = renamed

    with pytest.raises(CritflowError, match=rf"sheet '{renamed}': is not read.*'{title}'"):
        load_model(_edit(book, rename))


def test_a_sheet_of_notes_is_still_allowed(book):
    _edit(book, lambda w: w.create_sheet("sources")["A1"].__setattr__("value", "Smith 2020"))
    assert load_model(book).spec.name == "plant"


@pytest.mark.parametrize(
    ("sheet", "row", "what"),
    [
        ("parameters", ["sorting_yield", 0.5], "the parameter 'sorting_yield'"),
        ("model", ["unit", "kg/a"], "the setting 'unit'"),
        ("transfer", ["sorting", "sorted_scrap", 0.2, 0.3, 0.3], "the output 'sorted_scrap'"),
        ("compositions", ["scrap", 0.5, 0.1], "the composition of 'scrap'"),
        ("scenarios", ["better_sorting", "parameters", "sorting_yield", 0.5], "sorting_yield"),
    ],
)
def test_a_row_given_twice_is_refused_not_silently_overwritten(book, sheet, row, what):
    """A YAML file refuses a repeated key; the workbook took the last row without a word."""
    _edit(book, lambda w: w[sheet].append(row))
    with pytest.raises(CritflowError, match=rf"{re.escape(what)}.* is given twice \(also in sheet"):
        load_model(book)


def test_a_formula_excel_never_computed_is_named_not_read_as_empty(book):
    _edit(book, lambda w: w["parameters"].__setitem__("B2", "=0.9+0.05"))
    with pytest.raises(CritflowError, match=r"row 2, column B 'value': holds the formula '=0.9"):
        load_model(book)


def test_a_formula_with_a_computed_value_is_read(book):
    """As Excel saves it: the formula and its cached value, <c><f>…</f><v>…</v></c>."""
    _patch_part(
        book,
        PARAMETERS,
        lambda b: b.replace(
            b'<c r="B2" t="n"><v>0.95</v>', b'<c r="B2"><f>0.9+0.05</f><v>0.95</v>'
        ),
    )
    assert read_model_data(book)["parameters"]["sorting_yield"] == 0.95


@pytest.mark.parametrize("text", ["=== important ===", "=SUM(1,2)", "='x'", "= 1"])
def test_a_text_starting_with_equals_survives_a_workbook(tmp_path, text):
    """openpyxl writes such a text as a formula, which read back as nothing."""
    data = starter_data("plant")
    data["description"] = text
    data["processes"][0]["name"] = text
    back = read_model_data(write_model_data(data, tmp_path / "m.xlsx"))
    assert back["description"] == text and back["processes"][0]["name"] == text


@pytest.mark.parametrize("value", [{"08": None}, {"a": "1.5e3"}, ["010", "yes", "NO", "null"]])
def test_texts_yaml_1_2_reads_as_numbers_stay_texts(value):
    """'08' is a text to PyYAML (YAML 1.1), which wrote it unquoted, but the number 8 to critflow."""
    assert wb._value(wb._cell(value), "cell") == value


@pytest.mark.parametrize("name", ["a: b", "{x}", "#x", "null", "123", "true"])
def test_init_and_template_write_a_starter_that_validates_whatever_the_name(tmp_path, name):
    """The name was pasted into the YAML unquoted: 'a: b' failed to parse, '123' was a number."""
    assert critflow_cli("init", name, cwd=tmp_path).returncode == 0
    assert load_model(tmp_path / f"{name}.yaml").spec.name == name
    made = critflow_cli("template", f"{name}.xlsx", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert load_model(tmp_path / f"{name}.xlsx").spec.name == name


@pytest.mark.parametrize("name", ["", "/", "a\nb"])
def test_init_refuses_a_name_that_is_no_file_name(tmp_path, name):
    result = critflow_cli("init", name, cwd=tmp_path)
    assert result.returncode == 2 and "is not a name for a model file" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_keeps_an_upper_case_ending(tmp_path):
    assert critflow_cli("init", "plant.YAML", cwd=tmp_path).returncode == 0
    assert (tmp_path / "plant.YAML").exists() and not (tmp_path / "plant.YAML.yaml").exists()


@pytest.mark.parametrize("command", ["template", "convert"])
def test_writing_where_one_cannot_is_a_message(tmp_path, book, command):
    folder = tmp_path / "folder.xlsx"
    folder.mkdir()
    for target in (folder, Path("/proc/critflow-test.xlsx")):
        args = (book,) if command == "convert" else ()
        result = critflow_cli(command, *args, target, "--force")
        assert result.returncode == 2, result.stderr
        assert "cannot be written" in result.stderr and "Traceback" not in result.stderr


def test_a_plant_fed_nothing_reports_no_nan_percent(tmp_path):
    """Recycling efficiency 0/0 printed as 'nan %' in report.html; material recovery showed '—'."""
    import yaml

    model = {
        "critflow": 1,
        "name": "idle",
        "time": {"start": 2025, "end": 2025},
        "unit": "t/a",
        "elements": ["Cu", "Fe"],
        "processes": [
            {"id": "supply", "kind": "source"},
            {
                "id": "plant",
                "kind": "transfer",
                "transfer": {"a": {"default": 0.7}, "b": {"default": 0.3}},
            },
            {"id": "out", "kind": "sink"},
        ],
        "flows": [
            {"id": "feed", "from": "supply", "to": "plant", "value": {"Cu": 0, "Fe": 0}},
            {"id": "a", "from": "plant", "to": "out", "fate": "recycled"},
            {"id": "b", "from": "plant", "to": "out", "fate": "lost"},
        ],
    }
    (tmp_path / "idle.yaml").write_text(yaml.safe_dump(model))
    result = critflow_cli("run", tmp_path / "idle.yaml", "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Recycling efficiency and material recovery" in report
    assert "nan %" not in report


@pytest.mark.parametrize(
    "index", ["models: [1, 2", "models:\n  - {name: [a], file: x.yaml, question: q}\n"]
)
def test_a_broken_gallery_index_is_a_message(tmp_path, index):
    (tmp_path / "gallery.yaml").write_text(index)
    result = critflow_cli("demo", "--list", "--examples", tmp_path)
    assert result.returncode == 2 and "gallery.yaml" in result.stderr
