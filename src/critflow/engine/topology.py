"""The graph of a model as index arrays: processes, flows, and the transfer entries.

Index order follows the model file; kernels in :mod:`critflow.engine` work on these indices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from critflow.model.schema import MarketProcess, ModelFile, StockProcess, TransferProcess


def equal_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (i, j) with ``a[i] == b[j]``, ordered by i then j: what
    ``np.nonzero(a[:, None] == b[None, :])`` gives, without its dense len(a) × len(b) matrix (10
    GB for a regional model of 100,000 flows); time and memory grow with the pairs found."""
    a, b = np.asarray(a), np.asarray(b)
    order = np.argsort(b, kind="stable")
    ordered = b[order]
    start = np.searchsorted(ordered, a, "left")
    counts = np.searchsorted(ordered, a, "right") - start
    i = np.repeat(np.arange(a.size), counts)
    offset = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return i, order[np.repeat(start, counts) + offset]


KINDS = ("source", "sink", "transfer", "market", "stock")


@dataclass(frozen=True)
class Topology:
    """Processes, flows and equations' structure of one model (no numbers)."""

    process_ids: tuple[str, ...]
    process_kinds: tuple[str, ...]
    flow_ids: tuple[str, ...]
    flow_from: np.ndarray  # (F,) process index each flow leaves
    flow_to: np.ndarray  # (F,) process index each flow enters
    elements: tuple[str, ...]
    transfer_process: np.ndarray  # (J,) process index of transfer entry j
    transfer_output: np.ndarray  # (J,) output flow index of transfer entry j
    market_process: np.ndarray  # (M,) process index of each market
    market_balancing: np.ndarray  # (M,) balancing flow index of each market
    stock_process: np.ndarray  # (K,) process index of each stock
    stock_input: np.ndarray  # (K,) the flow entering each stock
    stock_output: np.ndarray  # (K,) the flow leaving each stock (its end-of-life outflow)
    process_index: dict[str, int] = field(repr=False)
    flow_index: dict[str, int] = field(repr=False)
    labels: Any = field(default=None, repr=False)  # Expansion of a model with dimensions

    @property
    def n_flows(self) -> int:
        return len(self.flow_ids)

    def flow_name(self, f: int) -> str:
        """Flow ``f`` for a message, as the model file names it: "'demand'", or in a model with
        dimensions the flow as written and its coordinate, "'imports' (region CN>FL)" — never a
        generated id such as ``imports.total[FL]``."""
        if self.labels is None:
            return f"'{self.flow_ids[f]}'"
        from critflow.model.dimensions import flow_name

        return flow_name(self.labels.flows[f])

    def process_name(self, u: int) -> str:
        """Process ``u`` for a message, as the model file names it, with its coordinate."""
        if self.labels is None:
            return f"'{self.process_ids[u]}'"
        from critflow.model.dimensions import process_name

        return process_name(self.labels.processes[u])

    @property
    def n_elements(self) -> int:
        return len(self.elements)


def build_topology(spec: ModelFile) -> Topology:
    """Index arrays of a checked model (ids and references are known to be valid)."""
    process_index = {p.id: i for i, p in enumerate(spec.processes)}
    flow_index = {f.id: i for i, f in enumerate(spec.flows)}
    flow_from = np.array([process_index[f.from_] for f in spec.flows], dtype=np.int64)
    flow_to = np.array([process_index[f.to] for f in spec.flows], dtype=np.int64)
    t_proc: list[int] = []
    t_out: list[int] = []
    m_proc: list[int] = []
    m_bal: list[int] = []
    k_proc: list[int] = []
    k_in: list[int] = []
    k_out: list[int] = []
    for i, process in enumerate(spec.processes):
        if isinstance(process, TransferProcess):
            outputs = (
                process.transfer.keys()
                if process.transfer
                else [spec.flows[k].id for k in np.flatnonzero(flow_from == i)]
            )
            for out in outputs:
                t_proc.append(i)
                t_out.append(flow_index[out])
        elif isinstance(process, MarketProcess):
            m_proc.append(i)
            m_bal.append(flow_index[process.balancing])
        elif isinstance(process, StockProcess):
            # checked: exactly one input and one output
            k_proc.append(i)
            k_in.append(int(np.flatnonzero(flow_to == i)[0]))
            k_out.append(int(np.flatnonzero(flow_from == i)[0]))
    return Topology(
        process_ids=tuple(p.id for p in spec.processes),
        process_kinds=tuple(p.kind for p in spec.processes),
        flow_ids=tuple(f.id for f in spec.flows),
        flow_from=flow_from,
        flow_to=flow_to,
        elements=tuple(spec.elements),
        transfer_process=np.array(t_proc, dtype=np.int64),
        transfer_output=np.array(t_out, dtype=np.int64),
        market_process=np.array(m_proc, dtype=np.int64),
        market_balancing=np.array(m_bal, dtype=np.int64),
        stock_process=np.array(k_proc, dtype=np.int64),
        stock_input=np.array(k_in, dtype=np.int64),
        stock_output=np.array(k_out, dtype=np.int64),
        process_index=process_index,
        flow_index=flow_index,
        labels=spec._expansion,
    )


def pass_on_shares(
    topology: Topology, blocks: np.ndarray, passes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs (f, i), flow f leaving the process that flow i enters, for the flows f marked in
    ``passes`` (F,), and each pair's share (N, pairs) in N blocks of flow masses (N, F): f's part of
    all that enters its process (0 where nothing enters). What a mixing process passes on through
    f is that share of what each of its inputs i brings (tracing, circularity)."""
    f_idx, i_idx = equal_pairs(topology.flow_from, topology.flow_to)
    keep = passes[f_idx]
    f_idx, i_idx = f_idx[keep], i_idx[keep]
    into = np.zeros((blocks.shape[0], len(topology.process_ids)))
    np.add.at(into, (slice(None), topology.flow_to), blocks)
    throughput = into[:, topology.flow_from[f_idx]]  # (N, pairs)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(
            throughput > 0, blocks[:, f_idx] / np.where(throughput > 0, throughput, 1.0), 0.0
        )
    return f_idx, i_idx, share
