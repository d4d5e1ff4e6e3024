"""The ``critflow`` command line: :mod:`critflow.cli.app` holds the Typer app and the one place
where a user mistake becomes exit code 2; each command group has its own module."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the ``critflow`` command (and ``python -m critflow``).

    ``critflow --version`` answers without building the command line (it imports nothing but the
    version); everything else goes through :func:`critflow.cli.app.main`."""
    if sys.argv[1:] == ["--version"]:
        from critflow._version import __version__

        print(f"critflow {__version__}")
        return
    from critflow.cli.app import main as run

    run()


__all__ = ["main"]
