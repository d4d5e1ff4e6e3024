"""Explanations for models the balance engine cannot solve.

Only called when something is wrong, so clarity beats speed here: blocks are examined one at a
time with dense linear algebra (SVD) to name the flows that lack information, the equations that
contradict each other, the loops that trap material, and the flows that come out negative.
"""

from __future__ import annotations

import numpy as np

from critflow.engine.assemble import Structure, block_system
from critflow.engine.compile import ModelInputs
from critflow.engine.linear import strong_components
from critflow.engine.topology import Topology
from critflow.errors import CritflowError, Problem

MAX_REPORTED = 6


def _context(inputs: ModelInputs, s: int, p: int | None = None) -> str:
    parts = []
    if p is not None and inputs.periods.size > 1:
        parts.append(str(inputs.periods[p]))
    if len(inputs.scenarios) > 1:
        parts.append(f"scenario '{inputs.scenarios[s]}'")
    return f" ({', '.join(parts)})" if parts else ""


def _fmt(inputs: ModelInputs, kg: float) -> str:
    return f"{kg / inputs.kg_per_unit:.6g} {inputs.unit}"


def trapped_loops(inputs: ModelInputs, coefficients: np.ndarray, period: int) -> list[Problem]:
    """Loops of transfer processes that send all of an element back into the loop (no exit).

    ``coefficients`` is (S, E, J). One graph of every (scenario, element) block is examined at once.
    """
    topo = inputs.topology
    n_s, n_e, _ = coefficients.shape
    n_b, n_u = n_s * n_e, len(topo.process_ids)
    is_transfer = np.array([k == "transfer" for k in topo.process_kinds])
    tau = coefficients.reshape(n_b, -1)
    source = topo.transfer_process
    target = topo.flow_to[topo.transfer_output]
    b_idx, j_idx = np.nonzero(tau > 0)
    internal = is_transfer[target[j_idx]]
    offsets = b_idx * n_u
    # components labelled by their smallest node: loops are reported in block and process order
    labels = strong_components(
        n_b, n_u, b_idx[internal], source[j_idx[internal]], target[j_idx[internal]]
    )
    size = np.bincount(labels, minlength=n_b * n_u)
    exits = np.zeros(size.size, dtype=bool)
    from_label = labels[offsets + source[j_idx]]
    leaves = ~internal
    leaves[internal] = labels[offsets[internal] + target[j_idx[internal]]] != from_label[internal]
    exits[from_label[leaves]] = True
    problems = []
    for label in np.flatnonzero((size > 1) & ~exits)[:MAX_REPORTED]:
        nodes = np.flatnonzero(labels == label)
        block = nodes[0] // n_u
        s, e = divmod(block, n_e)
        names = [topo.process_name(int(n % n_u)) for n in nodes]
        members = {int(n % n_u) for n in nodes}
        inside = internal & (b_idx == block)
        successors: dict[int, list[int]] = {}
        for u, v in zip(source[j_idx[inside]], target[j_idx[inside]], strict=True):
            if int(u) in members and int(v) in members:
                successors.setdefault(int(u), []).append(int(v))
        path = [topo.process_name(u) for u in _cycle(int(nodes[0] % n_u), successors)]
        problems.append(
            Problem(
                "processes " + ", ".join(names),
                f"{topo.elements[e]} is trapped in a loop: the transfer coefficients send all of it "
                f"from {' → '.join(path)} back into the loop, so it can never leave"
                + _context(inputs, s, period),
                "Give one process in the loop an output that leaves it (a bleed or a residue) with a "
                f"share of {topo.elements[e]} above 0.",
            )
        )
    return problems


def _cycle(start: int, successors: dict[int, list[int]]) -> list[int]:
    """A cycle through ``start`` along the loop's flows, as long as a walk finds (unvisited
    processes first), ending where it began: the path the message draws is one the material
    takes."""
    path, seen = [start], {start}
    while True:
        ahead = successors.get(path[-1], [])
        fresh = [v for v in ahead if v not in seen]
        if fresh:
            path.append(fresh[0])
            seen.add(fresh[0])
            continue
        back = next((v for v in ahead if v in seen), None)
        if back is None:  # not reached in a strongly connected loop; stop where the walk ends
            return path
        return [*path[path.index(back) :], back]


def explain_block(
    inputs: ModelInputs, structure: Structure, coefficients: np.ndarray, s: int, e: int, p: int
) -> list[Problem]:
    """Why block (scenario s, element e) in period p has no unique solution."""
    topo = inputs.topology
    matrix, rhs, labels = block_system(
        structure, coefficients, inputs.given_mask[s, e], inputs.given_mass_kg[s, p, e]
    )
    given = np.flatnonzero(inputs.given_mask[s, e])
    labels = _row_names(topo, structure, labels) + [
        f"given value of flow {topo.flow_name(int(f))}" for f in given
    ]
    u, sigma, vt = np.linalg.svd(matrix)
    scale = sigma[0] if sigma.size else 1.0
    rank = int((sigma > 1e-10 * scale).sum())
    element = topo.elements[e]
    context = _context(inputs, s, p)
    problems = []
    if rank < matrix.shape[1]:
        null = vt[rank:]
        free = np.flatnonzero(np.abs(null).max(axis=0) > 1e-8)
        flows = list(dict.fromkeys(topo.flow_name(int(f)) for f in free))
        processes = sorted(
            {topo.process_name(int(topo.flow_from[f])) for f in free}
            | {topo.process_name(int(topo.flow_to[f])) for f in free}
        )
        sources = list(
            dict.fromkeys(
                topo.flow_name(int(f))
                for f in free
                if topo.process_kinds[topo.flow_from[f]] == "source"
                # a split import's generated total is its market's to set, not the user's
                and not (topo.labels is not None and topo.labels.flows[f].hidden)
            )
        )
        fix = (
            f"Give a value to {', '.join(sources)} (goods mass with a composition, or "
            f"per-element values including {element})"
            if sources
            else "Give a value to one of these flows, or declare a market's balancing input"
        )
        problems.append(
            Problem(
                "flows " + ", ".join(flows[:12]) + ("…" if len(flows) > 12 else ""),
                f"the model does not determine how much {element} these flows carry{context}: "
                f"{matrix.shape[1] - rank} more piece(s) of information are needed "
                f"(processes involved: {', '.join(processes)})",
                fix + ".",
            )
        )
    if matrix.shape[0] > rank:
        left = u[:, rank:]
        mismatch = left.T @ rhs
        rhs_scale = max(np.abs(rhs).max(), 1.0)
        for y, gap in zip(left.T, mismatch, strict=True):
            if abs(gap) <= 1e-9 * rhs_scale:
                continue
            involved = np.flatnonzero(np.abs(y) > 1e-8)
            g_rows = involved[involved >= structure.n_structural]
            norm = np.abs(y[g_rows]).max() if g_rows.size else np.abs(y).max()
            processes = sorted(
                {
                    topo.process_name(int(structure.row_process[r]))
                    for r in involved
                    if r < structure.n_structural
                }
            )
            problems.append(
                Problem(
                    "processes " + ", ".join(processes) if processes else "given values",
                    f"these equations contradict each other for {element}{context}: "
                    + "; ".join(labels[r] for r in involved)
                    + f". The balance cannot close: it is off by {_fmt(inputs, abs(gap) / norm)}",
                    "Remove a given value that the others already determine, or correct a value or "
                    "a transfer coefficient.",
                )
            )
            break
    return problems


def negative_flows(
    inputs: ModelInputs, mass_kg: np.ndarray, tolerance: np.ndarray
) -> CritflowError:
    """An error naming the flows with negative mass (``mass_kg`` is (S, P, E, F)), each as the
    model file writes it with its coordinate. The split of a balancing import by origin follows
    from its total: a negative total is reported once, as its market's, not again per origin."""
    topo = inputs.topology
    balancing = dict(zip(topo.market_balancing.tolist(), topo.market_process.tolist(), strict=True))
    labels = topo.labels
    bad = np.argwhere(mass_kg < -tolerance)
    order = np.argsort(mass_kg[tuple(bad.T)])
    problems = []
    seen: set[tuple[int, int]] = set()
    split_total: set[tuple[int, int]] = set()  # (split process, element) whose total is named
    for s, p, e, f in bad[order]:
        if (f, e) in seen:
            continue
        seen.add((f, e))
        start, end = int(topo.flow_from[f]), int(topo.flow_to[f])
        if (start, e) in split_total:  # one origin's part of a negative balancing import
            continue
        value = _fmt(inputs, mass_kg[s, p, e, f])
        context = _context(inputs, s, p)
        flow = topo.flow_name(int(f))
        total = labels is not None and labels.flows[f].hidden
        if total:  # the total of a split balancing import: the market's balancing input
            split_total.add((end, e))
            market = next(
                (int(topo.flow_to[k]) for k in np.flatnonzero(topo.flow_from == end)), None
            )
            balancing[int(f)] = market if market is not None else end
        if f in balancing:
            market = topo.process_name(balancing[f])
            fix = (
                f"Market {market} receives more {topo.elements[e]} from its other inputs than its "
                "outputs take; lower those inputs or raise the outputs (a market's balancing input "
                "cannot be negative)."
            )
        else:
            fix = (
                "A given value downstream is larger than what reaches it, or a transfer coefficient "
                "is wrong; check the values and shares around "
                f"{topo.process_name(start)} and {topo.process_name(end)}."
            )
        what = f"carries {value} of {topo.elements[e]}{context}"
        if inputs.source is None:
            problems.append(Problem(f"flow {flow}", what, fix))
        else:  # its place in the model file: the line (and coordinate) of the flow
            where = inputs.source.where("flows", int(f))
            problems.append(Problem(where, f"flow {flow} {what}", fix))
        if len(problems) >= MAX_REPORTED:
            break
    return CritflowError(problems)


def _row_names(topo: Topology, structure: Structure, labels: list[str]) -> list[str]:
    """The structural rows' labels with processes and flows named as the model file writes
    them (with their coordinate in a model with dimensions): transfer rows, market balances,
    then any rows a solver added (a stock's outflow)."""
    if topo.labels is None:
        return labels
    n_t, n_m = topo.transfer_process.size, topo.market_process.size
    names = []
    for r, label in enumerate(labels):
        if r < n_t:
            u, k = int(topo.transfer_process[r]), int(topo.transfer_output[r])
            names.append(f"transfer coefficients of {topo.process_name(u)} to {topo.flow_name(k)}")
        elif r < n_t + n_m:
            names.append(
                f"balance of market {topo.process_name(int(topo.market_process[r - n_t]))}"
            )
        elif r < structure.n_structural and label.startswith("outflow of stock "):
            names.append(f"outflow of stock {topo.process_name(int(structure.row_process[r]))}")
        else:
            names.append(label)
    return names
