"""Multi-criteria comparison, cross-checked with pymcdm (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from pymcdm.methods import TOPSIS, WSM
from pymcdm.normalizations import minmax_normalization, vector_normalization

from critflow.indicators.mcda import topsis, weight_sensitivity, weighted_sum

RNG = np.random.default_rng(7)
MATRICES = [RNG.uniform(0.1, 10, size=(n, m)) for n, m in ((3, 3), (5, 4), (8, 6))]


@pytest.mark.parametrize("matrix", MATRICES, ids=lambda m: f"{m.shape[0]}x{m.shape[1]}")
def test_topsis_and_weighted_sum_agree_with_pymcdm(matrix):
    weights = RNG.dirichlet(np.ones(matrix.shape[1]))
    benefit = RNG.integers(0, 2, matrix.shape[1]).astype(bool)
    types = np.where(benefit, 1, -1)
    np.testing.assert_allclose(
        topsis(matrix, weights, benefit),
        TOPSIS(vector_normalization)(matrix, weights, types),
        atol=1e-12,
    )
    np.testing.assert_allclose(
        weighted_sum(matrix, weights, benefit),
        WSM(minmax_normalization)(matrix, weights, types),
        atol=1e-12,
    )


def test_batched_weights_equal_one_by_one():
    matrix = MATRICES[1]
    benefit = np.array([True, False, True, False])
    batch = RNG.dirichlet(np.ones(4), size=20)
    together = topsis(matrix, batch, benefit)
    for i, w in enumerate(batch):
        np.testing.assert_allclose(together[i], topsis(matrix, w, benefit), atol=1e-14)


def test_weight_sensitivity_of_a_two_criterion_weighted_sum():
    # A: recovery 1.0, cost 10; B: recovery 0.0, cost 0 (min-max: A = (1, 0), B = (0, 1)).
    # score A = w1, score B = 1 - w1: A wins while w1 > 0.5.
    matrix = np.array([[1.0, 10.0], [0.0, 0.0]])
    benefit = np.array([True, False])
    ranges = weight_sensitivity("weighted_sum", matrix, np.array([0.7, 0.3]), benefit)
    assert ranges[0].low == pytest.approx(0.5, abs=2e-4) and ranges[0].high == 1.0
    assert ranges[1].low == 0.0 and ranges[1].high == pytest.approx(0.5, abs=2e-4)


def test_promethee_ii_agrees_with_pymcdm_and_a_hand_calculation():
    from pymcdm.methods import PROMETHEE_II

    from critflow.indicators.mcda import promethee_ii

    # hand: two alternatives, one benefit criterion, usual preference: a beats b → φ = (+1, −1)
    np.testing.assert_allclose(
        promethee_ii(np.array([[2.0], [1.0]]), np.array([1.0]), np.array([True])), [1, -1]
    )
    for matrix in MATRICES:
        weights = RNG.dirichlet(np.ones(matrix.shape[1]))
        benefit = RNG.integers(0, 2, matrix.shape[1]).astype(bool)
        p = matrix.std(axis=0)
        ours = promethee_ii(matrix, weights, benefit, preference=p)
        theirs = PROMETHEE_II("vshape", p=p)(matrix, weights, np.where(benefit, 1, -1))
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
        assert abs(ours.sum()) < 1e-12  # net flows sum to zero


def test_ahp_recovers_the_weights_of_a_consistent_matrix():
    from critflow.indicators.mcda import ahp

    # a perfectly consistent matrix a_ij = w_i / w_j has the eigenvector w, λmax = n, CR = 0
    w = np.array([0.5, 0.3, 0.15, 0.05])
    found = ahp(w[:, None] / w[None, :])
    assert found.weights == pytest.approx(w, abs=1e-12)
    assert found.lambda_max == pytest.approx(4.0, abs=1e-9) and abs(found.consistency_ratio) < 1e-9


def test_ahp_saaty_example():
    from critflow.indicators.mcda import ahp

    # Saaty's 3×3 example (1, 3, 5 / 1/3, 1, 3 / 1/5, 1/3, 1): weights ≈ 0.637, 0.258, 0.105,
    # λmax ≈ 3.039, CR ≈ 0.033 (RI(3) = 0.58); checked against power iteration below
    a = np.array([[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]])
    found = ahp(a)
    v = np.ones(3)
    for _ in range(200):
        v = a @ v
        v /= v.sum()
    assert found.weights == pytest.approx(v, abs=1e-12)
    assert found.weights.round(3).tolist() == [0.637, 0.258, 0.105]
    assert found.lambda_max == pytest.approx(3.0385, abs=5e-4)
    assert found.consistency_ratio == pytest.approx(0.033, abs=1e-3) and found.consistent


def test_ahp_criteria_file(tmp_path):
    from critflow.errors import CritflowError
    from critflow.indicators.compare import load_criteria

    path = tmp_path / "c.yaml"
    path.write_text(
        "criteria:\n"
        "  - {indicator: recycling_efficiency, direction: max}\n"
        "  - {indicator: waste_per_product, direction: min}\n"
        "pairwise: [[1, 3], [0.3333333, 1]]\n"
    )
    weights, found = load_criteria(path).weights()
    assert weights == pytest.approx([0.75, 0.25], abs=1e-6) and found.consistent
    path.write_text(path.read_text().replace("0.3333333", "0.5"))
    with pytest.raises(CritflowError, match="not reciprocal"):
        load_criteria(path)
