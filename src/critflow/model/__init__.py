"""The declarative model: schema, loading YAML/JSON with positions, and checks."""

from critflow.model.core import Model
from critflow.model.load import load_model, model_from_dict, model_from_text
from critflow.model.schema import ModelFile

__all__ = ["Model", "ModelFile", "load_model", "model_from_dict", "model_from_text"]
