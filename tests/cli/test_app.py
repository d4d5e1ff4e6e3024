"""The command's frame: one place for exit code 2, flags named where the library names arguments,
a missing extra named, and a start-up that imports no numerical library."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import pytest

from critflow.cli.common import as_flags, flag
from critflow.errors import CritflowError
from critflow.extras import EXTRAS, extra_of, missing_extra, needs
from tests.conftest import EXAMPLE, ROOT, critflow_cli, critflow_process

# ------------------------------------------------------------------ arguments → flags


def test_argument_names_become_flags_and_values_stay():
    assert flag("chunk_size") == "--chunk-size" and flag("out_dir") == "--out"
    assert flag("scenarios") == "--scenario" and flag("scenarios", "compare") == "--scenario"
    assert as_flags("samples=") == "--samples"
    assert as_flags("older than max_age= (7 days)") == "older than --max-age (7 days)"
    # a value after '=' is user text, not an argument: 'cost=1,co2=0.05' is left alone
    assert as_flags("Mix them: cost=1,co2=0.05.") == "Mix them: cost=1,co2=0.05."
    assert as_flags("flows[0].value=") == "flows[0].value="  # a field path is not an argument


def test_the_library_names_the_argument_and_the_command_the_flag(tmp_path):
    import critflow
    from critflow.engine.compile import evaluate

    with pytest.raises(CritflowError) as info:
        evaluate(critflow.load_model(EXAMPLE), ["nope"])
    assert info.value.problems[0].where == "scenarios="
    assert "--" not in str(info.value)
    result = critflow_cli("run", EXAMPLE, "-s", "nope", "--out", tmp_path / "o")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--scenario: the model has no scenario 'nope'" in result.stderr
    assert "scenarios=" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_no_library_error_names_a_flag():
    # errors reach Python callers too; only the command line (cli/), the web service (server/) and
    # the run folder (report/, written by `critflow run`) speak of flags. A command quoted in
    # backticks (`critflow passport keygen --out STEM`) names a command, not an argument.
    import ast
    import re

    flagged = []
    for path in (ROOT / "src" / "critflow").rglob("*.py"):
        part = path.relative_to(ROOT / "src" / "critflow").parts[0]
        if part in ("cli", "server", "report"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "CritflowError"):
                continue
            for arg in node.args[:3]:
                for text in ast.walk(arg):
                    if (
                        isinstance(text, ast.Constant)
                        and isinstance(text.value, str)
                        and re.search(r"(?<![\w])--[a-z]", re.sub(r"`[^`]*`", "", text.value))
                    ):
                        flagged.append(f"{path.name}:{node.lineno}: {text.value}")
    assert not flagged, flagged


# ------------------------------------------------------------------------ extras


def test_extras_in_pyproject_and_in_the_code_agree():
    from importlib.metadata import packages_distributions

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    provides = packages_distributions()  # import name → distributions
    module_of = {
        dist.lower().replace("_", "-"): module
        for module, dists in provides.items()
        for dist in dists
    }
    optional = project["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        for text in optional[extra]:
            dist = Requirement(text).name.lower().replace("_", "-")
            if dist in module_of:  # installed: its import name is one the extra declares
                assert module_of[dist] in modules, (extra, dist, module_of[dist])
    base = {Requirement(t).name.lower().replace("_", "-") for t in project["dependencies"]}
    for dist in base:
        if dist in module_of:
            assert extra_of(module_of[dist]) is None, f"{dist} is base but listed as an extra"
    everything = {Requirement(t).name for t in optional["all"]}
    assert everything == {"critflow"} and set(Requirement(optional["all"][0]).extras) == {
        "server",
        "passport",
        "dask",
        "brightway",
        "figures",
        "openlca",
    }


def test_an_importerror_of_an_optional_package_names_the_extra():
    problem = missing_extra(ModuleNotFoundError("x", name="bw2data.project"), "brightway")
    assert problem is not None and "critflow[brightway]" in problem.fix
    assert "bw2data" in problem.what
    # a package two extras share is named after the command's own extra
    assert extra_of("cryptography", "server") == "server"
    assert extra_of("cryptography", "passport") == "passport"
    # any other ImportError is a bug: no message, the traceback stays
    assert missing_extra(ModuleNotFoundError("x", name="numpy"), "run") is None
    with pytest.raises(ModuleNotFoundError), needs("dask", "workers="):
        raise ModuleNotFoundError("x", name="numpy")


def _without(monkeypatch, missing: str, *cached: str) -> None:
    """Simulate an uninstalled package: importing ``missing`` fails, and the modules that import
    it are imported again."""
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ModuleNotFoundError
    for name in list(sys.modules):
        if name == missing or name.startswith(missing + "."):
            monkeypatch.setitem(sys.modules, name, None)
        if cached and name.startswith(cached):
            monkeypatch.delitem(sys.modules, name)


def test_a_passport_command_without_its_extra_says_which_to_install(monkeypatch, tmp_path):
    _without(monkeypatch, "cryptography", "critflow.passport.integrity")
    result = critflow_cli("passport", "keygen", "--out", tmp_path / "issuer")
    assert result.returncode == 2, result.stderr
    assert "pip install 'critflow[passport]'" in result.stderr
    assert "'cryptography'" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_a_server_command_without_its_extra_says_which_to_install(monkeypatch, tmp_path):
    _without(monkeypatch, "sqlalchemy", "critflow.server.")
    result = critflow_cli("db", "upgrade", "--database", f"sqlite:///{tmp_path / 'r.db'}")
    assert result.returncode == 2, result.stderr
    assert "pip install 'critflow[server]'" in result.stderr
    assert "critflow db" in result.stderr


def test_workers_without_dask_say_which_extra_to_install(monkeypatch):
    from critflow.engine.cluster import dask_client

    _without(monkeypatch, "distributed")
    with pytest.raises(CritflowError) as info, dask_client(2, None):
        pass
    problem = info.value.problems[0]
    assert problem.where == "workers=" and "critflow[dask]" in problem.fix
    with dask_client(None, None) as client:  # in-process: needs nothing optional
        assert client is None


# ------------------------------------------------------------------------ start-up


def test_help_and_version_import_no_numerical_library():
    # The root package and the command's frame are light: the engine, NumPy, pandas, SciPy and
    # pint load inside the commands that use them.
    code = (
        "import sys; sys.argv = ['critflow', '--version']\n"
        "import critflow.cli.app as app\n"
        "try:\n    app.main()\nexcept SystemExit:\n    pass\n"
        "import critflow\n"
        "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'pint', 'xarray', 'pydantic',"
        " 'critflow.engine', 'critflow.model', 'sqlalchemy', 'fastapi') if m in sys.modules]\n"
        "print(critflow.__version__, heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines()[-1] == "0.1.0 []", result.stdout


def test_the_root_package_loads_the_engine_on_first_use():
    code = (
        "import sys, critflow\n"
        "before = 'critflow.engine' in sys.modules\n"
        "critflow.solve\n"
        "print(before, 'critflow.engine' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["False", "True"]


# ------------------------------------------------------------ the installed entry point


def test_entry_point_runs_a_command_and_exits_2_on_a_mistake(tmp_path):
    # python -m critflow, as a shell runs it (the console script calls the same main())
    result = critflow_process("validate", EXAMPLE)
    assert result.returncode == 0 and "is valid" in result.stdout, result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("critflow: 1\nname: x\n")
    result = critflow_process("validate", bad)
    assert result.returncode == 2 and "problem" in result.stderr
    assert "Traceback" not in result.stderr
    version = critflow_process("--version")
    assert version.returncode == 0 and version.stdout.strip() == "critflow 0.1.0"


def test_the_console_script_names_the_entry_point():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"critflow": "critflow.cli:main"}
    from critflow.cli import main

    assert callable(main)


def test_json_output_is_clean_in_process():
    result = critflow_cli("check", EXAMPLE, "--rules", "roadmap", "--format", "json")
    rows = json.loads(result.stdout)  # nothing but the document on standard output
    assert rows and {"rule", "status", "comparator"} <= set(rows[0])


def test_the_command_line_imports_no_package_the_base_install_lacks():
    """Typer 0.16+ carries its own click (typer._click) and no longer installs click, so an
    `import click` works where another extra brought click in (the test environment) and fails
    after `make demo`'s base install: critflow imports click nowhere."""
    import ast

    src = ROOT / "src" / "critflow"
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "click" for n in names), path


def test_command_modules_keep_their_annotations_as_objects():
    """Typer reads every command's signature to build --help; string annotations (from
    `from __future__ import annotations`) cost it an eval each — about 40 ms of every --help."""
    import re
    from pathlib import Path

    import critflow.cli

    folder = Path(critflow.cli.__file__).parent
    offenders = [
        p.name
        for p in folder.glob("*.py")
        if p.name not in ("__init__.py", "common.py")
        and re.search(r"^from __future__ import annotations", p.read_text("utf-8"), re.M)
    ]
    assert offenders == []
