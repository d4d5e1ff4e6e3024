"""The ``critflow`` command line: :mod:`critflow.cli.app` holds the Typer app and the one place
where a user mistake becomes exit code 2; each command group has its own module."""

from __future__ import annotations

import os
import sys

BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
"""Environment variables OpenBLAS (numpy's and scipy's) reads for its thread count (the first one set wins)."""


def one_blas_thread() -> None:
    """Keep OpenBLAS to one thread unless the user set a number (before numpy loads).

    critflow's linear algebra is many small problems — batched dense solves, sparse LU, one-hot
    products — and after each call OpenBLAS's worker threads spin, waiting for the next one, on
    the cores the table writer and the solver need: `critflow run` on a 400-process model spent
    2 s of its 8 s of CPU there, `critflow validate` 0.3 of 1.9 (benchmarks/run.py)."""
    if not any(os.environ.get(name) for name in BLAS_THREADS):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def main() -> None:
    """Entry point of the ``critflow`` command (and ``python -m critflow``).

    ``critflow --version`` answers without building the command line (it imports nothing but the
    version); everything else goes through :func:`critflow.cli.app.main`."""
    if "numpy" not in sys.modules:
        one_blas_thread()
    if sys.argv[1:] == ["--version"]:
        from critflow._version import __version__

        print(f"critflow {__version__}")
        return
    from critflow.cli.app import main as run

    run()


__all__ = ["main"]
