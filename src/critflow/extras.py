"""Optional parts of critflow and the packages each needs (``pip install 'critflow[server]'``).

The base install is the modelling toolkit. A feature whose extra is missing says which extra to
install, through :func:`needs` (in library code) or :func:`missing_extra` (the command line turns
an ImportError of an optional package into that message in one place, ``critflow.cli.app``).
Keep the lists in step with ``[project.optional-dependencies]`` in pyproject.toml
(``tests/test_extras.py`` checks that they agree).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from critflow.errors import CritflowError, Problem

#: extra → the top-level modules it provides (import names, not distribution names).
EXTRAS: dict[str, tuple[str, ...]] = {
    "server": (
        "fastapi",
        "starlette",
        "uvicorn",
        "sqlalchemy",
        "alembic",
        "psycopg",
        "argon2",
        "cryptography",
        "rfc8785",
        "segno",
        "multipart",  # python-multipart: the monitor's forms and uploads
        "python_multipart",
    ),
    "passport": ("basyx", "cryptography", "rfc8785", "segno"),
    "dask": ("distributed", "dask"),
    "brightway": ("bw2calc", "bw2data", "bw_processing"),
    "figures": ("kaleido",),
    "openlca": ("olca_schema",),
}


def extra_of(module: str, prefer: str | None = None) -> str | None:
    """The extra that provides ``module`` (a dotted name is judged by its top level), or None
    when the module is not optional; ``prefer`` wins when several extras provide it."""
    top = module.split(".")[0]
    if prefer in EXTRAS and top in EXTRAS[prefer]:
        return prefer
    return next((name for name, modules in EXTRAS.items() if top in modules), None)


def missing_extra(exc: ImportError, where: str, prefer: str | None = None) -> Problem | None:
    """The problem to report for an ImportError of an optional package (None for any other
    ImportError: that one is a bug and keeps its traceback)."""
    module = exc.name or ""
    extra = extra_of(module, prefer) if module else None
    if extra is None:
        return None
    return Problem(
        where,
        f"needs the optional package '{module.split('.')[0]}', which is not installed",
        f"Install the extra: pip install 'critflow[{extra}]'.",
    )


@contextmanager
def needs(extra: str, where: str) -> Iterator[None]:
    """Run the block; an ImportError of a package of ``extra`` becomes a CritflowError naming the
    extra to install::

        with needs("dask", "workers="):
            from distributed import Client
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}")
    try:
        yield
    except ImportError as exc:
        problem = missing_extra(exc, where, prefer=extra)
        if problem is None:
            raise
        raise CritflowError([problem]) from None
