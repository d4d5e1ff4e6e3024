"""A regional model that cannot be solved is explained with the flows and processes as the model
file writes them, plus the coordinate — never the ids the expansion generates (``imports.total[FL]``,
``imports.by_origin[FL]``, ``refinery[CN]``) that appear nowhere in the user's file (issue 23)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from critflow.engine import solve
from critflow.errors import CritflowError
from critflow.model.load import model_from_text

README = Path(__file__).parents[2] / "README.md"
GENERATED = re.compile(r"[\w.-]+\[[A-Za-z][^\]]*\]|\.total\b|\.by_origin\b")
"""A generated id: an item with its coordinate in brackets (a field path's index, flows[3], is a
number), or the suffix of a split import's total and split process."""


def _readme_model() -> str:
    """The model of the README's 'Regions and trade' section."""
    section = README.read_text(encoding="utf-8").split("## Regions and trade", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def _failure(text: str) -> CritflowError:
    with pytest.raises(CritflowError) as caught:
        solve(model_from_text(text))
    return caught.value


def test_negative_split_import_names_the_flow_as_written():
    """FL's demand cut to 1 t: its refinery sends 0.9 x 2 = 1.8 t Li to market FL, so the
    balancing import of FL would be 0.05 - 1.8 = -1.75 t Li. The error names flow 'imports' at
    region FL and market 'market' at region FL, once per element (the import's split by origin
    is not reported again per origin), on the line of the flow in the file."""
    text = _readme_model().replace("value: {region: {FL: 500,", "value: {region: {FL: 1,")
    error = _failure(text)
    message = str(error)
    assert not GENERATED.findall(message), GENERATED.findall(message)
    li = [p for p in error.problems if " of Li" in p.what]
    assert len(li) == 1, message
    assert "flow 'imports' (region FL" in li[0].what and "-1.75 t/a of Li" in li[0].what
    assert "Market 'market' (region FL)" in li[0].fix
    assert "line 27" in li[0].where and "region FL" in li[0].where


def test_undetermined_regional_flows_are_named_with_their_coordinate():
    """Without the ore's value nothing fixes the refineries' feed: the flows are named 'ore'
    (region FL) and 'ore' (region CN), the fix asks for a value of those (not of a generated
    total of a split import)."""
    text = _readme_model().replace(
        "value: {region: {FL: 100, CN: 1000}},\n     composition: {Li: 0.02}}", "}"
    )
    message = str(_failure(text))
    assert not GENERATED.findall(message), GENERATED.findall(message)
    assert "'ore' (region FL)" in message and "'ore' (region CN)" in message
    fix = message[message.index("Give a value to") :]
    assert "'imports'" not in fix.split("(goods mass")[0]


def test_contradiction_names_processes_and_given_values_with_coordinates():
    """A given slag value on top of the ore's and the refinery's coefficients over-determines
    the refineries: the equations are named by process and flow as written, per region."""
    text = _readme_model().replace(
        "  - {id: slag, from: refinery, to: waste}",
        "  - {id: slag, from: refinery, to: waste, value: {Li: 5, rest: 1}}",
    )
    message = str(_failure(text))
    assert not GENERATED.findall(message), GENERATED.findall(message)
    assert "'refinery' (region CN)" in message
    assert "given value of flow 'slag' (region FL)" in message


def test_plain_model_messages_keep_their_ids():
    """Without dimensions the names are the ids, quoted as before: 10 t in and 12 t given out
    of a plant that keeps 0.9 of its input in the product contradict each other."""
    text = """
critflow: 1
name: plain
time: {start: 2030, end: 2030}
elements: [Li]
processes:
  - {id: feed, kind: source}
  - {id: plant, kind: transfer, transfer: {product: {Li: 0.9}, loss: {Li: 0.1}}}
  - {id: out, kind: sink}
  - {id: lost, kind: sink}
flows:
  - {id: in, from: feed, to: plant, value: 10}
  - {id: product, from: plant, to: out, value: 12}
  - {id: loss, from: plant, to: lost}
"""
    message = str(_failure(text))
    assert message.startswith("processes 'plant': these equations contradict")
    assert "transfer coefficients of 'plant' to 'product'" in message
    assert "given value of flow 'product'" in message


def test_bad_shares_name_the_flow_and_the_split_as_written():
    """Origin shares that sum to 1.8 (CL 0.2 → 1.0) and a refinery share above 1: the messages
    name the split of flow 'imports' and flow 'refined' with their coordinates."""
    text = (
        _readme_model().replace("CL: 0.2, RoW", "CL: 1.0, RoW").replace("FL>FL: 0.9", "FL>FL: 1.1")
    )
    message = str(_failure(text))
    assert not GENERATED.findall(message), GENERATED.findall(message)
    assert "the split by origin of flow 'imports' (region FL) sum to 1.8" in message
    assert "the share of Li to 'refined' (region FL>FL) is 1.1" in message


def test_negative_supply_of_a_regional_stock_model_is_named_as_written():
    """The regional battery example with ten times the portable sales up to 2022 and none after:
    from 2023 the recycled Co of the portable batteries exceeds what the markets need, so each
    market's balancing supply would be negative. The stock solver's error names flow 'supply' and
    market 'cell_making' with their region, never 'supply.total[…]'."""
    example = README.parent / "examples" / "eu_battery_materials_regions.yaml"
    text = example.read_text(encoding="utf-8")
    text = text.replace(
        "portable_sales: {2016: 214000, 2022: 244000}",
        "portable_sales: {2016: 2.0e6, 2022: 2.0e6, 2023: 0}",
    ).replace("file: data/", f"file: {example.parent.as_posix()}/data/")
    with pytest.raises(CritflowError) as caught:
        solve(model_from_text(text, allow_outside_files=True))
    message = str(caught.value)
    assert not GENERATED.findall(message), GENERATED.findall(message)
    assert "flow 'supply' (region EU-other: the balancing input before its split" in message
    assert "Market 'cell_making' (region EU-other) receives more Co" in message
