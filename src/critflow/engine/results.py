"""Solved flows as labelled tables: a tidy flow table, an xarray Dataset, and the balance check."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING

import numpy as np

from critflow.engine.compile import ModelInputs

if TYPE_CHECKING:  # pandas and xarray load when a table is asked for, not on import
    import pandas as pd
    import pyarrow as pa
    import xarray as xr

    from critflow.engine.stock_solve import StockState

FLOW_COLUMNS = ["scenario", "period", "flow", "from", "to", "element", "value", "unit"]
BALANCE_COLUMNS = [
    "scenario",
    "period",
    "process",
    "kind",
    "element",
    "input",
    "output",
    "stock_change",
    "residual",
    "unit",
]
STOCK_COLUMNS = [
    "scenario",
    "period",
    "stock",
    "element",
    "in_use",
    "inflow",
    "outflow",
    "retired",
    "stock_change",
    "unit",
]
SYSTEM = "(system)"
"""Row name of the whole-system balance: sources = sinks + stock change."""


@dataclass
class FlowResults:
    """Element mass of every flow for every scenario and period.

    ``mass_kg`` has shape (scenario, period, element, flow) in kg/year; tables report in the
    model's unit (``unit``).
    """

    inputs: ModelInputs
    mass_kg: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    stocks: StockState | None = None

    @property
    def unit(self) -> str:
        return self.inputs.unit

    @property
    def values(self) -> np.ndarray:
        """Element mass of every flow in the model's unit, (scenario, period, element, flow)."""
        return self.mass_kg / self.inputs.kg_per_unit

    def flows(self) -> pd.DataFrame:
        """Tidy table: scenario, period, flow, from, to, element, value, unit (one row each).

        scenario, flow and element are categorical; the rows are ordered scenario, period,
        element, flow (the order of ``values``)."""
        import pyarrow as pa

        batches = [self.flow_batch(s) for s in range(self.mass_kg.shape[0])]
        return pa.Table.from_batches(batches, flow_schema(self.inputs.topology.labels)).to_pandas()

    def flow_batch(self, s: int, periods: slice = slice(None)) -> pa.RecordBatch:
        """The rows of :meth:`flows` of scenario ``s`` and the periods ``periods``, as an Arrow
        record batch (what the run writes to flows.parquet a block of periods at a time).

        A model with dimensions reports the flow and process ids as written in the model file,
        then one column per dimension (where the flow arrives) and, per traded dimension,
        ``from_<dimension>`` (where it leaves: the origin)."""
        import pyarrow as pa

        topo = self.inputs.topology
        visible = self._visible_flows()
        block = self.mass_kg[s, periods][..., visible]  # (P', E, F')
        n_p, n_e, n_f = block.shape
        period_idx = np.arange(self.inputs.periods.size)[periods]
        flow_idx = np.tile(np.arange(n_f, dtype=np.int32), n_p * n_e)
        element_idx = np.tile(np.repeat(np.arange(n_e, dtype=np.int32), n_f), n_p)
        n = flow_idx.size
        head = [
            _dictionary(np.full(n, s, dtype=np.int32), list(self.inputs.scenarios)),
            pa.array(np.repeat(self.inputs.periods[period_idx], n_e * n_f).astype(np.int64)),
        ]
        tail = [
            _dictionary(element_idx, list(topo.elements)),
            pa.array((block / self.inputs.kg_per_unit).reshape(-1)),
            _repeat(self.unit, n),
        ]
        middle = self._flow_label_columns(visible, flow_idx, n_p * n_e)
        return pa.RecordBatch.from_arrays(head + middle + tail, schema=flow_schema(topo.labels))

    def flow_batch_by_element(self, s: int, periods: slice = slice(None)) -> pa.RecordBatch:
        """The flows of scenario ``s`` and the periods ``periods`` with a column per element:
        one row per period and flow, the labels of :meth:`flow_batch`, then ``goods [unit]``
        (the sum over the elements) and ``<element> [unit]`` for each element (what flows.csv
        holds: a stream table a spreadsheet opens)."""
        import pyarrow as pa

        topo = self.inputs.topology
        visible = self._visible_flows()
        block = self.mass_kg[s, periods][..., visible] / self.inputs.kg_per_unit  # (P', E, F')
        n_p, n_e, n_f = block.shape
        period_idx = np.arange(self.inputs.periods.size)[periods]
        flow_idx = np.tile(np.arange(n_f, dtype=np.int32), n_p)
        n = flow_idx.size
        by_element = np.ascontiguousarray(block.transpose(1, 0, 2)).reshape(n_e, n)
        columns = [
            _dictionary(np.full(n, s, dtype=np.int32), list(self.inputs.scenarios)),
            pa.array(np.repeat(self.inputs.periods[period_idx], n_f).astype(np.int64)),
            *self._flow_label_columns(visible, flow_idx, n_p),
            pa.array(block.sum(axis=1).reshape(-1)),
            *(pa.array(by_element[e]) for e in range(n_e)),
        ]
        return pa.RecordBatch.from_arrays(columns, schema=flow_schema_by_element(topo, self.unit))

    def _visible_flows(self):
        """The flows a table shows: all, or those of the model file (not generated helpers)."""
        labels = self.inputs.topology.labels
        if labels is None:
            return slice(None)
        return np.array([i for i, f in enumerate(labels.flows) if not f.hidden], dtype=np.int64)

    def _flow_label_columns(self, visible, flow_idx: np.ndarray, times: int) -> list:
        """flow, from, to (and a model's dimension and origin columns) of the rows ``flow_idx``
        (positions among the ``visible`` flows), whose flows repeat ``times`` times."""
        import pyarrow as pa

        topo = self.inputs.topology
        labels = topo.labels
        if labels is None:
            ids = topo.process_ids
            return [
                _dictionary(flow_idx, list(topo.flow_ids)),
                _tiled([ids[u] for u in topo.flow_from], times),
                _tiled([ids[u] for u in topo.flow_to], times),
            ]
        shown = [labels.flows[i] for i in visible]
        middle = [
            _labels_column([f.base for f in shown], flow_idx),
            _labels_column([f.from_base for f in shown], flow_idx).cast(pa.string()),
            _labels_column([f.to_base for f in shown], flow_idx).cast(pa.string()),
        ]
        middle += [
            _labels_column([f.coords.get(d) for f in shown], flow_idx) for d in labels.dimensions
        ]
        middle += [
            _labels_column([f.origin.get(d) for f in shown], flow_idx) for d in labels.traded
        ]
        return middle

    @property
    def stock_unit(self) -> str:
        """Mass unit of stocks: the model's flow unit times one year ('t' for 't/a')."""
        for suffix in ("/a", "/year", "/yr"):
            if self.unit.endswith(suffix):
                return self.unit.removesuffix(suffix)
        return f"{self.unit}·a"

    def stock_table(self) -> pd.DataFrame:
        """Tidy table of every stock: in use at the end of the year (in ``stock_unit``), inflow,
        outflow, retired surplus and stock change (per year, in ``unit``); per element."""
        import pandas as pd

        if self.stocks is None:
            return pd.DataFrame(columns=STOCK_COLUMNS)
        topo = self.inputs.topology
        k = self.inputs.kg_per_unit
        in_use = self.stocks.stock_kg / k  # (S, P, E, K)
        inflow = self.mass_kg[..., topo.stock_input] / k
        outflow = self.mass_kg[..., topo.stock_output] / k
        n_s, n_p, n_e, n_k = in_use.shape
        grid = np.indices((n_s, n_p, n_e, n_k)).reshape(4, -1)
        names = np.array(topo.process_ids, dtype=object)[topo.stock_process]
        dims: dict[str, np.ndarray] = {}
        if topo.labels is not None:  # the stock's id as written, and a column per dimension
            stocks = [topo.labels.processes[u] for u in topo.stock_process]
            names = np.array([p.base for p in stocks], dtype=object)
            dims = {
                d: np.array([p.coords.get(d) for p in stocks], dtype=object)[grid[3]]
                for d in topo.labels.dimensions
            }
        return pd.DataFrame(
            {
                "scenario": np.array(self.inputs.scenarios, dtype=object)[grid[0]],
                "period": self.inputs.periods[grid[1]],
                "stock": names[grid[3]],
                **dims,
                "element": np.array(topo.elements, dtype=object)[grid[2]],
                "in_use": in_use.reshape(-1),
                "inflow": inflow.reshape(-1),
                "outflow": outflow.reshape(-1),
                "retired": (self.stocks.retired_kg / k).reshape(-1),
                "stock_change": (self.stocks.stock_change_kg() / k).reshape(-1),
                "unit": f"{self.stock_unit} (in_use); {self.unit} (flows)",
            },
            columns=STOCK_COLUMNS[:3] + list(dims) + STOCK_COLUMNS[3:],
        )

    def to_dataset(self) -> xr.Dataset:
        """xarray Dataset with ``flow_mass`` (scenario, period, element, flow) in the model's unit.

        In a model with dimensions, ``flow`` is a multi-index of ``flow_id`` (the id in the model
        file), one level per dimension (where the flow arrives; '' where it spans none) and
        ``from_<dimension>`` per traded dimension, so ``.sel(flow_id='refined', region='FL')``
        and ``.groupby('region')`` work; ``from_process`` and ``to_process`` are the processes'
        ids as written."""
        import xarray as xr

        topo = self.inputs.topology
        labels = topo.labels
        coords: dict = {
            "scenario": list(self.inputs.scenarios),
            "period": self.inputs.periods,
            "element": list(topo.elements),
        }
        values = self.values
        if labels is None:
            process_ids = np.array(topo.process_ids, dtype=object)
            coords |= {
                "flow": list(topo.flow_ids),
                "from_process": ("flow", process_ids[topo.flow_from]),
                "to_process": ("flow", process_ids[topo.flow_to]),
            }
        else:
            import pandas as pd

            visible = [i for i, f in enumerate(labels.flows) if not f.hidden]
            shown = [labels.flows[i] for i in visible]
            values = values[..., visible]
            levels = {"flow_id": [f.base for f in shown]}
            levels |= {d: [f.coords.get(d, "") for f in shown] for d in labels.dimensions}
            levels |= {f"from_{d}": [f.origin.get(d, "") for f in shown] for d in labels.traded}
            index = pd.MultiIndex.from_arrays(list(levels.values()), names=list(levels))
            coords |= xr.Coordinates.from_pandas_multiindex(index, "flow")
            coords |= {
                "from_process": ("flow", [f.from_base for f in shown]),
                "to_process": ("flow", [f.to_base for f in shown]),
            }
        data = xr.DataArray(
            values,
            dims=("scenario", "period", "element", "flow"),
            coords=coords,
            attrs={"units": self.unit, "long_name": "element mass flow"},
        )
        return xr.Dataset({"flow_mass": data})

    def balance_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input, output and stock change per process in kg/year, each (S, P, E, U)."""
        return self._balance_arrays

    @cached_property
    def _balance_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from critflow.engine.linear import group_sum

        topo = self.inputs.topology
        n_u = len(topo.process_ids)
        n_f = self.mass_kg.shape[-1]
        flat = self.mass_kg.reshape(-1, n_f)
        # the flows of each process summed in one sorted reduction per side (a loop over processes
        # was processes × flows work, minutes for a regional model of 100,000 processes)
        into = group_sum(flat, topo.flow_to, n_u).reshape(*self.mass_kg.shape[:3], n_u)
        out = group_sum(flat, topo.flow_from, n_u).reshape(*self.mass_kg.shape[:3], n_u)
        change = np.zeros_like(into)
        if self.stocks is not None:
            change[..., self.inputs.topology.stock_process] = self.stocks.stock_change_kg()
        return into, out, change

    def balance(self) -> pd.DataFrame:
        """Balance per process (transfer and market) and for the whole system, per element.

        residual = input - output - stock change; it is ~0 when the balance closes. The system row
        compares what enters from sources with what leaves to sinks.
        """
        import pyarrow as pa

        batches = [self.balance_batch(s) for s in range(self.mass_kg.shape[0])]
        return pa.Table.from_batches(
            batches, balance_schema(self.inputs.topology.labels)
        ).to_pandas()

    def balance_parts(self) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
        """Names and kinds of the balanced processes plus the system, and their input, output and
        stock change in the model's unit, each (S, P, E, U') — the numbers of :meth:`balance`.
        Computed once (the report, the workbook and each block of the balance table read them);
        the arrays are read-only."""
        return self._balance_parts

    @cached_property
    def _balance_parts(self) -> tuple[list[str], list[str], np.ndarray, np.ndarray, np.ndarray]:
        topo = self.inputs.topology
        into, out, stock = self.balance_arrays()
        kinds = np.array(topo.process_kinds)
        inner = np.flatnonzero((kinds != "source") & (kinds != "sink"))
        sources, sinks = kinds == "source", kinds == "sink"
        k = self.inputs.kg_per_unit
        system_in = out[..., sources].sum(axis=-1, keepdims=True)
        system_out = into[..., sinks].sum(axis=-1, keepdims=True)
        system_stock = stock[..., inner].sum(axis=-1, keepdims=True)
        inflow = np.concatenate([into[..., inner], system_in], axis=-1) / k
        outflow = np.concatenate([out[..., inner], system_out], axis=-1) / k
        change = np.concatenate([stock[..., inner], system_stock], axis=-1) / k
        names = [topo.process_ids[u] for u in inner] + [SYSTEM]
        kind_names = [topo.process_kinds[u] for u in inner] + ["system"]
        for array in (inflow, outflow, change):
            array.setflags(write=False)
        return names, kind_names, inflow, outflow, change

    def balance_batch(self, s: int, periods: slice = slice(None)) -> pa.RecordBatch:
        """The rows of :meth:`balance` of scenario ``s`` and the periods ``periods`` (Arrow).

        A model with dimensions reports each process by its id in the model file and one column
        per dimension, after ``process``; generated helpers are left out."""
        import pyarrow as pa

        topo = self.inputs.topology
        labels = topo.labels
        names, kind_names, inflow, outflow, change = self.balance_parts()
        inflow, outflow, change = inflow[s, periods], outflow[s, periods], change[s, periods]
        keep = np.arange(len(names))
        if labels is not None:
            kinds = np.array(topo.process_kinds)
            inner = np.flatnonzero((kinds != "source") & (kinds != "sink"))
            shown = [labels.processes[u] for u in inner]
            keep = np.array(
                [i for i, p in enumerate(shown) if not p.hidden] + [len(names) - 1], dtype=np.int64
            )
            shown = [shown[i] for i in keep[:-1]]
            names = [p.base for p in shown] + [SYSTEM]
            kind_names = [kind_names[i] for i in keep]
            inflow, outflow, change = inflow[..., keep], outflow[..., keep], change[..., keep]
        n_p, n_e, n_u = inflow.shape
        period_idx = np.arange(self.inputs.periods.size)[periods]
        unit_idx = np.tile(np.arange(n_u, dtype=np.int32), n_p * n_e)
        n = unit_idx.size
        dims = []
        if labels is not None:
            dims = [
                _labels_column([p.coords.get(d) for p in shown] + [None], unit_idx)
                for d in labels.dimensions
            ]
        elements = self.inputs.topology.elements
        columns = [
            _repeat(self.inputs.scenarios[s], n),
            pa.array(np.repeat(self.inputs.periods[period_idx], n_e * n_u).astype(np.int64)),
            _tiled(names, n_p * n_e),
            *dims,
            _tiled(kind_names, n_p * n_e),
            _tiled([e for e in elements for _ in range(n_u)], n_p),
            pa.array(inflow.reshape(-1)),
            pa.array(outflow.reshape(-1)),
            pa.array(change.reshape(-1)),
            pa.array((inflow - outflow - change).reshape(-1)),
            _repeat(self.unit, n),
        ]
        return pa.RecordBatch.from_arrays(columns, schema=balance_schema(labels))

    def max_relative_residual(self) -> float:
        """Largest |residual| / max(input, output) over all processes, elements and periods."""
        return self._max_relative_residual

    @cached_property
    def _max_relative_residual(self) -> float:
        into, out, stock = self.balance_arrays()
        kinds = np.array(self.inputs.topology.process_kinds)
        inner = (kinds != "source") & (kinds != "sink")
        residual = np.abs(into - out - stock)[..., inner]
        scale = np.maximum(into, out)[..., inner]
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(scale > 0, residual / scale, 0.0)
        return float(relative.max(initial=0.0))


@cache
def _schemas():
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    flows = pa.schema(
        [
            ("scenario", text),
            ("period", pa.int64()),
            ("flow", text),
            ("from", pa.string()),
            ("to", pa.string()),
            ("element", text),
            ("value", pa.float64()),
            ("unit", pa.string()),
        ]
    )
    balance = pa.schema(
        [(name, pa.string()) for name in BALANCE_COLUMNS[:5]]
        + [(name, pa.float64()) for name in BALANCE_COLUMNS[5:9]]
        + [("unit", pa.string())]
    )
    balance = balance.set(1, pa.field("period", pa.int64()))
    return flows, balance


def flow_schema(labels=None):
    """Arrow schema of the flow table (pyarrow loads when a table is asked for); ``labels``
    (the topology's, for a model with dimensions) adds a column per dimension and per traded
    dimension ``from_<dimension>``, after ``to``."""
    flows = _schemas()[0]
    if labels is None:
        return flows
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    extra = [pa.field(d, text) for d in labels.dimensions]
    extra += [pa.field(f"from_{d}", text) for d in labels.traded]
    return pa.schema(list(flows)[:5] + extra + list(flows)[5:])


def flow_schema_by_element(topology, unit: str):
    """Arrow schema of :meth:`FlowResults.flow_batch_by_element`: the label columns of
    :func:`flow_schema`, then goods and each element in ``unit``."""
    import pyarrow as pa

    labels = list(flow_schema(topology.labels))
    numbers = [f"goods [{unit}]", *(f"{e} [{unit}]" for e in topology.elements)]
    return pa.schema(
        [f for f in labels if f.name not in ("element", "value", "unit")]
        + [pa.field(name, pa.float64()) for name in numbers]
    )


def balance_schema(labels=None):
    """Arrow schema of the balance table; a column per dimension after ``process`` when
    ``labels`` are given."""
    balance = _schemas()[1]
    if labels is None:
        return balance
    import pyarrow as pa

    text = pa.dictionary(pa.int32(), pa.string())
    extra = [pa.field(d, text) for d in labels.dimensions]
    return pa.schema(list(balance)[:3] + extra + list(balance)[3:])


def _labels_column(values: list, codes: np.ndarray):
    """A dictionary-encoded column of ``values[codes]`` (None stays null)."""
    import pyarrow as pa

    names = list(dict.fromkeys(v for v in values if v is not None))
    position = {v: i for i, v in enumerate(names)}
    lookup = np.array([position.get(v, -1) for v in values], dtype=np.int32)
    picked = lookup[codes] if lookup.size else np.zeros(0, np.int32)
    return pa.DictionaryArray.from_arrays(
        pa.array(picked, pa.int32(), mask=picked < 0), pa.array(names, pa.string())
    )


def text_column(names, codes: np.ndarray):
    """``names[codes]`` as a pandas string column (None stays missing): taken in Arrow, not built
    from millions of Python strings, where pandas keeps strings in Arrow (pandas 3); the object
    array where it keeps them as objects."""
    import pandas as pd

    names = list(names)
    dtype = _pandas_text()
    if isinstance(dtype, np.dtype) or all(n is None for n in names):  # objects, as pandas has
        return np.asarray(names or [None], dtype=object)[codes]
    import pyarrow as pa

    taken = pa.array(names, pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))
    return pd.array(taken, dtype=dtype)


@cache
def _pandas_text():
    """The dtype pandas gives a column of strings."""
    import pandas as pd

    return pd.Series(["text"]).dtype


def _dictionary(codes: np.ndarray, names: list[str]):
    """A dictionary-encoded (categorical) Arrow column."""
    import pyarrow as pa

    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string()))


def _repeat(text: str, n: int):
    """A string column holding ``text`` ``n`` times (built in Arrow, not as n Python objects)."""
    return _tiled([text], n)


def _tiled(pattern: list[str], times: int):
    """A string column of ``pattern`` repeated ``times`` times: its bytes and offsets laid out
    directly (a table's id columns repeat the same sequence for every period and element;
    taking them row by row cost a third of writing the flow table)."""
    import pyarrow as pa

    encoded = [p.encode("utf-8") for p in pattern]
    data = b"".join(encoded)
    n = len(pattern) * times
    if len(data) * times >= 2**31 - 1 or n == 0:  # past 32-bit offsets: Arrow's take
        return pa.array(pattern, pa.string()).take(
            pa.array(np.tile(np.arange(len(pattern), dtype=np.int64), times))
        )
    starts = np.zeros(len(pattern) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=starts[1:])
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[:-1] = (
        starts[:-1][None, :] + len(data) * np.arange(times, dtype=np.int64)[:, None]
    ).reshape(-1)
    offsets[-1] = len(data) * times
    return pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * times)]
    )
