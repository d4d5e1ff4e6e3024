"""The rule for drawn transfer coefficients: within a process and element the shares that vary
with the draws keep their values and the fixed shares absorb the difference; nothing else is
rescaled. `validate` checks it over the distributions' support; a sample that breaks it anyway is
refused by its number and drawn values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critflow.engine.compile import check_drawn_shares, evaluate
from critflow.engine.montecarlo import monte_carlo
from critflow.errors import CritflowError
from critflow.model.uncertainty import Draws, Sampler, collect
from tests.conftest import critflow_cli, model_text

LEACH = """
critflow: 1
name: leach with a drawn nickel yield
time: {start: 2025, end: 2026}
unit: t/a
elements: [Ni, Co]
parameters:
  ni_yield: NI_YIELD
processes:
  - {id: feed, kind: source}
  - id: leach
    kind: transfer
    transfer:
      pls: {default: CO_PLS, Ni: ni_yield}
      residue: {default: CO_RESIDUE, Ni: NI_RESIDUE}
  - {id: refinery, kind: sink}
  - {id: dump, kind: sink}
flows:
  - {id: ore, from: feed, to: leach, value: 100, composition: {Ni: 0.5, Co: 0.5}}
  - {id: pls, from: leach, to: refinery}
  - {id: residue, from: leach, to: dump}
"""
TRIANGULAR = "{value: 0.98, distribution: triangular, low: 0.95, high: HIGH}"


def leach(
    high: float = 0.99,
    ni_yield: str | None = None,
    ni_residue: str = "0.02",
    co: tuple[float, float] = (0.9, 0.1),
):
    text = (
        LEACH.replace("NI_YIELD", ni_yield or TRIANGULAR.replace("HIGH", str(high)))
        .replace("NI_RESIDUE", ni_residue)
        .replace("CO_PLS", repr(co[0]))
        .replace("CO_RESIDUE", repr(co[1]))
    )
    return model_text(text)


def shares(model, n: int = 400, chunk: int = 0, seed: int = 5):
    """Evaluated shares of a Monte Carlo chunk, the draws and the column of each (E, J) entry."""
    draws = Sampler(tuple(collect(model.spec)), seed).draws(chunk, n, n)
    inputs = evaluate(model, None, draws)
    topo = inputs.topology
    j = {topo.flow_ids[k]: i for i, k in enumerate(topo.transfer_output)}
    return inputs.transfer_coefficients, draws, j, topo


def test_a_drawn_share_with_a_numeric_complement_runs_and_the_complement_absorbs():
    # The case of the issue: pls Ni = ni_yield (a parameter with a distribution), residue Ni is the
    # number 0.02. Before, every sample stopped with "sum to 0.9796 … not 1". The rule: the drawn
    # share keeps its draw y, the fixed residue absorbs 0.02 · (1 − y) / 0.02 = 1 − y.
    model = leach()
    check_drawn_shares(model)  # the support [0.95, 0.99] keeps the residue in [0.01, 0.05]
    t, draws, j, topo = shares(model)
    ni, co = topo.elements.index("Ni"), topo.elements.index("Co")
    y = draws.of(model.spec.parameters["ni_yield"])[:, None]  # (N, 1) → every period
    assert np.array_equal(t[:, :, ni, j["pls"]], np.broadcast_to(y, (len(y), 2)))
    assert np.allclose(t[:, :, ni, j["residue"]], 1 - y, rtol=0, atol=1e-15)
    # cobalt has no drawn share: left exactly as given
    assert (t[:, :, co, j["pls"]] == 0.9).all() and (t[:, :, co, j["residue"]] == 0.1).all()
    mc = monte_carlo(model, 300, seed=2, chunk_size=100)
    residue = topo.flow_ids.index("residue")
    # E[residue Ni] = 50 t × (1 − E[y]), E[y] = (0.95 + 0.98 + 0.99) / 3 (triangular mean)
    expected = 50 * (1 - (0.95 + 0.98 + 0.99) / 3)
    assert mc.mean("flows")[0, 0, ni, residue] == pytest.approx(expected, rel=0.05)


def test_validate_refuses_a_distribution_whose_support_breaks_the_complement():
    # high 1.03: at the top of what can be drawn (1.03 − 6e-10) the drawn share exceeds 1, so the
    # fixed residue would have to be 1 − 1.03 = −0.03.
    model = leach(high=1.03)
    with pytest.raises(CritflowError) as info:
        check_drawn_shares(model)
    message = str(info.value)
    assert "processes[1].transfer" in message
    assert "parameter 'ni_yield' at 1.03 (an end of its distribution's range)" in message
    assert "sum to 1.05, not 1" in message  # 1.03 + 0.02, nothing can absorb it
    assert "narrow the distribution of parameter 'ni_yield'" in message


def test_the_support_of_an_unbounded_distribution_is_what_the_sampler_can_draw():
    # A normal share reaches mean + Φ⁻¹(1 − 2⁻⁵³)·sd = 0.98 + 8.2095·sd at the largest uniform
    # draw below 1: sd 0.005 reaches 1.0210 (refused), sd 0.002 reaches 0.9964 (accepted).
    with pytest.raises(CritflowError) as info:
        check_drawn_shares(leach(ni_yield="{value: 0.98, distribution: normal, sd: 0.005}"))
    assert "parameter 'ni_yield' at 1.02105" in str(info.value)
    check_drawn_shares(leach(ni_yield="{value: 0.98, distribution: normal, sd: 0.002}"))


def test_when_every_share_is_drawn_the_complement_must_be_an_expression():
    drawn_residue = "{value: 0.02, distribution: uniform, low: 0.0, high: 0.04}"
    with pytest.raises(CritflowError) as info:
        check_drawn_shares(leach(ni_residue=drawn_residue))
    message = str(info.value)
    assert "Every share of Ni here is drawn" in message and "complement" in message
    # the complement as an expression: every sample sums to 1 without any rescaling
    model = leach(ni_residue="1 - ni_yield")
    check_drawn_shares(model)
    t, draws, j, topo = shares(model)
    ni = topo.elements.index("Ni")
    y = draws.of(model.spec.parameters["ni_yield"])[:, None]
    assert np.array_equal(t[:, :, ni, j["pls"]], np.broadcast_to(y, (len(y), 2)))
    assert np.abs(t[..., ni, :].sum(axis=-1) - 1).max() < 1e-15


def test_no_share_above_one_is_rescaled_silently():
    # Cobalt's shares sum to 1.2 while nickel has a drawn share in the same process. Before, both
    # the deterministic run and every sample scaled cobalt to 1.0/1.2 and 0.2/1.2 in silence.
    model = leach(ni_yield=TRIANGULAR.replace("HIGH", "0.99"), co=(1.2, 0.0))
    for draws in (None, Sampler(tuple(collect(model.spec)), 1).draws(0, 50, 50)):
        with pytest.raises(CritflowError) as info:
            evaluate(model, None, draws)
        assert "the transfer coefficients of Co in 'leach' sum to 1.2, not 1" in str(info.value)


def test_a_sample_that_breaks_the_rule_is_named_by_its_number_and_drawn_value():
    # Bypass validate (API use): chunk 2 of 100 samples from a support that reaches 1.03. The
    # first sample with y > 1 cannot be balanced (nothing fixed can go below 0).
    model = leach(high=1.03)
    draws = Sampler(tuple(collect(model.spec)), 7).draws(2, 100, 100)
    y = draws.of(model.spec.parameters["ni_yield"])
    first = int(np.argmax(y > 1.0))
    assert y[first] > 1.0  # this seed draws one (P(y > 1) = 0.08² / (0.08·0.05) … ≈ 11 %)
    with pytest.raises(CritflowError) as info:
        evaluate(model, None, draws)
    message = str(info.value)
    assert f"sample {200 + first} of parameter 'ni_yield' ({y[first]:.6g})" in message
    assert f"sum to {y[first] + 0.02:.6g}, not 1" in message
    assert "narrow the distribution" in message


def test_monte_carlo_refuses_before_the_first_sample():
    model = leach(high=1.03)
    with pytest.raises(CritflowError) as info:
        monte_carlo(model, 100, chunk_size=50)
    assert "an end of its distribution's range" in str(info.value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    low=st.floats(0.0, 0.9),
    span=st.floats(0.01, 0.5),
    mode_at=st.floats(0.0, 1.0),
    weights=st.lists(st.floats(0.05, 1.0), min_size=1, max_size=3),
    co=st.floats(0.0, 1.0),
)
def test_drawn_shares_keep_their_draws_and_fixed_shares_absorb_in_proportion(
    low, span, mode_at, weights, co
):
    """For any triangular share and any split of its complement over 1-3 fixed outputs: validate
    accepts exactly when the top of the support is ≤ 1; then in every sample the drawn share is the
    draw, the fixed shares keep their proportions, every share lies in [0, 1] and sums are 1; the
    other element is left as given."""
    high = low + span
    mode = low + mode_at * span
    rest = 1.0 - mode
    parts = [rest * w / sum(weights) for w in weights]
    outputs = [f"out{i}" for i in range(len(parts))]
    text = f"""
critflow: 1
name: property
time: {{start: 2025, end: 2025}}
unit: t/a
elements: [Ni, Co]
parameters:
  y: {{value: {mode!r}, distribution: triangular, low: {low!r}, high: {high!r}}}
processes:
  - {{id: feed, kind: source}}
  - id: unit
    kind: transfer
    transfer:
      drawn: {{default: {co!r}, Ni: y}}
""" + "".join(
        f"      {o}: {{default: {(1 - co) if i == 0 else 0.0!r}, Ni: {p!r}}}\n"
        for i, (o, p) in enumerate(zip(outputs, parts, strict=True))
    )
    text += "  - {id: sink, kind: sink}\nflows:\n"
    text += "  - {id: ore, from: feed, to: unit, value: 10, composition: {Ni: 0.5, Co: 0.5}}\n"
    text += "  - {id: drawn, from: unit, to: sink}\n"
    text += "".join(f"  - {{id: {o}, from: unit, to: sink}}\n" for o in outputs)
    if abs(sum(parts) + mode - 1) > 1e-12 or min(parts) < 1e-9:
        return  # rounding of the split: not a model this property is about
    model = model_text(text)
    if high > 1.0:
        with pytest.raises(CritflowError):
            check_drawn_shares(model)
        return
    check_drawn_shares(model)
    u = model.spec.parameters["y"]
    draws = Draws(np.linspace(low, high, 64)[:, None], {id(u): 0})  # the support end to end
    inputs = evaluate(model, None, draws)
    t, topo = inputs.transfer_coefficients, inputs.topology
    j = {topo.flow_ids[k]: i for i, k in enumerate(topo.transfer_output)}
    ni, co_e = topo.elements.index("Ni"), topo.elements.index("Co")
    y = draws.values[:, 0]
    assert np.array_equal(t[:, 0, ni, j["drawn"]], y)
    fixed = np.stack([t[:, 0, ni, j[o]] for o in outputs], axis=-1)
    expected = np.array(parts)[None, :] * ((1 - y) / rest)[:, None]
    assert np.allclose(fixed, expected, rtol=1e-12, atol=1e-15)
    assert (t >= -1e-12).all() and (t <= 1 + 1e-12).all()
    assert np.abs(t[:, 0].sum(axis=-1) - 1).max() < 1e-12
    assert (t[:, 0, co_e, j["drawn"]] == co).all()


def test_validate_command_refuses_with_exit_2(tmp_path):
    path = tmp_path / "leach.yaml"
    path.write_text(
        LEACH.replace("NI_YIELD", TRIANGULAR.replace("HIGH", "1.03"))
        .replace("NI_RESIDUE", "0.02")
        .replace("CO_PLS", "0.9")
        .replace("CO_RESIDUE", "0.1")
    )
    result = critflow_cli("validate", path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "leach.yaml, line" in result.stderr and "parameter 'ni_yield' at 1.03" in result.stderr


def test_a_normal_draw_at_u_zero_is_zero_not_minus_infinity():
    # mean 0.98, sd 0.005: Φ(−196) underflows to 0, so the truncation's lower bound is 0 and
    # Φ⁻¹(0) = −∞; the value is truncated at zero all the same.
    from critflow.model.uncertainty import inverse_cdf

    u = np.array([[0.0], [0.5]])
    values = inverse_cdf(np.array(["normal"]), 0.98, None, None, 0.005, u)
    assert values[0, 0] == 0.0 and values[1, 0] == pytest.approx(0.98)
