"""The report's uncertainty section: what a Monte Carlo run (``critflow run --samples N``) says
about the KPIs, the main flows and the targets, and Sobol indices from ``critflow sensitivity``.

The numbers are the run's merged statistics (:mod:`critflow.engine.montecarlo`): P5, P50 and P95
from the 512-bin histograms (exact to one bin width), and the probability of meeting a target as
the share of samples on the passing side of the threshold, read from the same histogram (linear
within the bin the threshold falls in). They are kept in the run folder as ``uncertainty.json``,
so ``critflow report`` draws the section again without sampling.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from critflow.analysis import Run
from critflow.errors import CritflowError
from critflow.report.sankey import display_name

UNCERTAINTY_FILE = "uncertainty.json"
GOODS_FLOWS = "flows:goods"
"""Per-sample goods mass of every flow (S, P, F), kept by :func:`critflow.indicators.sampled.
indicator_samples` so the main flows get quantiles of their own (not sums of element quantiles)."""
KPIS = (
    "recycling_efficiency",
    "material_recovery",
    "secondary_supply_share",
    "waste_per_product",
    "crm_use",
    "climate_intensity",
    "recovery",
)


def share_meeting(stats, comparator: str, threshold: float) -> np.ndarray:
    """(Q,) share of samples on the passing side of ``threshold`` from the statistics' histograms
    (the samples in the bin the threshold falls in counted in proportion to where it falls)."""
    counts = stats.counts.astype(float)  # (Q, BINS)
    bins = counts.shape[1]
    position = (threshold - stats.low) / stats.width  # in bins, from the low edge
    below = np.zeros(counts.shape[0])
    cumulative = np.cumsum(counts, axis=1)
    whole = np.clip(np.floor(position), 0, bins).astype(int)
    below += np.where(whole > 0, cumulative[np.arange(len(whole)), np.maximum(whole - 1, 0)], 0)
    inside = np.where(whole < bins, counts[np.arange(len(whole)), np.minimum(whole, bins - 1)], 0)
    below += inside * np.clip(position - whole, 0, 1)
    total = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        below_share = np.where(total > 0, below / total, np.nan)
    # all samples on one side of the threshold: decide from the extremes, not the histogram
    below_share = np.where(stats.maximum < threshold, 1.0, below_share)
    below_share = np.where(stats.minimum >= threshold, 0.0, below_share)
    return 1.0 - below_share if comparator in (">=", ">") else below_share


def _quantiles(stats) -> np.ndarray:
    return stats.quantiles((0.05, 0.5, 0.95))  # (3, Q)


def uncertainty_data(run: Run, mc, top: int = 8) -> dict[str, Any]:
    """KPI and flow bands (P5, P50, P95, mean) in the last period, and the probability of meeting
    each applicable rule of the shipped rule sets, per scenario."""
    from critflow.indicators.catalogue import INDICATORS

    results = run.results
    periods = results.inputs.periods
    p = periods.size - 1
    scenarios = list(mc.scenarios)
    topo = results.inputs.topology
    kpis = []
    for name in sorted(mc.stats, key=_kpi_order):
        if not name.startswith("indicator:"):
            continue
        indicator, _, element = name.removeprefix("indicator:").partition(":")
        if indicator not in KPIS:
            continue
        stats = mc.stats[name]
        q = _quantiles(stats).reshape(3, *mc.shapes[name])[:, :, p]  # (3, S)
        mean = stats.mean.reshape(mc.shapes[name])[:, p]
        sd = stats.sd.reshape(mc.shapes[name])[:, p]
        if not np.any(sd > 1e-9 * np.maximum(np.abs(mean), 1e-300)):
            continue  # does not vary with the sampled inputs
        unit = getattr(INDICATORS.get(indicator), "unit", "fraction")
        kpis.append(
            {
                "indicator": indicator,
                "element": element or None,
                "label": indicator.replace("_", " ") + (f" [{element}]" if element else ""),
                "fraction": unit == "fraction",
                "unit": unit,
                "bands": {
                    s: {
                        "p5": float(q[0, i]),
                        "p50": float(q[1, i]),
                        "p95": float(q[2, i]),
                        "mean": float(mean[i]),
                    }
                    for i, s in enumerate(scenarios)
                },
            }
        )
    flows = []
    if GOODS_FLOWS in mc.stats:
        stats = mc.stats[GOODS_FLOWS]
        shape = mc.shapes[GOODS_FLOWS]  # (S, P, F)
        q = _quantiles(stats).reshape(3, *shape)[:, :, p]  # (3, S, F)
        mean = stats.mean.reshape(shape)[:, p]  # (S, F)
        names = {f.id: f for f in run.model.spec.flows}
        for f in np.argsort(-mean[0])[:top]:
            fid = topo.flow_ids[f]
            flows.append(
                {
                    "flow": fid,
                    "label": display_name(fid, names[fid].name),
                    "bands": {
                        s: {
                            "p5": float(q[0, i, f]),
                            "p50": float(q[1, i, f]),
                            "p95": float(q[2, i, f]),
                            "mean": float(mean[i, f]),
                        }
                        for i, s in enumerate(scenarios)
                    },
                }
            )
    return {
        "samples": mc.samples,
        "sampler": mc.sampler,
        "seed": mc.seed,
        "inputs": list(mc.inputs),
        "period": int(periods[p]),
        "scenarios": scenarios,
        "unit": results.unit,
        "kpis": kpis,
        "flows": flows,
        "targets": target_probabilities(run, mc),
    }


def _kpi_order(name: str) -> tuple[int, str]:
    indicator = name.removeprefix("indicator:").partition(":")[0]
    return (KPIS.index(indicator) if indicator in KPIS else len(KPIS), name)


def target_probabilities(run: Run, mc) -> list[dict[str, Any]]:
    """Per applicable rule: per scenario, the share of samples that meet it (None when its
    indicator is not sampled: a traced indicator, or one that needs a reference)."""
    from critflow.indicators.catalogue import INDICATORS

    rows = run.compliance or []
    period_index = {int(y): i for i, y in enumerate(run.results.inputs.periods)}
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.status == "not applicable" or row.scenario not in mc.scenarios:
            continue
        name = "indicator:" + row.indicator + (f":{row.element}" if row.element else "")
        rule = found.setdefault(
            row.rule,
            {
                "rule": row.rule,
                "title": row.title,
                "indicator": row.indicator + (f" [{row.element}]" if row.element else ""),
                "comparator": row.comparator,
                "threshold": row.threshold,
                "fraction": getattr(INDICATORS.get(row.indicator), "unit", "fraction")
                == "fraction",
                "probability": dict.fromkeys(mc.scenarios),
            },
        )
        if name not in mc.stats or row.period not in period_index:
            continue
        shape = mc.shapes[name]  # (S, P)
        share = share_meeting(mc.stats[name], row.comparator, row.threshold).reshape(shape)
        s = mc.scenarios.index(row.scenario)
        rule["probability"][row.scenario] = float(share[s, period_index[row.period]])
    return list(found.values())


def write_uncertainty(data: dict[str, Any], folder: Path) -> Path:
    path = folder / UNCERTAINTY_FILE
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return path


def read_uncertainty(folder: Path) -> dict[str, Any] | None:
    """The uncertainty section a Monte Carlo run left in its folder, or None."""
    path = folder / UNCERTAINTY_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CritflowError(
            str(path), f"cannot be read ({exc})", "Run the model again with --samples."
        ) from None


def read_sensitivity(paths: list[Path]) -> list[dict[str, Any]] | None:
    """Sobol indices saved by ``critflow sensitivity --format json -o FILE``."""
    found = []
    for path in paths:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CritflowError(
                str(path),
                f"cannot be read as JSON ({exc})",
                "Give the file `critflow sensitivity --format json -o FILE` wrote.",
            ) from None
        documents = document if isinstance(document, list) else [document]  # one per scenario
        if not documents or not all(
            isinstance(d, dict) and {"output", "indices"} <= set(d) for d in documents
        ):
            raise CritflowError(
                str(path),
                "is not the output of `critflow sensitivity` (it needs 'output' and 'indices')",
                "Write it with: critflow sensitivity MODEL --output … --format json -o FILE.",
            )
        found.extend(documents)
    return found or None
