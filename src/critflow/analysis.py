"""A run: a model, its inputs and solved flows, and what is computed from them — once.

The report, the tables and the commands all read a :class:`Run`. Each derived result (recovery
tables, the rules check against the shipped rule sets, the LCA, the life-cycle cost) is computed
on first use and kept, so a run that writes tables and a report checks the rules once and
assesses the impacts once. The indicators read the same cache: a rule on ``climate_intensity``
uses the run's LCA.

>>> import critflow
>>> from critflow.analysis import Run
>>> run = Run.solve(critflow.load_model("examples/battery_recycling_hydromet.yaml"))  # doctest: +SKIP
>>> run.impacts.summary_table()                                                       # doctest: +SKIP
>>> [row.status for row in run.compliance]                                            # doctest: +SKIP
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from critflow.engine import solve
from critflow.engine.compile import ModelInputs
from critflow.engine.results import FlowResults
from critflow.errors import CritflowError
from critflow.indicators.catalogue import Context
from critflow.model.core import Model

if TYPE_CHECKING:
    import pandas as pd

    from critflow.impact.cost import CostResults
    from critflow.impact.lca import ImpactResults
    from critflow.rules.compliance import CheckRow


class Run:
    """``model`` and its solved ``results``; derived results are cached properties."""

    def __init__(self, model: Model, results: FlowResults) -> None:
        self.model = model
        self.results = results
        self.cache: dict = {}  # shared with every indicator Context of this run

    @classmethod
    def solve(cls, model: Model, scenarios: list[str] | None = None) -> Run:
        """Solve ``model`` (the chosen scenarios, all by default) and return the run."""
        return cls(model, solve(model, scenarios))

    @property
    def inputs(self) -> ModelInputs:
        """The evaluated model the results were solved from."""
        return self.results.inputs

    def context(self, reference: str | None = None) -> Context:
        """An indicator context on this run's cache (``reference``: a scenario or a year)."""
        return Context(self.model, self.results, reference, cache=self.cache)

    @cached_property
    def fates_complete(self) -> bool:
        """Every flow into a sink has a fate (so recycling efficiency and material recovery apply)."""
        sinks = {p.id for p in self.model.spec.processes if p.kind == "sink"}
        return all(f.fate is not None for f in self.model.spec.flows if f.to in sinks)

    @cached_property
    def recovery(self) -> pd.DataFrame:
        """Recovery of each element per output (:func:`critflow.indicators.recovery.recovery`)."""
        from critflow.indicators.recovery import recovery

        return recovery(self.model, self.results)

    @cached_property
    def recovery_by_product(self) -> pd.DataFrame:
        """:attr:`recovery` summed over the output flows of each named product."""
        from critflow.indicators.recovery import by_product

        return by_product(self.recovery)

    @cached_property
    def recycling_efficiency(self) -> pd.DataFrame | None:
        """Battery Regulation recycling efficiency; None unless every output has a fate."""
        from critflow.indicators.recovery import recycling_efficiency

        return recycling_efficiency(self.model, self.results) if self.fates_complete else None

    @cached_property
    def material_recovery(self) -> pd.DataFrame | None:
        """Battery Regulation material recovery; None unless every output has a fate."""
        from critflow.indicators.recovery import material_recovery

        return material_recovery(self.model, self.results) if self.fates_complete else None

    @cached_property
    def compliance(self) -> list[CheckRow] | None:
        """Every shipped rule checked in the last period (pass, fail, not applicable with the
        reason); None when the shipped rules cannot be checked on this model (a scope they do not
        know, outputs without a fate: the user runs ``critflow check`` to see why)."""
        from critflow import data
        from critflow.rules import check, load_rule_sets

        try:
            return check(
                self.model, self.results, load_rule_sets(data.rule_set_names()), cache=self.cache
            )
        except CritflowError:
            return None

    @cached_property
    def impacts(self) -> ImpactResults | None:
        """The LCA of the solved flows; None when no process declares an inventory."""
        return self.context().impacts()

    @cached_property
    def costs(self) -> CostResults | None:
        """Life-cycle cost; None without inventories or without an ``economics:`` block."""
        from critflow.impact import assess_cost

        if self.impacts is None or self.model.spec.economics is None:
            return None
        return assess_cost(self.model, self.results, self.impacts)
