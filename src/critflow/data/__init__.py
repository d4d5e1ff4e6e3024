"""Shipped reference data: every number comes with its source.

All data files are read through this module (no other module opens them by path). Tables are CSV
files with a ``source`` column; rule sets are YAML files under ``rules/``.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

_ROOT = resources.files("critflow.data")


def data_path(name: str) -> Path:
    """Filesystem path of a shipped data file (for messages and provenance)."""
    return Path(str(_ROOT.joinpath(name)))


@lru_cache(maxsize=32)
def table(name: str) -> pd.DataFrame:
    """A shipped CSV table (``name`` without '.csv'); every row has a ``source``."""
    with _ROOT.joinpath(f"{name}.csv").open(encoding="utf-8") as handle:
        frame = pd.read_csv(handle, comment="#", skipinitialspace=True)
    if "source" not in frame.columns:
        raise RuntimeError(f"shipped table {name}.csv has no source column")  # a packaging bug
    return frame


@lru_cache(maxsize=8)
def text_table(name: str) -> pd.DataFrame:
    """A shipped CSV table with every cell read as text, nothing as missing (codes such as 'NA',
    Namibia, or '056' keep their spelling)."""
    with _ROOT.joinpath(f"{name}.csv").open(encoding="utf-8") as handle:
        frame = pd.read_csv(
            handle, comment="#", skipinitialspace=True, dtype=str, keep_default_na=False
        )
    if "source" not in frame.columns:
        raise RuntimeError(f"shipped table {name}.csv has no source column")  # a packaging bug
    return frame


def table_names() -> list[str]:
    """Names of the shipped CSV tables (without '.csv')."""
    return sorted(p.name.removesuffix(".csv") for p in _ROOT.iterdir() if p.name.endswith(".csv"))


def rule_set_names() -> list[str]:
    """Names of the shipped rule sets (files under ``rules/``)."""
    return sorted(
        p.name.removesuffix(".yaml")
        for p in _ROOT.joinpath("rules").iterdir()
        if p.name.endswith(".yaml")
    )


def rule_set_text(name: str) -> str:
    """The YAML text of a shipped rule set."""
    return _ROOT.joinpath("rules", f"{name}.yaml").read_text(encoding="utf-8")


def load_yaml(name: str) -> Any:
    """A shipped YAML file."""
    return yaml.safe_load(_ROOT.joinpath(name).read_text(encoding="utf-8"))


def roadmap_names() -> list[str]:
    """Names of the shipped roadmaps (files under ``roadmap/``, e.g. 'materinex-2030')."""
    return sorted(
        p.name.removesuffix(".yaml")
        for p in _ROOT.joinpath("roadmap").iterdir()
        if p.name.endswith(".yaml")
    )


def roadmap_text(name: str) -> str:
    """The YAML text of a shipped roadmap (domains, KPIs, instruments, colour code; each entry
    with its source). Raises FileNotFoundError for an unknown name (callers check
    :func:`roadmap_names` first)."""
    return _ROOT.joinpath("roadmap", f"{name}.yaml").read_text(encoding="utf-8")


def unfc_data(name: str) -> Any:
    """A UNFC-2019 data file under ``unfc/`` ('categories', 'classes' or 'questionnaire'): the
    axes with their categories and sub-categories, the class table, the questionnaire; each entry
    with its source."""
    return load_yaml(f"unfc/{name}.yaml")
