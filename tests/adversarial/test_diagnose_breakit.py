"""A regional model that cannot be solved is explained along what it does (issue 23)."""

from __future__ import annotations

import re

import pytest

from critflow.engine import solve
from critflow.errors import CritflowError
from critflow.model.load import model_from_text

# Li goes a[FL] → b[FL] (flow ab) → a[EU-other] (the trade ba FL>EU-other) → b[EU-other] → a[FL]
# (ba EU-other>FL) and never leaves. The message listed the loop's processes in the order of the
# model (a FL, a EU-other, b FL, b EU-other) joined by arrows: a path that no flow takes (no flow
# goes from a[FL] to a[EU-other]).
LOOP = """
critflow: 1
name: trapped between regions
time: {start: 2030, end: 2030}
elements: [Li]
dimensions:
  region: {coordinates: [FL, EU-other], groups: {EU: [FL, EU-other]}}
processes:
  - {id: a, kind: transfer, over: [region], transfer: {ab: {default: 1.0}}}
  - {id: b, kind: transfer, over: [region], transfer: {ba: {default: 1.0}}}
  - {id: src, kind: source}
flows:
  - {id: ab, from: a, to: b}
  - {id: ba, from: b, to: a, trade: {region: {FL: [EU-other], EU-other: [FL]}}}
  - {id: in, from: src, to: a, value: 5}
"""


def test_a_trapped_loop_is_told_along_its_flows():
    with pytest.raises(CritflowError) as caught:
        solve(model_from_text(LOOP))
    message = str(caught.value)
    path = re.search(r"send all of it from (.*) back into the loop", message).group(1)
    steps = path.split(" → ")
    assert steps == [
        "'a' (region FL)",
        "'b' (region FL)",
        "'a' (region EU-other)",
        "'b' (region EU-other)",
        "'a' (region FL)",
    ]
