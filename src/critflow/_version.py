"""critflow's version, in one small module that imports nothing (``critflow --version`` reads it)."""

__version__ = "0.1.0"
