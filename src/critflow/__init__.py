"""critflow: material flow and value-chain models for critical raw materials.

>>> import critflow
>>> model = critflow.load_model("examples/battery_recycling_hydromet.yaml")  # doctest: +SKIP
>>> results = critflow.solve(model)                                           # doctest: +SKIP
>>> results.flows().head()                                                    # doctest: +SKIP
"""

__version__ = "0.1.0"

from critflow.engine import FlowResults, solve
from critflow.errors import CritflowError
from critflow.model import Model, load_model, model_from_dict, model_from_text

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
