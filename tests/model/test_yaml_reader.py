"""The model reader runs on libyaml's C parser when PyYAML has it; it must read every document
exactly as the pure-Python reader does — the same values, the same line/column of every key and
item — and refuse the same hostile texts with a CritflowError (never another exception)."""

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critflow.errors import CritflowError
from critflow.model import source

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    source._C_PARSER is None, reason="PyYAML is built without libyaml here"
)


def _read(text: str, loader: type):
    saved = source._MarkingLoader
    source._MarkingLoader = loader
    try:
        return source._parse_yaml(text, "model.yaml")
    finally:
        source._MarkingLoader = saved


def _outcome(text: str, loader: type):
    try:
        return "ok", _read(text, loader)
    except CritflowError as exc:
        return "refused", exc.problems[0].where.split(",")[0]


def test_the_fast_reader_is_the_default():
    assert source._MarkingLoader is source._CMarkingLoader


@pytest.mark.parametrize(
    "path",
    sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").rglob("*.yaml")),
)
def test_every_shipped_file_reads_the_same_on_both_readers(path):
    text = (ROOT / path).read_text(encoding="utf-8")
    fast, slow = _read(text, source._CMarkingLoader), _read(text, source._PythonMarkingLoader)
    assert repr(fast) == repr(slow)  # repr: NaN equals itself there
    assert fast[1], "positions were recorded"


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(min_size=1, max_size=8) | st.integers(1990, 2060), children, max_size=4
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.booleans())
def test_generated_documents_read_the_same_on_both_readers(document, flow_style):
    text = yaml.safe_dump(
        {"critflow": 1, "data": document}, default_flow_style=flow_style, allow_unicode=True
    )
    fast, slow = _outcome(text, source._CMarkingLoader), _outcome(text, source._PythonMarkingLoader)
    assert fast[0] == slow[0]
    assert repr(fast) == repr(slow)


@settings(max_examples=400, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab:-[]{},&*|>'\"#%@ \t\n\r\x00\x85\ufeff0.5e")), max_size=60
    )
)
def test_any_text_is_read_as_the_python_reader_does_or_refused(text):
    fast, slow = _outcome(text, source._CMarkingLoader), _outcome(text, source._PythonMarkingLoader)
    # Where both read a text, they read the same values at the same positions. On the edges of
    # YAML syntax the two lexers differ (libyaml allows a tab after a value and '>#'; critflow
    # refuses a byte-order mark inside the text before either reads it; a bare '!' tag, left out
    # of the alphabet, is '' in libyaml and None in PyYAML). There one of them refuses with a
    # CritflowError naming the line, never another exception (_outcome lets those through).
    if fast[0] == slow[0] == "ok":
        assert repr(fast) == repr(slow)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("critflow: 1\nv: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 48 levels deep"),
        ("a: &a [1, *a]\n", "recursive data"),
        ("critflow: 1\nv: \x07\n", "control character U+0007"),
        ("critflow: 1\n\x00\nprocesses: []\n", "control character U+0000"),
    ],
    ids=["deep", "recursive-alias", "control-character", "nul"],
)
def test_hostile_texts_are_refused_on_the_fast_reader(text, expected):
    with pytest.raises(CritflowError) as info:
        _read(text, source._CMarkingLoader)
    message = str(info.value)
    assert expected in message and "line" in message
