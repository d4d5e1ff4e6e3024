"""The roadmap monitor's domain core: the roadmap as data (domains, KPIs, targets, funding
instruments, eligibility, colour code), the public-aggregate confidentiality rule, UNFC-2019
classification of resource quantities, and proposal screening.

The web side (``critflow.server``) and the command line (``critflow monitor``) read these; this
package holds no web code. Submodules load on first use:

>>> from critflow.monitor import load_roadmap
>>> roadmap = load_roadmap()                       # doctest: +SKIP
>>> roadmap.kpis["1.1-srm-from-recycling"].target(2030)  # doctest: +SKIP
0.15
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from critflow.monitor.confidentiality import Aggregate, Contribution, public_aggregates
    from critflow.monitor.roadmap import Colour, Domain, Instrument, Kpi, Roadmap, load_roadmap

_LAZY = {
    "Roadmap": "critflow.monitor.roadmap",
    "Domain": "critflow.monitor.roadmap",
    "Kpi": "critflow.monitor.roadmap",
    "Instrument": "critflow.monitor.roadmap",
    "Colour": "critflow.monitor.roadmap",
    "load_roadmap": "critflow.monitor.roadmap",
    "Aggregate": "critflow.monitor.confidentiality",
    "Contribution": "critflow.monitor.confidentiality",
    "public_aggregates": "critflow.monitor.confidentiality",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'critflow.monitor' has no attribute {name!r}")


__all__ = [
    "Aggregate",
    "Colour",
    "Contribution",
    "Domain",
    "Instrument",
    "Kpi",
    "Roadmap",
    "load_roadmap",
    "public_aggregates",
]
