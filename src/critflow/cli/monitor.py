"""``critflow monitor …``: the roadmap monitor on the command line — list the roadmap, screen a
proposal against the roadmap (with a model's own numbers) and write the one-page screening sheet; list UNFC-2019
classes and tonnes per class and element of a classification file.

The library is :mod:`critflow.monitor`; this module parses options and prints.
"""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from critflow.cli.common import AllowOutsideFiles, out
from critflow.errors import CritflowError

monitor_app = typer.Typer(
    name="monitor",
    help="The roadmap monitor: screen proposals against the roadmap, classify resources (UNFC).",
    no_args_is_help=True,
)

RoadmapOption = Annotated[
    str,
    typer.Option(
        "--roadmap",
        help="Shipped roadmap name (materinex-2030) or the path of another programme's roadmap file.",
    ),
]


@monitor_app.command("roadmap")
def roadmap_command(
    roadmap: RoadmapOption = "materinex-2030",
) -> None:
    """List the roadmap's focus domains and KPIs (ids, targets, rules), the funding instruments
    with their eligibility rules, and the colour code's cells."""
    from critflow.monitor.roadmap import load_roadmap

    loaded = load_roadmap(roadmap)
    out.print(f"[bold]{escape(loaded.title)}[/bold] ({escape(loaded.file)})")
    kpis = Table(title="Focus domains and KPIs", title_justify="left")
    for column in ("domain", "KPI", "unit", "2027", "2030", "rules"):
        kpis.add_column(column)
    for domain in loaded.domains:
        if not domain.kpis:
            kpis.add_row(escape(domain.id), escape(domain.target_text or "no KPI"), "", "", "", "")
        for kpi in domain.kpis:
            kpis.add_row(
                escape(domain.id),
                escape(kpi.id),
                escape(kpi.unit),
                _fmt(kpi.target_2027, kpi),
                _fmt(kpi.target_2030, kpi),
                escape(", ".join(kpi.rules)),
            )
    out.print(kpis)
    instruments = Table(title="Funding instruments", title_justify="left")
    for column in ("instrument", "rated as", "eligibility"):
        instruments.add_column(column)
    for item in loaded.instruments.values():
        rules = "; ".join(f"{r.id}: {r.check if r.check else 'expert group'}" for r in item.rules)
        instruments.add_row(
            escape(item.name), escape(item.colour_column or "not rated"), escape(rules)
        )
    out.print(instruments)
    cells = [
        loaded.colour(d, i, w.id)
        for d in loaded.domain_ids
        for i, item in loaded.instruments.items()
        if item.colour_column
        for w in loaded.windows
    ]
    unknown = sum(c.code == "unknown" for c in cells)
    out.print(
        f"Colour code: {len(cells) - unknown} of {len(cells)} cells given"
        + (f"; {unknown} unknown (to be filled from the roadmap's figures)" if unknown else "")
    )


@monitor_app.command("screen")
def screen(
    proposal: Annotated[Path, typer.Argument(help="Proposal file (.yaml or .json).")],
    model: Annotated[
        Path | None,
        typer.Option("--model", help="Model file: adds the model's own values for the KPIs."),
    ] = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write the one-page screening sheet: sheet.html, or sheet.pdf "
            "(printed by a headless Chromium).",
        ),
    ] = None,
    roadmap: RoadmapOption = "materinex-2030",
    as_json: Annotated[bool, typer.Option("--json", help="Print the screening as JSON.")] = False,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Screen a proposal: eligibility, timing colour, targets and claims; exit code 1 when it is
    not eligible or too late."""
    from critflow.monitor.roadmap import load_roadmap
    from critflow.monitor.screening import (
        load_proposal,
        render_sheet_html,
        render_sheet_pdf,
    )
    from critflow.monitor.screening import screen as screen_proposal

    suffix = out_path.suffix.lower() if out_path is not None else ""
    if out_path is not None and suffix not in (".html", ".htm", ".pdf"):
        raise CritflowError(
            "--out",
            f"'{out_path.name}' is neither .html nor .pdf",
            "Write sheet.html or sheet.pdf.",
        )
    loaded_roadmap = load_roadmap(roadmap)
    loaded = load_proposal(proposal, loaded_roadmap)
    run = None
    if model is not None:
        from critflow.analysis import Run
        from critflow.model import load_model

        run = Run.solve(load_model(model, allow_outside_files=allow_outside_files))
    result = screen_proposal(loaded, loaded_roadmap, run, model_file=model)
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".pdf":
            out_path.write_bytes(render_sheet_pdf(result))
        else:
            out_path.write_text(render_sheet_html(result), encoding="utf-8")
    if as_json:
        out.print_json(json.dumps(result.as_dict()))
    else:
        _print(result)
        if out_path is not None:
            out.print(f"Screening sheet written to {escape(str(out_path))}")
    if result.eligible is False or result.too_late:
        raise typer.Exit(1)


def _print(result) -> None:
    p = result.proposal
    verdict = {True: "[green]eligible[/green]", False: "[red]not eligible[/red]"}.get(
        result.eligible,
        "[yellow]eligible on the checked rules; the rest for the expert group[/yellow]",
    )
    late = " — [red]too late to start[/red]" if result.too_late else ""
    out.print(
        f"[bold]{escape(p.title)}[/bold] ({escape(result.instrument.name)}, start {p.start_year}, "
        f"window {escape(result.window or 'outside the horizon')}): {verdict}{late}"
    )
    rules = Table(title="Eligibility", title_justify="left")
    for column in ("rule", "passed", "reason"):
        rules.add_column(column)
    for r in result.eligibility:
        passed = {True: "[green]yes[/green]", False: "[red]no[/red]"}.get(r.passed, "expert group")
        rules.add_row(escape(r.rule), passed, escape(r.reason))
    out.print(rules)
    colours = Table(title="Timing: instrument colour per focus domain", title_justify="left")
    for column in ("domain", "colour", "meaning for this proposal"):
        colours.add_column(column)
    for c in result.colours:
        colours.add_row(escape(c.domain), c.colour.code if c.colour else "n/a", escape(c.verdict))
    out.print(colours)
    targets = Table(title="Targets and claims", title_justify="left")
    for column in ("KPI", "2027", "2030", "claimed", "meets 2027", "meets 2030", "model"):
        targets.add_column(column)
    for t in result.targets:
        shown = [m for m in t.model if m.value is not None]
        model = "; ".join(f"{m.scenario}: {_fmt(m.value, t.kpi)} ({m.status})" for m in shown)
        if t.model and not shown:
            model = f"n/a: {t.model[0].reason}"
        targets.add_row(
            escape(t.kpi.id),
            _fmt(t.kpi.target_2027, t.kpi),
            _fmt(t.kpi.target_2030, t.kpi),
            f"{_fmt(t.claimed, t.kpi)} ({t.claimed_year})" if t.claimed is not None else "—",
            _mark(t.meets_2027),
            _mark(t.meets_2030),
            escape(model or "—"),
        )
    out.print(targets)
    for note in result.notes:
        out.print(f"· {escape(note)}")
    if result.model_note:
        out.print(f"· {escape(result.model_note)}")


def _fmt(value, kpi) -> str:
    from critflow.monitor.screening import _fmt as fmt

    return fmt(value, kpi)


def _mark(value: bool | None) -> str:
    return {True: "[green]yes[/green]", False: "[red]no[/red]"}.get(value, "—")


@monitor_app.command("unfc")
def unfc(
    classification: Annotated[
        Path, typer.Argument(help="Classification file (.yaml): quantities with E/F/G or answers.")
    ],
    by_domain: Annotated[
        bool, typer.Option("--by-domain", help="Also split the totals by focus domain.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Print each quantity's UNFC-2019 class and the tonnes per class and element."""
    from critflow.monitor.unfc import load_classifications, quantities_by_class

    quantities = load_classifications(classification)
    totals = quantities_by_class(quantities, by_domain=by_domain)
    if as_json:
        document = {
            "quantities": [
                {
                    "project": q.project,
                    "source": q.source,
                    "source_type": q.source_type,
                    "element": q.element,
                    "tonnes": q.tonnes,
                    "reference_point": q.reference_point,
                    "code": q.unfc_class.code,
                    "class": q.unfc_class.name,
                    "sub_class": q.unfc_class.sub_class,
                    "justification": q.justification,
                    "date": q.date.isoformat(),
                    "evaluator": q.evaluator,
                    "domain": q.domain,
                }
                for q in quantities
            ],
            "totals": [t.__dict__ for t in totals],
        }
        out.print_json(json.dumps(document))
        return
    table = Table(title=f"UNFC-2019 classes: {escape(str(classification))}", title_justify="left")
    for column in ("project", "source", "element", "t", "reference point", "E F G", "class"):
        table.add_column(column, justify="right" if column == "t" else "left")
    for q in quantities:
        table.add_row(
            escape(q.project),
            escape(q.source or q.source_type),
            escape(q.element),
            f"{q.tonnes:,.6g}",
            escape(q.reference_point),
            q.unfc_class.code,
            escape(q.unfc_class.label),
        )
    out.print(table)
    summary = Table(title="Tonnes per class and element", title_justify="left")
    columns = ["class", "element", *(["domain"] if by_domain else []), "t", "quantities"]
    for column in columns:
        summary.add_column(column, justify="right" if column in ("t", "quantities") else "left")
    for t in totals:
        summary.add_row(
            escape(t.class_name),
            escape(t.element),
            *([escape(t.domain or "—")] if by_domain else []),
            f"{t.tonnes:,.6g}",
            str(t.count),
        )
    out.print(summary)


# `critflow monitor submit MODEL --project ID --year YEAR` (send a model's indicators and rule
# verdicts to the monitor's server) belongs to the server side and is added to this group by the
# server module (critflow.cli.server / the monitor server helper): register it here as
#     monitor_app.command("submit")(submit)
# with its imports kept inside the function, like the commands above.
