"""Embeddings that cannot be scored are an error, not a score; embeddings that barely vary get a warning.

Why: a model that emits NaN, inf or all-zero vectors would otherwise be ranked by whatever the comparison rules do
with them (NaN compares false everywhere, so it used to rank every relevant item first), and a collapsed model
(every embedding nearly the same) produces near-ties everywhere. The first is refused naming the model and the
first offending text; the second is measured (`score_spread`) and flagged in the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hybridbatch.errors import ModelError, UsageError

# median over sampled queries of the std of one query's scores over the pool; a real encoder is far above this
# (e5-small on XQuAD-R: see docs/EVALUATION.md), a collapsed one is at 0
COLLAPSE_SPREAD = 1e-3
NORM_TOLERANCE = 1e-3


def bad_rows(emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows with a NaN or inf, rows with zero norm) of an embedding matrix."""
    emb = np.asarray(emb)
    nonfinite = ~np.isfinite(emb).all(axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        zero = ~nonfinite & (np.einsum("ij,ij->i", emb.astype(np.float64), emb.astype(np.float64)) == 0.0)
    return nonfinite, zero


def check_embeddings(emb: np.ndarray, texts: Sequence[str], *, model: str, what: str) -> None:
    """Refuse NaN / inf / zero-norm embeddings, naming the model and the first offending text."""
    nonfinite, zero = bad_rows(emb)
    for mask, problem in ((nonfinite, "a NaN or infinite"), (zero, "an all-zero (zero-norm)")):
        if mask.any():
            i = int(np.argmax(mask))
            text = texts[i] if i < len(texts) else "?"
            raise ModelError(
                f"model {model!r} produced {problem} embedding for {what} #{i} {text[:120]!r} "
                f"({int(mask.sum())} of {len(mask)} {what}s affected): the model's weights or outputs are broken "
                f"(NaN / zeroed weights, overflow in fp16?); refusing to score it")


def check_and_normalise(emb: dict[str, np.ndarray], expected_rows: dict[str, int], *, what: str,
                        texts: dict[str, Sequence[str]] | None = None) -> tuple[dict[str, np.ndarray], int]:
    """Embeddings given to the scorer: one float32 matrix per language with as many rows as the corpus has `what`s
    there and one common width; refused if not finite or zero-norm; rows not of unit norm are normalised (returned
    count), since every score is read as a cosine."""
    out: dict[str, np.ndarray] = {}
    renormalised = 0
    dims = set()
    for lang, n in expected_rows.items():
        if lang not in emb:
            raise UsageError(f"{what} embeddings: no entry for language {lang!r} (the corpus has {n} {what}s there)")
        x = np.asarray(emb[lang], dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != n:
            raise UsageError(f"{what} embeddings for {lang!r}: shape {tuple(x.shape)}, but the corpus has {n} "
                             f"{what}s there (expected ({n}, dim))")
        if n:
            dims.add(x.shape[1])
        nonfinite, zero = bad_rows(x)
        for mask, problem in ((nonfinite, "NaN or inf"), (zero, "zero norm")):
            if mask.any():
                i = int(np.argmax(mask))
                where = f" {texts[lang][i][:120]!r}" if texts else ""
                raise UsageError(f"{what} embeddings for {lang!r}: row {i}{where} has {problem} "
                                 f"({int(mask.sum())} rows); refusing to score")
        norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))
        off = np.abs(norms - 1.0) > NORM_TOLERANCE
        if off.any():
            x = (x / norms[:, None]).astype(np.float32)
            renormalised += int(off.sum())
        out[lang] = x
    if len(dims) > 1:
        raise UsageError(f"{what} embeddings have different widths across languages: {sorted(dims)}")
    return out, renormalised


def score_spread(queries: np.ndarray, pool: np.ndarray, n_queries: int = 256, seed: int = 0) -> dict[str, Any]:
    """How much the model's scores vary: median over a fixed sample of queries of the std of that query's scores
    over the pool, and the mean cosine of sampled pool pairs. Near-collapse when the spread is < COLLAPSE_SPREAD."""
    if not len(queries) or not len(pool):
        return {"score_spread": None, "near_collapse": False}
    rng = np.random.default_rng(seed)
    qi = np.sort(rng.choice(len(queries), min(n_queries, len(queries)), replace=False))
    s = queries[qi].astype(np.float64) @ pool.astype(np.float64).T
    spread = float(np.median(s.std(axis=1)))
    a = rng.integers(0, len(pool), 2048)
    b = rng.integers(0, len(pool), 2048)
    pair_cos = float(np.mean(np.einsum("ij,ij->i", pool[a].astype(np.float64), pool[b].astype(np.float64))))
    return {"score_spread": spread, "mean_pool_cosine": pair_cos, "near_collapse": spread < COLLAPSE_SPREAD,
            "collapse_threshold": COLLAPSE_SPREAD, "sampled_queries": int(len(qi))}
