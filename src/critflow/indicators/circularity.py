"""Circularity indicators: the Ellen MacArthur Material Circularity Indicator and the UNEP / EU
recycling rates.

Formulas:
- MCI (Ellen MacArthur Foundation & Granta Design, *Circularity Indicators: An Approach to
  Measuring Circularity — Methodology*, 2015; revised 2019 with the biological cycle):
  V = M (1 − F_R − F_U − F_S); W0 = M (1 − C_R − C_U − C_C − C_E); W_C = M (1 − E_C) C_R;
  W_F = M (1 − E_F) F_R / E_F; W = W0 + (W_F + W_C) / 2; LFI = (V + W) / (2M + (W_F − W_C) / 2);
  X = (L / L_av)(U / U_av); F(X) = 0.9 / X; MCI = max(0, 1 − LFI · F(X)). The 2015 method has no
  F_S, C_C, C_E (biological cycle). :func:`model_circularity` reads the inputs from a solved model
  whose products enter a stock.
- UNEP (2011) *Recycling Rates of Metals*: EOL-RR = functionally recycled / end-of-life discards;
  RC = (old + new scrap) / (primary + old + new scrap); OSR = old scrap / (old + new scrap).
- EU EoL-RIR (Eurostat cei_srm010; EU criticality method): old-scrap input / all input.

All functions take numbers or numpy arrays (any shape) and work element-wise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

ArrayLike = float | np.ndarray


@dataclass(frozen=True)
class MCIResult:
    """MCI and its parts: linear flow index, utility X and utility factor F(X)."""

    mci: ArrayLike
    lfi: ArrayLike
    utility: ArrayLike
    utility_factor: ArrayLike
    virgin: ArrayLike
    waste: ArrayLike


MCIMethod = Literal["emf-2015", "emf-2019"]


def _check_mci_inputs(values: dict[str, np.ndarray]) -> None:
    """Shares in [0, 1], feedstock and end-of-use shares summing to at most 1, efficiencies in
    (0, 1], mass and utility ratios positive; a CritflowError naming the first bad argument."""
    from critflow.errors import CritflowError

    def bad(name: str, what: str, fix: str) -> None:
        raise CritflowError(f"material_circularity: {name}", what, fix)

    for name in ("mass", "lifetime_ratio", "use_intensity_ratio"):
        v = values[name]
        if not np.all(np.isfinite(v) & (v > 0)):
            bad(name, "must be a positive finite number", "Give a mass and ratios above 0.")
    for name, v in values.items():
        if name.startswith(("recycled", "reused", "collected", "sustained")) and not np.all(
            (v >= 0) & (v <= 1)
        ):
            bad(name, "is a share and must lie between 0 and 1", "Give fractions (0.3 = 30 %).")
    for name in ("recycling_efficiency_eol", "recycling_efficiency_feedstock"):
        v = values[name]
        if not np.all((v > 0) & (v <= 1)):
            bad(name, "is an efficiency and must lie in (0, 1]", "Give a fraction above 0.")
    feed = (
        values["recycled_feedstock"]
        + values["reused_feedstock"]
        + values["sustained_biological_feedstock"]
    )
    end = (
        values["collected_for_recycling"]
        + values["collected_for_reuse"]
        + values["collected_for_composting"]
        + values["collected_for_energy_recovery"]
    )
    if not np.all(feed <= 1 + 1e-12):
        bad(
            "feedstock shares",
            "F_R + F_U + F_S exceed 1",
            "The feedstock shares add up to 1 at most.",
        )
    if not np.all(end <= 1 + 1e-12):
        bad("end-of-use shares", "C_R + C_U + C_C + C_E exceed 1", "They add up to 1 at most.")


def material_circularity(
    mass: ArrayLike = 1.0,
    recycled_feedstock: ArrayLike = 0.0,
    reused_feedstock: ArrayLike = 0.0,
    collected_for_recycling: ArrayLike = 0.0,
    collected_for_reuse: ArrayLike = 0.0,
    recycling_efficiency_eol: ArrayLike = 1.0,
    recycling_efficiency_feedstock: ArrayLike = 1.0,
    lifetime_ratio: ArrayLike = 1.0,
    use_intensity_ratio: ArrayLike = 1.0,
    sustained_biological_feedstock: ArrayLike = 0.0,
    collected_for_composting: ArrayLike = 0.0,
    collected_for_energy_recovery: ArrayLike = 0.0,
    method: MCIMethod = "emf-2019",
    lfi_denominator: Literal["emf", "2M"] = "emf",
) -> MCIResult:
    """Material Circularity Indicator of a product of ``mass`` (any mass unit; shares are fractions).

    ``recycled_feedstock`` F_R, ``reused_feedstock`` F_U, ``collected_for_recycling`` C_R,
    ``collected_for_reuse`` C_U, ``recycling_efficiency_eol`` E_C, ``recycling_efficiency_feedstock``
    E_F, ``lifetime_ratio`` L/L_av, ``use_intensity_ratio`` U/U_av.

    ``method='emf-2019'`` counts the biological cycle of the 2019 revision: feedstock from sustained
    production F_S is not virgin, and material collected for composting C_C or energy recovery C_E
    (biological materials only) is not waste. ``method='emf-2015'`` has no biological cycle: F_S
    counts as virgin feedstock and C_C, C_E as unrecoverable waste. For technical materials (all
    three 0) the two give the same number.

    LFI = (V + W) / (2M + (W_F − W_C)/2) in both (``lfi_denominator='emf'``, the 2015
    methodology's denominator): the (W_F − W_C)/2 term is what keeps LFI within [0, 1] whatever the
    recycling efficiencies, so that MCI ≥ 0.1 at average utility. (The 2019 PDF could not be
    consulted for this; its page is not cited.) ``lfi_denominator='2M'`` is the simplification some
    summaries and tools use (ISWA 2023 summary of the 2019 method, CircularityTool4Revit); it lets
    LFI exceed 1 when recycled feedstock comes from an inefficient process.
    """
    values = {
        name: np.asarray(value, dtype=float)
        for name, value in {
            "mass": mass,
            "recycled_feedstock": recycled_feedstock,
            "reused_feedstock": reused_feedstock,
            "collected_for_recycling": collected_for_recycling,
            "collected_for_reuse": collected_for_reuse,
            "recycling_efficiency_eol": recycling_efficiency_eol,
            "recycling_efficiency_feedstock": recycling_efficiency_feedstock,
            "lifetime_ratio": lifetime_ratio,
            "use_intensity_ratio": use_intensity_ratio,
            "sustained_biological_feedstock": sustained_biological_feedstock,
            "collected_for_composting": collected_for_composting,
            "collected_for_energy_recovery": collected_for_energy_recovery,
        }.items()
    }
    if method not in ("emf-2015", "emf-2019"):
        raise ValueError(f"method must be 'emf-2015' or 'emf-2019', not {method!r}")
    if lfi_denominator not in ("emf", "2M"):
        raise ValueError(f"lfi_denominator must be 'emf' or '2M', not {lfi_denominator!r}")
    _check_mci_inputs(values)
    m = values["mass"]
    f_r, f_u = values["recycled_feedstock"], values["reused_feedstock"]
    c_r, c_u = values["collected_for_recycling"], values["collected_for_reuse"]
    e_c, e_f = values["recycling_efficiency_eol"], values["recycling_efficiency_feedstock"]
    biological = method == "emf-2019"
    f_s = values["sustained_biological_feedstock"] if biological else 0.0
    c_bio = (
        values["collected_for_composting"] + values["collected_for_energy_recovery"]
        if biological
        else 0.0
    )
    # per unit of product mass (LFI does not depend on M; this keeps M = 1e308 finite)
    virgin = 1 - f_r - f_u - f_s
    w0 = 1 - c_r - c_u - c_bio
    w_c = (1 - e_c) * c_r
    w_f = (1 - e_f) * f_r / e_f
    waste = w0 + (w_f + w_c) / 2
    denominator = 2 + ((w_f - w_c) / 2 if lfi_denominator == "emf" else 0.0)
    lfi = (virgin + waste) / denominator
    utility = values["lifetime_ratio"] * values["use_intensity_ratio"]
    factor = 0.9 / utility
    mci = np.maximum(0.0, 1 - lfi * factor)
    with np.errstate(over="ignore"):  # the masses, not the indicator, may overflow at 1e308
        virgin, waste = m * virgin, m * waste
    return MCIResult(
        mci=mci, lfi=lfi, utility=utility, utility_factor=factor, virgin=virgin, waste=waste
    )


class MCINotApplicableError(Exception):
    """The model does not represent what the MCI needs; the message says why."""


@dataclass(frozen=True)
class ModelCircularity:
    """The masses a model's MCI is built from, (S, P, E) in kg/year each, per scenario, period and
    element: products entering use, their recycled feedstock, the end-of-life outflow of the stocks
    and what becomes of it (collected for recycling, recycled, re-entering use directly)."""

    elements: tuple[str, ...]
    product_kg: np.ndarray
    recycled_feedstock_kg: np.ndarray
    end_of_life_kg: np.ndarray
    collected_kg: np.ndarray
    recycled_kg: np.ndarray
    reused_kg: np.ndarray
    recycling_processes: tuple[str, ...]
    method: MCIMethod = "emf-2019"
    lfi_denominator: Literal["emf", "2M"] = "emf"
    utility: float = 1.0
    feedstock_efficiency: float | None = None

    def shares(self, element: str | None = None) -> dict[str, np.ndarray]:
        """F_R, C_R, C_U, E_C and E_F (S, P) for one element or the goods mass (NaN where a
        period has no product or no end-of-life outflow)."""

        def pick(a: np.ndarray) -> np.ndarray:
            return a.sum(axis=-1) if element is None else a[..., self.elements.index(element)]

        product, eol = pick(self.product_kg), pick(self.end_of_life_kg)
        collected, recycled = pick(self.collected_kg), pick(self.recycled_kg)
        with np.errstate(invalid="ignore", divide="ignore"):
            valid = (product > 0) & (eol > 0)
            f_r = np.where(valid, pick(self.recycled_feedstock_kg) / product, np.nan)
            c_r = np.where(valid, collected / eol, np.nan)
            c_u = np.where(valid, pick(self.reused_kg) / eol, np.nan)
            e_c = np.where(valid & (collected > 0), recycled / collected, 1.0)
        e_c = np.where(valid, e_c, np.nan)
        e_f = (
            np.where(valid, self.feedstock_efficiency, np.nan)
            if self.feedstock_efficiency is not None
            else np.where(valid & (collected > 0), e_c, np.where(valid, 1.0, np.nan))
        )
        return {"F_R": f_r, "C_R": c_r, "C_U": c_u, "E_C": e_c, "E_F": e_f}

    def result(self, element: str | None = None) -> MCIResult:
        """The MCI (S, P) for one element or the goods mass; NaN where it is not defined."""
        shares = self.shares(element)
        valid = np.isfinite(shares["F_R"])
        clip = {k: np.clip(np.where(valid, v, 0.5), 0.0, 1.0) for k, v in shares.items()}
        result = material_circularity(
            mass=1.0,
            recycled_feedstock=clip["F_R"],
            collected_for_recycling=clip["C_R"],
            collected_for_reuse=np.minimum(clip["C_U"], 1 - clip["C_R"]),
            recycling_efficiency_eol=np.maximum(clip["E_C"], 1e-12),
            recycling_efficiency_feedstock=np.maximum(clip["E_F"], 1e-12),
            lifetime_ratio=self.utility,
            method=self.method,
            lfi_denominator=self.lfi_denominator,
        )
        return MCIResult(
            *(
                np.where(valid, np.broadcast_to(v, valid.shape), np.nan)
                for v in vars(result).values()
            )
        )


def _derived_mass(results, seed: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """Mass (S, P, E, F) in every flow that comes from the ``seed`` flows within each period.

    Seeds are flows out of sources or stocks (their whole mass is seed-derived); every other
    process mixes what enters it and passes it on in proportion, except processes in ``blocked``
    (and sources and stocks) whose outputs carry nothing seed-derived. Stocks are boundaries: what
    enters one leaves in later years, so within a period their inflow is where tracing stops.
    """
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    from critflow.engine.topology import pass_on_shares

    topo = results.inputs.topology
    mass = results.mass_kg
    n_f = topo.n_flows
    blocks = mass.reshape(-1, n_f)
    n_blocks = blocks.shape[0]
    kinds = np.array(topo.process_kinds)
    boundary = np.isin(kinds[topo.flow_from], ("source", "stock")) | blocked[topo.flow_from]
    f_idx, i_idx, share = pass_on_shares(topo, blocks, ~boundary)
    offset = (np.arange(n_blocks) * n_f)[:, None]
    size = n_blocks * n_f
    keep = share != 0
    matrix = sp.identity(size, format="csr") - sp.csr_matrix(
        (share[keep], ((f_idx[None, :] + offset)[keep], (i_idx[None, :] + offset)[keep])),
        shape=(size, size),
    )
    rhs = (blocks * (seed & boundary)[None, :]).reshape(-1)
    return spla.splu(matrix.tocsc()).solve(rhs).reshape(mass.shape)


def _reachable(start: set[int], edges: list[tuple[int, int]], stop: set[int]) -> set[int]:
    """Processes reachable from ``start`` along ``edges`` (from, to), not passing through ``stop``."""
    seen, frontier = set(start), list(start)
    while frontier:
        u = frontier.pop()
        if u in stop and u not in start:
            continue
        for a, b in edges:
            if a == u and b not in seen:
                seen.add(b)
                frontier.append(b)
    return seen


def model_circularity(
    model,
    results,
    method: MCIMethod = "emf-2019",
    lfi_denominator: Literal["emf", "2M"] = "emf",
    utility: float = 1.0,
    feedstock_efficiency: float | None = None,
) -> ModelCircularity:
    """The MCI inputs of a solved model whose products enter a stock (products in use).

    Per scenario, period and element: M = the product flows into stocks; F_R = their share of
    recycled origin (pre- and post-consumer sources, and end-of-life material returning through the
    model's own recycling), traced by mass balance within the period; the stocks' end-of-life
    outflow is followed downstream: C_R = its share entering a recycling process (one, fed from end
    of life and by no source, whose outputs leave with fate ``recycled`` or go back into the
    processes that make products), E_C = the share of that which is recycled, C_U = the share
    re-entering a stock without recycling. E_F (the efficiency of the process that made the
    recycled feedstock) is the model's own E_C unless ``feedstock_efficiency`` is given. The
    utility X = L/L_av · U/U_av is ``utility`` (1: lifetime and use intensity as the industry
    average). Raises :class:`MCINotApplicableError` when the model has no stock or no product entering one.
    """
    topo = results.inputs.topology
    kinds = np.array(topo.process_kinds)
    flows = model.spec.flows
    if not len(topo.stock_process):
        raise MCINotApplicableError(
            "not applicable, because the model has no stock process: the MCI follows a product "
            "from its feedstock through use (a stock of products in use) to its end of life"
        )
    products = [
        f for f in topo.stock_input if flows[f].product is not None
    ]  # flows into stocks that name their product
    if not products:
        raise MCINotApplicableError(
            "not applicable, because no flow into a stock names its product (add product: NAME "
            "to the flow entering the stock of products in use)"
        )
    stocks = [int(topo.stock_process[k]) for k, f in enumerate(topo.stock_input) if f in products]
    eol_flows = [int(topo.stock_output[k]) for k, f in enumerate(topo.stock_input) if f in products]
    producers = {int(topo.flow_from[f]) for f in products}
    n_u, n_f = len(topo.process_ids), topo.n_flows
    edges = [(int(a), int(b)) for a, b in zip(topo.flow_from, topo.flow_to, strict=True)]
    stock_set = {int(u) for u in topo.stock_process}
    sources = {u for u in range(n_u) if kinds[u] == "source"}
    # end-of-life side: reachable from the stocks' outflow; supply side: reachable from a source
    eol_side = _reachable({int(topo.flow_to[f]) for f in eol_flows}, edges, stock_set) - stock_set
    supply_side = _reachable(sources, edges, stock_set) - sources - stock_set
    eol_only = eol_side - supply_side
    feedstock = np.array(
        [
            int(topo.flow_from[f]) in eol_only
            and (int(topo.flow_to[f]) in supply_side or int(topo.flow_to[f]) in producers)
            for f in range(n_f)
        ]
    )
    # an end-of-life output into a sink counts per element where that element's fate is
    # recycling (fate: {default: recycled, Nd: lost} recycles the Fe, not the Nd)
    from critflow.indicators.recovery import fate_mask

    eol_sink = np.array(
        [
            kinds[topo.flow_to[f]] == "sink" and int(topo.flow_from[f]) in eol_side
            for f in range(n_f)
        ],
        dtype=bool,
    )
    recycled_fate = fate_mask(model, "counts_as_recycling", outputs_only=False)
    recycled_fate &= eol_sink[:, None]  # (F, E)
    recycling = {
        int(topo.flow_from[f]) for f in np.flatnonzero(feedstock | recycled_fate.any(axis=1))
    }
    mass = results.mass_kg  # (S, P, E, F)
    # F_R: recycled origin of the product flows (pre-/post-consumer sources, stock outflows)
    origin = np.array(
        [
            (
                kinds[topo.flow_from[f]] == "source"
                and flows[f].origin in ("pre_consumer", "post_consumer")
            )
            or kinds[topo.flow_from[f]] == "stock"
            for f in range(n_f)
        ]
    )
    none = np.zeros(n_u, dtype=bool)
    recycled_origin = _derived_mass(results, origin, none)[..., products].sum(axis=-1)
    eol_seed = np.zeros(n_f, dtype=bool)
    eol_seed[eol_flows] = True
    # end of life up to the recycling processes (collected) or into a stock directly (re-used)
    blocked = np.zeros(n_u, dtype=bool)
    blocked[list(recycling)] = True
    before = _derived_mass(results, eol_seed, blocked)
    into_recycling = np.isin(topo.flow_to, list(recycling))
    collected = before[..., into_recycling & ~np.isin(topo.flow_from, list(recycling))].sum(axis=-1)
    reused = before[..., np.isin(topo.flow_to, stocks) & ~np.isin(topo.flow_from, list(recycling))]
    # end of life through recycling, stopping where it re-enters the supply side
    stop = np.zeros(n_u, dtype=bool)
    stop[list(supply_side | producers)] = True
    after = _derived_mass(results, eol_seed, stop)
    counted = feedstock[:, None] | recycled_fate  # (F, E)
    recycled = np.where(counted.T, after, 0.0).sum(axis=-1)
    return ModelCircularity(
        elements=tuple(topo.elements),
        product_kg=mass[..., products].sum(axis=-1),
        recycled_feedstock_kg=recycled_origin,
        end_of_life_kg=mass[..., eol_flows].sum(axis=-1),
        collected_kg=collected,
        recycled_kg=np.minimum(recycled, collected),
        reused_kg=reused.sum(axis=-1),
        recycling_processes=tuple(topo.process_ids[u] for u in sorted(recycling)),
        method=method,
        lfi_denominator=lfi_denominator,
        utility=utility,
        feedstock_efficiency=feedstock_efficiency,
    )


def eol_recycling_rate(
    functionally_recycled: ArrayLike, end_of_life_discards: ArrayLike
) -> ArrayLike:
    """UNEP EOL-RR: share of the metal in end-of-life products that is functionally recycled."""
    return np.asarray(functionally_recycled, float) / np.asarray(end_of_life_discards, float)


def recycled_content(primary: ArrayLike, old_scrap: ArrayLike, new_scrap: ArrayLike) -> ArrayLike:
    """UNEP RC: (old + new scrap) / (primary + old + new scrap) of the metal input to production."""
    scrap = np.asarray(old_scrap, float) + np.asarray(new_scrap, float)
    return scrap / (np.asarray(primary, float) + scrap)


def old_scrap_ratio(old_scrap: ArrayLike, new_scrap: ArrayLike) -> ArrayLike:
    """UNEP OSR: old scrap / (old + new scrap)."""
    old = np.asarray(old_scrap, float)
    return old / (old + np.asarray(new_scrap, float))


def eol_recycling_input_rate(
    primary: ArrayLike, old_scrap: ArrayLike, new_scrap: ArrayLike = 0.0
) -> ArrayLike:
    """EU EoL-RIR: old-scrap (post-consumer) input / all input; new scrap counts only below the line."""
    old = np.asarray(old_scrap, float)
    return old / (np.asarray(primary, float) + old + np.asarray(new_scrap, float))
