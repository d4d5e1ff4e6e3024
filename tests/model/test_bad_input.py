"""Every kind of bad model input gets a message naming where, what and how to fix it."""

from __future__ import annotations

import pytest

from tests.conftest import error_text

BASE = """
critflow: 1
name: two-step plant
time: {start: 2025, end: 2025}
unit: t/a
elements: [Co, Ni, rest]
parameters: {yield_co: 0.95}
processes:
  - {id: collection, kind: source}
  - id: shredder
    kind: transfer
    transfer:
      black_mass: {default: 0.9, Co: yield_co}
      foils: {default: 0.1, Co: 1 - yield_co}
  - {id: refinery, kind: sink}
  - {id: landfill, kind: sink}
flows:
  - id: feed
    from: collection
    to: shredder
    value: 1000
    composition: {Co: 0.1, Ni: 0.2}
  - {id: black_mass, from: shredder, to: refinery}
  - {id: foils, from: shredder, to: landfill}
"""


def bad(old: str, new: str) -> str:
    assert old in BASE, old
    return error_text(BASE.replace(old, new, 1))


def test_base_model_is_valid():
    from tests.conftest import solve_text

    results = solve_text(BASE)
    assert results.max_relative_residual() < 1e-12


def test_yaml_syntax_error_names_line_and_column():
    message = bad("  - {id: refinery, kind: sink}", "  - {id: refinery, kind: sink")
    assert "YAML syntax error" in message
    # the parser notices the unclosed '{' where the next one starts
    assert "line 16" in message and "column 5" in message


def test_unknown_key_names_path_and_nearest_valid_key():
    message = bad("    transfer:\n", "    trasnfer:\n")
    assert "unknown key 'trasnfer'" in message
    assert "processes[1]" in message
    assert "Did you mean 'transfer'?" in message
    assert "line 12" in message


def test_flow_to_missing_process_suggests_nearest_id():
    message = bad(
        "{id: black_mass, from: shredder, to: refinery}",
        "{id: black_mass, from: shredder, to: refinnery}",
    )
    assert "'refinnery', which does not exist" in message
    assert "Did you mean 'refinery'?" in message
    assert "flows[1].to" in message


def test_transfer_coefficients_not_summing_to_one():
    message = bad("foils: {default: 0.1,", "foils: {default: 0.2,")
    assert "Ni in 'shredder' sum to 1.1, not 1" in message
    assert "processes[1].transfer" in message


def test_transfer_output_that_is_not_a_flow():
    message = bad("      foils: {default", "      foil: {default")
    assert "the output 'foil' of process 'shredder' is not a flow" in message
    assert "Did you mean 'foils'?" in message
    assert "the output flow 'foils' of 'shredder' has no transfer coefficients" in message


def test_composition_over_one():
    message = bad("composition: {Co: 0.1, Ni: 0.2}", "composition: {Co: 0.6, Ni: 0.5}")
    assert "composition sums to 1.1, more than 1" in message
    assert "flows[0].composition" in message


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("tonnes_per_fortnight", "is not a unit pint knows"), ("m^3/a", "is not a mass flow")],
)
def test_bad_units(unit, expected):
    message = bad("unit: t/a", f"unit: {unit}")
    assert expected in message
    assert "line 5" in message


def test_bad_unit_in_quantity_string():
    message = bad("    value: 1000\n", "    value: 1000 m/s\n")
    assert "is not a mass flow" in message


def test_unknown_parameter_in_expression():
    message = bad("Co: 1 - yield_co}", "Co: 1 - yeild_co}")
    assert "uses 'yeild_co', which is not a parameter" in message
    assert "Did you mean 'yield_co'?" in message


def test_disallowed_expression():
    message = bad("Co: 1 - yield_co}", "Co: __import__('os')}")
    assert "expressions do not allow" in message


@pytest.mark.parametrize(
    "expression",
    [
        "1 - " + " + ".join(["yield_co"] * 40) + " + ",  # 490 characters, a syntax error
        " + ".join(["yield_co"] * 40) + ' + __import__("os")',  # allowed parts, then not
        "1 - yield_co" + " " * 200 + "+ 10**400",
    ],
    ids=["syntax", "disallowed", "overflow"],
)
def test_a_long_bad_expression_is_shown_cut_in_its_message(expression):
    message = bad("Co: 1 - yield_co}", f"Co: '{expression}'}}")
    assert "…" in message and len(message) < 900, message  # not the whole 500-character text
    assert "transfer" in message  # still says where


def test_duplicate_ids():
    message = bad("{id: landfill, kind: sink}", "{id: refinery, kind: sink}")
    assert "the process id 'refinery' is used twice" in message


def test_duplicate_yaml_keys():
    message = bad("    value: 1000\n", "    value: 1000\n    value: 2000\n")
    assert "appears twice" in message


def test_unknown_process_kind():
    message = bad("{id: landfill, kind: sink}", "{id: landfill, kind: pit}")
    assert "kind 'pit' is not a process kind" in message


def test_goods_value_without_composition():
    message = bad("    composition: {Co: 0.1, Ni: 0.2}\n", "")
    assert "needs a composition" in message


LOOP = """
critflow: 1
name: trapped
time: {start: 2025, end: 2025}
unit: t/a
elements: [Co, Ni]
processes:
  - {id: mine, kind: source}
  - id: leach
    kind: transfer
    transfer:
      to_sx: {default: 1.0, Ni: 0.5}
      residue: {default: 0.0, Ni: 0.5}
  - id: sx
    kind: transfer
    transfer:
      back: {default: 1.0}
  - {id: dump, kind: sink}
flows:
  - {id: feed, from: mine, to: leach, value: {Co: 10, Ni: 10}}
  - {id: to_sx, from: leach, to: sx}
  - {id: back, from: sx, to: leach}
  - {id: residue, from: leach, to: dump}
"""


def test_cycle_with_no_exit_is_named():
    message = error_text(LOOP)
    assert "Co is trapped in a loop" in message
    assert "'leach'" in message and "'sx'" in message
    assert "Ni is trapped" not in message  # Ni leaves by the residue


def test_under_determined_names_flows_and_processes():
    text = BASE.replace("    value: 1000\n    composition: {Co: 0.1, Ni: 0.2}\n", "")
    message = error_text(text)
    assert "does not determine" in message
    assert "'feed'" in message and "collection" in message


def test_inconsistent_given_values_name_process_and_imbalance():
    text = BASE.replace(
        "{id: black_mass, from: shredder, to: refinery}",
        "{id: black_mass, from: shredder, to: refinery, value: {Co: 80}}",
    )
    message = error_text(text)
    # the feed fixes Co in black_mass at 1000 * 0.1 * 0.95 = 95 t/a; 80 is given: 15 t/a apart
    assert "contradict each other for Co" in message
    assert "'shredder'" in message
    assert "off by 15 t/a" in message


def test_negative_flow_is_named():
    text = """
    critflow: 1
    name: market
    time: {start: 2025, end: 2025}
    unit: t/a
    elements: [Li]
    processes:
      - {id: mines, kind: source}
      - {id: recyclers, kind: source}
      - {id: li_market, kind: market, balancing: primary}
      - {id: users, kind: sink}
    flows:
      - {id: primary, from: mines, to: li_market}
      - {id: secondary, from: recyclers, to: li_market, value: 120}
      - {id: demand, from: li_market, to: users, value: 100}
    """
    message = error_text(text)
    assert "flow 'primary'" in message and "-20 t/a of Li" in message
    assert "balancing input cannot be negative" in message


def test_market_balancing_flow_must_be_an_input():
    text = """
    critflow: 1
    name: market
    time: {start: 2025, end: 2025}
    elements: [Li]
    processes:
      - {id: mines, kind: source}
      - {id: li_market, kind: market, balancing: demand}
      - {id: users, kind: sink}
    flows:
      - {id: primary, from: mines, to: li_market}
      - {id: demand, from: li_market, to: users, value: 100}
    """
    assert "is not an input of market 'li_market'" in error_text(text)


def test_missing_required_key():
    message = bad("name: two-step plant\n", "")
    assert "the required key 'name' is missing" in message


def test_scenario_with_unknown_parameter():
    message = error_text(BASE + "scenarios:\n  better: {parameters: {yield_c: 0.99}}\n")
    assert "scenario 'better' sets 'yield_c'" in message
    assert "Did you mean 'yield_co'?" in message


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("to: shredder", "to: shreder", "flows[0].to"),  # a check of the loaded model
        ("Co: 1 - yield_co", "Co: 1 - yield_cobalt", "processes[1].transfer.foils.Co"),
        ("value: 1000", "value: -1000", "flows[0].value"),  # found while solving
    ],
)
def test_a_json_model_names_the_line_of_a_problem_found_late(tmp_path, old, new, field):
    """A JSON model's line numbers are looked up only when a problem is raised (valid models do
    not pay for it); every problem, from the checks or the solve, still names its line."""
    import json

    import yaml

    import critflow
    from critflow.errors import CritflowError

    data = yaml.safe_load(BASE.replace(old, new, 1))
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data, indent=2))
    with pytest.raises(CritflowError) as caught:
        critflow.solve(critflow.load_model(path))
    places = [p.where for p in caught.value.problems]
    assert any(field in w and ", line " in w for w in places), places


def test_a_valid_json_model_never_looks_its_lines_up(tmp_path):
    import json

    import yaml

    import critflow

    path = tmp_path / "model.json"
    path.write_text(json.dumps(yaml.safe_load(BASE)))
    model = critflow.load_model(path)
    critflow.solve(model)
    assert model.source.lines_pending  # no YAML pass over the file was made


def test_a_json_model_with_dimensions_names_the_line_and_the_coordinate(tmp_path):
    """An expanded (regional) JSON model: the place of a problem keeps both its line and the
    coordinate it stands for, though lines are looked up late."""
    import json

    import critflow
    from critflow.errors import CritflowError
    from critflow.model.source import parse_text
    from tests.conftest import EXAMPLE

    text = (EXAMPLE.parent / "eu_battery_materials_regions.yaml").read_text(encoding="utf-8")
    data, _ = parse_text(text, "regions.yaml")
    data["parameters"]["bev_registrations"] = 1.0e6  # its CSV file stays beside the YAML
    sales = next(f for f in data["flows"] if f["id"] == "sales")
    sales["value"]["region"]["FL"]["product"]["EV"] = "pack_kwh * nosuch"
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(data, indent=1))
    with pytest.raises(CritflowError) as caught:
        critflow.solve(critflow.load_model(path))
    where = caught.value.problems[0].where
    assert ", line " in where and "region FL" in where, where
