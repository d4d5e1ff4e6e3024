"""``python -m critflow`` runs the command line."""

from critflow.cli import main

main()
