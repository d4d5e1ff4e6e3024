"""Benchmark of the scrap-blending optimiser: 200 scrap classes × 30 elements × 50 products.

Prints the time of the least-cost LP (HiGHS through scipy) and of the robust blend (each limit met
with 95 % probability, cutting planes). Targets: under 2 s and under 20 s. No blending tool in the
field is open and scriptable, so there is no peer to run the same work through.

    python benchmarks/blend.py [--scrap 200] [--elements 30] [--products 50] [--seed 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from critflow.blend import blend
from critflow.blend.problem import to_arrays
from critflow.blend.schema import BlendProblem
from critflow.model.source import SourceMap


def generate(n_scrap: int, n_elements: int, n_products: int, seed: int) -> BlendProblem:
    rng = np.random.default_rng(seed)
    elements = [f"X{i:02d}" for i in range(n_elements - 1)] + ["Al"]
    materials = []
    for m in range(n_scrap):
        content = rng.gamma(0.6, 0.25, n_elements - 1) * (
            rng.random(n_elements - 1) < 0.5
        )  # percent
        materials.append(
            {
                "id": f"scrap{m:03d}",
                "kind": "scrap",
                "composition": {
                    e: {"mean": float(v), "sd": float(0.08 * v)}
                    for e, v in zip(elements, content, strict=False)
                    if v > 0
                },
                "available": float(rng.uniform(50, 400)),
                "price": float(rng.uniform(1000, 1900)),
                "co2": 0.5,
            }
        )
    materials.append(
        {"id": "primary", "kind": "primary", "composition": {}, "price": 2500, "co2": 6.7}
    )
    for e in elements[:-1]:  # a master alloy per element keeps every product feasible
        materials.append(
            {
                "id": f"master_{e}",
                "kind": "master_alloy",
                "composition": {e: 20.0},
                "price": 5000,
                "co2": 8,
            }
        )
    products = []
    for p in range(n_products):
        target = rng.gamma(0.8, 0.15, n_elements - 1)
        limits = {
            e: [float(0.5 * t), float(1.5 * t + 0.05)]
            for e, t in zip(elements, target, strict=False)
        }
        products.append(
            {"id": f"alloy{p:02d}", "limits": limits, "demand": float(rng.uniform(100, 600))}
        )
    return BlendProblem.model_validate(
        {
            "critflow_blend": 1,
            "name": "generated",
            "elements": elements,
            "remainder": "Al",
            "materials": materials,
            "products": products,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrap", type=int, default=200)
    parser.add_argument("--elements", type=int, default=30)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    arrays = to_arrays(generate(args.scrap, args.elements, args.products, args.seed), SourceMap())
    n_vars = len(arrays.materials) * len(arrays.products)
    start = time.perf_counter()
    nominal = blend(arrays)
    t_nominal = time.perf_counter() - start
    start = time.perf_counter()
    robust = blend(arrays, confidence=0.95)
    t_robust = time.perf_counter() - start
    print(
        f"problem: {len(arrays.materials)} materials ({args.scrap} scrap classes), {args.elements} elements, "
        f"{args.products} products, {n_vars:,} variables"
    )
    print(f"least-cost blend   {t_nominal:7.2f} s   cost {nominal.objective:,.0f}   (target < 2 s)")
    print(
        f"robust blend (95 %) {t_robust:6.2f} s   cost {robust.objective:,.0f}   {robust.cuts} cutting planes   "
        f"cost of safety {robust.objective - nominal.objective:,.0f}   (target < 20 s)"
    )


if __name__ == "__main__":
    main()
