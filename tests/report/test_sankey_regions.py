"""The Sankey of a regional model shows the flows of the model file: the generated split of a
balancing import by origin (its process and the total flowing into it) is left out, each origin's
part is drawn from where the total comes from, and every shown process keeps its mass in and out."""

from __future__ import annotations

import numpy as np
import pytest

from critflow.engine import solve
from critflow.model.load import load_model
from critflow.report.sankey import sankey_data
from tests.conftest import model_text
from tests.indicators.test_regional import SYSTEM, _random_system

EXAMPLE = "examples/eu_battery_materials_regions.yaml"


def _check(model) -> dict:
    results = solve(model)
    topo = results.inputs.topology
    labels = topo.labels
    data = sankey_data(results, model.spec)
    packed = sankey_data(results, model.spec, packed=True)
    hidden_processes = {topo.process_ids[u] for u, p in enumerate(labels.processes) if p.hidden}
    hidden_flows = {topo.flow_ids[f] for f, x in enumerate(labels.flows) if x.hidden}
    assert hidden_processes and hidden_flows  # the model has a split import to leave out
    assert not hidden_processes & set(data["nodes"])
    assert not hidden_flows & set(data["flows"])
    n_f = len(data["flows"])
    assert packed["value_block"].shape[-1] == n_f
    assert packed["share_block"].shape[-2] == n_f
    shares = data["fates"][results.inputs.scenarios[0]][str(results.inputs.periods[0])]["Li"]
    assert np.asarray(shares["shares"]).shape[0] == n_f
    # every shown process: mass in and out as in the solved model (an independent sum over the
    # topology), in every scenario, period and element
    source, target = np.asarray(data["source"]), np.asarray(data["target"])
    for s, scenario in enumerate(results.inputs.scenarios):
        for p, period in enumerate(results.inputs.periods):
            for e, element in enumerate(topo.elements):
                shown = np.asarray(data["values"][scenario][str(period)][element])
                full = results.values[s, p, e]
                for u, name in enumerate(data["nodes"]):
                    k = topo.process_ids.index(name)
                    out_full = full[topo.flow_from == k].sum()
                    assert shown[source == u].sum() == pytest.approx(out_full, rel=1e-12, abs=1e-9)
                    # a market's input from the hidden split is now its origins' parts: the same mass
                    into_full = full[topo.flow_to == k].sum()
                    assert shown[target == u].sum() == pytest.approx(into_full, rel=1e-12, abs=1e-9)
    return data


def test_the_shipped_regional_example():
    data = _check(load_model(EXAMPLE))
    assert not any(".by_origin" in n for n in data["nodes"])


def test_a_system_with_trade_and_a_split_import():
    data = _check(model_text(SYSTEM))
    world = data["nodes"].index("world")
    from_world = [data["flows"][i] for i, a in enumerate(data["source"]) if a == world]
    assert sorted(from_world) == sorted(
        f"imports[{o}>{m}]" for o in ("CN", "CL") for m in ("FL", "EU-other")
    )


@pytest.mark.parametrize("imports_x", [(0.0, 0.5, 1.0), (0.3, 0.3, 0.3)])
def test_generated_union_systems(imports_x):
    text = _random_system((100, 50, 80), (10, 0, 30), (5, 5, 0), imports_x)
    complement = ", ".join(f"{r}: {1 - v!r}" for r, v in zip("ABC", imports_x, strict=True))
    _check(model_text(text.replace('Y: "1 - x_{0}"', f"Y: {{region: {{{complement}}}}}")))


def test_a_model_without_dimensions_is_drawn_as_before():
    model = load_model("examples/battery_recycling_hydromet.yaml")
    results = solve(model)
    data = sankey_data(results, model.spec)
    topo = results.inputs.topology
    assert data["nodes"] == list(topo.process_ids)
    assert data["flows"] == list(topo.flow_ids)
    assert data["source"] == topo.flow_from.tolist()
