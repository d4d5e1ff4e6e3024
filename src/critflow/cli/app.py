"""The ``critflow`` command: the Typer app, its command groups, and the one place where a user
mistake (:class:`~critflow.errors.CritflowError`) becomes a printed paragraph and exit code 2.

Each command group lives in its own module (``run``, ``analyse``, ``rules``, ``reconcile``,
``blend``, ``impact``, ``passport``, ``monitor``, ``server``) and holds no domain logic: it parses options,
calls the library, and prints. Library errors name Python arguments (``samples=``); this module
names the command-line flag instead (``--samples``) when it prints them.

The command modules do not use ``from __future__ import annotations``: Typer reads every
command's signature to build ``--help``, and string annotations cost it an ``eval`` each
(about 40 ms of ``critflow --help``).
"""

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from critflow._version import __version__
from critflow.cli import (
    analyse,
    blend,
    exchange,
    impact,
    init,
    monitor,
    passport,
    reconcile,
    rules,
    run,
    server,
)
from critflow.cli.common import as_flags, err, out
from critflow.cli.demo import demo
from critflow.errors import CritflowError, Problem
from critflow.extras import missing_extra

#: command → the extra it belongs to (for an ImportError of a package two extras share).
COMMAND_EXTRAS = {
    "openlca": "openlca",
    "serve": "server",
    "db": "server",
    "keys": "server",
    "passport": "passport",
}


def report(exc: CritflowError, command: str = "") -> None:
    """Print every problem of a user mistake as a paragraph on standard error, naming flags
    where the library named arguments."""
    count = len(exc.problems)
    err.print(f"[bold red]critflow: {count} problem{'s' if count > 1 else ''} found[/bold red]\n")
    for problem in exc.problems:
        shown = Problem(
            *(as_flags(text, command) for text in (problem.where, problem.what, problem.fix))
        )
        err.print(str(shown), markup=False, highlight=False, soft_wrap=True)
        err.print()


#: the order ``critflow --help`` lists the commands in: start, build and run a model, read its
#: results, the specialised analyses, passports, then the registry server and the schema
COMMAND_ORDER = (
    "init",
    "template",
    "demo",
    "validate",
    "run",
    "report",
    "indicators",
    "check",
    "compare",
    "sensitivity",
    "trace",
    "impact",
    "reconcile",
    "blend",
    "criticality",
    "passport",
    "monitor",
    "convert",
    "openlca",
    "flodym",
    "schema",
    "serve",
    "db",
    "keys",
)


class CritflowGroup(TyperGroup):
    """The root command group: turns a CritflowError (and an ImportError of an optional package,
    naming the extra to install) into a report and exit code 2, in-process (tests through
    ``typer.testing.CliRunner``) as from the shell; lists commands in :data:`COMMAND_ORDER`."""

    def list_commands(self, ctx: typer.Context) -> list[str]:
        names = list(self.commands)
        order = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda n: (order.get(n, len(order)), n))

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CritflowError as exc:
            report(exc, ctx.invoked_subcommand or "")
            ctx.exit(2)
        except ImportError as exc:
            command = ctx.invoked_subcommand or ""
            problem = missing_extra(exc, f"critflow {command}".strip(), COMMAND_EXTRAS.get(command))
            if problem is None:
                raise
            report(CritflowError([problem]))
            ctx.exit(2)


app = typer.Typer(
    name="critflow",
    cls=CritflowGroup,
    help="Material flow and value-chain models for critical raw materials.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"critflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Material flow and value-chain models for critical raw materials."""


# models: start, check, solve, report
app.command("init")(init.init)
app.command()(run.validate)
app.command()(run.run)
app.command()(run.report)
app.command()(run.schema)
app.command()(demo)
app.command()(exchange.convert)
app.command()(exchange.template)
# reading solved models: indicators, comparisons, uncertainty, stocks, criticality
app.command()(analyse.indicators)
app.command()(analyse.compare)
app.command()(analyse.sensitivity)
app.command()(analyse.trace)
app.command()(analyse.criticality)
app.command("check")(rules.check)
app.command()(reconcile.reconcile)
app.command("blend")(blend.blend)
app.command("impact")(impact.impact)
# passports and the passport registry
app.add_typer(passport.passport_app, name="passport")
# the roadmap monitor: screen, unfc (critflow.cli.monitor); the server side adds submit there
app.add_typer(monitor.monitor_app, name="monitor")
app.add_typer(exchange.openlca_app, name="openlca")
app.add_typer(exchange.flodym_app, name="flodym")
app.command("serve")(server.serve)
app.add_typer(server.db_app, name="db")
app.add_typer(server.keys_app, name="keys")


def main() -> None:
    """Entry point of the ``critflow`` command (and ``python -m critflow``)."""
    try:
        app()
    except CritflowError as exc:  # raised while parsing options, before a command runs
        report(exc)
        sys.exit(2)
