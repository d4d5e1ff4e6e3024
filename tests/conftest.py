"""Shared helpers: build models from YAML text and capture user-facing errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import critflow
from critflow.errors import CritflowError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "battery_recycling_hydromet.yaml"


def model_text(text: str) -> critflow.Model:
    return critflow.model_from_text(textwrap.dedent(text), file="model.yaml")


def solve_text(text: str, scenarios: list[str] | None = None) -> critflow.FlowResults:
    return critflow.solve(model_text(text), scenarios)


def error_text(text: str) -> str:
    """The message a user sees for a bad model (loading and solving)."""
    with pytest.raises(CritflowError) as info:
        solve_text(text)
    return str(info.value)


@pytest.fixture(scope="session")
def example_results() -> critflow.FlowResults:
    return critflow.solve(critflow.load_model(EXAMPLE))
