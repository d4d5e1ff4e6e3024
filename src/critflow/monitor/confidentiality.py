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

Unknowns: by default each organisation has one value per measure (its contributions to a group
are summed first). When one organisation contributes different values to different groups of
the same measure (several projects), give each contribution an ``item`` (e.g. the project or
submission id): then the unknowns are (organisation, item) and a contribution counted in several
groups is the same unknown — which is what makes a domain and its sub-domain overlap. Without
items, an organisation's contributions to different groups are treated as one value, which may
suppress more than needed but never publishes a subtraction that reveals an organisation's value
(except a difference between two of its own values, which items avoid).

Cost: 40 groups over 60 organisations, 9 KPI-years (5,000 contributions) take about 0.5 s; 40
groups with one item per contribution (1,150 contributions, 574 unknowns) about 1.3 s (2-core
machine shared with other work).

Not covered (state it where the aggregates are shown): dominance (one organisation making up
most of a sum), values published elsewhere, and relations between measures (e.g. CO2-eq avoided
computed from tonnes).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from critflow.errors import CritflowError

_TOL = 1e-9


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
    value = contribution.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise CritflowError(
            f"contributions[{index}].value",
            f"a contribution's value is a finite number, got {value!r}",
            "Leave out a missing value instead of writing it as NaN.",
        )
    if not str(contribution.organisation).strip():
        raise CritflowError(
            f"contributions[{index}].organisation", "the organisation is empty", "Name it."
        )
    return contribution


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


def public_aggregates(
    contributions: Iterable[Contribution | tuple],
    min_organisations: int = 3,
    measure: Callable[[Hashable], Hashable] | None = None,
) -> list[Aggregate]:
    """The aggregate of every group of ``contributions``, published or suppressed by the rule
    of this module (see its docstring). ``measure`` maps a group key to what it measures; groups
    of one measure may be combined by an attacker (default: the key without its first part).
    Contributions of one group must share a unit. Returns the aggregates sorted by key (as text)."""
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
    by_measure: dict[tuple[Hashable, str], list[Hashable]] = {}
    for key, items in groups.items():
        units = {c.unit for c in items}
        if len(units) > 1:
            raise CritflowError(
                f"contributions to {key!r}",
                f"mix units {sorted(units)}",
                "Convert the values to one unit before aggregating.",
            )
        unit = units.pop()
        organisations = frozenset(str(c.organisation) for c in items)
        by_measure.setdefault((measure(key), unit), []).append(key)
        if len(organisations) < min_organisations:
            aggregates[key] = Aggregate(
                key,
                unit,
                len(organisations),
                None,
                None,
                False,
                f"fewer than {min_organisations} organisations contribute ({len(organisations)})",
                organisations,
            )
    for (_, unit), keys in by_measure.items():
        candidates = sorted(
            (k for k in keys if k not in aggregates),
            key=lambda k: (-len({c.organisation for c in groups[k]}), repr(k)),
        )
        unknowns: dict[tuple[str, Hashable], int] = {}
        for k in keys:
            for c in groups[k]:
                unknowns.setdefault((str(c.organisation), c.item), len(unknowns))
        owners = [owner for owner, _ in unknowns]
        published: list[tuple[Hashable, np.ndarray]] = []
        basis = np.zeros((len(unknowns), 0))
        for key in candidates:
            row = np.zeros(len(unknowns))
            for c in groups[key]:
                row[unknowns[(str(c.organisation), c.item)]] = 1.0
            organisations = frozenset(str(c.organisation) for c in groups[key])
            extended = _extend(basis, row)
            # a sum in the span of the published ones reveals nothing new
            revealed = (
                None if extended is None else _disclosing_set(extended, owners, min_organisations)
            )
            if revealed is None:
                published.append((key, row))
                basis = basis if extended is None else extended
                total = float(sum(c.value for c in groups[key]))
                aggregates[key] = Aggregate(
                    key,
                    unit,
                    len(organisations),
                    total,
                    total / len(organisations),
                    True,
                    "",
                    organisations,
                )
                continue
            columns = [j for j, owner in enumerate(owners) if owner in revealed]
            partners = _partners([r for _, r in published], [k for k, _ in published], row, columns)
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
                organisations,
            )
    return sorted(aggregates.values(), key=lambda a: repr(a.key))
