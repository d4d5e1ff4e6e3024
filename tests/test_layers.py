"""Dependencies point one way (DESIGN.md, house rules): every import of every module, read with
``ast`` (imports inside functions and under TYPE_CHECKING included), goes to its own package or to
a lower layer, and no two modules import each other, directly or around a loop."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[set[str]] = [
    {"errors", "_version"},  # the one error type for user mistakes; the version
    {"units", "data", "stocks", "extras"},  # kernels: import nothing above them
    {"model"},  # declarative: schema, loading, checks
    {"engine"},  # compile a model to arrays; balances, stocks, reconciliation, Monte Carlo
    {"impact"},  # LCA and LCC on solved flows
    {"indicators"},  # the indicator catalogue reads flows (and the LCA for climate intensity)
    {"rules", "passport"},  # rules evaluate indicators; passports are filled from a solved model
    {"blend"},  # blends check roadmap targets
    {"analysis"},  # Run: a model, its solved flows and everything computed from them, once
    {"report"},  # HTML report, tables, run folders
    {"plot"},  # plotly figures of a run for Python users (critflow.plot)
    {"monitor"},  # the roadmap monitor's domain core: roadmap, confidentiality, UNFC, screening
    {"server"},  # the passport web service
    {"cli"},  # the command line: nothing imports it
]
"""Lowest first. A module may import its own package or a package of a lower layer, never one of
its own layer or a higher one. The root package (``critflow/__init__``, a lazy facade) is left out."""


def _layer_of(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"critflow.{package} is in no layer: add it to LAYERS in {__file__}")


def _package(module: str) -> str | None:
    """The layer package of a module name ('critflow.engine.compile' -> 'engine'); None for the
    root facade. Command-line modules (``critflow/cli``, ``*/cli.py``, ``__main__``) are 'cli'."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    if parts[1] == "__main__" or parts[1] == "cli" or parts[-1] == "cli":
        return "cli"
    return parts[1]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "critflow").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> set[str]:
    """The critflow modules ``module`` imports (``from pkg import sub`` counts as pkg.sub)."""
    is_package = path.name == "__init__.py"
    result = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            result |= {a.name for a in node.names if a.name.split(".")[0] == "critflow"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "critflow":
                continue
            subs = {f"{name}.{a.name}" for a in node.names} & MODULES.keys()
            result |= subs or {name}
    return result - {module}


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_the_parser_sees_the_imports_it_should():
    # a few edges known by reading the files, so a broken parser cannot pass the tests below
    assert "critflow.model.core" in GRAPH["critflow.engine.compile"]
    assert "critflow.stocks.lifetimes" in GRAPH["critflow.engine.stock_inputs"]
    assert "critflow.data" in GRAPH["critflow.rules.compliance"]  # from critflow import data
    assert "critflow.indicators.circularity" in GRAPH["critflow.indicators.catalogue"]
    assert len(GRAPH) > 80


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_or_sibling_layer(module):
    package = _package(module)
    if package is None:
        return
    layer = _layer_of(package)
    wrong = []
    for target in sorted(GRAPH[module]):
        other = _package(target)
        if other is None or other == package:
            continue
        if _layer_of(other) >= layer:
            wrong.append(f"{target} (layer {_layer_of(other)}: {sorted(LAYERS[_layer_of(other)])})")
    assert not wrong, f"{module} (layer {layer}: {sorted(LAYERS[layer])}) imports " + ", ".join(
        wrong
    )


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a list of nodes, first = last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        package = _package(module)
        if package is None:
            continue
        graph.setdefault(package, set()).update(
            p for t in targets if (p := _package(t)) not in (None, package)
        )
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_no_import_cycle_between_modules():
    # a package's __init__ re-exports its modules: an import of the package by one of its own
    # modules goes through that re-export, so it counts as importing what __init__ imports
    graph = {m: {t for t in targets if t in MODULES} for m, targets in GRAPH.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
