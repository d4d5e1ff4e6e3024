"""critflow: material flow and value-chain models for critical raw materials.

>>> import critflow
>>> model = critflow.load_model("examples/battery_recycling_hydromet.yaml")  # doctest: +SKIP
>>> results = critflow.solve(model)                                           # doctest: +SKIP
>>> results.flows().head()                                                    # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from critflow._version import __version__
from critflow.errors import CritflowError

if TYPE_CHECKING:
    from critflow.engine import FlowResults, solve
    from critflow.model import Model, load_model, model_from_dict, model_from_text

_LAZY = {
    "FlowResults": "critflow.engine",
    "solve": "critflow.engine",
    "Model": "critflow.model",
    "load_model": "critflow.model",
    "model_from_dict": "critflow.model",
    "model_from_text": "critflow.model",
}


def __getattr__(name: str) -> Any:
    """The model and engine load on first use (the registry and the passport tools never need
    them, and a registry worker starts seconds faster without SciPy)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'critflow' has no attribute {name!r}")


__all__ = [
    "CritflowError",
    "FlowResults",
    "Model",
    "__version__",
    "load_model",
    "model_from_dict",
    "model_from_text",
    "solve",
]
