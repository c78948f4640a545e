"""How well a multilingual encoder aligns languages: parallel cosine, CLSim, linear CKA (plain and debiased) and
translation retrieval P@1, per language pair, on XQuAD-R (parallel questions / answer sentences) and Tatoeba (X-en).

The measures are pure numpy functions on two row-aligned matrices X, Y (row i of X is parallel to row i of Y). None
of them builds an n x n matrix: cosine means use sums of unit vectors, CKA (both forms) uses the d x e feature-space
products, retrieval scores query chunks. So n = 13k rows costs a few MB, not 1.4 GB per Gram matrix.

Definitions (also in docs/ALIGNMENT.md):
- parallel cosine = mean_i cos(x_i, y_i)
- CLSim            = parallel cosine - mean_{i != j} cos(x_i, y_j)   (parallel minus non-parallel pairs)
- linear CKA       = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), X and Y column-centred (Kornblith et al. 2019)
- debiased CKA     = the same ratio with the unbiased HSIC estimator of Song et al. (2012) in place of the biased
                     one (Nguyen et al. 2021; Murphy et al. 2024)
- P@1 X->Y         = share of X rows whose nearest Y row (cosine) is a translation, ties counted as misses.

Here: the measures, the per-pair and per-model result types and B - A between two models. The parallel data is read
by `data.parallel`, a model is encoded and measured by `analysis.alignment_run.align`, and the Markdown tables and
heatmaps are drawn by `report.alignment`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hybridbatch.evaluation.metrics import nanmean

MEASURES = ("parallel_cosine", "clsim", "cka", "cka_debiased", "p_at_1")
MEASURE_TITLES = {
    "parallel_cosine": "parallel cosine", "clsim": "CLSim", "cka": "linear CKA",
    "cka_debiased": "debiased CKA", "p_at_1": "P@1 (translation retrieval)",
}


# ---- pure measures -------------------------------------------------------------------------------------------------


def _pair(X: np.ndarray, Y: np.ndarray, min_rows: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 2-D arrays with the same number of rows (the measures compare row i with row i)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if X.ndim != 2 or Y.ndim != 2:
        raise ValueError(f"expected two 2-D arrays (items x features), got shapes {X.shape} and {Y.shape}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same rows (parallel items): {X.shape[0]} != {Y.shape[0]}")
    if X.shape[0] < min_rows:
        raise ValueError(f"need at least {min_rows} parallel rows, got {X.shape[0]}")
    return X, Y


def _unit(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (cosine 0 with everything) instead of dividing by 0."""
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def parallel_cosine(X: np.ndarray, Y: np.ndarray) -> float:
    """Mean cosine of aligned rows, mean_i cos(x_i, y_i). On its own it is inflated by anisotropy (all embeddings
    of a model share a direction), which is why `clsim` subtracts the non-parallel baseline."""
    X, Y = _pair(X, Y)
    return float(np.mean(np.sum(_unit(X) * _unit(Y), axis=1)))


def clsim(X: np.ndarray, Y: np.ndarray) -> float:
    """CLSim = parallel cosine - mean cosine of the non-parallel pairs (x_i, y_j), i != j, over all n(n-1) ordered
    pairs. 0 means translations are no closer than random pairs; the anisotropic baseline cancels out.
    Closed form: sum_{i,j} cos(x_i, y_j) = (sum_i u_i) . (sum_j v_j) for unit rows u, v, so no n x n matrix."""
    X, Y = _pair(X, Y, min_rows=2)
    U, V = _unit(X), _unit(Y)
    n = U.shape[0]
    diag = np.sum(U * V, axis=1).sum()
    total = float(U.sum(axis=0) @ V.sum(axis=0))
    return float(diag / n - (total - diag) / (n * (n - 1)))


def _centre(X: np.ndarray) -> np.ndarray:
    return X - X.mean(axis=0, keepdims=True)


def linear_cka(X: np.ndarray, Y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) in feature space: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) on
    column-centred X, Y. Invariant to orthogonal transforms and isotropic scaling of either side, so it compares the
    *shape* of the two spaces. NaN when one side is constant (no variance to compare)."""
    X, Y = _pair(X, Y, min_rows=2)
    X, Y = _centre(X), _centre(Y)
    num = np.linalg.norm(Y.T @ X) ** 2
    den = np.linalg.norm(X.T @ X) * np.linalg.norm(Y.T @ Y)
    return float(num / den) if den > 0 else math.nan


def _hsic_unbiased(X: np.ndarray, Y: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC with linear kernels K = XX^T, L = YY^T, without forming K or L:
        HSIC_1 = [tr(K~L~) + (1'K~1)(1'L~1)/((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n(n-3)),
    K~ = K with a zeroed diagonal. With a = diag K, b = diag L, s = X^T 1, t = Y^T 1:
        tr(K~L~) = ||X^T Y||_F^2 - a.b,  1'K~1 = s.s - sum a,  K~1 = X s - a."""
    n = X.shape[0]
    a = np.einsum("ij,ij->i", X, X)
    b = np.einsum("ij,ij->i", Y, Y)
    s, t = X.sum(axis=0), Y.sum(axis=0)
    trace = np.linalg.norm(X.T @ Y) ** 2 - a @ b
    k_sum, l_sum = s @ s - a.sum(), t @ t - b.sum()
    k_row, l_row = X @ s - a, Y @ t - b
    return float((trace + k_sum * l_sum / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (k_row @ l_row)) / (n * (n - 3)))


def linear_cka_debiased(X: np.ndarray, Y: np.ndarray) -> float:
    """Debiased linear CKA: the CKA ratio built from the unbiased HSIC estimator (Song et al. 2012), as advocated by
    Nguyen et al. (2021) and Murphy et al. (2024). Plain CKA is biased upwards when n is not much larger than the
    dimension (two independent random matrices get CKA near d/(n+d)); the debiased one is ~0 for them. Can be
    slightly negative; NaN when n < 4 or an estimated self-HSIC is not positive (too few items)."""
    X, Y = _pair(X, Y, min_rows=1)
    if X.shape[0] < 4:
        return math.nan
    X, Y = _centre(X), _centre(Y)  # the estimator is translation invariant; centring avoids cancellation
    xy, xx, yy = _hsic_unbiased(X, Y), _hsic_unbiased(X, X), _hsic_unbiased(Y, Y)
    return float(xy / math.sqrt(xx * yy)) if xx > 0 and yy > 0 else math.nan


def _labels(labels: Sequence[Any] | np.ndarray | None, n: int) -> np.ndarray:
    if labels is None:
        return np.arange(n)
    lab = np.asarray(labels)
    if lab.shape != (n,):
        raise ValueError(f"labels must have one entry per row ({n}), got shape {lab.shape}")
    return np.unique(lab, return_inverse=True)[1]


def _p_at_1_one_way(Q: np.ndarray, C: np.ndarray, q_lab: np.ndarray, c_lab: np.ndarray, chunk: int) -> float:
    """Queries Q against candidates C (unit rows). Row j is a correct answer for query row i when it shares i's text
    on either side (same query text or same candidate text): this accepts duplicate candidates and one-to-many
    parallel data. Ties between a correct and a wrong candidate count as misses (strict rule)."""
    n = Q.shape[0]
    hits = np.empty(n, dtype=bool)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        S = Q[start:stop] @ C.T
        gold = (q_lab[None, :] == q_lab[start:stop, None]) | (c_lab[None, :] == c_lab[start:stop, None])
        best_gold = np.where(gold, S, -np.inf).max(axis=1)
        best_other = np.where(gold, -np.inf, S).max(axis=1)
        hits[start:stop] = best_gold > best_other
    # one vote per distinct query text: duplicate query rows share embedding and answer set
    _, first = np.unique(q_lab, return_index=True)
    return float(hits[first].mean())


def translation_accuracy(
    X: np.ndarray,
    Y: np.ndarray,
    x_labels: Sequence[Any] | np.ndarray | None = None,
    y_labels: Sequence[Any] | np.ndarray | None = None,
    chunk: int = 1024,
) -> tuple[float, float]:
    """(P@1 X->Y, P@1 Y->X) by cosine nearest neighbour, as in Tatoeba evaluations. Optional labels mark rows with
    the same text (e.g. one answer sentence paired with two sentences in the other language): any row that shares
    the query's text on either side is a correct answer, and each distinct query text counts once. Scores are
    computed `chunk` queries at a time (chunk x n memory)."""
    X, Y = _pair(X, Y)
    n = X.shape[0]
    xl, yl = _labels(x_labels, n), _labels(y_labels, n)
    U, V = _unit(X), _unit(Y)
    return _p_at_1_one_way(U, V, xl, yl, chunk), _p_at_1_one_way(V, U, yl, xl, chunk)


# ---- results -------------------------------------------------------------------------------------------------------


@dataclass
class PairResult:
    """All measures for one language pair of one source; p_at_1_ab is a->b (a's texts as queries)."""

    a: str
    b: str
    n: int
    parallel_cosine: float
    clsim: float
    cka: float
    cka_debiased: float
    p_at_1_ab: float
    p_at_1_ba: float

    @property
    def p_at_1(self) -> float:
        """Both directions averaged (= the mean over ordered pairs when macro-averaged)."""
        return (self.p_at_1_ab + self.p_at_1_ba) / 2

    def value(self, measure: str) -> float:
        return float(getattr(self, measure))


@dataclass
class AlignResult:
    """One model's alignment on each source: per-pair results and macro means (mean over pairs)."""

    model: str
    pairs: dict[str, list[PairResult]]
    settings: dict[str, Any]
    provenance: dict[str, Any] = field(default_factory=dict)

    def macro(self, source: str) -> dict[str, float]:
        rows = self.pairs[source]
        return {m: nanmean([r.value(m) for r in rows]) for m in MEASURES}

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "provenance": self.provenance,
            "settings": self.settings,
            "sources": {
                src: {
                    "languages": sorted({r.a for r in rows} | {r.b for r in rows}),
                    "macro": self.macro(src),
                    "pairs": [{**asdict(r), "p_at_1": r.p_at_1} for r in rows],
                }
                for src, rows in self.pairs.items()
            },
        }


def measure_pair(X: np.ndarray, Y: np.ndarray, a: str = "a", b: str = "b",
                 x_labels: Sequence[Any] | None = None, y_labels: Sequence[Any] | None = None) -> PairResult:
    """Every measure for one row-aligned pair of embedding matrices."""
    n = X.shape[0]
    p_ab, p_ba = translation_accuracy(X, Y, x_labels, y_labels)
    return PairResult(
        a, b, n,
        parallel_cosine=parallel_cosine(X, Y),
        clsim=clsim(X, Y) if n >= 2 else math.nan,
        cka=linear_cka(X, Y) if n >= 2 else math.nan,
        cka_debiased=linear_cka_debiased(X, Y),
        p_at_1_ab=p_ab,
        p_at_1_ba=p_ba,
    )


def difference(a: AlignResult, b: AlignResult) -> dict[str, Any]:
    """B - A per source, pair and measure (e.g. after minus before fine-tuning), over the pairs both runs have."""
    out: dict[str, Any] = {}
    for src in (s for s in a.pairs if s in b.pairs):
        rows_b = {(r.a, r.b): r for r in b.pairs[src]}
        diffs = []
        for ra in a.pairs[src]:
            rb = rows_b.get((ra.a, ra.b))
            if rb is not None:
                d = {"a": ra.a, "b": ra.b, "n_a": ra.n, "n_b": rb.n}
                d.update({m: rb.value(m) - ra.value(m) for m in (*MEASURES, "p_at_1_ab", "p_at_1_ba")})
                diffs.append(d)
        ma, mb = a.macro(src), b.macro(src)
        out[src] = {"macro": {m: mb[m] - ma[m] for m in MEASURES}, "pairs": diffs}
    return out
