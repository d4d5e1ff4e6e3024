"""The public-aggregate rule: the one place that decides which aggregates the public may see.

A public aggregate (sum, mean, number of organisations) of a group — e.g. (focus domain, KPI,
year) — is published only when

1. at least ``min_organisations`` (3) distinct organisations contribute to it, and
2. together with every aggregate already published it does not let anyone recover a value of
   fewer than ``min_organisations`` organisations by adding and subtracting published sums.

Rule 2 generalises the subtraction attack (A over {a, b, c, d} minus B over {a, b, c} gives d's
value) to any linear combination of published sums, nested or not (A - B - C + D …). Within one
*measure* (by default the group key without its first part: (KPI, year) of (domain, KPI, year);
aggregates of different measures sum different unknowns and cannot be combined), each published
sum is a row of a 0/1 matrix M over the unknown values. A combination of sums reveals something
about a set S of organisations exactly when a non-zero vector supported on S's values lies in
the row space of M, i.e. when the block of the projector onto that row space for S's unknowns
has the eigenvalue 1. The rule refuses any S of fewer than ``min_organisations`` organisations
(one organisation's value, or two whose sum either of them could split).

Aggregates are considered largest first (most organisations; then by key), and each is published
only if the published set stays safe with it — so a domain total wins over the sub-domain that
differs from it by one organisation, and the result does not depend on the input order. Since
each decision checks the whole published set, the final set is safe (greedy, not the largest
possible safe set). A suppressed aggregate says why and names the aggregates it would be combined
with.

Organisations are told apart by name after Unicode compatibility folding (NFKC), case
folding, collapsing white space and dropping invisible format characters: "ACME NV", "acme  nv"
and "ＡＣＭＥ NV" are one organisation (otherwise one organisation under two spellings would make
up a "three-organisation" sum with a single other). Groups of one measure in different units are
combined (an attacker can convert t to kt), so a measure's unknowns are shared across units.

Over time: the published set must include what was published before. Pass the aggregates
published earlier (``published_before``, as returned then): they stay public, so each new
aggregate must be safe together with them — otherwise a fourth organisation joining a group
later gives its value away as the new sum minus the old one. An aggregate whose sum is fixed by
the published ones (same organisations) but whose value differs from what they imply (a value was
revised) is suppressed too: the difference is the revision of fewer organisations than the rule
protects. Give a revised value a new ``item`` (the submission id) to have it treated as a new
unknown.

Unknowns: by default each organisation has one value per measure (its contributions to a group
are summed first). When one organisation contributes different values to different groups of
the same measure (several projects), give each contribution an ``item`` (e.g. the project or
submission id): then the unknowns are (organisation, item) and a contribution counted in several
groups is the same unknown — which is what makes a domain and its sub-domain overlap. Without
items, an organisation's contributions to different groups are treated as one value; when they
differ (the organisation has a second project counted in the domain total but not in the
sub-domain), a second model with one unknown per group also has to find nothing, so the
difference between two of its values (the second project's value) is not published either. What
neither model sees is a relation between the values of several such organisations across three
or more groups (b's domain value = its 1.1 value + its 1.2 value, likewise for g): give items
whenever organisations have several projects.

Cost: 40 groups over 60 organisations, 9 KPI-years (5,000 contributions) take about 0.5 s; 40
groups with one item per contribution (1,150 contributions, 574 unknowns) about 1.3 s (2-core
machine shared with other work).

Not covered (state it where the aggregates are shown): dominance (one organisation making up
most of a sum), values published elsewhere, relations between measures (e.g. CO2-eq avoided
computed from tonnes), and coalitions: the rule protects against any one contributor (who knows
its own value), not against two contributors to a three-organisation sum pooling their values to
recover the third (``min_organisations=4`` protects against pairs).
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from critflow.errors import CritflowError

_TOL = 1e-9
_MAX_SETS = 200_000
"""The most sets of three or more organisations checked one by one (min_organisations > 3)."""


def organisation_key(name: object) -> str:
    """The identity of an organisation name: NFKC-folded, case-folded, white space collapsed,
    invisible format characters (zero-width space, BOM …) dropped."""
    text = unicodedata.normalize("NFKC", str(name))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class Contribution:
    """One organisation's value to a group (``key``, e.g. (domain, KPI, year)) in ``unit``;
    ``item`` identifies the underlying value when an organisation has several (a project or
    submission id), so the same value counted in two groups is recognised as one."""

    key: Hashable
    organisation: str
    value: float
    unit: str = "1"
    item: Hashable = None


@dataclass(frozen=True)
class Aggregate:
    """An aggregate of one group: ``sum``, ``mean`` (per organisation: the sum over the
    organisations' values divided by their number) and ``count`` of organisations, in ``unit``.
    ``published`` is False for a suppressed aggregate, whose ``reason`` says why; its sum and
    mean are then None. ``organisations`` is for programme staff only (:meth:`public`)."""

    key: Hashable
    unit: str
    count: int
    sum: float | None
    mean: float | None
    published: bool
    reason: str = ""
    organisations: frozenset[str] = field(default_factory=frozenset, repr=False)
    members: frozenset[tuple[str, Hashable]] = field(default_factory=frozenset, repr=False)
    """The unknowns summed: (organisation key, item) pairs; programme staff only, kept to pass
    the aggregate back as ``published_before``."""

    def public(self) -> dict[str, Any]:
        """What the public may see: key, unit, count, and sum and mean when published."""
        return {
            "key": self.key,
            "unit": self.unit,
            "count": self.count,
            "sum": self.sum if self.published else None,
            "mean": self.mean if self.published else None,
            "published": self.published,
            "reason": self.reason,
        }


def _default_measure(key: Hashable) -> Hashable:
    """(group, KPI, year) -> (KPI, year): the first part of a tuple key names the group."""
    if isinstance(key, tuple) and len(key) > 1:
        return key[1:]
    return ()


def _as_contribution(item: Any, index: int) -> Contribution:
    if isinstance(item, Contribution):
        contribution = item
    elif isinstance(item, Sequence) and not isinstance(item, str) and 3 <= len(item) <= 5:
        contribution = Contribution(*item)
    else:
        raise CritflowError(
            f"contributions[{index}]",
            f"a contribution is (key, organisation, value[, unit[, item]]), got {item!r}",
            "Give a Contribution or a tuple such as (('1.1', '1.1-srm-from-recycling', 2027), "
            "'org-a', 0.12).",
        )
    for name in ("key", "item"):
        try:
            hash(getattr(contribution, name))
        except TypeError:
            raise CritflowError(
                f"contributions[{index}].{name}",
                f"the {name} must be hashable (a text, number or tuple), "
                f"got {type(getattr(contribution, name)).__name__}",
                "Use a tuple instead of a list, e.g. ('1.1', 'kpi-id', 2027).",
            ) from None
    if not isinstance(contribution.unit, str):
        raise CritflowError(
            f"contributions[{index}].unit",
            f"the unit is a text, got {contribution.unit!r}",
            "Write '1' for a fraction, or a unit such as 't'.",
        )
    value = contribution.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise CritflowError(
            f"contributions[{index}].value",
            f"a contribution's value is a finite number, got {value!r}",
            "Leave out a missing value instead of writing it as NaN.",
        )
    if not organisation_key(contribution.organisation):
        raise CritflowError(
            f"contributions[{index}].organisation", "the organisation is empty", "Name it."
        )
    return contribution


def _names(items: Iterable[Contribution]) -> dict[str, str]:
    """The distinct organisations of ``items``: key (:func:`organisation_key`) -> first spelling."""
    out: dict[str, str] = {}
    for c in items:
        out.setdefault(organisation_key(c.organisation), str(c.organisation))
    return out


def _members(items: Iterable[Contribution]) -> frozenset[tuple[str, Hashable]]:
    """The unknowns of ``items``: (organisation key, item)."""
    return frozenset((organisation_key(c.organisation), c.item) for c in items)


def _split_organisations(keys: list[Hashable], groups: dict) -> set[str]:
    """The organisations that, without items, give different values to groups of ``keys``."""
    values: dict[str, set[float]] = {}
    for k in keys:
        per_group: dict[str, float] = {}
        for c in groups[k]:
            if c.item is None:
                name = organisation_key(c.organisation)
                per_group[name] = per_group.get(name, 0.0) + c.value
        for name, value in per_group.items():
            values.setdefault(name, set()).add(value)
    return {name for name, seen in values.items() if len(seen) > 1}


def _split(
    members: frozenset[tuple[str, Hashable]], key: Hashable, split: set[str]
) -> list[tuple[str, Hashable]]:
    """``members`` with an organisation of ``split`` (item None) as one unknown per group."""
    return [
        (name, ("group", repr(key))) if item is None and name in split else (name, item)
        for name, item in members
    ]


def _old_members(old: Aggregate) -> frozenset[tuple[str, Hashable]]:
    """The unknowns of an earlier aggregate (its organisations, item None, when it has no members)."""
    return old.members or frozenset((organisation_key(o), None) for o in old.organisations)


def _null_basis(matrix: np.ndarray) -> np.ndarray:
    """An orthonormal basis (columns) of the null space of ``matrix``."""
    _, singular, vt = np.linalg.svd(matrix)
    scale = singular[0] if singular.size else 1.0
    rank = int((singular > _TOL * max(1.0, scale)).sum())
    return vt[rank:].T


def _extend(basis: np.ndarray, row: np.ndarray) -> np.ndarray | None:
    """``basis`` (orthonormal columns, n × r) with ``row``'s direction added (Gram-Schmidt, twice
    for accuracy); None when ``row`` lies in the span already (it then reveals nothing new)."""
    residual = row.astype(float)
    for _ in range(2):
        residual = residual - basis @ (basis.T @ residual)
    size = float(np.linalg.norm(residual))
    if size <= 1e-9 * max(1.0, float(np.linalg.norm(row))):
        return None
    return np.hstack([basis, (residual / size)[:, None]])


def _disclosing_set(
    basis: np.ndarray, owners: list[str], min_organisations: int
) -> frozenset[str] | None:
    """A set of fewer than ``min_organisations`` organisations about whose values the space
    spanned by ``basis`` (orthonormal columns: the published sums) reveals something (a
    non-zero combination of their values alone); None when there is none. ``owners[j]`` is the
    organisation of unknown j.

    With P the projector onto the row space (the combinations of published sums), a vector
    supported on a set S of unknowns lies in the row space exactly when the principal block
    P[S, S] has the eigenvalue 1. Organisations are checked one by one, then in pairs (after a
    cheap bound rules most pairs out: the largest eigenvalue of P[S, S] is at most the larger
    of the two organisations' own plus the norm of the block between them), then — only when
    ``min_organisations`` > 3 — in larger sets."""
    if min_organisations <= 1:
        return None
    by_owner: dict[str, list[int]] = {}
    for column, owner in enumerate(owners):
        by_owner.setdefault(owner, []).append(column)
    names = sorted(by_owner)
    order = [c for name in names for c in by_owner[name]]
    q = basis[order]  # unknowns grouped by organisation
    sizes = [len(by_owner[name]) for name in names]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    projector = q @ q.T
    own = []
    for i, name in enumerate(names):
        block = projector[offsets[i] : offsets[i + 1], offsets[i] : offsets[i + 1]]
        top = float(np.linalg.eigvalsh(block)[-1])
        if top > 1 - 1e-9:
            return frozenset({name})
        own.append(top)
    if min_organisations == 2 or len(names) < 2:
        return None
    squared = np.add.reduceat(
        np.add.reduceat(projector**2, offsets[:-1], axis=0), offsets[:-1], axis=1
    )
    between = np.sqrt(squared)
    own_arr = np.array(own)
    bound = np.maximum.outer(own_arr, own_arr) + between
    np.fill_diagonal(bound, 0.0)
    for i, j in np.argwhere(np.triu(bound > 1 - 1e-9, k=1)):
        index = np.r_[offsets[i] : offsets[i + 1], offsets[j] : offsets[j + 1]]
        if float(np.linalg.eigvalsh(projector[np.ix_(index, index)])[-1]) > 1 - 1e-9:
            return frozenset({names[i], names[j]})
    sets = sum(math.comb(len(names), size) for size in range(3, min_organisations))
    if sets > _MAX_SETS:
        raise CritflowError(
            f"min_organisations={min_organisations}",
            f"checking every set of 3 to {min_organisations - 1} of {len(names)} organisations "
            f"means {sets:,} sets; above {_MAX_SETS:,} the check would take hours",
            "Use min_organisations=3 (single organisations and pairs are checked exactly and "
            "fast), or fewer organisations per measure.",
        )
    for size in range(3, min_organisations):
        for group in itertools.combinations(range(len(names)), size):
            index = np.concatenate([np.arange(offsets[k], offsets[k + 1]) for k in group])
            if float(np.linalg.eigvalsh(projector[np.ix_(index, index)])[-1]) > 1 - 1e-9:
                return frozenset(names[k] for k in group)
    return None


def _partners(
    rows: list[np.ndarray], keys: list[Hashable], row: np.ndarray, columns: list[int]
) -> list[Hashable]:
    """The published aggregates (``keys`` of ``rows``) that, combined with ``row``, reveal the
    unknowns ``columns``: the non-zero coefficients of a combination of the rows whose result
    is zero outside ``columns``."""
    matrix = np.vstack([*rows, row])
    outside = [j for j in range(matrix.shape[1]) if j not in set(columns)]
    combos = _null_basis(matrix[:, outside].T) if outside else np.eye(len(matrix))
    for combo in combos.T:
        if abs(combo[-1]) > 1e-8 and np.abs(combo @ matrix).max() > 1e-8:
            return [k for k, c in zip(keys, combo[:-1], strict=True) if abs(c) > 1e-8]
    return list(keys)


def _implied(rows: list[np.ndarray], sums: list[float], row: np.ndarray) -> float:
    """The sum that the published ``rows`` (with their ``sums``) imply for ``row`` (in their span)."""
    coefficients = np.linalg.lstsq(np.vstack(rows).T, row, rcond=None)[0]
    return float(coefficients @ np.array(sums))


def public_aggregates(
    contributions: Iterable[Contribution | tuple],
    min_organisations: int = 3,
    measure: Callable[[Hashable], Hashable] | None = None,
    published_before: Iterable[Aggregate] = (),
) -> list[Aggregate]:
    """The aggregate of every group of ``contributions``, published or suppressed by the rule
    of this module (see its docstring). ``measure`` maps a group key to what it measures; groups
    of one measure may be combined by an attacker (default: the key without its first part).
    ``published_before``: the aggregates published earlier (they stay public; new ones must be
    safe together with them). Contributions of one group must share a unit. Returns the
    aggregates sorted by key (as text)."""
    if min_organisations < 1:
        raise CritflowError(
            "min_organisations=", f"must be 1 or more, got {min_organisations}", "Use 3."
        )
    measure = measure or _default_measure
    groups: dict[Hashable, list[Contribution]] = {}
    for index, raw in enumerate(contributions):
        item = _as_contribution(raw, index)
        groups.setdefault(item.key, []).append(item)
    aggregates: dict[Hashable, Aggregate] = {}
    by_measure: dict[Hashable, list[Hashable]] = {}
    before: dict[Hashable, list[Aggregate]] = {}
    for index, old in enumerate(published_before):
        if not isinstance(old, Aggregate):
            raise CritflowError(
                f"published_before[{index}]",
                f"an earlier aggregate is an Aggregate (as public_aggregates returned it), "
                f"got {type(old).__name__}",
                "Keep the Aggregate objects (or rebuild them with key, organisations, members).",
            )
        if old.published:
            before.setdefault(measure(old.key), []).append(old)
    for key, items in groups.items():
        units = {c.unit for c in items}
        if len(units) > 1:
            raise CritflowError(
                f"contributions to {key!r}",
                f"mix units {sorted(units)}",
                "Convert the values to one unit before aggregating.",
            )
        unit = units.pop()
        organisations = _names(items)
        try:
            total = math.fsum(c.value for c in items)
        except OverflowError:
            total = math.inf
        if not math.isfinite(total):
            raise CritflowError(
                f"contributions to {key!r}",
                "their sum overflows (values near 1e308)",
                "Give the values in a larger unit (kt instead of t) or check them for typos.",
            )
        by_measure.setdefault(measure(key), []).append(key)
        if len(organisations) < min_organisations:
            aggregates[key] = Aggregate(
                key,
                unit,
                len(organisations),
                None,
                None,
                False,
                f"fewer than {min_organisations} organisations contribute ({len(organisations)})",
                frozenset(organisations.values()),
                _members(items),
            )
    for measured, keys in by_measure.items():
        candidates = sorted(
            (k for k in keys if k not in aggregates),
            key=lambda k: (-len(_names(groups[k])), repr(k)),
        )
        unknowns: dict[tuple[str, Hashable], int] = {}
        for old in before.get(measured, []):
            for member in _old_members(old):
                unknowns.setdefault(member, len(unknowns))
        for k in keys:
            for member in _members(groups[k]):
                unknowns.setdefault(member, len(unknowns))
        owners = [owner for owner, _ in unknowns]
        published: list[tuple[Hashable, np.ndarray]] = []
        sums: list[float] = []
        basis = np.zeros((len(unknowns), 0))
        # without items, an organisation whose values differ between groups has more than one
        # value: a second model gives it one unknown per group, so a difference between two of
        # its values (a second project counted in the domain but not the sub-domain) is caught
        split = _split_organisations(keys, groups)
        split_unknowns: dict[tuple[str, Hashable], int] = {}
        for old in before.get(measured, []):
            for member in _split(_old_members(old), old.key, split):
                split_unknowns.setdefault(member, len(split_unknowns))
        for k in keys:
            for member in _split(_members(groups[k]), k, split):
                split_unknowns.setdefault(member, len(split_unknowns))
        split_owners = [owner for owner, _ in split_unknowns]
        split_published: list[tuple[Hashable, np.ndarray]] = []
        split_basis = np.zeros((len(split_unknowns), 0))
        for old in before.get(measured, []):
            row = np.zeros(len(unknowns))
            for member in _old_members(old):
                row[unknowns[member]] = 1.0
            published.append((old.key, row))
            sums.append(float(old.sum) if old.sum is not None else math.nan)
            extended = _extend(basis, row)
            basis = basis if extended is None else extended
            if split:
                split_row = np.zeros(len(split_unknowns))
                for member in _split(_old_members(old), old.key, split):
                    split_row[split_unknowns[member]] = 1.0
                split_published.append((old.key, split_row))
                split_extended = _extend(split_basis, split_row)
                split_basis = split_basis if split_extended is None else split_extended
        for key in candidates:
            unit = groups[key][0].unit
            members = _members(groups[key])
            row = np.zeros(len(unknowns))
            for member in members:
                row[unknowns[member]] = 1.0
            organisations = _names(groups[key])
            total = math.fsum(c.value for c in groups[key])  # finite: checked above
            extended = _extend(basis, row)
            # a sum in the span of the published ones reveals nothing new — unless its value
            # differs from what they imply (a value was revised since): that difference is news
            revised = False
            if extended is None and before.get(measured):
                implied = _implied([r for _, r in published], sums, row)
                scale = max([abs(x) for x in sums] + [abs(total), 1e-300])
                revised = not math.isclose(implied, total, rel_tol=1e-9, abs_tol=1e-9 * scale)
            revealed = (
                None if extended is None else _disclosing_set(extended, owners, min_organisations)
            )
            owners_seen, rows_seen, row_seen = owners, published, row
            split_row = split_extended = None
            if split:
                split_row = np.zeros(len(split_unknowns))
                for member in _split(members, key, split):
                    split_row[split_unknowns[member]] = 1.0
                split_extended = _extend(split_basis, split_row)
                if revealed is None and split_extended is not None:
                    revealed = _disclosing_set(split_extended, split_owners, min_organisations)
                    owners_seen, rows_seen, row_seen = split_owners, split_published, split_row
            if revised:
                aggregates[key] = Aggregate(
                    key,
                    unit,
                    len(organisations),
                    None,
                    None,
                    False,
                    "the published aggregates fix this sum, but its value differs from theirs "
                    "(a value was revised): the difference would reveal the revision; give a "
                    "revised value a new item",
                    frozenset(organisations.values()),
                    members,
                )
                continue
            if revealed is None:
                published.append((key, row))
                sums.append(total)
                basis = basis if extended is None else extended
                if split_row is not None:
                    split_published.append((key, split_row))
                    split_basis = split_basis if split_extended is None else split_extended
                aggregates[key] = Aggregate(
                    key,
                    unit,
                    len(organisations),
                    total,
                    total / len(organisations),
                    True,
                    "",
                    frozenset(organisations.values()),
                    members,
                )
                continue
            columns = [j for j, owner in enumerate(owners_seen) if owner in revealed]
            partners = _partners(
                [r for _, r in rows_seen], [k for k, _ in rows_seen], row_seen, columns
            )
            aggregates[key] = Aggregate(
                key,
                unit,
                len(organisations),
                None,
                None,
                False,
                f"with the published aggregate{'s' if len(partners) > 1 else ''} "
                f"{', '.join(repr(p) for p in partners)} it would let the value of fewer than "
                f"{min_organisations} organisations be recovered by subtraction",
                frozenset(organisations.values()),
                members,
            )
    return sorted(aggregates.values(), key=lambda a: repr(a.key))
