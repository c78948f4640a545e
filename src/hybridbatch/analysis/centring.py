"""Per-language centring: subtract each language's mean embedding, a post-hoc method beside LSAR and LIR
(docs/DEBIAS.md).

With mu_l the mean of language l's unit-norm embeddings of unlabeled sentences (text disjoint from the test set:
by default the candidate sentences of XQuAD-R's training articles, as for LSAR):

    x -> normalise(x - mu_{l(x)})

LSAR removes the directions the language means differ in (a projection, the same for every input); centring removes
each language's own offset, common part included (mu_l = (mu_l - mu) + mu, mu the mean of the language means), so
it is translation-like rather than a projection. It is the per-language form of the offset Shift removes at indexing
time (Jang et al. 2026, arXiv 2606.18801: a relative language vector estimated on parallel pairs, subtracted from
document embeddings); ours needs no parallel text. `l(x)` is the input's language where it is known
(`centre_embeddings`, the sweep's `centre` row), or the language of the nearest mean (`nearest_language`, the
`centre-id` row and what a saved folder computes: models.centring.LanguageCentring).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hybridbatch.errors import UsageError

__all__ = ["append_centring", "centre_corpus", "centre_embeddings", "centring_info", "identification_accuracy",
           "nearest_language"]


def centre_embeddings(X: np.ndarray, mean: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Rows x -> x - mean (one `(d,)` mean for every row, or `(n, d)`: one per row), then (by default) unit length;
    float64 arithmetic, float32 out. A row equal to its mean becomes zero and stays zero."""
    m = np.asarray(mean, dtype=np.float64)
    out = np.asarray(X, dtype=np.float64) - (m[None, :] if m.ndim == 1 else m)
    if normalise:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
    return out.astype(np.float32)


def nearest_language(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Index of the nearest language mean in cosine for each row: argmax_l <x, mu_l / |mu_l|> (the saved module's
    language identification)."""
    m = np.asarray(means, dtype=np.float64)
    unit = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
    return np.argmax(np.asarray(X, dtype=np.float64) @ unit.T, axis=1)


def centre_corpus(emb: Mapping[str, np.ndarray], languages: Sequence[str], means: np.ndarray,
                  identify: bool = False) -> dict[str, np.ndarray]:
    """Centre every language's embeddings: with its own mean (`identify=False`; a language without a mean is left
    as it is), or with the mean of each row's nearest language (`identify=True`, as a saved folder does)."""
    index = {lang: i for i, lang in enumerate(languages)}
    out = {}
    for lang, X in emb.items():
        X = np.asarray(X, dtype=np.float32)
        if identify:
            out[lang] = centre_embeddings(X, np.asarray(means, dtype=np.float64)[nearest_language(X, means)])
        else:
            out[lang] = centre_embeddings(X, means[index[lang]]) if lang in index else X
    return out


def identification_accuracy(emb: Mapping[str, np.ndarray], languages: Sequence[str], means: np.ndarray
                            ) -> dict[str, float]:
    """Per language, the share of its sentences whose nearest mean is their own language's (and 'all': over every
    sentence): how often a saved folder subtracts the right mean."""
    out, hits, total = {}, 0, 0
    for i, lang in enumerate(languages):
        if lang not in emb or len(emb[lang]) == 0:
            continue
        ok = nearest_language(emb[lang], means) == i
        out[lang] = float(ok.mean())
        hits, total = hits + int(ok.sum()), total + len(ok)
    out["all"] = hits / total if total else float("nan")
    return out


def append_centring(model: Any, languages: Sequence[str], means: np.ndarray) -> Any:
    """A copy of `model` with `Normalize` (if it does not end with one: the means are of unit vectors), then
    `LanguageCentring` (models.centring), then `Normalize`."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Normalize

    from hybridbatch.models.centring import LanguageCentring

    m = np.asarray(means, dtype=np.float64)
    d = model.get_embedding_dimension()
    if m.shape != (len(languages), d):
        raise UsageError(f"language means are {m.shape}, expected ({len(languages)}, {d}) for the model's "
                         f"{d}-dimensional embeddings")
    out = copy.deepcopy(model)
    if type(out[-1]).__name__ != "Normalize":
        out.append(Normalize())
    out.append(LanguageCentring(list(languages), d, torch.tensor(m, dtype=torch.float32)))
    out.append(Normalize())
    return out


def centring_info(languages: Sequence[str], means: np.ndarray, accuracy: dict[str, float]) -> dict[str, Any]:
    """The method-specific part of debias.json for centring."""
    m = np.asarray(means, dtype=np.float64)
    return {
        "method": "centre",
        "formula": "x -> normalise(x - mu_l), mu_l = mean unit-norm embedding of language l's sentences; l = the "
                   "language whose mean is nearest in cosine (the saved module); with known languages, "
                   "analysis.centring.centre_embeddings",
        "mean_norms": {lang: float(np.linalg.norm(m[i])) for i, lang in enumerate(languages)},
        "language_id_accuracy": accuracy,
        "modules_appended": ["LanguageCentring (hybridbatch.models.centring; loads with trust_remote_code=True, "
                             "which hybridbatch's load_model passes for this module only)", "Normalize"],
    }
