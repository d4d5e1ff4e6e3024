"""Generated hostile model files: start from small valid models and mutate them.

Properties, for every generated file:
- loading, solving (and reconciling, when the model has measurements) ends either in results whose
  every number is finite, or in a CritflowError with a message — never another exception, never
  longer than a time limit;
- NaN or infinity put anywhere a number goes is refused at loading, naming that field's path;
- whatever a model names as a data file, no file outside the model's folder is ever opened (without
  ``allow_outside_files``), and no error repeats a line of a file it could not use.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import json
import math
import os
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import critflow
from critflow.errors import CritflowError
from critflow.model.source import format_path, parse_text
from tests.adversarial.test_model_files import BILLION_LAUGHS, SECRET, STOCK, time_limit
from tests.model.test_bad_input import BASE

RICH = """
critflow: 1
name: market, scenarios, distributions and a measurement
time: {start: 2024, end: 2026}
unit: kt/a
elements: [Li, Co, rest]
parameters:
  recovery: {value: 0.9, distribution: triangular, low: 0.8, high: 0.95}
  demand_growth: {2024: 1.0, 2026: 1.2}
processes:
  - {id: mines, kind: source}
  - {id: recyclers, kind: source}
  - {id: market, kind: market, balancing: primary}
  - id: use
    kind: transfer
    transfer:
      to_recycling: {default: recovery, Co: 0.95}
      losses: {default: 1 - recovery, Co: 0.05}
  - {id: recycled_out, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - {id: primary, from: mines, to: market}
  - {id: secondary, from: recyclers, to: market, value: '20 t/a', composition: {Li: 0.1, Co: 0.2}}
  - id: consumption
    from: market
    to: use
    value: 5 * demand_growth
    composition: {Li: 0.05, Co: {value: 0.1, distribution: uniform, low: 0.09, high: 0.11}}
  - {id: to_recycling, from: use, to: recycled_out, fate: recycled}
  - {id: losses, from: use, to: landfill, fate: landfill}
measurements:
  - {flow: losses, value: 0.5, sd: '5 %'}
scenarios:
  baseline: {}
  more: {parameters: {demand_growth: 1.5}, flows: {secondary: {value: 40 t/a}}}
"""

SEEDS = {"plant": BASE, "stock": STOCK, "rich": RICH}
SEED_DATA = {name: parse_text(text)[0] for name, text in SEEDS.items()}

SETTINGS = settings(  # CRITFLOW_FUZZ_EXAMPLES=2000 for a longer hunt than CI's
    max_examples=int(os.environ.get("CRITFLOW_FUZZ_EXAMPLES", "60")),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no tracing "explain"
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --- strategies ------------------------------------------------------------------------------

SPECIAL_NUMBERS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 1.7976931348623157e308, 1e300]
SPECIAL_NUMBERS += [1e31, 1e29, 5e-324, -0.0, -1.0, 2.0, 10**400, 2**63, -(2**63) - 1, 10**20]
numbers = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**25), max_value=10**25),
)
SPECIAL_TEXT = [
    "",
    " ",
    "1.5e3",
    "'1.5e3'",
    "nan",
    "-inf",
    "1e999 t/a",
    "1e308 Gt/a",
    "10**10**10 t/a",
    "2 t**99**99",
    "9**9**9",
    "1e308 * 1e308",
    "__import__('os').system('true')",
    "(lambda: 1)()",
    "1 +",
    "rest",
    "default",
    "recovery",
    "yield_co",
    "scale",
    "x" * 600,
    "\t",
    "\x00",
    "\ufeff",
    "é" * 20,
    "2025-13-45",
    "12 m/s",
    "5 ppm",
    "-5 t/a",
    "20 a",
    "H" + "9" * 110,
    "(" * 60 + "H" + ")" * 60,
    "Li2CO3",
    "NiSO4·6H2O·" * 10,
]
texts = st.one_of(st.sampled_from(SPECIAL_TEXT), st.text(max_size=20))
keys = st.one_of(
    st.sampled_from(["value", "unit", "file", "column", "distribution", "default", "Li", "Co"]),
    st.sampled_from(["composition", "transfer", "kind", "id", "from", "to", "bogus", "<<"]),
    st.sampled_from(["compound", "price", "lifetime", "sd", "scale", "stock", "initial_stock"]),
    st.integers(min_value=1900, max_value=2100),
    st.text(max_size=8),
)
FILE_NAMES = ["/etc/passwd", "/dev/zero", "../outside.csv", "data", "missing.csv", "", "\x00x"]
file_refs = st.fixed_dictionaries(
    {"file": st.one_of(st.sampled_from(FILE_NAMES), st.text(max_size=10))},
    optional={"column": st.sampled_from(["tonnes", "year", "x"])},
)
DISTRIBUTIONS = ["normal", "lognormal", "triangular", "uniform", "beta", "empirical", "weibull"]
distributions = st.fixed_dictionaries(
    {"distribution": st.sampled_from(DISTRIBUTIONS)},
    optional={k: numbers for k in ("value", "low", "high", "sd", "alpha", "beta")},
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    st.one_of(scalars, file_refs, distributions),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=3)),
    max_leaves=6,
)


def _nodes(data: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    found = [(path, data)]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _nodes(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _nodes(value, (*path, i))
    return found


def _at(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def mutated_models(draw) -> tuple[str, str]:
    """(format, text) of a seed model with one to three hostile changes."""
    data = copy.deepcopy(SEED_DATA[draw(st.sampled_from(sorted(SEED_DATA)))])
    for _ in range(draw(st.integers(1, 3))):
        nodes = [(p, n) for p, n in _nodes(data) if p]
        path, node = draw(st.sampled_from(nodes))
        parent, key = _at(data, path[:-1]), path[-1]
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add", "nest"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(node, dict):
            node[draw(keys)] = draw(values)
        elif action == "nest":
            for _ in range(draw(st.integers(1, 80))):
                node = [node] if draw(st.booleans()) else {"k": node}
            parent[key] = node
    fmt = draw(st.sampled_from(["yaml", "yaml", "json"]))
    if fmt == "json":
        text = json.dumps(data, default=str)
    else:
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=10_000)
    return fmt, text


TEXT_EDITS = [
    "tab",
    "bom",
    "duplicate-line",
    "bad-bytes",
    "truncate",
    "nul",
    "alias-bomb",
    "deep",
    "crlf",
    "anchor-reuse",
]


@st.composite
def damaged_files(draw) -> bytes:
    """A seed model file with damage done to its bytes."""
    raw = SEEDS[draw(st.sampled_from(sorted(SEEDS)))].encode("utf-8")
    lines = raw.split(b"\n")
    for _ in range(draw(st.integers(1, 2))):
        edit = draw(st.sampled_from(TEXT_EDITS))
        i = draw(st.integers(0, len(lines) - 1))
        if edit == "tab":
            lines[i] = b"\t" + lines[i]
        elif edit == "bom":
            lines[0] = b"\xef\xbb\xbf" + lines[0]
        elif edit == "duplicate-line":
            lines.insert(i, lines[i])
        elif edit == "bad-bytes":
            lines[i] += draw(st.binary(min_size=1, max_size=4))
        elif edit == "truncate":
            lines = lines[: i + 1]
            lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
        elif edit == "nul":
            lines[i] += b"\x00"
        elif edit == "alias-bomb":
            lines += BILLION_LAUGHS.encode().split(b"\n")[2:]
        elif edit == "deep":
            depth = draw(st.integers(40, 3000))
            lines.append(b"deep: " + b"[" * depth + b"]" * depth)
        elif edit == "crlf":
            lines = [line + b"\r" for line in lines]
        elif edit == "anchor-reuse":
            lines.append(b"x: &a [1, 2]\ny: *a\nz: *a")
    return b"\n".join(lines)


# --- properties ------------------------------------------------------------------------------


def _load_solve(path: Path, **options) -> None:
    """Load, solve (and reconcile): results are finite, or a CritflowError is raised."""
    model = critflow.load_model(path, **options)
    results = critflow.solve(model)
    assert np.isfinite(results.mass_kg).all()
    if model.spec.measurements:
        from critflow.engine.reconcile import reconcile

        reconcile(model)


def _clean_outcome(path: Path, seconds: float = 20, **options) -> str | None:
    """None when the model ran, else the CritflowError's message; anything else fails."""
    with time_limit(seconds):
        try:
            _load_solve(path, **options)
        except CritflowError as exc:
            message = str(exc)
            assert message.strip() and "Traceback" not in message
            return message
    return None


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated")


@SETTINGS
@given(case=mutated_models())
def test_mutated_models_end_in_results_or_a_clean_error(folder, case):
    fmt, text = case
    path = folder / f"model.{fmt}"
    path.write_text(text, encoding="utf-8")
    _clean_outcome(path)


@SETTINGS
@given(raw=damaged_files())
def test_damaged_files_end_in_results_or_a_clean_error(folder, raw):
    path = folder / "damaged.yaml"
    path.write_bytes(raw)
    _clean_outcome(path, seconds=10)


@st.composite
def a_number_made_not_finite(draw) -> tuple[str, tuple, str]:
    name = draw(st.sampled_from(sorted(SEED_DATA)))
    data = copy.deepcopy(SEED_DATA[name])
    leaves = [
        p
        for p, n in _nodes(data)
        if isinstance(n, int | float) and not isinstance(n, bool) and p[:1] != ("critflow",)
    ]
    path = draw(st.sampled_from(leaves))
    _at(data, path[:-1])[path[-1]] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    fmt = draw(st.sampled_from(["yaml", "json"]))
    text = yaml.safe_dump(data, sort_keys=False) if fmt == "yaml" else json.dumps(data)
    if fmt == "json":  # JSON keys are text: {2024: …} is read back as {"2024": …}
        path = tuple(
            str(part) if isinstance(_at(data, path[:i]), dict) else part
            for i, part in enumerate(path)
        )
    return fmt, path, text


@SETTINGS
@given(case=a_number_made_not_finite())
def test_nan_or_infinity_anywhere_a_number_goes_is_refused_with_its_path(folder, case):
    fmt, path, text = case
    file = folder / f"nonfinite.{fmt}"
    file.write_text(text)
    message = _clean_outcome(file, seconds=10)
    assert message is not None, f"{format_path(path)} = NaN/inf was accepted"
    assert f"({format_path(path)})" in message, message


@st.composite
def huge_numbers_anywhere(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SEED_DATA)))
    data = copy.deepcopy(SEED_DATA[name])
    leaves = [p for p, n in _nodes(data) if isinstance(n, int | float) and not isinstance(n, bool)]
    for path in draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=3, unique=True)):
        number = draw(st.sampled_from([1e308, -1e308, 1e300, 1e200, 1e31, 1e-308, 5e-324]))
        _at(data, path[:-1])[path[-1]] = number
    return name, yaml.safe_dump(data, sort_keys=False)


@SETTINGS
@given(case=huge_numbers_anywhere())
def test_huge_and_tiny_numbers_give_finite_results_or_a_clean_error(folder, case):
    _name, text = case
    path = folder / "huge.yaml"
    path.write_text(text)
    _clean_outcome(path)


# --- files named by a model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    """model/ (the model's folder, with good and hostile entries) next to outside/ (a secret)."""
    root = tmp_path_factory.mktemp("tree")
    model, outside = root / "model", root / "outside"
    (model / "data").mkdir(parents=True)
    outside.mkdir()
    good = "year,tonnes\n" + "".join(f"{y},{100 + y - 2020}\n" for y in range(2020, 2025))
    (model / "data" / "series.csv").write_text(good)
    secret = "year,tonnes\n" + "".join(f"{y},777777\n" for y in range(2020, 2025))
    (outside / "series.csv").write_text(secret)
    (outside / "secret.txt").write_text(f"{SECRET}\n")
    (model / "link.csv").symlink_to(outside / "series.csv")
    (model / "secret-link.txt").symlink_to(outside / "secret.txt")
    (model / "outdir").symlink_to(outside, target_is_directory=True)
    (model / "dir.csv").mkdir()
    if hasattr(os, "mkfifo"):
        os.mkfifo(model / "pipe.csv")
    if Path("/dev/zero").exists():
        (model / "zero.csv").symlink_to("/dev/zero")
    (model / "bad.csv").write_bytes(b"year,tonnes\n2020,\xff\xfe\n")
    (model / "nan.csv").write_text("year,tonnes\n2020,nan\n")
    return {"model": model, "outside": outside}


FILE_REFERENCES = [
    "data/series.csv",
    "./data/series.csv",
    "data/../data/series.csv",
    "../outside/series.csv",
    "data/../../outside/series.csv",
    "link.csv",
    "outdir/series.csv",
    "secret-link.txt",
    "OUTSIDE/series.csv",  # replaced by the absolute path of outside/
    "OUTSIDE/secret.txt",
    "/etc/passwd",
    "/dev/zero",
    "zero.csv",
    "pipe.csv",
    "dir.csv",
    "data",
    "bad.csv",
    "nan.csv",
    "missing.csv",
    "~/.bashrc",
    "",
]
PLACES = [  # where in the stock seed a series may come from a file
    ("parameters", "scale"),
    ("flows", 0, "value"),
    ("flows", 0, "composition", "Li"),
    ("processes", 1, "lifetime", "shape"),
]


@contextlib.contextmanager
def opened_paths():
    """Record every path opened through os.open and open() while the block runs."""
    seen: list[str] = []
    real_os_open, real_open = os.open, builtins.open

    def os_open(path, *args, **kwargs):
        seen.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    def any_open(file, *args, **kwargs):
        if isinstance(file, str | bytes | os.PathLike):
            seen.append(os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    with mock.patch("os.open", os_open), mock.patch("builtins.open", any_open):
        yield seen


@SETTINGS
@given(
    reference=st.one_of(st.sampled_from(FILE_REFERENCES), st.text(max_size=12)),
    place=st.sampled_from(PLACES),
    column=st.sampled_from(["tonnes", "year", "x"]),
)
def test_no_file_outside_the_model_folder_is_ever_opened(tree, reference, place, column):
    model_dir, outside = tree["model"], tree["outside"]
    reference = reference.replace("OUTSIDE", str(outside))
    data = copy.deepcopy(SEED_DATA["stock"])
    _at(data, place[:-1])[place[-1]] = {"file": reference, "column": column}
    path = model_dir / "model.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with opened_paths() as seen:
        message = _clean_outcome(path, seconds=10)
    allowed = [model_dir.resolve(), *(Path(p).resolve() for p in (sys.prefix, sys.base_prefix))]
    allowed.append(Path(critflow.__file__).resolve().parent)
    for opened in seen:
        resolved = Path(opened).resolve()
        assert not resolved.is_relative_to(outside.resolve()), f"opened {opened}"
        assert any(resolved.is_relative_to(a) for a in allowed), f"opened {opened}"
    if message is not None:
        assert SECRET not in message and "777777" not in message
        assert "root:" not in message  # /etc/passwd's first line


@pytest.mark.parametrize("reference", ["../outside/series.csv", "link.csv", "OUTSIDE/series.csv"])
def test_with_the_flag_the_outside_file_is_read(tree, reference):
    # the flag is what makes the difference: the same models read the outside file when allowed
    model_dir, outside = tree["model"], tree["outside"]
    data = copy.deepcopy(SEED_DATA["stock"])
    data["flows"][0]["value"] = {
        "file": reference.replace("OUTSIDE", str(outside)),
        "column": "tonnes",
    }
    path = model_dir / "flagged.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert "outside the model's folder" in (_clean_outcome(path) or "")
    model = critflow.load_model(path, allow_outside_files=True)
    results = critflow.solve(model)
    sales = results.inputs.topology.flow_ids.index("sales")
    assert np.allclose(results.mass_kg[0, :, :, sales].sum(axis=-1), 777777 * 1000)
