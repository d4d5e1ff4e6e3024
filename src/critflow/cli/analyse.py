"""Reading solved models: ``critflow indicators``, ``compare``, ``sensitivity``, ``trace`` and
``criticality``."""

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from critflow.cli.common import (
    AllowOutsideFiles,
    ResultFile,
    ResultFormat,
    deprecated_commas,
    emit,
    out,
    progress_bar,
    result_format,
    split,
    with_reference,
)
from critflow.errors import CritflowError


def indicators(
    model: Annotated[
        Path, typer.Argument(help="Model file (.yaml, .yml, .json or a model workbook .xlsx).")
    ],
    element: Annotated[
        list[str] | None,
        typer.Option(
            "--element", "-e", help="Elements to report (repeatable); goods mass by default."
        ),
    ] = None,
    year: Annotated[
        int | None, typer.Option(help="Year to report; the model's last period by default.")
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario (repeatable); all by default."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Reference scenario (or year, 2023) for the *_change indicators."),
    ] = None,
    output_format: ResultFormat = None,
    out_path: ResultFile = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Print every indicator critflow can compute for a model (and the reason for those it cannot)."""
    import numpy as np

    from critflow.engine import solve
    from critflow.indicators.catalogue import (
        INDICATORS,
        Context,
        IndicatorNotAvailableError,
        evaluate_indicator,
    )
    from critflow.model import load_model

    output_format = result_format(output_format, out_path, "indicators")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    scenarios = split(scenario) or None
    scenarios = with_reference(scenarios, reference)
    results = solve(loaded, scenarios)
    periods = list(results.inputs.periods)
    p = periods.index(year) if year in periods else len(periods) - 1
    if year is not None and year not in periods:
        raise CritflowError(
            "--year", f"the model has no period {year}", f"Periods: {periods[0]}–{periods[-1]}."
        )
    ctx = Context(loaded, results, reference)
    names = list(INDICATORS) + [n for n in loaded.spec.indicators if n not in INDICATORS]
    rows = []
    for name in names:
        for el in split(element) or [None]:
            indicator = INDICATORS.get(name)
            if indicator and indicator.element == "required" and el is None:
                continue
            if indicator and indicator.element == "none" and el is not None:
                continue
            try:
                values = evaluate_indicator(ctx, name, el)
                reason = ""
            except IndicatorNotAvailableError as exc:
                values, reason = None, str(exc)
            except CritflowError as exc:  # e.g. outputs without a fate: say so, keep the others
                values, reason = None, exc.problems[0].what
            for s, scen in enumerate(results.inputs.scenarios):
                value = None if values is None or np.isnan(values[s, p]) else float(values[s, p])
                rows.append(
                    {
                        "indicator": name,
                        "element": el,
                        "scenario": scen,
                        "period": int(periods[p]),
                        "value": value,
                        "unit": indicator.unit if indicator else "fraction",
                        "reason": reason,
                    }
                )

    def show() -> None:
        table = Table(title=f"{loaded.name}: indicators in {periods[p]}", title_justify="left")
        for column in ("indicator", "element", "scenario", "value", "note"):
            table.add_column(column)
        for row in rows:
            shown = (
                "—"
                if row["value"] is None
                else (
                    f"{row['value']:.2%}"
                    if row["unit"] == "fraction"
                    else f"{row['value']:.4g} {row['unit']}"
                )
            )
            table.add_row(
                row["indicator"],
                row["element"] or "goods",
                row["scenario"],
                shown,
                escape(row["reason"]),
            )
        out.print(table)

    emit(output_format, out_path, rows=rows, table=show)


def compare(
    model: Annotated[
        Path, typer.Argument(help="Model file (.yaml, .yml, .json or a model workbook .xlsx).")
    ],
    criteria: Annotated[
        Path,
        typer.Option(
            "--criteria", "-c", help="Criteria file (YAML): indicators, weights, directions."
        ),
    ],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario to compare (repeatable); all by default."),
    ] = None,
    scenarios: Annotated[
        list[str] | None,
        typer.Option("--scenarios", hidden=True, help="Deprecated: use -s A -s B."),
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="Reference scenario for *_change indicators.")
    ] = None,
    output_format: ResultFormat = None,
    out_path: ResultFile = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Rank scenarios on several indicators with the criteria file's methods (weighted sum, TOPSIS,
    PROMETHEE II), and how far each weight may move before the winner changes.

    Scenarios with equal scores share a rank (1, 1, 3)."""

    from critflow.engine import solve
    from critflow.indicators.compare import compare as run_compare
    from critflow.indicators.compare import load_criteria
    from critflow.model import load_model

    output_format = result_format(output_format, out_path, "compare")
    spec = load_criteria(criteria)
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    chosen = [*split(scenario), *deprecated_commas(scenarios, "--scenarios", "-s")] or None
    chosen = with_reference(chosen, reference)
    result = run_compare(loaded, solve(loaded, chosen), spec, reference)
    ranks = {m: tied_ranks(v) for m, v in result.scores.items()}
    if output_format == "csv":
        rows = [
            {"scenario": s}
            | {c.label: float(result.matrix[i, j]) for j, c in enumerate(result.criteria)}
            | {f"{m} score": float(v[i]) for m, v in result.scores.items()}
            | {f"{m} rank": int(ranks[m][i]) for m in result.scores}
            for i, s in enumerate(result.scenarios)
        ]
        emit(output_format, out_path, rows=rows)
        return
    if output_format == "json":
        document = {
            "period": result.period,
            "criteria": [c.model_dump() for c in result.criteria],
            "weights": [float(w) for w in result.weights],
            "ahp": None
            if result.ahp is None
            else {
                "lambda_max": result.ahp.lambda_max,
                "consistency_index": result.ahp.consistency_index,
                "consistency_ratio": result.ahp.consistency_ratio,
            },
            "scenarios": {
                s: {
                    "values": dict(
                        zip(
                            [c.label for c in result.criteria],
                            map(float, result.matrix[i]),
                            strict=True,
                        )
                    ),
                    "scores": {m: float(v[i]) for m, v in result.scores.items()},
                    "ranks": {m: int(ranks[m][i]) for m in result.scores},
                }
                for i, s in enumerate(result.scenarios)
            },
            "sensitivity": {
                m: [
                    {
                        "criterion": result.criteria[r.criterion].label,
                        "weight": r.weight,
                        "winner_kept_from": r.low,
                        "winner_kept_to": r.high,
                    }
                    for r in ranges
                ]
                for m, ranges in result.sensitivity.items()
            },
        }
        emit(output_format, out_path, document=document)
        return
    emit(output_format, out_path, table=lambda: _compare_table(loaded.name, result, ranks))


def tied_ranks(scores) -> list[int]:
    """Competition ranks, best (highest) first: equal scores share a rank (1, 1, 3). Scores equal
    to 1e-9 of their spread (rounding in the methods' arithmetic) count as equal."""
    import numpy as np

    values = np.asarray(scores, dtype=float)
    tolerance = 1e-9 * max(float(np.ptp(values)) if values.size else 0.0, 1e-12)
    return [int(1 + np.sum(values > v + tolerance)) for v in values]


def _compare_table(name: str, result, ranks) -> None:

    table = Table(title=f"{name}: scenarios compared in {result.period}", title_justify="left")
    table.add_column("scenario")
    for c, w in zip(result.criteria, result.weights, strict=True):
        table.add_column(escape(f"{c.label} ({c.direction}, w={w:.3g})"), justify="right")
    for m in result.scores:
        table.add_column(f"{m} score (rank)", justify="right")
    for i, s in enumerate(result.scenarios):
        table.add_row(
            s,
            *(f"{v:.4g}" for v in result.matrix[i]),
            *(f"{v[i]:.3f} ({ranks[m][i]})" for m, v in result.scores.items()),
        )
    out.print(table)
    if result.ahp is not None:
        verdict = (
            "consistent"
            if result.ahp.consistent
            else "[yellow]inconsistent: revise the pairwise comparisons[/yellow]"
        )
        out.print(
            f"AHP weights from the pairwise matrix: λmax {result.ahp.lambda_max:.4f}, CI "
            f"{result.ahp.consistency_index:.4f}, CR {result.ahp.consistency_ratio:.3f} ({verdict}; "
            "CR ≤ 0.10 is the usual limit)"
        )
    for m, ranges in result.sensitivity.items():
        first = [s for s, r in zip(result.scenarios, ranks[m], strict=True) if r == 1]
        winner = " and ".join(f"'{s}'" for s in first)
        out.print(
            f"{m}: {winner} {'rank' if len(first) > 1 else 'ranks'} first while each weight stays "
            "within (others rescaled in proportion):"
        )
        for r in ranges:
            out.print(
                f"  {escape(result.criteria[r.criterion].label):<32} weight {r.weight:.3f}: {r.low:.3f} – {r.high:.3f}"
            )


def criticality(
    materials: Annotated[
        list[str] | None,
        typer.Argument(
            help="Materials, groups or element symbols (Lithium, PGMs, W); all with supply shares by default."
        ),
    ] = None,
    shares: Annotated[
        Path | None,
        typer.Option(
            help="CSV of your own supply shares (material, stage, scope, country, share) replacing shipped ones."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option("--model", help="A model file whose criticality: block overrides inputs."),
    ] = None,
    rule_file: Annotated[
        Path | None,
        typer.Option(
            "--rule-file",
            help="A CRMA rule file whose largest_third_country_share rule replaces the shipped limit.",
        ),
    ] = None,
    output_format: ResultFormat = None,
    out_path: ResultFile = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """EU criticality (SR, EI, 2023), the CRMA lists, supply concentration and the CRMA
    single-country limit on EU sourcing per stage.

    json gives one object per material with its stages; csv one row per material and stage."""
    from dataclasses import asdict

    import pandas as pd

    from critflow.indicators.criticality import (
        criticality_rows,
        read_supply_shares,
        single_country_limit,
        supply_shares,
    )

    overrides = None
    if model is not None:
        from critflow.model import load_model

        block = load_model(model, allow_outside_files=allow_outside_files).spec.criticality
        if block is not None and block.shares:
            overrides = pd.DataFrame([row.model_dump() for row in block.shares])
    if shares is not None:
        from_file = read_supply_shares(shares)
        overrides = from_file if overrides is None else pd.concat([overrides, from_file])
    limit = None
    if rule_file is not None:
        from critflow.rules import load_rule_sets

        limit = single_country_limit(load_rule_sets([], [rule_file])[0], str(rule_file))
    limit = limit or single_country_limit()
    output_format = result_format(output_format, out_path, "criticality")
    rows = criticality_rows(materials, supply_shares(overrides, str(shares or model or "")), limit)
    limit_document = {
        "label": limit.label,
        "threshold": limit.threshold,
        "comparator": limit.comparator,
        "rule": limit.rule_id,
        "source": limit.source,
    }
    document = {"limit": limit_document, "materials": [asdict(row) for row in rows]}
    flat = []
    for row in rows:
        head = {k: v for k, v in asdict(row).items() if k != "stages"}
        for stage in row.stages or [None]:
            stage_cells = {} if stage is None else asdict(stage)
            flat.append(
                head
                | {f"stage_{k}" if k in head else k: v for k, v in stage_cells.items()}
                | {"limit": limit.label}
            )
    emit(
        output_format,
        out_path,
        rows=flat,
        document=document,
        table=lambda: _criticality_table(rows, limit, overrides),
    )


def _criticality_table(rows, limit, overrides) -> None:
    result = Table(
        title="EU criticality assessment 2023, CRMA lists and supply concentration",
        title_justify="left",
    )
    for column in (
        "material",
        "CRMA",
        "SR",
        "EI",
        "critical",
        "EoL-RIR",
        "stage",
        "HHI",
        "largest third country",
        f"{limit.label} of EU use",
    ):
        result.add_column(column)
    verdicts = {"met": "met", "breach": "[red]breach[/red]"}
    for row in rows:
        via = f" ({row.assessed_as})" if row.assessed_as not in (None, row.material) else ""
        head = [
            escape(row.material),
            escape(row.crma),
            "—" if row.supply_risk is None else f"{row.supply_risk:.1f}{via}",
            "—" if row.economic_importance is None else f"{row.economic_importance:.1f}",
            "—" if row.critical is None else ("yes" if row.critical else "no"),
            "—" if row.eol_rir is None else f"{row.eol_rir:.0%}",
        ]
        for i, stage in enumerate(row.stages or [None]):
            cells = head if i == 0 else [""] * len(head)
            if stage is None:
                result.add_row(*cells, "—", "—", "—", "—")
                continue
            label = f"{stage.stage} ({stage.scope})"
            if stage.material != row.material:
                label = f"{stage.material}: {label}"
            result.add_row(
                *cells,
                escape(label),
                f"{stage.hhi:.2f}",
                f"{stage.largest_country} {stage.largest_share:.0%}"
                if stage.largest_country
                else "—",
                verdicts.get(stage.verdict, "— global" if stage.scope != "EU" else "— not an SRM"),
            )
    out.print(result)
    out.print(
        f"CRMA single-country limit: {limit.label} ({limit.source}, rule {limit.rule_id}), checked on "
        "EU-sourcing rows of strategic raw materials (or of their strategic grade or group); global "
        "supply shares are shown, not judged."
    )
    out.print(
        "Sources: European Commission, Study on the critical raw materials for the EU 2023 (SR, EI, supply "
        "shares: three largest suppliers, so HHI is a lower bound); SCRREEN2 factsheets (EoL-RIR); "
        "Regulation (EU) 2024/1252 Annexes I and II (CRMA)."
    )
    if overrides is not None:
        out.print(
            f"{len(overrides)} supply shares replaced by your own ("
            + ", ".join(sorted(set(map(str, overrides.get("source", ["user override"])))))
            + ")."
        )


def sensitivity(
    model: Annotated[Path, typer.Argument(help="Model file with values that have distributions.")],
    output: Annotated[
        str,
        typer.Option(help="An indicator (recycling_efficiency, material_recovery …) or flow:ID."),
    ],
    element: Annotated[
        str | None, typer.Option("--element", "-e", help="Element of the output.")
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario", "-s", help="Scenario (repeatable); the model's first by default."
        ),
    ] = None,
    year: Annotated[int | None, typer.Option(help="Year; the last period by default.")] = None,
    samples: Annotated[
        int, typer.Option(help="Base samples N (a power of 2); N·(D+2) runs per scenario.")
    ] = 1024,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
    output_format: ResultFormat = None,
    out_path: ResultFile = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Sobol indices: which uncertain inputs drive the variance of an output (SALib).

    `critflow report RUN_DIR --sensitivity FILE` shows indices saved with --format json -o FILE
    (one scenario: one document; several: a list of them, one per scenario)."""
    from critflow.indicators.sensitivity import sobol_indices
    from critflow.model import load_model

    output_format = result_format(output_format, out_path, "sensitivity")
    loaded = load_model(model, allow_outside_files=allow_outside_files)
    names = split(scenario) or [next(iter(loaded.spec.scenarios))]
    found = []
    for name in names:
        started = time.perf_counter()
        with progress_bar() as progress:
            task = progress.add_task(f"Sobol samples, {name}", total=1)
            indices = sobol_indices(
                loaded,
                output,
                element,
                name,
                year,
                samples,
                seed,
                lambda done, n, task=task: progress.update(task, completed=done, total=n),
            )
        found.append((name, indices, time.perf_counter() - started))
    documents = [
        {
            "scenario": name,
            "output": indices.output,
            "runs": indices.samples,
            "mean": indices.output_mean,
            "sd": indices.output_sd,
            "indices": indices.table.to_dict("records"),
        }
        for name, indices, _ in found
    ]
    rows = [
        {"scenario": name, "output": indices.output, **row}
        for name, indices, _ in found
        for row in indices.table.to_dict("records")
    ]

    def show() -> None:
        for name, indices, elapsed in found:
            _sobol_table(indices, elapsed, name)

    emit(
        output_format,
        out_path,
        rows=rows,
        document=documents[0] if len(documents) == 1 else documents,
        table=show,
    )


def _sobol_table(found, elapsed: float, scenario: str) -> None:
    table = Table(
        title=f"Sobol indices of {found.output}, {scenario}: mean {found.output_mean:.4g}, sd "
        f"{found.output_sd:.3g} ({found.samples} runs, {elapsed:.1f} s)",
        title_justify="left",
    )
    for column in ("input", "S1 (alone)", "±95 %", "ST (total)", "±95 % "):
        table.add_column(column, justify="left" if column == "input" else "right")
    for row in found.table.itertuples():
        table.add_row(
            row.input, f"{row.S1:.3f}", f"{row.S1_conf:.3f}", f"{row.ST:.3f}", f"{row.ST_conf:.3f}"
        )
    out.print(table)


def trace(
    model: Annotated[Path, typer.Argument(help="Model file with a stock process.")],
    stock: Annotated[str, typer.Option("--stock", help="Id of the stock whose cohort is traced.")],
    cohort: Annotated[
        int, typer.Option("--cohort", help="Year the traced cohort entered the stock.")
    ],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario (repeatable); all by default."),
    ] = None,
    every: Annotated[
        int, typer.Option(help="Show every n-th year in the table (json and csv hold every year).")
    ] = 5,
    output_format: ResultFormat = None,
    out_path: ResultFile = None,
    allow_outside_files: AllowOutsideFiles = False,
) -> None:
    """Where one year's inflow to a stock is in later years: in use, or which sink (MaTrace).

    json and csv hold the full trace (every year: scenario, element, where, period, share);
    json adds the years in use per unit (longevity)."""
    from critflow.engine import solve
    from critflow.indicators.matrace import longevity, trace_cohort
    from critflow.model import load_model

    output_format = result_format(output_format, out_path, "trace")
    if every < 1:
        raise CritflowError("--every", f"{every} is not a positive step", "Give 1 or more.")
    results = solve(load_model(model, allow_outside_files=allow_outside_files), scenario)
    table_data = trace_cohort(results, stock, cohort)
    years_in_use = longevity(table_data)
    years = sorted(table_data["period"].unique())
    shown = [y for y in years if (y - years[0]) % every == 0 or y == years[-1]]

    def show() -> None:
        for name in results.inputs.scenarios:
            part = table_data[(table_data["scenario"] == name) & table_data["period"].isin(shown)]
            for element in results.inputs.topology.elements:
                rows = part[part["element"] == element]
                pivot = rows.pivot_table(
                    index="where", columns="period", values="share", sort=False
                )
                result = Table(
                    title=f"{element} of the {cohort} cohort of '{stock}', scenario '{name}': "
                    "share of the cohort (sinks cumulative)",
                    title_justify="left",
                )
                result.add_column("where")
                for year in pivot.columns:
                    result.add_column(str(year), justify="right")
                for where, values in pivot.iterrows():
                    result.add_row(escape(str(where)), *(f"{v:.1%}" for v in values))
                out.print(result)
        for row in years_in_use.itertuples():
            out.print(
                f"Longevity of {row.element} ({row.scenario}): {row.years:.1f} years in use per "
                f"unit up to {years[-1]}"
            )

    rows = table_data.to_dict("records")
    document = {
        "stock": stock,
        "cohort": cohort,
        "trace": rows,
        "longevity": years_in_use.to_dict("records"),
    }
    emit(output_format, out_path, rows=rows, document=document, table=show)
