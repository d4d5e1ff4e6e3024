"""critflow's matrix LCA against bw2calc 3 on an ecoinvent-sized synthetic system.

    python benchmarks/lca.py                 # 25,000 activities, ~12 nonzeros per column
    python benchmarks/lca.py --n 8000 --reps 5
    python benchmarks/lca.py --solver superlu --hide-pardiso   # both without PARDISO

The system (critflow lca-notes 3, "S12"): technosphere A n × n with production 1 on the diagonal
and inputs drawn 40 % from 500 Zipf-weighted hub activities (markets), 1 % long-range and the rest
within 100-activity sector blocks, every column's inputs summing to < 0.9 (a non-singular
M-matrix); biosphere B 4,000 × n with 20 entries per column; one impact category with 150 factors.
Both libraries get the same matrices and, with pypardiso installed, the same solver.

Every measurement runs --reps times, the two sides interleaved (critflow, bw2calc, critflow, …),
and prints min / median / max; the ratio is bw2calc's median / critflow's (> 1: critflow faster).
Timed: one cold LCA (matrices given → score), --demands demands, scores of every product (adjoint),
and Monte Carlo. Monte Carlo uses shared draws: --mc technosphere samples (lognormal σ = 0.3 on
every input) are drawn once; bw2calc reads them from a sequential array datapackage
(``use_arrays=True``, one column per ``next()``), critflow from the same array, so neither side's
time includes drawing random numbers and every sample's score is compared between them. Peers:
``IterativeLCA`` (BiCGSTAB + Jacobi from the reference factorisation, its defaults; production
flagged by ``reference_array``) on every sample, plain ``LCA`` (a factorisation per sample) on the
first --lca-samples samples, which also serve as the direct reference for both.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--n", type=int, default=25_000, help="activities")
parser.add_argument("--k", type=float, default=11.5, help="off-diagonal inputs per column")
parser.add_argument("--cross", type=float, default=0.01, help="share of long-range inputs")
parser.add_argument("--m", type=int, default=4_000, help="biosphere flows")
parser.add_argument("--demands", type=int, default=100)
parser.add_argument("--mc", type=int, default=100, help="Monte Carlo iterations")
parser.add_argument("--chunk", type=int, default=50, help="critflow Monte Carlo samples per block")
parser.add_argument("--lca-samples", type=int, default=3, help="samples for bw2calc's plain LCA")
parser.add_argument("--reps", type=int, default=3)
parser.add_argument("--solver", choices=["pardiso", "superlu"], default=None)
parser.add_argument("--hide-pardiso", action="store_true", help="bw2calc falls back to SuperLU")
args = parser.parse_args()
if args.hide_pardiso:
    sys.modules["pypardiso"] = None  # bw2calc (and critflow) fall back to SciPy

import scipy.sparse as sp  # noqa: E402

from critflow.impact.matrix import MatrixLCA  # noqa: E402

warnings.filterwarnings("ignore")


def interleaved(*sides, reps=args.reps):
    """Run the ``sides`` alternately ``reps`` times: each one's times (s), then each one's last
    output. A side may return (output, seconds) to time only part of its work."""
    times: list[list[float]] = [[] for _ in sides]
    outs: list = [None] * len(sides)
    for _ in range(reps):
        for i, fn in enumerate(sides):
            start = time.perf_counter()
            out = fn()
            elapsed = time.perf_counter() - start
            if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], float):
                out, elapsed = out
            times[i].append(elapsed)
            outs[i] = out
    return (*times, *outs)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} CPUs{load}; Python {platform.python_version()}"


# --------------------------------------------------------------------------- the system
rng = np.random.default_rng(42)
n, m = args.n, args.m
hubs = rng.choice(n, 500, replace=False)
hub_w = 1.0 / np.arange(1, 501)
hub_w /= hub_w.sum()
k_int = int(np.floor(args.k))
per_col = k_int + (rng.random(n) < (args.k - k_int)).astype(int)
cols_off = np.repeat(np.arange(n), per_col)
u = rng.random(cols_off.size)
r_hub = hubs[rng.choice(500, cols_off.size, p=hub_w)]
r_loc = np.minimum((cols_off // 100) * 100 + rng.integers(0, 100, cols_off.size), n - 1)
r_far = rng.integers(0, n, cols_off.size)
rows_off = np.where(u < 0.4, r_hub, np.where(u < 0.4 + args.cross, r_far, r_loc))
keep = rows_off != cols_off
key = np.unique(rows_off[keep].astype(np.int64) * n + cols_off[keep])
rows_off, cols_off = key // n, key % n
share = rng.random(rows_off.size)
colsum = np.bincount(cols_off, weights=share, minlength=n)
vals_off = 0.9 * rng.random(n)[cols_off] * share / colsum[cols_off]
t_rows = np.concatenate([np.arange(n), rows_off])
t_cols = np.concatenate([np.arange(n), cols_off])
t_vals = np.concatenate([np.ones(n), vals_off])  # stored positive; inputs are flipped
t_flip = np.concatenate([np.zeros(n, bool), np.ones(rows_off.size, bool)])
A = sp.csr_matrix((np.where(t_flip, -t_vals, t_vals), (t_rows, t_cols)), shape=(n, n))
b_cols = np.repeat(np.arange(n), 20)
b_rows = rng.integers(0, m, b_cols.size)
b_vals = rng.lognormal(-3, 2, b_cols.size)
B = sp.csr_matrix((b_vals, (b_rows, b_cols)), shape=(m, n))
cf_rows = rng.choice(m, 150, replace=False)
cf_vals = rng.lognormal(0, 2, 150)
c = np.zeros(m)
c[cf_rows] = cf_vals
demand_idx = rng.choice(n, args.demands, replace=False)
F = np.zeros((n, args.demands))
F[demand_idx, np.arange(args.demands)] = 1.0
print(f"A {A.shape}, {A.nnz:,} nonzeros ({A.nnz / n:.2f} per column); B {B.nnz:,} nonzeros")

results: dict[str, tuple[float, float]] = {}


def spread(times: list[float], per: int = 1) -> str:
    t = sorted(x / per * 1e3 for x in times)
    return f"{t[0]:,.1f} / {statistics.median(t):,.1f} / {t[-1]:,.1f} ms"


def record(name: str, ours: list[float], peer: list[float], peer_name: str, per: int = 1) -> None:
    ratio = statistics.median(peer) / statistics.median(ours)
    results[name] = (statistics.median(ours) / per, statistics.median(peer) / per)
    print(f"{name}  [min / median / max over {len(ours)} interleaved runs]", flush=True)
    print(f"    critflow            {spread(ours, per)}")
    print(f"    bw2calc {peer_name:11s} {spread(peer, per)}   ratio {ratio:.2f}x", flush=True)


# --------------------------------------------------------------------------- bw2calc data
import bw2calc as bc  # noqa: E402
import bw_processing as bwp  # noqa: E402

print(f"machine: {machine()}")
print(
    f"bw2calc {bc.__version__} (PYPARDISO={bc.PYPARDISO}), bw_processing {bwp.__version__}; "
    f"critflow solver: {MatrixLCA(A, B, c, solver=args.solver).solver}; "
    f"NumPy {np.__version__}, SciPy {__import__('scipy').__version__}"
)
idx = np.zeros(t_vals.size, dtype=bwp.INDICES_DTYPE)
idx["row"], idx["col"] = t_rows + 1, t_cols + 1
bidx = np.zeros(B.nnz, dtype=bwp.INDICES_DTYPE)
coo = B.tocoo()
bidx["row"], bidx["col"] = coo.row + 10_000_000, coo.col + 1
cidx = np.zeros(150, dtype=bwp.INDICES_DTYPE)
cidx["row"], cidx["col"] = cf_rows + 10_000_000, 0


def datapackage(technosphere_values: np.ndarray | None = None):
    """The system as a datapackage; with (nnz, N) values, a sequential array resource."""
    dp = bwp.create_datapackage(sequential=technosphere_values is not None)
    common = dict(
        matrix="technosphere_matrix",
        indices_array=idx,
        flip_array=t_flip,
        reference_array=~t_flip,  # production exchanges: IterativeLCA's Jacobi pairing
        name="techno",
    )
    if technosphere_values is None:
        dp.add_persistent_vector(data_array=t_vals, **common)
    else:
        dp.add_persistent_array(data_array=technosphere_values, **common)
    dp.add_persistent_vector(
        matrix="biosphere_matrix", indices_array=bidx, data_array=coo.data, name="bio"
    )
    dp.add_persistent_vector(
        matrix="characterization_matrix",
        indices_array=cidx,
        data_array=cf_vals,
        name="gwp",
        identifier=["gwp"],
    )
    return dp


dp = datapackage()
fu = {int(demand_idx[0]) + 1: 1.0}
results: dict[str, tuple[float, float]] = {}


# --------------------------------------------------------------------------- one demand
def cold() -> float:
    lca = MatrixLCA(A, B, c, solver=args.solver)
    return float(lca.scores(F[:, 0])[0])


def bw_cold() -> float:
    one = bc.LCA(fu, data_objs=[dp])
    one.lci()
    one.lcia()
    return float(one.score)


ours, peer, score_cf, score_bw = interleaved(cold, bw_cold)
record("one cold LCA (score of 1 demand)", ours, peer, "LCA")

# --------------------------------------------------------------------------- many demands
demands = {f"fu{i}": {int(j) + 1: 1.0} for i, j in enumerate(demand_idx)}
config = {"impact_categories": [("gwp",)]}


def bw_multi():
    ml = bc.MultiLCA(demands, config, data_objs=[dp])
    ml.lci()
    ml.lcia()
    return np.array([ml.scores[(("gwp",), f"fu{i}")] for i in range(args.demands)])


ours, peer, multi_cf, multi_bw = interleaved(
    lambda: MatrixLCA(A, B, c, solver=args.solver).scores(F)[0], bw_multi
)
record(f"{args.demands} demands", ours, peer, "MultiLCA")


def bw_fast():
    fast = bc.FastScoresOnlyMultiLCA(demands, config, data_objs=[dp], direction="adjoint")
    next(fast)
    return fast


all_cf = MatrixLCA(A, B, c, solver=args.solver).all_product_scores()[0]
try:
    bw_fast()
except Exception as exc:  # FastScoresOnlyMultiLCA needs PARDISO or UMFPACK
    print(f"bw2calc FastScoresOnlyMultiLCA unavailable here: {exc!r}")
else:
    ours, peer, all_cf, _ = interleaved(
        lambda: MatrixLCA(A, B, c, solver=args.solver).all_product_scores()[0], bw_fast
    )
    record(f"scores of {args.demands} products (adjoint)", ours, peer, "FastScores")

# --------------------------------------------------------------------------- Monte Carlo
order = (
    sp.csr_matrix(
        (np.arange(1, t_vals.size + 1, dtype=float), (t_rows, t_cols)), shape=(n, n)
    ).data.astype(np.int64)
    - 1
)  # COO position of every CSR entry
sign = np.where(t_flip, -1.0, 1.0)[order]
mc_rng = np.random.default_rng(7)
# shared draws, (samples, nnz) in COO order, positive as bw_processing stores them; row 0 is the
# static system (bw2calc's first, reference solve), rows 1… the samples
draws = np.empty((args.mc + 1, t_vals.size))
draws[0] = t_vals
draws[1:] = np.where(
    t_flip, t_vals * np.exp(0.3 * mc_rng.standard_normal((args.mc, t_vals.size))), t_vals
)
mc_dp = datapackage(draws.T)


def critflow_mc():
    lca = MatrixLCA(A, B, c, solver=args.solver)
    _ = lca.factor  # the static factorisation, as bw2calc's first (reference) solve: not timed
    position = iter(range(1, args.mc + 1, args.chunk))

    def sample_values(m: int) -> np.ndarray:
        first = next(position)
        return (sign * draws[first : first + m, order]).T  # (nnz, m), each sample contiguous

    start = time.perf_counter()
    mc = lca.monte_carlo(F[:, 0], sample_values, args.mc, chunk=args.chunk)
    return mc, time.perf_counter() - start


def bw_mc(kind=bc.IterativeLCA, samples=args.mc):
    runner = kind(fu, data_objs=[mc_dp], use_arrays=True)
    runner.lci()  # the static system (array column 0): IterativeLCA's reference factorisation
    runner.lcia()
    scores = []
    start = time.perf_counter()
    for _ in range(samples):
        next(runner)
        scores.append(runner.score)
    seconds = time.perf_counter() - start
    return (np.array(scores), getattr(runner, "solver_stats", None)), seconds


k = min(args.lca_samples, args.mc)
ours, peer, plain, mc, (iterative, stats), (direct, _) = interleaved(
    critflow_mc, bw_mc, lambda: bw_mc(bc.LCA, k)
)
record(f"Monte Carlo, per iteration ({args.mc} samples)", ours, peer, "IterativeLCA", args.mc)
print(
    f"    critflow: blocks of {args.chunk}, BiCGSTAB iterations {mc.iterations} at most, "
    f"largest estimated score error {mc.max_estimated_error:.1e}, direct fallbacks {mc.direct}; "
    f"IterativeLCA solves by stage: {dict(stats)}"
)
if k:
    # critflow's time is for all --mc samples, LCA's for the first k: compare per sample
    record(
        f"Monte Carlo, per iteration (LCA on the first {k} samples)",
        [t / args.mc for t in ours],
        [t / k for t in plain],
        "LCA",
    )
cf_scores = mc.scores[:, 0]
print(
    f"    mean {cf_scores.mean():.6g} / {iterative.mean():.6g}, "
    f"CV {cf_scores.std() / cf_scores.mean():.3f} / {iterative.std() / iterative.mean():.3f} "
    "(critflow / IterativeLCA)"
)

print()
agreement = (
    f"agreement: cold score {abs(score_cf - score_bw) / abs(score_bw):.1e}, "
    f"{args.demands} demands {np.max(np.abs(multi_cf - multi_bw) / np.abs(multi_bw)):.1e}, "
    f"adjoint vs forward {np.max(np.abs(all_cf[demand_idx] - multi_cf) / np.abs(multi_cf)):.1e}; "
    f"Monte Carlo sample by sample: critflow vs IterativeLCA "
    f"{np.max(np.abs(cf_scores - iterative) / np.abs(iterative)):.1e} (all {args.mc})"
)
if k:
    agreement += (
        f", vs LCA (direct) on the first {k}: critflow "
        f"{np.max(np.abs(cf_scores[:k] - direct) / np.abs(direct)):.1e}, IterativeLCA "
        f"{np.max(np.abs(iterative[:k] - direct) / np.abs(direct)):.1e}"
    )
print(agreement)
ratios = [peer / ours for ours, peer in results.values()]
print(
    "ratios of medians (bw2calc / critflow): "
    + ", ".join(f"{k}: {p / o:.2f}x" for k, (o, p) in results.items())
)
