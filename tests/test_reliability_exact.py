"""Issue 22, "exact expected values instead of bounds": the pure measures on inputs small enough to compute by hand,
where tests elsewhere only assert a range (`-2 <= clsim <= 2`, `0 <= cka <= 1`, AP in (0, 1]). Each expected value is
derived in the comment beside it, not by the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hybridbatch.analysis.alignment import clsim, linear_cka, parallel_cosine
from hybridbatch.analysis.debias import estimate_lsar, projection_matrix, remove_subspace
from hybridbatch.evaluation.metrics import average_precision, mrr_at, ndcg_at, recall_at

# unit rows u0 = (1, 0), u1 = (0, 1), u2 = (1, 1)/sqrt2 against v0 = (1, 0), v1 = (0, 1), v2 = (-1, 0)
X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
Y = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]])


def test_parallel_cosine_and_clsim_by_hand():
    # parallel: cos(u0, v0) = 1, cos(u1, v1) = 1, cos(u2, v2) = -1/sqrt2  ->  (2 - 1/sqrt2) / 3
    assert parallel_cosine(X, Y) == pytest.approx((2 - 1 / math.sqrt(2)) / 3, abs=1e-12)
    # the 6 non-parallel cosines: u0.v1 = 0, u0.v2 = -1, u1.v0 = 0, u1.v2 = 0, u2.v0 = u2.v1 = 1/sqrt2
    # -> mean (sqrt2 - 1) / 6; CLSim = (2 - 1/sqrt2) / 3 - (sqrt2 - 1) / 6 = (5 - 2 sqrt2) / 6 = 0.36193
    assert clsim(X, Y) == pytest.approx((5 - 2 * math.sqrt(2)) / 6, abs=1e-12)
    assert clsim(X, X) == pytest.approx(1 - (2 * (0 + 2 / math.sqrt(2))) / 6, abs=1e-12)  # 1 - sqrt2 / 3


def test_linear_cka_by_hand():
    x = np.array([[1.0], [2.0], [3.0]])
    # centred x = (-1, 0, 1), y = (-1, 1, 0): (y.x)^2 / (|x|^2 |y|^2) = 1 / (2 * 2)
    assert linear_cka(x, np.array([[1.0], [3.0], [2.0]])) == pytest.approx(0.25, abs=1e-12)
    assert linear_cka(x, 5 * x + 7) == pytest.approx(1.0, abs=1e-12)  # scaling and shifting change nothing
    assert math.isnan(linear_cka(x, np.ones((3, 1))))  # a constant side has no variance to compare


def test_ranking_metrics_by_hand():
    ranks = np.array([[1, 3, 0], [2, 0, 0], [0, 0, 0]])  # 1-based ranks of each query's relevant items, 0 = absent
    # q0: hits at 1 and 3 -> AP (1/1 + 2/3) / 2 = 5/6; q1: hit at 2 -> 1/2; q2: no relevant item -> undefined
    ap = average_precision(ranks)
    assert ap[:2] == pytest.approx([5 / 6, 1 / 2], abs=1e-12) and math.isnan(ap[2])
    # AP@2: q0 counts only the hit at 1, over min(2 relevant, 2) -> 1/2
    assert average_precision(ranks, k=2)[:2] == pytest.approx([1 / 2, 1 / 2], abs=1e-12)
    assert recall_at(ranks, 2)[:2] == pytest.approx([1 / 2, 1.0], abs=1e-12)
    assert mrr_at(ranks, 10)[:2] == pytest.approx([1.0, 1 / 2], abs=1e-12)
    # nDCG@10 q0: (1/log2 2 + 1/log2 4) / (1/log2 2 + 1/log2 3) = 1.5 / 1.63093
    assert ndcg_at(ranks, 10)[0] == pytest.approx(1.5 / (1 + 1 / math.log2(3)), abs=1e-12)


def test_lsar_subspace_and_removal_by_hand():
    # language means a = (2, 0), b = (0, 3); their centre (1, 1.5); the one direction (M - mu): +-(2, -3) / sqrt13
    sub = estimate_lsar({"a": np.array([[1.0, 0.0], [3.0, 0.0]]), "b": np.array([[0.0, 2.0], [0.0, 4.0]])})
    u = np.array([2.0, -3.0]) / math.sqrt(13)
    assert sub.basis.shape == (2, 1)
    assert abs(float(sub.basis[:, 0] @ u)) == pytest.approx(1.0, abs=1e-12)
    # (1, 0) - ((1, 0).u) u = (1 - 4/13, 6/13) = (9/13, 6/13); normalised: (3, 2) / sqrt13
    got = remove_subspace(np.array([[1.0, 0.0]]), sub.basis, normalise=False)
    assert got[0] == pytest.approx([9 / 13, 6 / 13], abs=1e-6)
    assert remove_subspace(np.array([[1.0, 0.0]]), sub.basis)[0] == pytest.approx(np.array([3, 2]) / math.sqrt(13),
                                                                                   abs=1e-6)
    assert projection_matrix(sub.basis) == pytest.approx(np.array([[9, 6], [6, 4]]) / 13, abs=1e-12)
