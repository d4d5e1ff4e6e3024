"""``critflow convert`` and ``critflow template``: models as YAML, JSON or Excel workbooks."""

from pathlib import Path
from typing import Annotated

import typer

from critflow.cli.common import out


def convert(
    source: Annotated[Path, typer.Argument(help="Model to read (.yaml, .yml, .json or .xlsx).")],
    target: Annotated[Path, typer.Argument(help="File to write; its ending picks the format.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace the target if it exists.")
    ] = False,
) -> None:
    """Convert a model between YAML, JSON and a model workbook (.xlsx), checking it first.

    The data carries over unchanged; comments in a YAML file do not."""
    from critflow.model.convert import convert_model

    written = convert_model(source, target, overwrite=force)
    out.print(f"Wrote {written} from {source}.")


def template(
    target: Annotated[Path, typer.Argument(help="Workbook (.xlsx) or model file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
) -> None:
    """Write the starter model of `critflow init` as a model workbook (.xlsx) to fill in.

    The workbook has one sheet per part of the model, drop-down lists and a README sheet; the
    starter is a small copper plant with a recycle loop."""
    from critflow.errors import CritflowError
    from critflow.model.convert import format_of, starter_data, write_model_data

    format_of(target, "target")
    if target.exists() and not force:
        raise CritflowError(
            str(target), "exists already", "Give another name, or --force to replace it."
        )
    write_model_data(starter_data(target.stem.replace("_", " ")), target)
    out.print(
        f"Wrote {target}: a small copper plant with a recycle loop that validates. Edit it, then run "
        f"'critflow validate {target}' and 'critflow run {target}'."
    )


openlca_app = typer.Typer(
    help="openLCA JSON-LD: export a solved model's foreground, import a process as an inventory.",
    no_args_is_help=True,
)


@openlca_app.command("export")
def openlca_export(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml, .json or .xlsx).")],
    target: Annotated[Path, typer.Argument(help="The zip to write (openLCA: Import → JSON-LD).")],
    scenario: Annotated[
        str | None, typer.Option("--scenario", "-s", help="Scenario; the first by default.")
    ] = None,
    year: Annotated[int | None, typer.Option(help="Period; the last by default.")] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="CSV (item, flow_id, flow_name, unit) linking inventory items to flows of your "
            "openLCA database by UUID."
        ),
    ] = None,
) -> None:
    """Write the foreground of a solved model as an openLCA JSON-LD zip: a process per critflow
    process (exchanges per kg of its basis), its flows, units and a product system."""
    from critflow.analysis import Run
    from critflow.engine import solve
    from critflow.errors import CritflowError
    from critflow.impact.openlca import export_openlca, read_mapping
    from critflow.model import load_model

    loaded = load_model(model)
    run = Run(loaded, solve(loaded, [scenario] if scenario else None))
    if run.impacts is None:
        raise CritflowError(
            str(model),
            "no process declares an inventory, so there is no foreground to export",
            "Add inventory: to the processes (see the README's 'Impact and cost').",
        )
    counts = export_openlca(
        loaded,
        run.results,
        run.impacts,
        target,
        scenario=scenario,
        period=year,
        mapping=read_mapping(mapping) if mapping else None,
    )
    listed = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    out.print(f"Wrote {target}: {listed}.")


@openlca_app.command("import")
def openlca_import(
    source: Annotated[Path, typer.Argument(help="An openLCA JSON-LD zip.")],
    process: Annotated[str, typer.Argument(help="The process's name or UUID.")],
) -> None:
    """Print an openLCA process's technosphere inputs per unit of its reference as a critflow
    `inventory:` block to paste into a model."""
    import yaml

    from critflow.impact.openlca import read_openlca_inventory

    inventory = read_openlca_inventory(source, process)
    out.print(yaml.safe_dump({"inventory": inventory}, sort_keys=False, allow_unicode=True))


flodym_app = typer.Typer(
    help="flodym: export a model as a flodym definition and data files; import parameter files.",
    no_args_is_help=True,
)


@flodym_app.command("export")
def flodym_export(
    model: Annotated[Path, typer.Argument(help="Model file (.yaml, .yml, .json or .xlsx).")],
    folder: Annotated[Path, typer.Argument(help="Folder to write model.py and its CSV files in.")],
    scenario: Annotated[
        str | None, typer.Option("--scenario", "-s", help="Scenario; the first by default.")
    ] = None,
) -> None:
    """Write a model (one scenario) as a flodym model: MFADefinition, compute(), CSV data."""
    from critflow.engine.flodym_export import export_flodym
    from critflow.model import load_model

    path = export_flodym(load_model(model), folder, scenario)
    out.print(f"Wrote {path} and its data files. Run it with: python {path} (needs flodym).")


@flodym_app.command("import")
def flodym_import(
    parameter_file: Annotated[Path, typer.Argument(help="A flodym parameter file (CSV).")],
    name: Annotated[
        str | None, typer.Option(help="Parameter name; the file's name by default.")
    ] = None,
) -> None:
    """Print a flodym parameter file as critflow `parameters:` to paste into a model."""
    import yaml

    from critflow.engine.flodym_export import read_flodym_parameter

    parameters = read_flodym_parameter(parameter_file, name)
    out.print(yaml.safe_dump({"parameters": parameters}, sort_keys=False))
