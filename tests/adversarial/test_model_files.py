"""Hostile model files (issue 18, "Model files"): every case ends in a clean CritflowError that names
the file/line or field path, quickly, without reading outside the model's folder.

The shared helpers here (``STOCK``, ``time_limit``, ``load_error``) are used by the other
``test_model_files*`` modules of this folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import yaml

import critflow
from critflow.errors import CritflowError
from critflow.model import source
from critflow.model.series_files import MAX_DATA_FILE_BYTES
from tests.model.test_bad_input import BASE

STOCK = """
critflow: 1
name: fleet
time: {start: 2020, end: 2024}
unit: t/a
elements: [Li, rest]
parameters: {scale: 12.0}
processes:
  - {id: supply, kind: source}
  - id: fleet
    kind: stock
    lifetime: {distribution: weibull, shape: 2.3, scale: scale}
    initial_stock: {total: 1000, cohorts: {2018: 400, 2019: 600}}
  - {id: scrap, kind: sink}
flows:
  - {id: sales, from: supply, to: fleet, value: {2020: 100, 2024: 300}, composition: {Li: 0.02}}
  - {id: eol, from: fleet, to: scrap}
"""

SECRET = "SECRET-line-that-must-never-appear"


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail (instead of hanging) when the block runs longer than ``seconds`` (POSIX only)."""
    if not hasattr(signal, "setitimer"):  # pragma: no cover - Windows
        yield
        return

    def _expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_error(path_or_text: str | Path, seconds: float = 20, **options) -> str:
    """The CritflowError text of loading and solving a model (file path or YAML text)."""
    with time_limit(seconds), pytest.raises(CritflowError) as info:
        if isinstance(path_or_text, Path):
            model = critflow.load_model(path_or_text, **options)
        else:
            model = critflow.model_from_text(path_or_text, file="model.yaml", **options)
        critflow.solve(model)
    message = str(info.value)
    assert message.strip() and "Traceback" not in message
    return message


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- YAML bombs, nesting and size ------------------------------------------------------------

BILLION_LAUGHS = (
    "critflow: 1\nname: lol\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
)


def test_billion_laughs_stops_at_once_and_small():
    # expanded, a9 holds 9**10 ≈ 3.5e9 strings; the reader stops when aliases pass 100,000 values
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = load_error(BILLION_LAUGHS, seconds=10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 5
    assert peak < 50e6, f"peak {peak / 1e6:.0f} MB"
    assert (
        "model.yaml, line" in message and "aliases (*name) expand to more than 100,000" in message
    )


def test_merge_key_bomb_is_refused_too():
    text = "critflow: 1\nname: lol\nb0: &b0 {x0: 1, x1: 2, x2: 3, x3: 4}\n" + "".join(
        f"b{i}: &b{i} {{{', '.join(f'k{j}: *b{i - 1}' for j in range(8))}}}\n" for i in range(1, 9)
    )
    assert "aliases (*name) expand" in load_error(text, seconds=10)


def test_recursive_alias_is_refused():
    message = load_error("critflow: 1\nname: x\nloop: &a [1, *a]\n")
    assert "line 3" in message and "refers to the collection it is part of" in message


def test_reasonable_aliases_still_work():
    # one composition written once and reused by alias gives the same flows as written out twice
    composition = "composition: &mix {Co: 0.1, Ni: 0.2}"
    plain = critflow.solve(critflow.model_from_text(BASE))
    text = replaced(BASE, "composition: {Co: 0.1, Ni: 0.2}", composition)
    text += (
        "scenarios:\n  baseline: {}\n  other: {flows: {feed: {value: 2000, composition: *mix}}}\n"
    )
    aliased = critflow.solve(critflow.model_from_text(text))
    base_flows = aliased.mass_kg[aliased.inputs.scenarios.index("baseline")]
    other_flows = aliased.mass_kg[aliased.inputs.scenarios.index("other")]
    assert np.allclose(base_flows, plain.mass_kg[0], rtol=1e-12)
    assert np.allclose(other_flows, 2 * plain.mass_kg[0], rtol=1e-12)  # linear in the feed


@pytest.mark.parametrize(
    "text",
    [
        "critflow: 1\nvalue: " + "[" * 5000 + "]" * 5000 + "\n",  # flow style
        "critflow: 1\n" + "".join(" " * i + f"k{i}:\n" for i in range(200)) + " " * 200 + "x: 1\n",
        "critflow: 1\nv: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n",
    ],
    ids=["flow-lists", "block-mappings", "flow-mappings"],
)
def test_deep_yaml_nesting_is_refused_without_recursion_error(text):
    message = load_error(text, seconds=10)
    assert "nested more than 48 levels deep" in message and "line" in message


def test_deep_json_nesting_is_refused(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{"critflow": 1, "v": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested more than 48 levels deep" in load_error(path)
    with pytest.raises(CritflowError, match="nested more than"):
        critflow.model_from_dict({"critflow": 1, "v": _nested(100)})


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def test_a_huge_model_file_is_refused_by_size_before_reading(tmp_path):
    path = tmp_path / "model.yaml"
    with path.open("wb") as handle:  # sparse: the size is there, nothing is written
        handle.truncate(source.MAX_MODEL_BYTES + 1)
    with time_limit(5):
        message = load_error(path)
    assert "more than the 4,194,304 bytes" in message and str(path) in message
    with pytest.raises(CritflowError, match="characters, more than"):
        critflow.model_from_text("#" * (source.MAX_MODEL_BYTES + 1))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_and_folders_as_the_model_file(tmp_path):
    assert "is a device, not a file" in load_error(Path("/dev/zero"), seconds=5)
    assert "is a folder, not a file" in load_error(tmp_path, seconds=5)
    assert "no such file" in load_error(tmp_path / "missing.yaml")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_as_the_model_file_does_not_wait(tmp_path):
    fifo = tmp_path / "model.yaml"
    os.mkfifo(fifo)
    assert "is a named pipe, not a file" in load_error(fifo, seconds=5)


def test_encodings_bom_and_tabs(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_bytes(BASE.encode("utf-8").replace(b"two-step plant", b"two-step \xff plant"))
    message = load_error(path)
    assert "line 3" in message and "is not UTF-8" in message
    path.write_text(BASE, encoding="utf-16")
    assert "is not UTF-8" in load_error(path)
    # a byte-order mark (Windows editors) is fine, in YAML and JSON alike
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode("utf-8"))
    critflow.solve(critflow.load_model(path))
    as_json = tmp_path / "model.json"
    as_json.write_bytes(b"\xef\xbb\xbf" + json.dumps(yaml.safe_load(BASE)).encode("utf-8"))
    critflow.solve(critflow.load_model(as_json))
    tabbed = replaced(BASE, "    kind: transfer\n", "\tkind: transfer\n")
    assert "YAML syntax error" in load_error(tabbed) and "line 11" in load_error(tabbed)


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ("    value: " + "9" * 400 + "\n", "the integer has 400 digits, too large"),
        ("    value: " + "9" * 5000 + "\n", "cannot be read as int"),
        (
            "    value: !!python/object/apply:os.system [echo hi]\n",
            "could not determine a constructor",
        ),
        ("    value: !!float abc\n", "cannot be read as float"),
        ("    ? [a, b]\n    : 1\n    value: 1000\n", "a key is list"),
        ("    value: 1000\n    value: 1000\n", "appears twice"),
        ("    value: *nowhere\n", "undefined alias"),
    ],
    ids=["huge-int", "giant-int", "python-tag", "bad-float-tag", "list-key", "duplicate", "alias"],
)
def test_odd_yaml_values_end_in_clean_errors(new, expected):
    message = load_error(replaced(BASE, "    value: 1000\n", new))
    assert expected in message and "model.yaml, line 2" in message  # the feed's lines 21-23


def test_a_date_where_a_year_goes():
    # YAML 1.1 made 2025-13-45 a date (and crashed on the month); YAML 1.2 keeps it text
    message = load_error(replaced(BASE, "time: {start: 2025,", "time: {start: 2025-13-45,"))
    assert "(time.start)" in message and "line 4" in message


def test_huge_integer_in_json(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{"critflow": 1, "name": ' + "7" * 5000 + "}")
    assert "cannot be read" in load_error(path)


# --- NaN, infinity and overflow --------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("    value: 1000\n", "    value: .nan\n", "flows[0].value"),
        ("    value: 1000\n", "    value: -.inf\n", "flows[0].value"),
        ("    value: 1000\n", "    value: {2025: .inf}\n", "flows[0].value[2025]"),
        ("    value: 1000\n", "    value: {Co: .nan, Ni: 2}\n", "flows[0].value.Co"),
        ("{Co: 0.1, Ni: 0.2}", "{Co: .NaN, Ni: 0.2}", "flows[0].composition.Co"),
        ("{default: 0.9, Co", "{default: .inf, Co", "processes[1].transfer.black_mass.default"),
        ("{yield_co: 0.95}", "{yield_co: .nan}", "parameters.yield_co"),
        ("{yield_co: 0.95}", "{yield_co: {2020: 0.9, 2030: .inf}}", "parameters.yield_co[2030]"),
        (
            "{yield_co: 0.95}",
            "{yield_co: {value: 0.95, distribution: normal, sd: .nan}}",
            "parameters.yield_co.sd",
        ),
        ("{yield_co: 0.95}", "{yield_co: 'nan'}", "parameters.yield_co"),  # a string of it too
    ],
)
def test_nan_and_infinity_are_refused_at_validation_with_the_field_path(old, new, path):
    message = load_error(replaced(BASE, old, new))
    assert f"({path})" in message, message
    assert "NaN" in message or "infinite" in message or "finite number" in message


def test_nan_in_scenarios_stocks_and_measurements():
    text = BASE + "scenarios:\n  s: {parameters: {yield_co: .nan}, flows: {feed: {value: .inf}}}\n"
    message = load_error(text)
    assert "(scenarios.s.parameters.yield_co)" in message
    assert "(scenarios.s.flows.feed.value)" in message  # all problems at once
    stock = replaced(STOCK, "shape: 2.3", "shape: .nan")
    assert "(processes[1].lifetime.shape)" in load_error(stock)
    stock = replaced(STOCK, "total: 1000", "total: -.inf")
    assert "(processes[1].initial_stock.total)" in load_error(stock)
    measured = BASE + "measurements:\n  - {flow: feed, value: 1000, sd: .nan}\n"
    assert "(measurements[0].sd)" in load_error(measured)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_json_nan_and_infinity(tmp_path, token):
    data = yaml.safe_load(BASE)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data).replace('"value": 1000', f'"value": {token}'))
    message = load_error(path)
    assert "(flows[0].value)" in message and "line 1" in message


@pytest.mark.parametrize(
    ("new", "path"),
    [
        ("    value: 1e308\n    unit: Gt/a\n", "flows[0].value"),  # 1e308 × 1e12 kg overflows
        ("    value: 1e308 Gt/a\n", "flows[0].value"),
        ("    value: 1e25 Gt/a\n", "flows[0].value"),  # finite, but 1e37 kg/a is no real flow
        ("    value: 1e999 t/a\n", "flows[0].value"),
        (
            "    value: {value: 1000, distribution: uniform, low: 0, high: 1e308}\n",
            "flows[0].value",
        ),
    ],
)
def test_overflow_after_unit_conversion_is_refused_with_the_field_path(new, path):
    message = load_error(replaced(BASE, "    value: 1000\n", new))
    assert f"({path})" in message and "after conversion" in message


def test_overflow_in_stock_masses_and_expressions():
    message = load_error(replaced(STOCK, "total: 1000", "total: 1e300"))
    assert "(processes[1].initial_stock.total)" in message and "beyond 1e+30" in message
    message = load_error(replaced(BASE, "    value: 1000\n", "    value: 1e300 * 1e300\n"))
    assert "(flows[0].value)" in message
    message = load_error(replaced(BASE, "Co: yield_co}", "Co: yield_co * 1e999}"))
    assert "beyond the float range" in message


def test_a_power_tower_in_a_quantity_does_not_hang():
    # pint evaluates powers exactly: 10**10**10 would take hours
    for text in ("10**10**10 t/a", "10**(10**10) t/a", "2 t**99**99/a", "10⁹⁹⁹⁹⁹⁹⁹⁹ t/a"):
        message = load_error(replaced(BASE, "    value: 1000\n", f"    value: {text}\n"), 10)
        assert "(flows[0].value)" in message
    message = load_error(replaced(BASE, "unit: t/a\n", "unit: t**999**999/a\n"), 10)
    assert "(unit)" in message and "exponent" in message


def test_an_enormous_expression_is_refused():
    expression = " + ".join(["yield_co"] * 20_000)
    message = load_error(replaced(BASE, "Co: yield_co}", f"Co: {expression}}}"), 10)
    assert "longer than the 500" in message


def test_measurement_standard_deviation_that_overflows_weights():
    text = BASE + "measurements:\n  - {flow: black_mass, value: 900, sd: 1e-320}\n"
    message = load_error(text)
    assert "(measurements[0].sd)" in message and "1/sd² overflows" in message


# --- 1.5e3 and other YAML 1.1 traps ----------------------------------------------------------


@pytest.mark.parametrize(
    "written", ["1.5e3", "1.5E+3", "'1.5e3'", "1500.", "15e2", "'1500'", "+1.5e+3"]
)
def test_numbers_in_exponent_form_are_numbers(written):
    # YAML 1.1 reads 1.5e3 as a string (its exponent needs a sign); YAML 1.2 and critflow: 1500
    model = critflow.model_from_text(replaced(BASE, "    value: 1000\n", f"    value: {written}\n"))
    results = critflow.solve(model)
    feed = results.inputs.topology.flow_ids.index("feed")
    assert results.mass_kg[0, 0, :, feed].sum() == pytest.approx(1500 * 1000)  # t/a → kg/a


def test_yaml_12_scalars():
    data, _ = source.parse_text("a: 010\nb: 0o10\nc: NO\nd: yes\ne: 1e3\nf: .5\ng: 0x1F\nh: ~\n")
    assert data == {
        "a": 10,
        "b": 8,
        "c": "NO",
        "d": "yes",
        "e": 1000.0,
        "f": 0.5,
        "g": 31,
        "h": None,
    }


def test_a_quantity_whose_unit_has_no_dimension_says_so():
    # used to say "'dimensionless' is not a mass flow", naming neither the value nor the unit
    message = load_error(replaced(BASE, "    value: 1000\n", "    value: 1.5e3 ppm\n"))
    assert "(flows[0].value)" in message and "'1.5e3 ppm' is a plain number" in message


# --- data files named by the model -----------------------------------------------------------

SERIES_MODEL = replaced(
    STOCK, "value: {2020: 100, 2024: 300}", "value: {file: FILE, column: tonnes}"
)


def write_model(folder: Path, file: str, name: str = "model.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(SERIES_MODEL.replace("FILE", json.dumps(file)))
    return path


def series_csv(values=(100, 150, 200, 250, 300)) -> str:
    return "year,tonnes\n" + "".join(f"{2020 + i},{v}\n" for i, v in enumerate(values))


def sales_kg(model: critflow.Model) -> np.ndarray:
    results = critflow.solve(model)
    sales = results.inputs.topology.flow_ids.index("sales")
    return results.mass_kg[0, :, :, sales].sum(axis=-1)


@pytest.fixture
def outside(tmp_path) -> Path:
    """A valid series CSV outside the model's folder (tmp/outside/series.csv)."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "series.csv").write_text(series_csv((777, 777, 777, 777, 777)))
    return folder / "series.csv"


def test_a_file_inside_the_folder_is_read(tmp_path):
    folder = tmp_path / "model"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "series.csv").write_text(series_csv())
    model = critflow.load_model(write_model(folder, "data/series.csv"))
    assert np.allclose(sales_kg(model), np.array([100, 150, 200, 250, 300]) * 1000)


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink", "symlinked-folder"])
def test_files_outside_the_model_folder_are_refused(tmp_path, outside, how):
    folder = tmp_path / "model"
    folder.mkdir()
    if how == "absolute":
        name = str(outside)
    elif how == "dotdot":
        name = "../outside/series.csv"
    elif how == "symlink":
        (folder / "series.csv").symlink_to(outside)
        name = "series.csv"
    else:
        (folder / "data").symlink_to(outside.parent, target_is_directory=True)
        name = "data/series.csv"
    path = write_model(folder, name)
    message = load_error(path)
    assert "lies outside the model's folder" in message and "--allow-outside-files" in message
    assert "(flows[0].value)" in message and "777" not in message
    # the user's explicit flag lets a trusted model read it
    model = critflow.load_model(path, allow_outside_files=True)
    assert np.allclose(sales_kg(model), 777 * 1000)


@pytest.mark.skipif(not Path("/etc/passwd").exists(), reason="needs /etc/passwd")
def test_etc_passwd_is_neither_read_nor_echoed(tmp_path):
    first_line = Path("/etc/passwd").read_text().splitlines()[0]
    message = load_error(write_model(tmp_path, "/etc/passwd"))
    assert "outside the model's folder" in message and first_line not in message
    message = load_error(write_model(tmp_path, "/etc/passwd"), allow_outside_files=True)
    assert "has no column" in message
    assert first_line not in message and "root" not in message  # not a header of names


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_devices_pipes_folders_and_huge_files_are_refused_before_reading(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "zero.csv").symlink_to("/dev/zero")
    assert "is a device, not a file" in load_error(
        write_model(folder, "zero.csv"), 5, allow_outside_files=True
    )
    os.mkfifo(folder / "pipe.csv")
    assert "is a named pipe, not a file" in load_error(write_model(folder, "pipe.csv"), 5)
    (folder / "dir.csv").mkdir()
    assert "is a folder, not a file" in load_error(write_model(folder, "dir.csv"), 5)
    with (folder / "huge.csv").open("wb") as handle:
        handle.truncate(MAX_DATA_FILE_BYTES + 1)
    assert "more than the 67,108,864 bytes" in load_error(write_model(folder, "huge.csv"), 5)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"year,tonnes\n2020,1\n2021,\xff\n", "line 3"),
        (b"year,tonnes\n2020,1\x00\n", "binary file"),
        (f"root:x:0:{SECRET}\n2020,1\n".encode(), "first line does not look like a header"),
        (b"yr,tonnes\n2020,1\n", "Did you mean 'yr'? Columns: tonnes, yr"),
        (b"year,tonnes\n2020,nan\n", "NaN or infinity"),
        (b"year,tonnes\n2020,1e999\n", "NaN or infinity"),
        (b"year,tonnes\n2020,-inf\n", "NaN or infinity"),
        (f"year,tonnes\n2020,{SECRET}\n".encode(), "is not a number"),
        (f"year,tonnes\n{SECRET},1\n".encode(), "is not a year"),
        (b"year,tonnes\n99999999,1\n", "is not a year"),
        (b"year,tonnes\n1,1\n9999,2\n", "has no row for 2"),
        (b"", "is empty"),
        (b"\xef\xbb\xbfyear,tonnes\n2020,1\n", None),  # a BOM (Excel's CSV UTF-8) is fine
        (b'year,tonnes\n2020,"1\n' + b"x" * 200_000 + b'"\n', "not a readable CSV"),
    ],
)
def test_bad_series_files_name_line_and_column_never_content(tmp_path, content, expected):
    (tmp_path / "series.csv").write_bytes(content)
    path = write_model(tmp_path, "series.csv")
    if expected is None:
        critflow.load_model(path)
        return
    message = load_error(path)
    assert expected in message and "series.csv" in message
    assert SECRET not in message


def test_empirical_distribution_files_follow_the_same_rules(tmp_path, outside):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "samples.csv").write_text(
        "tonnes\n" + "".join(f"{0.9 + i / 1000}\n" for i in range(50))
    )

    def model_with(file: str) -> Path:
        text = replaced(
            STOCK,
            "parameters: {scale: 12.0}",
            "parameters: {scale: 12.0, share: {distribution: empirical, file: "
            + json.dumps(file)
            + ", column: tonnes}}",
        )
        path = folder / "model.yaml"
        path.write_text(replaced(text, "composition: {Li: 0.02}", "composition: {Li: share / 45}"))
        return path

    model = critflow.load_model(model_with("samples.csv"))  # read and checked at load time
    assert critflow.solve(model).mass_kg.shape[0] == 1
    message = load_error(model_with(str(outside)))
    assert "(parameters.share)" in message and "outside the model's folder" in message
    message = load_error(model_with("../outside/series.csv"))
    assert "outside the model's folder" in message
    (folder / "bad.csv").write_text(f"a:{SECRET}\n1\n")
    message = load_error(model_with("bad.csv"))
    assert "has no column 'tonnes'" in message and SECRET not in message


def test_refusals_happen_in_under_a_second_each(tmp_path):
    # the cases, timed together: none may take long (no hang, no expansion)
    cases = [BILLION_LAUGHS, "critflow: 1\nv: " + "[" * 5000 + "]" * 5000 + "\n"]
    started = time.perf_counter()
    for text in cases:
        load_error(text, seconds=10)
    assert time.perf_counter() - started < 3
    assert sys.getrecursionlimit() >= 1000  # the limits hold at Python's default recursion limit
    assert math.isfinite(started)
