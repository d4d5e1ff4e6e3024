"""Shared helpers: build models from YAML text, capture user-facing errors, run the command."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

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


@dataclass
class CliResult:
    """What a command printed and its exit code (the fields of subprocess.CompletedProcess)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def critflow_cli(
    *args: str | Path, cwd: str | Path | None = None, env: dict[str, str] | None = None
) -> CliResult:
    """``critflow ARGS`` in this process, through the real command group (where a CritflowError
    becomes exit code 2), with Typer's CliRunner: a traceback (any exception but a normal exit)
    escapes and fails the test."""
    from typer.testing import CliRunner

    from critflow.cli.app import app

    argv = [str(a) for a in args]
    # a command may change the process environment (Dask sets MALLOC_TRIM_THRESHOLD_ and thread
    # counts, the figure export BROWSER_PATH); in its own process that ended with it, here it
    # must not leak into later tests and the processes they start
    with (
        mock.patch.dict(os.environ),
        contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext(),
    ):
        result = CliRunner().invoke(
            app, argv, env=env, catch_exceptions=False, prog_name="critflow"
        )
    return CliResult(["critflow", *argv], result.exit_code, result.stdout, result.stderr)


def critflow_process(
    *args: str | Path,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """``python -m critflow ARGS`` in a new process, as a shell runs it: only for what needs the
    installed entry point (start-up, signals, a fresh interpreter)."""
    return subprocess.run(
        [sys.executable, "-m", "critflow", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,  # a hang fails the test instead of stalling CI
    )


def model_values(*, allow_nan: bool, largest_int: int, max_leaves: int):
    """A hypothesis strategy for what a model file can hold: None, booleans, integers, floats
    and texts, in lists and mappings keyed by names or years."""
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(-largest_int, largest_int)
        | st.floats(allow_nan=allow_nan, allow_infinity=allow_nan, width=64)
        | st.text(max_size=40)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.text(min_size=1, max_size=10) | st.integers(1900, 2100), inner, max_size=4
            )
        ),
        max_leaves=max_leaves,
    )
