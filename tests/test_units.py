"""The shared unit registry and the one conversion of user quantities."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from critflow.errors import CritflowError
from critflow.units import convert, unit_factor

SRC = Path(__file__).resolve().parents[1] / "src"


@settings(deadline=None)  # the first example builds pint's registry (imported on first use)
@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_convert_agrees_with_the_definition_of_the_units(value):
    assert convert(f"{value!r} kWh/t", "kWh/kg", "f", "an energy per mass") == pytest.approx(
        value / 1000, rel=1e-12, abs=1e-300
    )
    assert convert(f"{value!r} MEUR", "EUR", "f", "an investment") == pytest.approx(
        value * 1e6, rel=1e-12, abs=1e-300
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (12, "has no unit"),
        ("12 blorps/t", "is not a quantity pint can read"),
        ("3 kg", r"\(a mass\) does not fit a price, which is measured in EUR/kg"),
        ("10**10**10 EUR/kg", "has no unit"),  # refused at once, never evaluated
    ],
)
def test_convert_names_the_place_and_what_would_fit(text, message):
    with pytest.raises(CritflowError, match=rf"flows\[1\]\.price.*{message}"):
        convert(text, "EUR/kg", "flows[1].price", "a price", "'1.5 EUR/kg'")


def test_unit_factor_says_what_a_wrong_unit_measures():
    assert unit_factor("Wh", "kWh") == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="'kg' is a mass, but an energy is required"):
        unit_factor("kg", "kWh")


@pytest.mark.parametrize("cache", ["broken", "unwritable"])
def test_a_broken_or_unwritable_pint_cache_does_not_stop_critflow(tmp_path, cache):
    """The registry caches pint's parsed definitions under the user's cache folder; a cache cut
    short by a crash, or a cache folder that cannot be made, falls back to reading the files."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    code = "from critflow.units import registry; print(registry().Quantity('2 kt').to('kg').m)"
    if cache == "unwritable":
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        env["XDG_CACHE_HOME"] = str(blocker / "cache")
    else:
        env["XDG_CACHE_HOME"] = str(tmp_path)
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
        pickles = list((tmp_path / "pint").glob("*.pickle"))
        assert pickles, "pint wrote no cache"
        for path in pickles:
            path.write_bytes(path.read_bytes()[:20])
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) == 2e6


# ------------------------------------------------- common mass-flow units without pint (start-up)
def test_the_common_mass_flow_units_convert_as_pint_does():
    from critflow import units

    ureg = units.registry()
    for mass in units.COMMON_MASSES_KG:
        for time in units.COMMON_TIMES_YEARS:
            unit = f"{mass}/{time}"
            expected = ureg.Quantity(1.0, unit).to("kg/year").magnitude
            assert units._common_flow_factor(unit) == pytest.approx(expected, rel=1e-15), unit
            assert units._common_flow_factor(f" {mass} / {time} ") == units._common_flow_factor(
                unit
            )


@settings(deadline=None)
@given(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.sampled_from(["t/a", "kt/a", "Mt/yr", "g/h", "kg/day", "tonne/year", "Mg/d"]),
)
def test_a_common_mass_flow_quantity_reads_as_pint_reads_it(value, unit):
    from critflow import units

    text = f"{value!r} {unit}"
    expected = float(units.registry().Quantity(text).to("kg/year").magnitude)
    assert units.parse_mass_flow(text, "here") == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("text", ["1e400 t/a", "2e27 Mt/a"])
def test_a_common_unit_still_refuses_what_overflows(text):
    from critflow import units

    with pytest.raises(CritflowError, match=r"finite|beyond"):
        units.parse_mass_flow(text, "processes[0].feed")


def test_validating_a_model_in_common_units_does_not_import_pint():
    """pint (and the dask it imports when installed) costs 0.2-0.4 s of `critflow validate`."""
    root = Path(__file__).resolve().parents[1]
    code = (
        "import sys; from critflow.model import load_model; from critflow.engine import solve; "
        f"solve(load_model({str(root / 'examples/battery_recycling_hydromet.yaml')!r})); "
        "print('pint' in sys.modules, 'scipy.special' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["False", "False"]
