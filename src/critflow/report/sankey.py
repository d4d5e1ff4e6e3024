"""The Sankey of a solved model, as data (for the HTML report) and as a plotly figure (for
:mod:`critflow.plot` and the static figures).

Links are coloured by where their mass ends: each flow's mass is followed downstream through the
processes it enters (split as the solved outflows of each process split) to the flows that leave
the system, whose fate puts them in one of a few classes — recycled, product, lost, in use (a
stock), other. A flow into a sink carries its own class; a flow inside the plant carries the mix of
the classes its mass reaches, and is drawn in the colour of the largest. The same data colours links
by element instead (each goods link in the colour of its main element; in one element's view, the
element's mass fraction in the link sets the opacity).

Labels are display names: a process's or flow's ``name:``, else its id with the underscores as
spaces and each word capitalised (``liquor_split`` → ``Liquor Split``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from critflow.engine.results import FlowResults
from critflow.engine.topology import Topology
from critflow.model.schema import fate_of

KIND_COLOURS = {  # Okabe-Ito palette: distinguishable with the common colour-vision deficiencies
    "source": "#0072B2",
    "transfer": "#009E73",
    "market": "#E69F00",
    "stock": "#CC79A7",
    "sink": "#D55E00",
}
FATE_CLASSES = ("recycled", "product", "lost", "in use", "other")
"""Where mass leaving the system ends, for the colours of the Sankey's links."""
FATE_COLOURS = {
    "recycled": "#009E73",  # bluish green
    "product": "#0072B2",  # blue
    "lost": "#D55E00",  # vermillion
    "in use": "#CC79A7",  # reddish purple
    "other": "#999999",  # grey
}
LOSS_FATES = ("lost", "landfill", "incineration", "energy_recovery", "backfilling")
ELEMENT_PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
    "#882255",
    "#44AA99",
    "#117733",
)


def display_name(identifier: str, name: str | None = None) -> str:
    """A process's or flow's ``name:``, else its id as words: ``liquor_split`` → ``Liquor Split``."""
    if name:
        return name
    words = [w for w in identifier.replace("-", "_").split("_") if w]
    return " ".join(w[:1].upper() + w[1:] for w in words) or identifier


def fate_class(fate: str | None, product: str | None, into: str) -> str:
    """The class of a flow that leaves the system: ``into`` is the kind of process it enters."""
    if into == "stock":
        return "in use"
    if fate == "recycled":
        return "recycled"
    if fate in LOSS_FATES:
        return "lost"
    if fate == "intermediate" or (product and fate != "excluded"):
        return "product"
    return "other"


def exit_classes(spec, topology) -> np.ndarray:
    """(E, F) index into FATE_CLASSES of each flow's own class, -1 for a flow into a process that
    passes it on (transfer, market)."""
    flows = {f.id: f for f in spec.flows}
    out = np.full((len(topology.elements), topology.n_flows), -1, dtype=np.int64)
    for f, fid in enumerate(topology.flow_ids):
        into = topology.process_kinds[topology.flow_to[f]]
        if into not in ("sink", "stock"):
            continue
        flow = flows[fid]
        for e, element in enumerate(topology.elements):
            fate = fate_of(flow.fate, element)
            out[e, f] = FATE_CLASSES.index(fate_class(fate, flow.product, into))
    return out


def downstream_shares(values: np.ndarray, topology, classes: np.ndarray) -> np.ndarray:
    """Share of each flow's mass that ends in each fate class.

    ``values`` (..., E, F) element masses, ``classes`` (E, F) from :func:`exit_classes`; returns
    (..., E, F, C). For a flow into a sink or stock the share is 1 for its own class; for a flow
    into a transfer or market process u it is u's share y_u = Σ_g (v_g / Σ_{g' out of u} v_g') · x_g
    over u's outflows g. The processes are taken downstream first, a recycle loop (a strongly
    connected group of processes) as one small linear system; every step is vectorised over the
    scenarios, periods and elements. Mass caught in a closed loop with no way out ends nowhere
    (its shares are 0)."""
    x = _shares_by_flow(values, topology, classes)
    return np.moveaxis(x, 0, 1).reshape(*values.shape, x.shape[-1])


def _shares_by_flow(values: np.ndarray, topology, classes: np.ndarray) -> np.ndarray:
    """:func:`downstream_shares` as (F, N, C), N = the leading axes of ``values`` flattened."""
    lead = values.shape[:-1]
    n_f = values.shape[-1]
    n_c = len(FATE_CLASSES)
    flat = values.reshape(-1, n_f)  # (N, F): N = … · E
    n = flat.shape[0]
    element_of_row = np.broadcast_to(np.arange(classes.shape[0]), lead).reshape(-1)
    kinds = np.asarray(topology.process_kinds)
    passes = ~np.isin(kinds, ("sink", "stock"))  # (P,): processes that pass mass on
    flow_from, flow_to = np.asarray(topology.flow_from), np.asarray(topology.flow_to)
    x = np.zeros((n_f, n, n_c))  # flows first: a flow's shares are one contiguous block
    ends = np.nonzero(~passes[flow_to])[0]  # flows into a sink or a stock: their own class
    x[ends[:, None], np.arange(n)[None, :], classes[element_of_row][:, ends].T] = 1.0
    if passes[flow_to].any():
        from critflow.engine.linear import group_sum

        outflow = group_sum(flat, flow_from, len(kinds))  # (N, processes)
        leaving = outflow.T[flow_from]  # (F, N): outflow of the process each flow leaves
        split = np.divide(flat.T, leaving, out=np.zeros_like(leaving), where=leaving > 0)
        for group in _downstream_first(flow_from, flow_to, passes):
            _solve_group(group, len(kinds), x, split, flow_from, flow_to)
    np.clip(x, 0.0, 1.0, out=x)
    return x


def _downstream_first(flow_from: np.ndarray, flow_to: np.ndarray, passes: np.ndarray):
    """The processes that pass mass on, in groups (strongly connected: a recycle loop, or one
    process), each group after every group its outflows reach."""
    from graphlib import TopologicalSorter

    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    inner = passes[flow_from] & passes[flow_to]
    n_p = len(passes)
    graph = sp.csr_matrix(
        (np.ones(int(inner.sum())), (flow_from[inner], flow_to[inner])), shape=(n_p, n_p)
    )
    _, label = connected_components(graph, directed=True, connection="strong")
    members: dict[int, list[int]] = {}
    for p in np.nonzero(passes)[0]:
        members.setdefault(int(label[p]), []).append(int(p))
    after: dict[int, set[int]] = {g: set() for g in members}  # a group after those it feeds
    for a, b in zip(label[flow_from[inner]], label[flow_to[inner]], strict=True):
        if a != b:
            after[int(a)].add(int(b))
    return [members[g] for g in TopologicalSorter(after).static_order()]


def _solve_group(
    group: list[int], n_processes: int, x: np.ndarray, split: np.ndarray, flow_from, flow_to
) -> None:
    """Set the shares ``x`` (F, N, C) of the flows into the processes of ``group``, whose
    outflows outside the group are all known; ``split`` (F, N) is each flow's share of the
    outflow of the process it leaves."""
    from critflow.engine.linear import group_sum

    k = len(group)
    n, n_c = x.shape[1], x.shape[2]
    position = np.full(n_processes, -1)
    position[group] = np.arange(k)
    out = np.nonzero(position[flow_from] >= 0)[0]  # flows leaving the group's processes
    src, back = position[flow_from[out]], position[flow_to[out]]
    stays = back >= 0  # the flow goes to a process of the group
    exits = out[~stays]
    # b (k, N, C): the mass of each process that ends outside the group, by class
    leaves_of = np.eye(k)[src[~stays]].T  # (k, G) one-hot: the process each flow leaves
    carried = split[exits][:, :, None] * x[exits]  # (G, N, C)
    b = (leaves_of @ carried.reshape(exits.size, n * n_c)).reshape(k, n, n_c)
    if stays.any():
        exit_share = leaves_of @ split[exits]  # (k, N): share of each outflow leaving the group
        # a (k, k, N): split from process i to process j, the flows within the group summed by
        # pair (a one-hot (k·k, flows) product took an identity of k²×k²: 12 GB at k = 200)
        a = group_sum(split[out[stays]].T, src[stays] * k + back[stays], k * k)
        a = np.ascontiguousarray(a.T).reshape(k, k, n)
        y = _loop_shares(a, b, exit_share)
    else:
        y = b
    into = np.nonzero(position[flow_to] >= 0)[0]
    x[into] = y[position[flow_to[into]]]


def _loop_shares(a: np.ndarray, b: np.ndarray, exit_share: np.ndarray) -> np.ndarray:
    """y = a y + b for each of the N columns of (k, k, N) ``a`` and (k, N, C) ``b``: the shares
    of the processes of a recycle loop, where ``exit_share`` (k, N) is the share of each
    process's outflow that leaves the loop; returns y (k, N, C). A process from which no path of
    non-zero flows leads out holds mass that ends nowhere: its shares are 0 (the smallest
    non-negative solution), and the rest of the system is regular.

    Gaussian elimination without pivoting, vectorised over the N columns, a pivot at a time (k
    steps of (k, k, N) work), in the form of Grassmann, Taksar and Heyman (1985): the pivot
    1 - a_ii is not computed by a subtraction but as what leaves process i for the processes not
    yet eliminated and for outside the group (its exits, and what goes to processes that cannot
    reach a way out), and eliminating a process routes its exits on to those that feed it. Every
    step adds non-negative numbers, so each share comes out to a few roundings whatever the
    loop's condition: a loop that lets out 1e-16 of what circulates gave 0 for its exit's share
    of 1 by subtraction (1 - 1·1), and 1e-14 shares 4e-2 off, as np.linalg.solve did."""
    k = a.shape[0]
    reaches = exit_share > 0  # (k, N)
    linked = a > 0
    for _ in range(k):  # a path to a way out, one more step each time
        more = reaches | (linked & reaches[None, :, :]).any(axis=1)
        if (more == reaches).all():
            break
        reaches = more
    both = reaches[:, None, :] & reaches[None, :, :]
    # leaving (k, N): the share of each process's outflow that goes out of the group or to a
    # process that cannot reach a way out (whose shares are 0); a process that cannot reach one
    # itself is left alone (leaving 1, no links, b 0: its shares 0)
    off = np.where(np.eye(k, dtype=bool)[:, :, None], False, ~both)
    leaving = np.where(reaches, exit_share + np.where(off, a, 0.0).sum(axis=1), 1.0)
    a = np.where(both, a, 0.0)
    y = np.where(reaches[..., None], b, 0.0)
    pivot = np.empty_like(leaving)
    with np.errstate(all="ignore"):
        for i in range(k):  # forward elimination
            pivot[i] = leaving[i] + a[i, i + 1 :].sum(axis=0)  # 1 - a_ii, by addition
            if i == k - 1:
                break
            factor = a[i + 1 :, i] / pivot[i]  # (k-i-1, N): the share of row r that goes to i
            a[i + 1 :, i + 1 :] += factor[:, None, :] * a[i, None, i + 1 :]
            leaving[i + 1 :] += factor * leaving[i]
            y[i + 1 :] += factor[:, :, None] * y[i]
        for i in range(k - 1, -1, -1):  # back substitution
            if i < k - 1:
                y[i] += np.einsum("jn,jnc->nc", a[i, i + 1 :], y[i + 1 :])
            y[i] /= pivot[i][:, None]
    return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)


def sankey_data(results: FlowResults, spec=None, packed: bool = False) -> dict[str, Any]:
    """Nodes, links and link values per scenario, period and element ('goods' = sum), in the
    model's unit; with the model's ``spec``, display names and the fate classes of the links.

    ``packed``: the values and the links' fate shares stay arrays — ``values`` None and
    ``value_block`` (S, P, 1 + E, F), the fates' ``share_block`` (S, P, 1 + E, F, C) and
    ``leaving_block`` (S, P, 1 + E, C) — for the report, which sends them to the page as bytes
    (a million floats as Python lists and JSON text cost seconds)."""
    topo = results.inputs.topology
    nodes, links, source, target = shown_graph(topo)
    every_link = links.size == topo.n_flows
    values = results.values if every_link else results.values[..., links]  # (S, P, E, F)
    goods = values.sum(axis=2)
    by_scenario: dict[str, dict[str, dict[str, list[float]]]] | None = None
    if not packed:
        by_scenario = {}
        for s, scenario in enumerate(results.inputs.scenarios):
            by_period = {}
            for p, period in enumerate(results.inputs.periods):
                per_element = {"goods": goods[s, p].tolist()}
                per_element |= {e: values[s, p, i].tolist() for i, e in enumerate(topo.elements)}
                by_period[str(period)] = per_element
            by_scenario[scenario] = by_period
    processes = {p.id: p for p in spec.processes} if spec is not None else {}
    flows = {f.id: f for f in spec.flows} if spec is not None else {}
    process_ids = [topo.process_ids[u] for u in nodes]
    kinds = [topo.process_kinds[u] for u in nodes]
    flow_ids = [topo.flow_ids[f] for f in links]
    data = {
        "nodes": process_ids,
        "labels": [display_name(p, getattr(processes.get(p), "name", None)) for p in process_ids],
        "kinds": kinds,
        "colours": [KIND_COLOURS[k] for k in kinds],
        "source": source.tolist(),
        "target": target.tolist(),
        "flows": flow_ids,
        "flow_labels": [display_name(f, getattr(flows.get(f), "name", None)) for f in flow_ids],
        "unit": results.unit,
        "scenarios": list(results.inputs.scenarios),
        "periods": [str(p) for p in results.inputs.periods],
        "elements": ["goods", *topo.elements],
        "element_colours": {
            e: ELEMENT_PALETTE[i % len(ELEMENT_PALETTE)] for i, e in enumerate(topo.elements)
        },
        "values": by_scenario,
        "fate_classes": list(FATE_CLASSES),
        "fate_colours": FATE_COLOURS,
        "fates": None,
    }
    if packed:
        data["value_block"] = np.concatenate([goods[:, :, None], values], axis=2)
    if spec is not None and packed:
        share_block, data["leaving_block"] = fate_arrays(results, spec)
        data["share_block"] = share_block if every_link else share_block[:, :, :, links]
        data["fates"] = True
    elif spec is not None:
        data["fates"] = fate_data(results, spec, None if every_link else links)
    return data


def shown_graph(topology: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The processes and flows a diagram shows, and each shown flow's ends as positions among the
    shown processes: (nodes, links, source, target). A regional model's generated helpers (the
    split of a balancing import by origin: its process and the total flowing into it) are left
    out, and each origin's part is drawn from where the total comes from (``world → market``), so
    the diagram holds the flows of the model file, mass unchanged."""
    n_u, n_f = len(topology.process_ids), topology.n_flows
    labels = getattr(topology, "labels", None)
    flow_from, flow_to = topology.flow_from.copy(), topology.flow_to.copy()
    hidden_process = np.zeros(n_u, dtype=bool)
    hidden_flow = np.zeros(n_f, dtype=bool)
    if labels is not None:
        hidden_process = np.array([p.hidden for p in labels.processes], dtype=bool)
        hidden_flow = np.array([f.hidden for f in labels.flows], dtype=bool)
    if not hidden_process.any() and not hidden_flow.any():
        return np.arange(n_u), np.arange(n_f), flow_from, flow_to
    # where the total into each hidden split process comes from
    upstream = np.full(n_u, -1)
    into_hidden = np.flatnonzero(hidden_process[flow_to])
    upstream[flow_to[into_hidden]] = flow_from[into_hidden]
    redrawn = hidden_process[flow_from] & (upstream[flow_from] >= 0)
    flow_from[redrawn] = upstream[flow_from[redrawn]]
    links = np.flatnonzero(~hidden_flow & ~hidden_process[flow_from] & ~hidden_process[flow_to])
    nodes = np.flatnonzero(~hidden_process)
    position = np.full(n_u, -1)
    position[nodes] = np.arange(nodes.size)
    return nodes, links, position[flow_from[links]], position[flow_to[links]]


def fate_arrays(results: FlowResults, spec) -> tuple[np.ndarray, np.ndarray]:
    """Each link's shares by fate class, (S, P, 1 + E, F, C) with goods first, and the mass
    leaving the system in each class, (S, P, 1 + E, C), in the model's unit."""
    topo = results.inputs.topology
    values = results.values  # (S, P, E, F)
    n_s, n_p, n_e, n_f = values.shape
    n_c = len(FATE_CLASSES)
    classes = exit_classes(spec, topo)
    # the elements' shares go straight into the block behind the goods (one copy of the largest
    # array of the report, not three)
    block = np.empty((n_s, n_p, 1 + n_e, n_f, n_c))
    shares = block[:, :, 1:]
    by_flow = _shares_by_flow(values, topo, classes).reshape(n_f, n_s, n_p, n_e, n_c)
    shares[...] = np.moveaxis(by_flow, 0, 3)
    del by_flow
    goods = values.sum(axis=2)  # (S, P, F)
    with np.errstate(invalid="ignore", divide="ignore"):
        block[:, :, 0] = np.where(
            goods[..., None] > 0,
            np.einsum("spef,spefc->spfc", values, shares) / goods[..., None],
            0.0,
        )
    # mass leaving in each class: each element's outputs added up by their class, flow by flow
    leaving = np.zeros((n_s, n_p, n_e, n_c))  # (S, P, E, C)
    for f in np.flatnonzero((classes >= 0).any(axis=0)):
        into = np.flatnonzero(classes[:, f] >= 0)  # the elements: each once
        leaving[:, :, into, classes[into, f]] += values[:, :, into, f]
    return block, np.concatenate([leaving.sum(axis=2, keepdims=True), leaving], axis=2)


def fate_data(
    results: FlowResults, spec, links: np.ndarray | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """Per scenario, period and element ('goods' too): each link's shares by fate class (F × C,
    rounded to 4 digits; only the flows ``links`` if given) and the mass leaving the system in each
    class (C), in the model's unit (:func:`fate_arrays` as nested mappings)."""
    shares, leaving = fate_arrays(results, spec)  # goods first along the element axis
    if links is not None:
        shares = shares[:, :, :, links]
    names = ["goods", *results.inputs.topology.elements]
    return {
        scenario: {
            str(period): {
                name: {
                    "shares": np.round(shares[s, p, i], 4).tolist(),
                    "leaving": leaving[s, p, i].tolist(),
                }
                for i, name in enumerate(names)
            }
            for p, period in enumerate(results.inputs.periods)
        }
        for s, scenario in enumerate(results.inputs.scenarios)
    }


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def human(value: float, unit: str = "") -> str:
    """A number as people read it: 1,065 — 24,310 — 3.42 — 0.0512 (no exponent above 1e-4)."""
    if value != value:
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 1 or magnitude == 0:
        text = f"{value:,.4g}"
    elif magnitude >= 1e-4:
        text = f"{value:.3g}"
    else:
        text = f"{value:.2e}"
    return f"{text} {unit}".rstrip() if unit else text


def link_colours(data: dict, scenario: str, period: str, element: str, colour: str) -> list[str]:
    """The colour of each link: by ``fate`` (the class its mass mostly ends in), ``element``
    (goods: its main element; one element: opacity by its mass fraction) or ``kind`` (grey)."""
    n_f = len(data["flows"])
    if colour == "fate" and data.get("fates"):
        shares = np.asarray(data["fates"][scenario][period][element]["shares"]).reshape(n_f, -1)
        return [
            _rgba(data["fate_colours"][data["fate_classes"][int(np.argmax(row))]], 0.55)
            if row.sum() > 0
            else "rgba(150,150,150,0.35)"
            for row in shares
        ]
    if colour == "element":
        per = data["values"][scenario][period]
        elements = data["elements"][1:]
        matrix = np.array([per[e] for e in elements])  # (E, F)
        goods = matrix.sum(axis=0)
        if element == "goods":
            main = matrix.argmax(axis=0)
            return [_rgba(data["element_colours"][elements[i]], 0.55) for i in main]
        fraction = np.where(goods > 0, np.asarray(per[element]) / np.where(goods > 0, goods, 1), 0)
        return [_rgba(data["element_colours"][element], 0.15 + 0.75 * float(f)) for f in fraction]
    return ["rgba(120,120,120,0.35)"] * n_f


def node_labels(data: dict, values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Display names of the nodes and each node's throughput (larger of in and out)."""
    through = np.zeros((len(data["nodes"]), 2))
    np.add.at(through[:, 1], data["source"], values)
    np.add.at(through[:, 0], data["target"], values)
    return list(data.get("labels") or data["nodes"]), through.max(axis=1)


def sankey_figure(
    data: dict,
    scenario: str,
    period: str,
    element: str = "goods",
    colour: str = "fate",
    width: int = 1200,
    height: int | None = None,
    values_in_labels: bool = True,
):
    """A plotly Sankey of one scenario, period and element ('goods' for the goods mass); links
    coloured by ``colour`` (fate, element or kind), labels with each node's throughput (for a
    static figure, where nothing can be hovered)."""
    import plotly.graph_objects as go

    values = np.asarray(data["values"][scenario][period][element])
    labels, through = node_labels(data, values)
    unit = data["unit"]
    if values_in_labels:
        labels = [f"{n} — {human(v, unit)}" for n, v in zip(labels, through, strict=True)]
    figure = go.Figure(
        go.Sankey(
            arrangement="snap",
            valueformat=",.4~g",
            valuesuffix=f" {unit}",
            node={
                "label": labels,
                "color": data["colours"],
                "pad": 22,
                "thickness": 16,
                "customdata": [human(v, unit) for v in through],
                "hovertemplate": "%{label}: %{customdata}<extra></extra>",
            },
            link={
                "source": data["source"],
                "target": data["target"],
                "value": values.tolist(),
                "color": link_colours(data, scenario, period, element, colour),
                "customdata": [
                    f"{name}: {human(v, unit)}"
                    for name, v in zip(
                        data.get("flow_labels") or data["flows"], values, strict=True
                    )
                ],
                "hovertemplate": "%{customdata}<extra></extra>",
            },
        )
    )
    figure.update_layout(
        title=f"{element} — {scenario}, {period} ({unit})",
        font_size=12,
        width=width,
        height=height or sankey_height(data),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return figure


def sankey_height(data: dict) -> int:
    """Tall enough that the labels of the fullest column do not overlap (about 44 px a node)."""
    depth = _columns(data)
    fullest = max(np.bincount(depth).max(), 1) if len(depth) else 1
    return int(max(520, 44 * fullest + 80))


def _columns(data: dict) -> np.ndarray:
    """Column of each node as plotly places it: the longest path from a node without inputs,
    ignoring links that close a loop."""
    n = len(data["nodes"])
    depth = [0] * n  # Python ints: numpy's element access made this half a second for 400 nodes
    links = list(zip(data["source"], data["target"], strict=True))
    for _ in range(n):  # longest path by relaxation; a loop stops growing after n rounds
        changed = False
        for a, b in links:
            if depth[b] < depth[a] + 1 and depth[a] + 1 < n:
                depth[b] = depth[a] + 1
                changed = True
        if not changed:
            break
    return np.array(depth, dtype=np.int64)
