"""Inline SVG charts of the monitor pages (no script, no build step): a KPI over the years
against its reference and its 2027/2030 targets, one line per series."""

from __future__ import annotations

import html
import math
from typing import Any

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
AGGREGATE_COLOUR = "#111111"


def number(value: Any) -> float | None:
    """``value`` as a finite float, None when it is not a number (a reference such as 'state of
    the art' is text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def kpi_chart(
    kpi_id: str,
    unit: str,
    series: dict[str, dict[int, float]],
    reference: Any = None,
    targets: dict[int, Any] | None = None,
    years: tuple[int, int] = (2023, 2030),
    width: int = 640,
    height: int = 280,
) -> str:
    """An SVG line chart: one line per series (``{name: {year: value}}``; the series called
    'aggregate' in black), the reference as a dashed line, targets as diamonds at their year.
    Every point is a ``circle.point`` with its series, year and value as data attributes."""
    targets = {y: number(v) for y, v in (targets or {}).items()}
    targets = {y: v for y, v in targets.items() if v is not None}
    ref = number(reference)
    all_years = [y for s in series.values() for y in s] + list(targets)
    first, last = min([years[0], *all_years]), max([years[1], *all_years])
    values = [v for s in series.values() for v in s.values()] + list(targets.values())
    values += [ref] if ref is not None else []
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    low = min(low, 0.0)
    if high <= low:
        high = low + 1.0
    high += (high - low) * 0.08
    left, right, top, bottom = 64, 150, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(year: float) -> float:
        return left + (year - first) / max(last - first, 1) * plot_w

    def y(value: float) -> float:
        return top + (1 - (value - low) / (high - low)) * plot_h

    parts = [
        f'<svg class="chart" data-kpi="{html.escape(kpi_id)}" data-points="'
        f'{sum(len(s) for s in series.values())}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html.escape(kpi_id)} over time">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for tick in _ticks(low, high):
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#e4e4e4"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick:g}</text>'
        )
    for year in range(first, last + 1):
        parts.append(
            f'<text x="{x(year):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'font-size="11">{year}</text>'
        )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 12 '
        f'{top + plot_h / 2:.0f})" text-anchor="middle">{html.escape(unit)}</text>'
    )
    legend_y = top + 4
    if ref is not None:
        parts.append(
            f'<line class="reference" x1="{left}" x2="{left + plot_w}" y1="{y(ref):.1f}" '
            f'y2="{y(ref):.1f}" stroke="#777" stroke-dasharray="6 4"/>'
        )
        parts.append(_legend(left + plot_w + 10, legend_y, "#777", "reference 2023", dashed=True))
        legend_y += 18
    for year, value in sorted(targets.items()):
        cx, cy = x(year), y(value)
        parts.append(
            f'<path class="target" data-year="{year}" data-value="{value:g}" '
            f'd="M{cx:.1f},{cy - 7:.1f} L{cx + 7:.1f},{cy:.1f} L{cx:.1f},{cy + 7:.1f} '
            f'L{cx - 7:.1f},{cy:.1f} Z" fill="#d62728"><title>target {year}: {value:g} '
            f"{html.escape(unit)}</title></path>"
        )
    if targets:
        parts.append(_legend(left + plot_w + 10, legend_y, "#d62728", "targets 2027/2030"))
        legend_y += 18
    colours = iter(PALETTE * 10)
    for name, points in series.items():
        if not points:
            continue
        colour = AGGREGATE_COLOUR if name == "aggregate" else next(colours)
        ordered = sorted(points.items())
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x(yr):.1f},{y(v):.1f}" for i, (yr, v) in enumerate(ordered)
        )
        parts.append(
            f'<path class="series" data-series="{html.escape(name)}" d="{path}" fill="none" '
            f'stroke="{colour}" stroke-width="{3 if name == "aggregate" else 2}"/>'
        )
        for year, value in ordered:
            parts.append(
                f'<circle class="point" data-series="{html.escape(name)}" data-year="{year}" '
                f'data-value="{value:g}" cx="{x(year):.1f}" cy="{y(value):.1f}" r="4" '
                f'fill="{colour}"><title>{html.escape(name)} {year}: {value:g} '
                f"{html.escape(unit)}</title></circle>"
            )
        parts.append(_legend(left + plot_w + 10, legend_y, colour, name))
        legend_y += 18
    parts.append("</svg>")
    return "".join(parts)


def _legend(x: float, y: float, colour: str, text: str, dashed: bool = False) -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (
        f'<line x1="{x:.0f}" x2="{x + 18:.0f}" y1="{y + 5:.0f}" y2="{y + 5:.0f}" '
        f'stroke="{colour}" stroke-width="2"{dash}/><text x="{x + 24:.0f}" y="{y + 9:.0f}" '
        f'font-size="11">{html.escape(text[:18])}</text>'
    )
