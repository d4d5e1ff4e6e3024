"""critflow's matrix LCA against bw2calc 3 on an ecoinvent-sized synthetic system.

    python benchmarks/lca.py                 # 25,000 activities, ~12 nonzeros per column
    python benchmarks/lca.py --solver superlu --hide-pardiso   # both without PARDISO

The system (critflow lca-notes 3, "S12"): technosphere A n × n with production 1 on the diagonal
and inputs drawn 40 % from 500 Zipf-weighted hub activities (markets), 1 % long-range and the rest
within 100-activity sector blocks, every column's inputs summing to < 0.9 (a non-singular
M-matrix); biosphere B 4,000 × n with 20 entries per column; one impact category with 150 factors;
Monte Carlo: lognormal σ = 0.3 on every input. Both libraries get the same matrices and, with
pypardiso installed, the same solver.

Timed, side by side (median of --reps): one cold LCA (matrices given → score), 100 demands,
scores of every product (adjoint), Monte Carlo 100 iterations. Prints the ratios
(bw2calc time / critflow time; > 1 means critflow is faster).
"""

from __future__ import annotations

import argparse
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
parser.add_argument("--reps", type=int, default=3)
parser.add_argument("--solver", choices=["pardiso", "superlu"], default=None)
parser.add_argument("--hide-pardiso", action="store_true", help="bw2calc falls back to SuperLU")
parser.add_argument("--skip-bw-mc", action="store_true", help="skip bw2calc's Monte Carlo")
args = parser.parse_args()
if args.hide_pardiso:
    sys.modules["pypardiso"] = None  # bw2calc (and critflow) fall back to SciPy

import scipy.sparse as sp  # noqa: E402

from critflow.impact.matrix import MatrixLCA  # noqa: E402

warnings.filterwarnings("ignore")


def timed(fn, reps=args.reps):
    times, out = [], None
    for _ in range(reps):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


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


def record(name: str, ours: float, peer: float) -> None:
    results[name] = (ours, peer)
    print(
        f"{name:44s} critflow {ours * 1e3:9.1f} ms   bw2calc {peer * 1e3:9.1f} ms   "
        f"ratio {peer / ours:6.2f}x",
        flush=True,
    )


# --------------------------------------------------------------------------- critflow
def cold() -> float:
    lca = MatrixLCA(A, B, c, solver=args.solver)
    return float(lca.scores(F[:, 0])[0])


t_cold, score_cf = timed(cold)
lca = MatrixLCA(A, B, c, solver=args.solver)
print(f"critflow solver: {lca.solver}")
t_multi, multi_cf = timed(lambda: MatrixLCA(A, B, c, solver=args.solver).scores(F)[0])
t_all, all_cf = timed(lambda: MatrixLCA(A, B, c, solver=args.solver).all_product_scores()[0])

# --------------------------------------------------------------------------- bw2calc
import bw2calc as bc  # noqa: E402
import bw_processing as bwp  # noqa: E402

print(f"bw2calc {bc.__version__}, PYPARDISO={bc.PYPARDISO}")
dp = bwp.create_datapackage()
idx = np.zeros(t_vals.size, dtype=bwp.INDICES_DTYPE)
idx["row"], idx["col"] = t_rows + 1, t_cols + 1
dist = np.zeros(t_vals.size, dtype=bwp.UNCERTAINTY_DTYPE)
dist["uncertainty_type"] = np.where(t_flip, 2, 0)
dist["loc"] = np.where(t_flip, np.log(t_vals), t_vals)
dist["scale"] = np.where(t_flip, 0.3, np.nan)
dist["minimum"] = dist["maximum"] = dist["shape"] = np.nan
dp.add_persistent_vector(
    matrix="technosphere_matrix",
    indices_array=idx,
    data_array=t_vals,
    flip_array=t_flip,
    distributions_array=dist,
    name="techno",
)
bidx = np.zeros(B.nnz, dtype=bwp.INDICES_DTYPE)
coo = B.tocoo()
bidx["row"], bidx["col"] = coo.row + 10_000_000, coo.col + 1
dp.add_persistent_vector(
    matrix="biosphere_matrix", indices_array=bidx, data_array=coo.data, name="bio"
)
cidx = np.zeros(150, dtype=bwp.INDICES_DTYPE)
cidx["row"], cidx["col"] = cf_rows + 10_000_000, 0
dp.add_persistent_vector(
    matrix="characterization_matrix",
    indices_array=cidx,
    data_array=cf_vals,
    name="gwp",
    identifier=["gwp"],
)
fu = {int(demand_idx[0]) + 1: 1.0}


def bw_cold():
    one = bc.LCA(fu, data_objs=[dp])
    one.lci()
    one.lcia()
    return one.score


t_bw_cold, score_bw = timed(bw_cold)
record("one cold LCA (score of 1 demand)", t_cold, t_bw_cold)
demands = {f"fu{i}": {int(j) + 1: 1.0} for i, j in enumerate(demand_idx)}
config = {"impact_categories": [("gwp",)]}


def bw_multi():
    ml = bc.MultiLCA(demands, config, data_objs=[dp])
    ml.lci()
    ml.lcia()
    return np.array([ml.scores[(("gwp",), f"fu{i}")] for i in range(args.demands)])


t_bw_multi, multi_bw = timed(bw_multi, reps=1)
record(f"{args.demands} demands", t_multi, t_bw_multi)
try:

    def bw_fast():
        fast = bc.FastScoresOnlyMultiLCA(demands, config, data_objs=[dp], direction="adjoint")
        next(fast)
        return fast

    t_bw_all, _ = timed(bw_fast, reps=1)
    record(f"scores of {args.demands} products (adjoint)", t_all, t_bw_all)
except Exception as exc:  # FastScoresOnlyMultiLCA needs PARDISO or UMFPACK
    print(f"bw2calc FastScoresOnlyMultiLCA unavailable here: {exc!r}")

# --------------------------------------------------------------------------- Monte Carlo
A_csr = lca.A
order = (
    sp.csr_matrix(
        (np.arange(1, t_vals.size + 1, dtype=float), (t_rows, t_cols)), shape=(n, n)
    ).data.astype(np.int64)
    - 1
)  # COO position of every CSR entry
log_vals = np.log(t_vals[order])
flip = t_flip[order]
sign = np.where(flip, -1.0, 1.0)
mc_rng = np.random.default_rng(7)


def sample_values(count: int) -> np.ndarray:
    z = mc_rng.standard_normal((flip.size, count))
    return sign[:, None] * np.where(
        flip[:, None], np.exp(log_vals[:, None] + 0.3 * z), np.exp(log_vals)[:, None]
    )


start = time.perf_counter()
mc = lca.monte_carlo(F[:, 0], sample_values, args.mc, chunk=50)
t_mc = (time.perf_counter() - start) / args.mc
print(
    f"critflow MC: {args.mc} samples, BiCGSTAB iterations {mc.iterations}, "
    f"max relative residual {mc.max_relative_residual:.1e}, "
    f"mean {mc.scores.mean():.6g}, CV {mc.scores.std() / mc.scores.mean():.3f}"
)
if not args.skip_bw_mc:
    runner = bc.LCA(fu, data_objs=[dp], use_distributions=True, seed_override=7)
    runner.lci()
    runner.lcia()
    times, scores = [], []
    for _ in range(args.mc):
        start = time.perf_counter()
        next(runner)
        times.append(time.perf_counter() - start)
        scores.append(runner.score)
    scores = np.array(scores)
    print(f"bw2calc MC: mean {scores.mean():.6g}, CV {scores.std() / scores.mean():.3f}")
    record(f"Monte Carlo, per iteration ({args.mc})", t_mc, statistics.median(times))

print()
print(
    f"agreement: cold score {abs(score_cf - score_bw) / abs(score_bw):.1e}, "
    f"100 demands {np.max(np.abs(multi_cf - multi_bw) / np.abs(multi_bw)):.1e}, "
    f"adjoint vs forward {np.max(np.abs(all_cf[demand_idx] - multi_cf) / np.abs(multi_cf)):.1e}"
)
ratios = [peer / ours for ours, peer in results.values()]
print(
    "ratios (bw2calc / critflow): "
    + ", ".join(f"{k}: {p / o:.2f}x" for k, (o, p) in results.items())
)
print(f"geometric mean {np.exp(np.mean(np.log(ratios))):.2f}x")
