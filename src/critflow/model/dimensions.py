"""Dimensions beyond element and period (region, product, any name), expanded into blocks.

A model may declare ``dimensions: {region: [FL, BE-other, EU-other, CN]}``; a process spans some
of them (``over: [region]``) and exists once per coordinate; a flow between two processes spanning
the same dimension joins them coordinate-wise, a flow to or from a process that does not span it
exists once per coordinate of the other end, and a trade flow (``trade: {region: {CN: [FL]}}``)
joins named coordinates, its origin being the coordinate it leaves. Any value (transfer
coefficient, composition, given value, lifetime, price…) may vary along a dimension the item spans:
``{region: {FL: 0.9, default: 0.8}}``; a trade flow's values are keyed by the pair ``CN>FL``.

The expansion happens on the model's data before validation: each process × coordinate becomes one
process of a plain model (``refining[FL]``), each flow × coordinate one flow (``refined[FL]``,
``refined[CN>FL]``), so the engine solves them as blocks of its one sparse system. The labels
(:class:`Expansion`) keep what the ids encode, and results report every dimension as its own
column or coordinate. Error messages name the field path in the model file as written
(``processes[3].transfer.slag.Li.region.FL``) and the coordinate.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from typing import Any

from critflow.errors import CritflowError, Problem, capped, suggest
from critflow.model.source import PathKey, PendingWhere, SourceMap

DEFAULT = "default"
"""Key of a keyed value that applies to every coordinate not listed."""
PAIR = ">"
"""Separator of a trade pair's origin and destination ('CN>FL')."""
_COORD = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-.]*$")
_DIM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_ITEMS = 250_000
"""Most expanded items (processes and flows, each × its coordinates, × elements) a model may
have: beyond it a model is refused before it is expanded, never left to exhaust memory."""
EU_GROUP_NAMES = frozenset({"EU", "EU27"})
"""Group names (any case, '-' and '_2020' left out: EU-27, EU27_2020) that stand for the EU-27."""


def is_eu_group(name: str) -> bool:
    """True for a group name that stands for the EU-27 (EU, EU27, EU-27, EU27_2020, any case)."""
    return str(name).upper().replace("-", "").replace("_2020", "") in EU_GROUP_NAMES


_UNION_NAMES = frozenset({"EU", "EU27", "EU-27", "EU_27", "EU27_2020", "EU-27_2020"})
"""Coordinate names that stand for the EU-27 itself."""
_NOT_UNION_TAILS = frozenset({"EEA", "EFTA", "PLUS", "EXT", "EXTRA", "NON"})


def other_grouping(code: str, countries=None) -> str | None:
    """What a coordinate named like a grouping of several countries that is not the EU-27 stands
    for ('EU-28': the EU with the United Kingdom; 'EUR': Europe, or the EU of a trade table), or
    None. Such a coordinate is neither intra-EU nor a single third country."""
    if countries is None:
        from critflow.model.trade_tables import Countries

        countries = Countries.load()
    text = str(code).strip().upper()
    if text in _UNION_NAMES:
        return None
    if text in ("EUR", "97"):
        return "Europe, or the EU of a trade table (EU-28 before 2020): ambiguous"
    if re.fullmatch(r"EU[-_]?\d+(_\d{4})?", text) or re.fullmatch(r"EU27_(?!2020)\d{4}", text):
        return "a former or partial EU (EU-28 and EU-15 hold the United Kingdom)"
    if re.fullmatch(r"(EA|EEA|EZ|EMU)\d*|EFTA|OECD|EUROPE|EXTRA[-_]?EU.*|EXT[-_]EU.*", text):
        return "several countries (Eurostat's euro area, EEA, EFTA or the like), not the EU-27"
    found = countries.resolve(text)
    if found is not None and found not in countries.eu27 and len(text) > 3:
        return "several countries (a trade table's aggregate)"  # WORLD, EXTRA_EU27
    head, sep, tail = text.replace("_", "-").partition("-")
    if head in _UNION_NAMES and sep and tail:
        other = countries.resolve(tail)
        if tail in _NOT_UNION_TAILS or (other is not None and other not in countries.eu27):
            return f"the EU with or without other countries ({tail}): not the Union's part"
    return None


def country_of(code: str, countries=None) -> str | None:
    """The ISO alpha-2 code (or EU27) a coordinate stands for, wholly or in part: 'BE' and
    'BE-VLG' give BE, 'EU-other' (part of the Union) EU27, a coordinate of its own ('FL', 'RoW')
    None, and so does a grouping that is not the EU-27 (:func:`other_grouping`: 'EUR', 'EU-28')."""
    if countries is None:
        from critflow.model.trade_tables import Countries

        countries = Countries.load()
    if other_grouping(code, countries) is not None:
        return None
    found = countries.resolve(code)
    if found is not None:
        return found
    head = re.split(r"[-_]", code, maxsplit=1)[0] if re.search(r"[-_]", code) else ""
    return countries.resolve(head) if head else None


def eu_coordinates(
    coordinates: tuple[str, ...] | list[str], groups: dict[str, tuple[str, ...]]
) -> frozenset[str]:
    """The coordinates of a dimension that lie in the EU-27 (the CRMA's 'third country', Art.
    5(1)(b), is any other): the members of a group named EU (:func:`is_eu_group`), and every coordinate that
    is a Member State's ISO 3166 code or part of one ('BE-other', 'BE-VLG') or of the Union
    ('EU-other'). A coordinate of its own ('FL') outside such a group is not taken as EU."""
    from critflow.model.trade_tables import EU27, Countries

    countries = Countries.load()
    inside = {m for g, members in groups.items() if is_eu_group(g) for m in members}
    for c in coordinates:
        found = country_of(c, countries)
        if found is not None and (found == EU27 or found in countries.eu27):
            inside.add(c)
    return frozenset(inside)


@dataclass(frozen=True)
class ItemLabel:
    """What one expanded process or flow is: its id in the model file, its position there, and
    its coordinate along each dimension it spans.

    For a flow, ``coords`` holds the coordinate where it arrives (the destination of a trade) and
    ``origin`` where it leaves; they differ only along a traded dimension."""

    base: str
    index: int
    coords: dict[str, str]
    origin: dict[str, str] = field(default_factory=dict)
    from_base: str = ""
    to_base: str = ""
    hidden: bool = False  # a generated helper (the split of a balancing import by origin)
    traded: tuple[str, ...] = ()  # dimensions along which this flow joins two coordinates

    def pairs(self) -> dict[str, str]:
        """'origin>destination' along each traded dimension."""
        return {d: f"{self.origin[d]}{PAIR}{self.coords[d]}" for d in self.traded}


@dataclass(frozen=True)
class Expansion:
    """Labels of an expanded model: the dimensions, and per expanded process and flow (in the
    order of the expanded model) its :class:`ItemLabel`."""

    dimensions: dict[str, tuple[str, ...]]
    groups: dict[str, dict[str, tuple[str, ...]]]
    processes: tuple[ItemLabel, ...]
    flows: tuple[ItemLabel, ...]
    traded: tuple[str, ...]  # dimensions along which some flow is traded
    aggregates: dict[str, tuple[str, ...]] = field(default_factory=dict)  # RoW and the like

    def flows_of(self, base: str) -> list[int]:
        """Positions of the expanded flows of the model file's flow ``base`` (helpers left out)."""
        return [i for i, f in enumerate(self.flows) if f.base == base and not f.hidden]


SPLIT_SUFFIX = ".by_origin"
"""Id suffix of the generated process that splits a balancing import by origin shares."""


def _coordinates(label: ItemLabel) -> str:
    """'region FL', 'region CN>FL, product EV': the coordinate of an expanded item."""
    return ", ".join(
        f"{d} {label.origin[d]}{PAIR}{c}" if d in label.traded else f"{d} {c}"
        for d, c in label.coords.items()
    )


def flow_name(label: ItemLabel) -> str:
    """An expanded flow as the user wrote it, with its coordinate: "'imports' (region CN>FL)";
    the generated total of a split balancing import says what it is."""
    where = _coordinates(label)
    if label.hidden:  # the balancing input before its split by origin
        where = (
            f"{where}: the balancing input before its split by origin"
            if where
            else ("the balancing input before its split by origin")
        )
    return f"'{label.base}' ({where})" if where else f"'{label.base}'"


def process_name(label: ItemLabel) -> str:
    """An expanded process as the user wrote it, with its coordinate: "'market' (region FL)";
    the generated split of a balancing import names the flow it splits."""
    where = _coordinates(label)
    if label.hidden and label.base.endswith(SPLIT_SUFFIX):
        flow = label.base[: -len(SPLIT_SUFFIX)]
        return f"the split by origin of flow '{flow}'" + (f" ({where})" if where else "")
    return f"'{label.base}' ({where})" if where else f"'{label.base}'"


def expanded_id(base: str, parts: list[str]) -> str:
    """'refining' + ['FL'] → 'refining[FL]'; no parts → the base id."""
    return f"{base}[{','.join(parts)}]" if parts else base


class ExpandedSource(SourceMap):
    """Positions of an expanded model: field paths of the expanded model are translated to the
    paths of the model file as written, with the coordinate they stand for."""

    def __init__(self, base: SourceMap) -> None:
        super().__init__(base.file, base._positions, base.labels, json_text=base._json_text)
        self.base = base
        # expanded item path → (original item path, {expanded sub-path: original sub-path}, note)
        self.items: dict[PathKey, tuple[PathKey, dict[PathKey, PathKey], str]] = {}

    def translate(self, path: PathKey) -> tuple[PathKey, str]:
        """The original field path of an expanded one, and the coordinate note ('region FL')."""
        for n in (4, 2):
            item = self.items.get(tuple(path[:n]))
            if item is None:
                continue
            original, sub, note = item
            rest = tuple(path[n:])
            for cut in range(len(rest), -1, -1):
                if rest[:cut] in sub:
                    return (*original, *sub[rest[:cut]], *rest[cut:]), note
            return (*original, *rest), note
        return tuple(path), ""

    def where(self, *path: str | int | PathKey) -> str:
        if len(path) == 1 and isinstance(path[0], tuple):
            path = path[0]
        original, note = self.translate(tuple(path))
        text = self.base.where(original)
        if not note:
            return text
        if isinstance(text, PendingWhere):  # a JSON model: the line is looked up on a problem
            return PendingWhere(_with_note(text, note), lambda: _with_note(text.resolve(), note))
        return _with_note(text, note)


def _with_note(text: str, note: str) -> str:
    """'file, line L (path)' with the coordinate note inside the brackets: '(path, region FL)'."""
    return text[:-1] + f", {note})" if text.endswith(")") else f"{text} ({note})"


class _Expander:
    def __init__(self, data: dict[str, Any], source: SourceMap) -> None:
        self.data = data
        self.source = source
        self.out = ExpandedSource(source)
        self.problems: list[Problem] = []
        self.dims: dict[str, tuple[str, ...]] = {}
        self.groups: dict[str, dict[str, tuple[str, ...]]] = {}
        self.aggregates: dict[str, tuple[str, ...]] = {}
        self.coordinate_sets: dict[str, frozenset[str]] = {}
        self.keys_checked: dict[tuple[str, int], dict] = {}  # (dim, id) of mappings checked

    def error(self) -> CritflowError:
        """The problems found (each once), the first :data:`critflow.errors.MAX_REPORTED` named
        and the rest counted."""
        return capped(list(dict.fromkeys(self.problems)))

    def problem(self, path: PathKey, what: str, fix: str) -> None:
        self.problems.append(Problem(self.source.where(path), what, fix))

    # -- declarations ----------------------------------------------------------------------
    def read_dimensions(self) -> dict[str, Any]:
        raw = self.data.get("dimensions") or {}
        if not isinstance(raw, dict):
            self.problem(
                ("dimensions",),
                "dimensions is a mapping {name: [coordinates]}",
                "Write dimensions: {region: [FL, BE-other, EU-other, CN]}.",
            )
            return {}
        elements = {str(e) for e in self.data.get("elements") or [] if isinstance(e, str)}
        normal: dict[str, Any] = {}
        for name, spec in raw.items():
            at = ("dimensions", name)
            if not isinstance(name, str) or not _DIM.match(name) or name == DEFAULT:
                self.problem(
                    at, f"{name!r} cannot name a dimension", "Use letters, digits and '_' (region)."
                )
                continue
            if name in elements:
                self.problem(
                    at,
                    f"'{name}' is both an element and a dimension",
                    "Give the dimension another name: values keyed by it would be ambiguous.",
                )
                continue
            coords = spec.get("coordinates") if isinstance(spec, dict) else spec
            groups = spec.get("groups", {}) if isinstance(spec, dict) else {}
            aggregates = spec.get("aggregates", []) if isinstance(spec, dict) else []
            if not isinstance(coords, list) or not coords:
                self.problem(
                    at,
                    f"dimension '{name}' lists no coordinates",
                    "Write a list, e.g. region: [FL, BE-other, CN], or "
                    "{coordinates: [...], groups: {EU: [...]}}.",
                )
                continue
            ok = True
            for i, c in enumerate(coords):
                if not isinstance(c, str) or not _COORD.match(c) or c == DEFAULT:
                    self.problem(
                        (*at, i) if isinstance(spec, list) else (*at, "coordinates", i),
                        f"{c!r} cannot be a coordinate",
                        (
                            f"Quote it: '{c}' (a coordinate is a text; YAML reads {c} as a number)."
                            if isinstance(c, int | float) and not isinstance(c, bool)
                            else "Use letters, digits, '_', '-' or '.' (FL, BE-other, EU-27); "
                            "'default' is reserved."
                        ),
                    )
                    ok = False
            if ok and len(set(coords)) != len(coords):
                self.problem(at, f"dimension '{name}' lists a coordinate twice", "List each once.")
                ok = False
            if not ok:
                continue
            if not isinstance(groups, dict) and groups is not None:
                self.problem(
                    (*at, "groups"),
                    "groups is a mapping {group: [coordinates]}",
                    "Write groups: {EU: [FL, BE-other, EU-other]}.",
                )
                groups = {}
            self.dims[name] = tuple(coords)
            self.groups[name] = {}
            if isinstance(groups, dict):
                for g, members in groups.items():
                    bad = (
                        [m for m in members if m not in coords]
                        if isinstance(members, list)
                        else [members]
                    )
                    if bad or not isinstance(members, list) or not members:
                        self.problem(
                            (*at, "groups", g),
                            f"group '{g}' names {bad or members!r}, not coordinates of '{name}'",
                            f"Coordinates of '{name}': {', '.join(coords)}.",
                        )
                        continue
                    self.groups[name][str(g)] = tuple(members)
                    if is_eu_group(g):
                        self.check_eu(name, str(g), members, coords, (*at, "groups", g))
            bad = (
                [a for a in aggregates or [] if a not in coords]
                if isinstance(aggregates, list)
                else [aggregates]
            )
            if bad:
                self.problem(
                    (*at, "aggregates"),
                    f"aggregates names {bad}, not coordinates of '{name}'",
                    f"Coordinates of '{name}': {', '.join(coords)}.",
                )
                continue
            self.aggregates[name] = tuple(aggregates or ())
            normal[name] = {
                "coordinates": list(coords),
                "groups": dict(groups or {}),
                "aggregates": list(aggregates or []),
            }
        return normal

    def spans(self, item: dict[str, Any], at: PathKey) -> dict[str, tuple[str, ...]]:
        """The dimensions a process spans and its coordinates along each (model order)."""
        over = item.get("over")
        if over is None:
            return {}
        if isinstance(over, list) and not all(isinstance(d, str) for d in over):
            over = None
        chosen: dict[str, Any] = (
            dict.fromkeys(over)
            if isinstance(over, list)
            else dict(over)
            if isinstance(over, dict)
            else {}
        )
        if not isinstance(over, list | dict):
            self.problem(
                (*at, "over"),
                "over is a list of dimensions (or {dimension: [coordinates]})",
                "Write over: [region] or over: {region: [FL, CN]}.",
            )
        result: dict[str, tuple[str, ...]] = {}
        for name, subset in chosen.items():
            if name not in self.dims:
                self.problem(
                    (*at, "over", name),
                    f"the model declares no dimension '{name}'",
                    suggest(str(name), list(self.dims), "Dimensions"),
                )
                continue
            if subset is None:
                result[name] = self.dims[name]
                continue
            bad = (
                [c for c in subset if c not in self.dims[name]]
                if isinstance(subset, list) and subset
                else [subset]
            )
            if bad:
                self.problem(
                    (*at, "over", name),
                    f"lists no coordinates of '{name}'"
                    if subset == []
                    else f"{bad} {'is' if len(bad) == 1 else 'are'} not coordinates of '{name}'",
                    f"Coordinates of '{name}': {', '.join(self.dims[name])}.",
                )
                continue
            result[name] = tuple(subset)
        return {d: result[d] for d in self.dims if d in result}

    def check_eu(
        self, dim: str, group: str, members: list[str], coords: list[str], at: PathKey
    ) -> None:
        """A group named EU must be the EU-27: no coordinate that is a non-member's ISO 3166 code,
        every Member State listed by its code (or a coordinate standing for the rest, EU-other)
        and no Member State outside it (its trade would count as a third country's)."""
        from critflow.model.trade_tables import EU27, Countries

        countries = Countries.load()

        def country(code: str) -> str | None:
            return country_of(code, countries)

        outside_eu = []
        whole = set()
        for member in members:
            grouping = other_grouping(member, countries)
            if grouping is not None:
                outside_eu.append(f"{member} ({grouping})")
                continue
            found = country(member)
            if found is not None and found != EU27 and found not in countries.eu27:
                outside_eu.append(f"{member} ({found})" if found != member else member)
            else:  # a Member State, the EU (EU-other) or a coordinate of its own (FL)
                whole.add(found)
        if outside_eu:
            self.problem(
                at,
                f"group '{group}' holds {', '.join(outside_eu)}, not "
                f"{'a Member State' if len(outside_eu) == 1 else 'Member States'} of the EU-27",
                f"Take {'it' if len(outside_eu) == 1 else 'them'} out of '{group}' "
                "(a third country; split a grouping such as EU-28 into EU-other and GB), or name "
                "the group otherwise.",
            )
        in_group = set(members)
        stray = [
            c
            for c in coords
            if c not in in_group and (found := country(c)) is not None and found in countries.eu27
        ]
        if stray:
            verb = "is an EU-27 Member State" if len(stray) == 1 else "are EU-27 Member States"
            self.problem(
                at,
                f"{', '.join(stray)} {verb} of '{dim}' outside group '{group}': its trade would "
                "count as a third country's",
                f"Add {', '.join(stray)} to '{group}'.",
            )
        if whole and None not in whole and EU27 not in whole:
            missing = sorted(countries.eu27 - whole)
            if missing:
                self.problem(
                    at,
                    f"group '{group}' lists Member States by ISO code but lacks "
                    f"{', '.join(missing)} ({len(missing)} of the EU-27)",
                    f"Add them, or a coordinate for the rest of the Union (EU-other) to "
                    f"'{dim}' and to '{group}'.",
                )

    def check_size(self, processes: list[dict], flows: list[dict], spans: list[dict]) -> None:
        """Refuse, before anything is built, a model that expands past :data:`MAX_ITEMS`."""
        span_of = {str(p.get("id")): s for p, s in zip(processes, spans, strict=True)}
        counts: list[tuple[int, PathKey, str]] = []
        for i, span in enumerate(spans):
            counts.append((math.prod(len(c) for c in span.values()), ("processes", i), "process"))
        for f, flow in enumerate(flows):
            a = span_of.get(str(flow.get("from")), {})
            b = span_of.get(str(flow.get("to")), {})
            trade = flow.get("trade") if isinstance(flow.get("trade"), dict) else {}
            n = 1
            for d in self.dims:
                if d in trade and isinstance(trade[d], dict):
                    n *= sum(len(t) if isinstance(t, list) else 1 for t in trade[d].values())
                elif d in a and d in b:
                    n *= len(set(a[d]) & set(b[d]))
                elif d in a or d in b:
                    n *= len(a[d] if d in a else b[d])
            shares = flow.get("origin_shares")
            if isinstance(shares, dict) and len(shares) == 1:
                by_origin = next(iter(shares.values()))
                n *= 2 + (len(by_origin) if isinstance(by_origin, dict) else 0)
            counts.append((n, ("flows", f), "flow"))
        elements = max(1, len(self.data.get("elements") or []))
        total = sum(n for n, _, _ in counts) * elements
        if total <= MAX_ITEMS:
            return
        largest = sorted(counts, key=lambda c: -c[0])[:3]
        names = ", ".join(
            f"{kind} '{(processes if kind == 'process' else flows)[at[1]].get('id')}' × {n:,}"
            for n, at, kind in largest
        )
        sizes = ", ".join(f"{d} {len(c):,}" for d, c in self.dims.items())
        raise CritflowError(
            self.source.where(largest[0][1]),
            f"the model expands to {total:,} items (processes and flows at each coordinate × "
            f"{elements} element{'s' if elements != 1 else ''}), more than critflow's limit of "
            f"{MAX_ITEMS:,}; the largest: {names} (dimensions: {sizes})",
            "Aggregate coordinates (fewer regions or products, a RoW coordinate), let processes "
            "span fewer dimensions (over: {region: [FL, CN]}), list fewer trade routes, or split "
            "the model.",
        )

    # -- values ----------------------------------------------------------------------------
    def resolve(
        self,
        node: Any,
        ctx: dict[str, str],
        pairs: dict[str, str],
        at: PathKey,
        exp: PathKey,
        orig: PathKey,
        sub: dict[PathKey, PathKey],
        what: str,
    ) -> Any:
        """``node`` with every ``{dim: {coordinate: value}}`` replaced by the value at ``ctx``
        (``pairs``: the 'origin>destination' key along each traded dimension)."""
        sub[exp] = orig
        if isinstance(node, dict):
            if len(node) == 1:
                ((key, inner),) = node.items()
                if key in self.dims and isinstance(inner, dict):
                    return self.keyed(key, inner, ctx, pairs, at, exp, (*orig, key), sub, what)
            if not any(isinstance(v, dict | list) for v in node.values()):
                # plain values (a time series): nothing to resolve; their paths map as the
                # node's does (``sub`` finds the node and appends the key)
                return dict(node)
            return {
                k: self.resolve(v, ctx, pairs, at, (*exp, k), (*orig, k), sub, what)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [
                self.resolve(v, ctx, pairs, at, (*exp, i), (*orig, i), sub, what)
                for i, v in enumerate(node)
            ]
        return node

    def keyed(
        self,
        dim: str,
        values: dict[str, Any],
        ctx: dict[str, str],
        pairs: dict[str, str],
        at: PathKey,
        exp: PathKey,
        orig: PathKey,
        sub: dict[PathKey, PathKey],
        what: str,
    ) -> Any:
        coords = self.dims[dim]
        known = self.coordinate_sets.setdefault(dim, frozenset(coords))
        if (dim, id(values)) not in self.keys_checked:  # a mapping is reached once per coordinate
            for key in values:
                a, _, b = str(key).partition(PAIR)
                if (key != DEFAULT and a not in known) or (b and b not in known):
                    self.problem(
                        (*at, *orig, key),
                        f"'{key}' is not a coordinate of '{dim}'"
                        + (" nor an origin>destination pair" if dim in pairs else ""),
                        suggest(str(key), list(coords), f"Coordinates of '{dim}'"),
                    )
                    return None
            self.keys_checked[dim, id(values)] = values  # (kept: the id stays this mapping's)
        if dim not in ctx:
            self.problem(
                (*at, *orig),
                f"the value varies along '{dim}', which {what} does not span",
                f"Add over: [{dim}] to the process (a flow spans the dimensions of its ends), "
                "or give one value.",
            )
            return None
        if dim in pairs:
            if pairs[dim] in values:
                chosen = pairs[dim]
            elif DEFAULT in values:
                chosen = DEFAULT
            else:
                self.problem(
                    (*at, *orig),
                    f"gives no value for the trade {pairs[dim]} (a traded value is keyed by "
                    f"origin{PAIR}destination)",
                    f"Add {pairs[dim]}: … or default: … under {dim}.",
                )
                return None
        else:
            chosen = ctx[dim] if ctx[dim] in values else DEFAULT if DEFAULT in values else None
            if chosen is None:
                self.problem(
                    (*at, *orig),
                    f"gives no value for {dim} {ctx[dim]}",
                    f"Add {ctx[dim]}: … or default: … under {dim}.",
                )
                return None
        return self.resolve(values[chosen], ctx, pairs, at, exp, (*orig, chosen), sub, what)

    def item(
        self,
        node: dict[str, Any],
        skip: set[str],
        ctx: dict[str, str],
        pairs: dict[str, str],
        at: PathKey,
        what: str,
        sub: dict[PathKey, PathKey],
    ) -> dict[str, Any]:
        return {
            k: self.resolve(v, ctx, pairs, at, (k,), (k,), sub, what)
            for k, v in node.items()
            if k not in skip
        }

    # -- the expansion -----------------------------------------------------------------------
    def run(self) -> tuple[dict[str, Any], Expansion]:
        data = self.data
        normal = self.read_dimensions()
        if not all(isinstance(data.get(k) or [], list) for k in ("processes", "flows")):
            if self.problems:
                raise self.error()
            return data, Expansion({}, {}, (), (), ())  # the schema names what is wrong
        processes = [p for p in data.get("processes") or [] if isinstance(p, dict)]
        flows = [f for f in data.get("flows") or [] if isinstance(f, dict)]
        if len(processes) != len(data.get("processes") or []) or len(flows) != len(
            data.get("flows") or []
        ):
            return data, Expansion({}, {}, (), (), ())  # the schema names what is wrong
        for key, items in (("processes", processes), ("flows", flows)):
            for i, item in enumerate(items):
                if "[" in str(item.get("id", "")):
                    self.problem(
                        (key, i, "id"),
                        f"the id '{item['id']}' holds '[': critflow writes coordinates so",
                        "Use letters, digits, '_', '-' or '.'.",
                    )
        spans = [self.spans(p, ("processes", i)) for i, p in enumerate(processes)]
        self.check_size(processes, flows, spans)
        # process instances: (original index, coordinates)
        instances: list[tuple[int, dict[str, str]]] = []
        by_base: dict[str, list[int]] = {}
        for i, (p, span) in enumerate(zip(processes, spans, strict=True)):
            for combo in itertools.product(*span.values()):
                by_base.setdefault(str(p.get("id")), []).append(len(instances))
                instances.append((i, dict(zip(span, combo, strict=True))))
        proc_ids = [
            expanded_id(str(processes[i]["id"]), list(c.values())) if "id" in processes[i] else None
            for i, c in instances
        ]
        span_of = {str(p.get("id")): s for p, s in zip(processes, spans, strict=True)}

        new_flows: list[dict[str, Any]] = []
        flow_labels: list[ItemLabel] = []
        extra_procs: list[tuple[dict[str, Any], ItemLabel, dict[PathKey, PathKey]]] = []
        traded: set[str] = set()

        instance_of = {
            (str(processes[i].get("id")), tuple(c.values())): u
            for u, (i, c) in enumerate(instances)
        }

        def instance_id(base: str, coords: dict[str, str]) -> str | None:
            """The expanded id of process ``base`` at ``coords`` (its dimensions, model order)."""
            u = instance_of.get((base, tuple(coords.values())))
            return None if u is None else proc_ids[u]

        for f, flow in enumerate(flows):
            at: PathKey = ("flows", f)
            start, end = str(flow.get("from")), str(flow.get("to"))
            if start not in span_of or end not in span_of:
                for key in ("from", "to"):
                    name = flow.get(key)
                    if str(name) not in span_of:
                        # named here: its values keyed by a dimension would mislead otherwise
                        self.problem(
                            (*at, key),
                            f"no process {name!r}",
                            suggest(str(name), list(span_of), "Processes"),
                        )
                self.plain(flow, at, new_flows, flow_labels, f)
                continue
            a, b = span_of[start], span_of[end]
            trade = flow.get("trade")
            shares = flow.get("origin_shares")
            if shares is not None:
                self.origin_split(flow, f, a, b, new_flows, flow_labels, extra_procs, instance_id)
                traded.update(shares if isinstance(shares, dict) else ())
                continue
            pairs_by_dim: dict[str, list[tuple[str, str]]] = {}
            if trade is not None:
                pairs_by_dim = self.trade_pairs(trade, at, a, b)
                traded.update(pairs_by_dim)
            names = [d for d in self.dims if d in a or d in b]
            axes: list[list[tuple[str, str]]] = []
            for d in names:
                if d in pairs_by_dim:
                    axes.append(pairs_by_dim[d])
                elif d in a and d in b:
                    axes.append([(c, c) for c in a[d] if c in b[d]])
                else:
                    axes.append([(c, c) for c in (a[d] if d in a else b[d])])
            empty = [d for d, axis in zip(names, axes, strict=True) if not axis]
            if empty:
                d = empty[0]
                ends = (
                    f"'{start}' ({', '.join(a.get(d, ()))}) and '{end}' ({', '.join(b.get(d, ()))})"
                )
                self.problem(
                    (*at, "trade") if d in pairs_by_dim else at,
                    f"the flow would exist at no coordinate of '{d}': "
                    + (
                        "its trade lists no route"
                        if d in pairs_by_dim
                        else f"{ends} share no coordinate"
                    ),
                    f"Make it a trade (trade: {{{d}: {{origin: [destinations]}}}}) or let both "
                    "processes span a common coordinate; a flow that carries nothing is left out "
                    "of the model file, not kept silently empty.",
                )
                continue
            for combo in itertools.product(*axes):
                origin = {d: o for d, (o, _) in zip(names, combo, strict=True) if d in a}
                dest = {d: t for d, (_, t) in zip(names, combo, strict=True)}
                src = instance_id(start, {d: origin[d] for d in a})
                dst = instance_id(end, {d: dest[d] for d in b})
                parts = [
                    f"{o}{PAIR}{t}" if d in pairs_by_dim else t
                    for d, (o, t) in zip(names, combo, strict=True)
                ]
                pairs = {d: f"{origin[d]}{PAIR}{dest[d]}" for d in pairs_by_dim}
                new_id = expanded_id(str(flow.get("id")), parts)
                sub: dict[PathKey, PathKey] = {}
                body = self.item(
                    flow,
                    {"trade", "origin_shares"},
                    dest,
                    pairs,
                    at,
                    f"flow '{flow.get('id')}'",
                    sub,
                )
                body.update({"id": new_id, "from": src, "to": dst})
                self.out.items[("flows", len(new_flows))] = (
                    at,
                    sub,
                    _note(names, combo, pairs_by_dim),
                )
                new_flows.append(body)
                flow_labels.append(
                    ItemLabel(
                        str(flow.get("id")), f, dest, origin, start, end, traded=tuple(pairs_by_dim)
                    )
                )

        # processes, with transfer keys and balancing flows renamed to the expanded flows
        leaving: dict[tuple[str | None, str], list[int]] = {}
        entering: dict[tuple[str | None, str], list[int]] = {}
        for k, (body, label) in enumerate(zip(new_flows, flow_labels, strict=True)):
            leaving.setdefault((_hashable(body.get("from")), label.base), []).append(k)
            entering.setdefault((_hashable(body.get("to")), label.base), []).append(k)
        output_bases = {(label.from_base, label.base) for label in flow_labels}
        new_procs: list[dict[str, Any]] = []
        proc_labels: list[ItemLabel] = []
        for u, (i, coords) in enumerate(instances):
            process = processes[i]
            at = ("processes", i)
            what = f"process '{process.get('id')}'"
            sub = {}
            body = self.item(process, {"over", "transfer"}, coords, {}, at, what, sub)
            body["id"] = proc_ids[u]
            transfer = process.get("transfer")
            if isinstance(transfer, dict):
                new_transfer: dict[str, Any] = {}
                for key, entry in transfer.items():
                    outs = leaving.get((proc_ids[u], str(key)), [])
                    if not outs and (str(process.get("id")), str(key)) in output_bases:
                        continue  # an output of the process at other coordinates only
                    if not outs:  # not an output: check_model says so, under its own name
                        new_transfer[key] = self.resolve(
                            entry, coords, {}, at, ("transfer", key), ("transfer", key), sub, what
                        )
                        continue
                    for k in outs:
                        label = flow_labels[k]
                        ctx = {**label.coords, **coords}
                        for d in label.traded:  # a trade output is told apart by its destination
                            ctx[d] = label.coords[d]
                        pairs = label.pairs()
                        new_key = new_flows[k]["id"]
                        new_transfer[new_key] = self.resolve(
                            entry,
                            ctx,
                            pairs,
                            at,
                            ("transfer", new_key),
                            ("transfer", key),
                            sub,
                            what,
                        )
                body["transfer"] = new_transfer
            elif transfer is not None:
                body["transfer"] = transfer
            balancing = process.get("balancing")
            if isinstance(balancing, str):
                ins = entering.get((proc_ids[u], balancing), [])
                if ins:
                    body["balancing"] = new_flows[ins[0]]["id"]
            self.out.items[("processes", len(new_procs))] = (
                at,
                sub,
                _note(list(coords), [(c, c) for c in coords.values()], {}),
            )
            new_procs.append(body)
            proc_labels.append(ItemLabel(str(process.get("id")), i, coords))
        for body, label, split_sub in extra_procs:
            self.out.items[("processes", len(new_procs))] = (
                ("flows", label.index),
                split_sub,
                _note(list(label.coords), [(c, c) for c in label.coords.values()], {}),
            )
            new_procs.append(body)
            proc_labels.append(label)

        expanded = {k: v for k, v in data.items()}
        expanded["dimensions"] = normal
        expanded["processes"] = new_procs
        expanded["flows"] = new_flows
        expansion = Expansion(
            self.dims,
            self.groups,
            tuple(proc_labels),
            tuple(flow_labels),
            tuple(d for d in self.dims if d in traded),
            self.aggregates,
        )
        self.scenarios(expanded, expansion)
        self.indicators(expanded, expansion)
        if self.problems:
            raise self.error()
        return expanded, expansion

    def plain(self, flow, at, new_flows, flow_labels, f) -> None:
        sub: dict[PathKey, PathKey] = {}
        body = {k: v for k, v in flow.items() if k not in ("trade", "origin_shares")}
        self.out.items[("flows", len(new_flows))] = (at, sub, "")
        new_flows.append(body)
        flow_labels.append(
            ItemLabel(str(flow.get("id")), f, {}, {}, str(flow.get("from")), str(flow.get("to")))
        )

    def trade_pairs(
        self, trade: Any, at: PathKey, a: dict[str, tuple[str, ...]], b: dict[str, tuple[str, ...]]
    ) -> dict[str, list[tuple[str, str]]]:
        result: dict[str, list[tuple[str, str]]] = {}
        if not isinstance(trade, dict):
            self.problem(
                (*at, "trade"),
                "trade is a mapping {dimension: {origin: [destinations]}}",
                "Write trade: {region: {CN: [FL, EU-other]}}.",
            )
            return result
        for dim, routes in trade.items():
            where = (*at, "trade", dim)
            if dim not in a or dim not in b:
                self.problem(
                    where,
                    f"a trade along '{dim}' joins processes that both span '{dim}'",
                    f"Add over: [{dim}] to both the from and the to process.",
                )
                continue
            if not isinstance(routes, dict):
                self.problem(
                    where,
                    "the routes are a mapping {origin: [destinations]}",
                    "Write {CN: [FL, EU-other]}.",
                )
                continue
            pairs: list[tuple[str, str]] = []
            for origin, dests in routes.items():
                dests = dests if isinstance(dests, list) else [dests]
                if origin not in a[dim]:
                    self.problem(
                        (*where, origin),
                        f"the from process has no coordinate '{origin}'",
                        f"Its coordinates: {', '.join(a[dim])}.",
                    )
                    continue
                for t in dests:
                    if t not in b[dim]:
                        self.problem(
                            (*where, origin),
                            f"the to process has no coordinate '{t}'",
                            f"Its coordinates: {', '.join(b[dim])}.",
                        )
                        continue
                    pairs.append((str(origin), str(t)))
            result[dim] = pairs
        return result

    def origin_split(self, flow, f, a, b, new_flows, flow_labels, extra_procs, instance_id) -> None:
        """A market's balancing import split by origin shares: source → total (per destination)
        → a generated split process whose outputs, one per origin, carry the shares."""
        at: PathKey = ("flows", f)
        shares = flow.get("origin_shares")
        base, start, end = str(flow.get("id")), str(flow.get("from")), str(flow.get("to"))
        if not isinstance(shares, dict) or len(shares) != 1:
            self.problem(
                (*at, "origin_shares"),
                "origin_shares names one dimension",
                "Write origin_shares: {region: {CN: 0.6, CL: 0.4}}.",
            )
            return
        ((dim, by_origin),) = shares.items()
        if dim not in self.dims or not isinstance(by_origin, dict) or not by_origin:
            self.problem(
                (*at, "origin_shares", dim),
                f"'{dim}' is no dimension with shares",
                "Write origin_shares: {region: {CN: 0.6, CL: 0.4}}.",
            )
            return
        if a:
            self.problem(
                (*at, "from"),
                "a balancing import split by origin comes from a source "
                "that spans no dimension (the rest of the world)",
                "Let the flow leave a plain source such as 'imports'.",
            )
            return
        bad = [o for o in by_origin if o not in self.dims[dim]]
        if bad:
            self.problem(
                (*at, "origin_shares", dim, bad[0]),
                f"'{bad[0]}' is not a coordinate of '{dim}'",
                suggest(str(bad[0]), list(self.dims[dim]), f"Coordinates of '{dim}'"),
            )
            return
        names = [d for d in self.dims if d in b]
        if dim not in names:
            self.problem(
                (*at, "to"), f"the to process does not span '{dim}'", f"Add over: [{dim}] to it."
            )
            return
        for combo in itertools.product(*(b[d] for d in names)):
            dest = dict(zip(names, combo, strict=True))
            dst = instance_id(end, dest)
            parts = list(combo)
            split_id = expanded_id(f"{base}{SPLIT_SUFFIX}", parts)
            total_id = expanded_id(f"{base}.total", parts)
            sub: dict[PathKey, PathKey] = {}
            body = self.item(
                flow, {"trade", "origin_shares", "value"}, dest, {}, at, f"flow '{base}'", sub
            )
            total = dict(body, id=total_id, to=split_id, **{"from": start})
            self.out.items[("flows", len(new_flows))] = (
                at,
                sub,
                _note(names, [(c, c) for c in combo], {}),
            )
            new_flows.append(total)
            flow_labels.append(ItemLabel(base, f, dest, {}, start, end, hidden=True))
            transfer: dict[str, Any] = {}
            split_sub: dict[PathKey, PathKey] = {("transfer",): ("origin_shares", dim)}
            for origin, share in by_origin.items():
                origin_coords = {**dest, dim: str(origin)}
                out_parts = [f"{origin}{PAIR}{t}" if d == dim else t for d, t in dest.items()]
                out_id = expanded_id(base, out_parts)
                share_value = self.resolve(
                    share,
                    dest,
                    {},
                    at,
                    ("transfer", out_id),
                    ("origin_shares", dim, origin),
                    split_sub,
                    f"flow '{base}'",
                )
                # one share for every element, or shares per element {Li: 0.79, default: 0}
                transfer[out_id] = (
                    share_value if isinstance(share_value, dict) else {DEFAULT: share_value}
                )
                body_out = dict(body, id=out_id, to=dst, **{"from": split_id})
                self.out.items[("flows", len(new_flows))] = (
                    at,
                    sub,
                    _note(names, [(origin_coords[d], t) for d, t in dest.items()], {dim: []}),
                )
                new_flows.append(body_out)
                flow_labels.append(
                    ItemLabel(base, f, dest, origin_coords, start, end, traded=(dim,))
                )
            split = {"id": split_id, "kind": "transfer", "transfer": transfer}
            extra_procs.append(
                (split, ItemLabel(f"{base}{SPLIT_SUFFIX}", f, dest, hidden=True), split_sub)
            )

    def scenarios(self, expanded: dict[str, Any], expansion: Expansion) -> None:
        scenarios = expanded.get("scenarios")
        if not isinstance(scenarios, dict):
            return
        new_scenarios: dict[str, Any] = {}
        for name, scenario in scenarios.items():
            if not isinstance(scenario, dict):
                new_scenarios[name] = scenario
                continue
            scenario = dict(scenario)
            overrides = scenario.get("flows")
            if isinstance(overrides, dict):
                new: dict[str, Any] = {}
                for fid, settings in overrides.items():
                    at = ("scenarios", name, "flows", fid)
                    targets = expansion.flows_of(str(fid))
                    if not targets:
                        new[fid] = settings
                        continue
                    for k in targets:
                        label = expansion.flows[k]
                        new_id = expanded["flows"][k]["id"]
                        pairs = label.pairs()
                        sub: dict[PathKey, PathKey] = {}
                        new[new_id] = self.resolve(
                            settings, label.coords, pairs, at, (), (), sub, f"flow '{fid}'"
                        )
                        self.out.items[("scenarios", name, "flows", new_id)] = (at, sub, "")
                scenario["flows"] = new
            inventories = scenario.get("inventories")
            if isinstance(inventories, dict):
                new_inv: dict[str, Any] = {}
                for pid, items in inventories.items():
                    targets = [
                        u
                        for u, p in enumerate(expansion.processes)
                        if p.base == pid and not p.hidden
                    ]
                    if not targets:
                        new_inv[pid] = items
                    for u in targets:
                        new_id = expanded["processes"][u]["id"]
                        at = ("scenarios", name, "inventories", pid)
                        sub = {}
                        new_inv[new_id] = self.resolve(
                            items,
                            expansion.processes[u].coords,
                            {},
                            at,
                            (),
                            (),
                            sub,
                            f"process '{pid}'",
                        )
                        self.out.items[("scenarios", name, "inventories", new_id)] = (at, sub, "")
                scenario["inventories"] = new_inv
            new_scenarios[name] = scenario
        expanded["scenarios"] = new_scenarios

    def indicators(self, expanded: dict[str, Any], expansion: Expansion) -> None:
        """Flow lists of the model's own indicators name every coordinate of a flow."""
        block = expanded.get("indicators")
        if not isinstance(block, dict):
            return
        ids = [f["id"] for f in expanded["flows"]]
        new_block: dict[str, Any] = {}
        for name, definition in block.items():
            if isinstance(definition, dict):
                definition = dict(definition)
                for key in ("numerator", "denominator", "largest_of"):
                    flows = definition.get(key)
                    if isinstance(flows, list):
                        definition[key] = (
                            [ids[k] for f in flows for k in (expansion.flows_of(str(f)) or [-1])]
                            if all(expansion.flows_of(str(f)) for f in flows)
                            else flows
                        )
            new_block[name] = definition
        expanded["indicators"] = new_block


def _hashable(value: Any) -> str | None:
    """An id as a key; a malformed one (a mapping, a list) is None: the schema names it."""
    return value if isinstance(value, str) else None


def _note(names: list[str], combo: Any, traded: dict[str, Any]) -> str:
    parts = []
    for d, (o, t) in zip(names, combo, strict=False):
        parts.append(f"{d} {o}{PAIR}{t}" if d in traded or o != t else f"{d} {t}")
    return ", ".join(parts)


def expand(
    data: dict[str, Any], source: SourceMap
) -> tuple[dict[str, Any], ExpandedSource, Expansion]:
    """Expand a model with dimensions into a plain one; raise a CritflowError naming each mistake."""
    if "dimensions" not in data:
        for key in ("processes", "flows"):
            for i, item in enumerate(data.get(key) or []):
                for field_name in ("over", "trade", "origin_shares"):
                    if isinstance(item, dict) and field_name in item:
                        raise CritflowError(
                            source.where((key, i, field_name)),
                            f"'{field_name}' names a dimension, but the model declares none",
                            "Declare them at the top: dimensions: {region: [FL, BE-other, CN]}.",
                        )
    expander = _Expander(data, source)
    expanded, expansion = expander.run()
    return expanded, expander.out, expansion
