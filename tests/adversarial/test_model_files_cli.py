"""`critflow validate` and `critflow run` on hostile model files: exit code 2, a paragraph naming
the file/line or field path, no traceback, no hang, no output folder.

Most cases call the command's entry point (``critflow.cli.main``, where CritflowError becomes exit
code 2) in this process, under a time limit; a few run ``python -m critflow`` as a shell would.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from tests.adversarial.test_model_files import (
    BILLION_LAUGHS,
    SERIES_MODEL,
    STOCK,
    series_csv,
    time_limit,
)
from tests.model.test_bad_input import BASE


def shell(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m critflow ARGS`` in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "critflow", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test instead of stalling CI
    )


def critflow(*args: str | Path, timeout: float = 30) -> subprocess.CompletedProcess:
    """The same through ``critflow.cli.main`` in this process (any exception but SystemExit
    propagates, so a traceback fails the test)."""
    from critflow.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    argv = ["critflow", *map(str, args)]
    with (
        mock.patch.object(sys, "argv", argv),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        time_limit(timeout),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def refused(result: subprocess.CompletedProcess, *expected: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout
    assert "problem" in result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


CASES = {
    "billion-laughs": (BILLION_LAUGHS, ["aliases (*name) expand", "line"]),
    "deep": ("critflow: 1\nv: " + "[" * 5000 + "]" * 5000 + "\n", ["nested more than 48"]),
    "nan": (BASE.replace("    value: 1000\n", "    value: .nan\n"), ["(flows[0].value)", "NaN"]),
    "1e308-Gt": (
        BASE.replace("    value: 1000\n", "    value: 1e308\n    unit: Gt/a\n"),
        ["(flows[0].value)", "after conversion"],
    ),
    "power-tower": (
        BASE.replace("    value: 1000\n", "    value: 2 t**99**99/a\n"),
        ["(flows[0].value)", "exponent"],
    ),
    "passwd": (
        SERIES_MODEL.replace("FILE", "/etc/passwd"),
        ["outside the model's folder", "--allow-outside-files"],
    ),
    "dotdot": (
        SERIES_MODEL.replace("FILE", "../../../../../../etc/shadow"),
        ["outside the model's folder"],
    ),
    "inf-lifetime": (STOCK.replace("shape: 2.3", "shape: .inf"), ["(processes[1].lifetime.shape)"]),
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_models_exit_2_without_traceback(tmp_path, command, case):
    text, expected = CASES[case]
    model = tmp_path / "model.yaml"
    model.write_text(text)
    out = tmp_path / "out"
    args = [command, model] + (["--out", out] if command == "run" else [])
    refused(critflow(*args), str(model), *expected)
    assert not out.exists()  # a refused model writes nothing


@pytest.mark.parametrize("case", ["billion-laughs", "passwd"])
def test_in_a_shell(tmp_path, case):
    text, expected = CASES[case]
    model = tmp_path / "model.yaml"
    model.write_text(text)
    refused(shell("run", model, "--out", tmp_path / "out"), str(model), *expected)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes and /dev/zero")
def test_devices_pipes_and_bad_bytes(tmp_path):
    fifo = tmp_path / "model.yaml"
    os.mkfifo(fifo)
    refused(shell("validate", fifo, timeout=60), "is a named pipe, not a file")
    refused(critflow("validate", "/dev/zero", timeout=10), "is a device, not a file")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(BASE.encode().replace(b"two-step", b"two\xff-step"))
    refused(critflow("validate", bad), "line 3", "is not UTF-8")


def test_the_flag_lets_a_trusted_model_read_outside_its_folder(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "series.csv").write_text(series_csv())
    model = tmp_path / "model" / "model.yaml"
    model.parent.mkdir()
    model.write_text(SERIES_MODEL.replace("FILE", "../shared/series.csv"))
    refused(critflow("validate", model), "outside the model's folder")
    result = critflow("validate", model, "--allow-outside-files")
    assert result.returncode == 0, result.stderr
    result = critflow(
        "run", model, "--allow-outside-files", "--out", tmp_path / "out", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["periods"] == [2020, 2021, 2022, 2023, 2024]


def test_one_point_five_e_three_runs(tmp_path):
    model = tmp_path / "model.yaml"
    model.write_text(BASE.replace("    value: 1000\n", "    value: 1.5e3\n"))
    result = critflow("validate", model)
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stdout


@pytest.mark.parametrize(
    "command", [["indicators"], ["check"], ["trace", "--stock", "fleet", "--cohort", "2020"]]
)
def test_other_commands_that_load_a_model_refuse_outside_files_too(tmp_path, command):
    model = tmp_path / "model.yaml"
    model.write_text(SERIES_MODEL.replace("FILE", str(Path("/etc/passwd"))))
    refused(critflow(command[0], model, *command[1:]), "outside the model's folder")
