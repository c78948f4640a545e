"""Post-hoc language debiasing: estimate a language subspace from unlabeled sentences per language and project it
out of every embedding, with no training (docs/DEBIAS.md has the formulas and the papers).

Two estimators, both pure numpy on `{language: (n_l, d) embeddings}`:

- **LSAR** (Xie et al., EMNLP 2022, "Discovering Low-rank Subspaces for Language-agnostic Multilingual
  Representations", arXiv 2401.05792): the top-r left singular vectors U_r of the centred matrix of per-language
  mean embeddings, M - mu 1^T. One subspace for every language, so the projection x -> (I - U_r U_r^T) x is a single
  linear map that a `Dense` module can carry: a debiased model is a plain sentence-transformers folder.
- **LIR** (Yang et al., EMNLP 2021, "A Simple and Effective Method To Eliminate the Self Language Bias in
  Multilingual Representations"): per language l, the top-r right singular vectors C_l of that language's own
  (uncentred) embedding matrix, removed from embeddings *of language l*. It needs the input's language at
  inference, so it exists here only at the embedding level (the rank sweep, where the language of each query and
  candidate is known), never as a model folder.

After either projection the embedding is re-normalised, so scores stay cosines. The third method, per-language
centring (subtract each language's mean embedding), is analysis.centring; `debias_model(method="centre")` writes it
as a folder.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridbatch.analysis.centring import append_centring, centring_info, identification_accuracy
from hybridbatch.data.languages import lang_from_path, unknown_lang
from hybridbatch.data.lookup import load_corpus
from hybridbatch.errors import DataError, Problem, UsageError
from hybridbatch.evaluation.cache import EmbeddingCache
from hybridbatch.evaluation.encode import encode_cached
from hybridbatch.evaluation.model_info import model_identity
from hybridbatch.models.loading import load_model
from hybridbatch.provenance import Timer, atomic_file, provenance, sha256_files, write_json
from hybridbatch.outputs import check_out_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEBIAS_JSON = "debias.json"
METHODS = ("lsar", "centre")  # what `debias_model` writes as a folder (LIR needs the input's language: sweep only)
SUBSPACE_NPZ = "debias_subspace.npz"

# ---- pure core -----------------------------------------------------------------------------------------------------


def _by_language(embeddings: Mapping[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """Languages (sorted) and their float64 (n_l, d) arrays; every language needs a row and one common d."""
    langs = sorted(embeddings)
    if len(langs) < 2:
        raise UsageError(f"a language subspace needs sentences in at least 2 languages, got {langs or 'none'}")
    arrays = [np.asarray(embeddings[lang], dtype=np.float64) for lang in langs]
    dims = {a.shape[1] for a in arrays if a.ndim == 2}
    for lang, a in zip(langs, arrays):
        if a.ndim != 2 or a.shape[0] == 0:
            raise UsageError(f"language {lang!r} has no sentences to estimate the language subspace from")
    if len(dims) != 1:
        raise UsageError(f"embeddings of different languages have different dimensions: {sorted(dims)}")
    return langs, arrays


def _fix_signs(U: np.ndarray) -> np.ndarray:
    """Each column's largest-magnitude entry made positive: singular vectors are defined up to sign, and a saved
    subspace should not depend on which sign LAPACK picked (the projection does not)."""
    if U.size == 0:
        return U
    idx = np.argmax(np.abs(U), axis=0)
    signs = np.sign(U[idx, np.arange(U.shape[1])])
    return U * np.where(signs == 0, 1.0, signs)


@dataclass
class LanguageSubspace:
    """LSAR's estimate. `basis[:, :r]` spans the rank-r language subspace (orthonormal columns, by decreasing
    singular value); `means` are the per-language mean embeddings it came from and `centre` their mean (mu)."""

    languages: list[str]
    means: np.ndarray  # (L, d)
    centre: np.ndarray  # (d,)
    basis: np.ndarray  # (d, k), k = min(L - 1, d)
    singular_values: np.ndarray  # (k,)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    @property
    def max_rank(self) -> int:
        """L - 1: the centred means span at most that many directions."""
        return int(self.basis.shape[1])

    def basis_for(self, rank: int) -> np.ndarray:
        check_rank(rank, len(self.languages), self.dim)
        return self.basis[:, :rank]

    def projection(self, rank: int) -> np.ndarray:
        """(d, d) matrix I - U_r U_r^T (float64)."""
        return projection_matrix(self.basis_for(rank))

    def save(self, path: Path | str) -> None:
        with atomic_file(path) as f:
            np.savez(f, languages=np.array(self.languages), means=self.means, centre=self.centre, basis=self.basis,
                     singular_values=self.singular_values,
                     counts=np.array([self.counts.get(lang, 0) for lang in self.languages], dtype=np.int64))

    @classmethod
    def load(cls, path: Path | str) -> LanguageSubspace:
        with np.load(path, allow_pickle=False) as z:
            langs = [str(x) for x in z["languages"]]
            return cls(langs, z["means"], z["centre"], z["basis"], z["singular_values"],
                       dict(zip(langs, map(int, z["counts"]))))


def check_rank(rank: int, n_languages: int, dim: int) -> None:
    """LSAR's rank: 0 <= rank < number of languages (the centred language means span at most L - 1 directions)
    and < the embedding dimension (removing everything leaves nothing to compare)."""
    if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool):
        raise UsageError(f"rank must be a whole number, not {rank!r}")
    if rank < 0:
        raise UsageError(f"rank must be >= 0, not {rank}")
    if rank >= n_languages:
        raise UsageError(f"rank {rank} is too large: with {n_languages} languages the language means span at most "
                         f"{n_languages - 1} directions (rank <= {n_languages - 1}); give sentences in more "
                         f"languages or a smaller rank")
    if rank >= dim:
        raise UsageError(f"rank {rank} must be smaller than the embedding dimension {dim}")


def estimate_lsar(embeddings: Mapping[str, np.ndarray]) -> LanguageSubspace:
    """LSAR: M = per-language means (L x d), mu = their mean, U S V^T = SVD of (M - mu)^T; keep all
    min(L - 1, d) left singular vectors so that any rank r is `basis[:, :r]` (the rank-r subspaces are nested)."""
    langs, arrays = _by_language(embeddings)
    means = np.stack([a.mean(axis=0) for a in arrays])
    centre = means.mean(axis=0)
    U, S, _ = np.linalg.svd((means - centre).T, full_matrices=False)
    k = min(len(langs) - 1, means.shape[1])
    return LanguageSubspace(langs, means, centre, _fix_signs(U[:, :k]), S[:k],
                            {lang: int(a.shape[0]) for lang, a in zip(langs, arrays)})


def estimate_lir(embeddings: Mapping[str, np.ndarray], rank: int) -> dict[str, np.ndarray]:
    """LIR: per language l, the top-`rank` right singular vectors of its own uncentred (n_l x d) embedding matrix
    (its principal directions, which Yang et al. find carry language identity): {lang: (d, rank)}."""
    langs, arrays = _by_language(embeddings)
    dim = arrays[0].shape[1]
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0 or rank >= dim:
        raise UsageError(f"LIR rank must be a whole number in [0, {dim - 1}], not {rank!r}")
    out = {}
    for lang, a in zip(langs, arrays):
        if rank > a.shape[0]:
            raise UsageError(f"LIR rank {rank} needs at least {rank} sentences in {lang!r}, got {a.shape[0]}")
        _, _, vt = np.linalg.svd(a, full_matrices=False)
        out[lang] = _fix_signs(vt[:rank].T)
    return out


def projection_matrix(basis: np.ndarray) -> np.ndarray:
    """I - U U^T for orthonormal columns U (d x r): the orthogonal projection onto the complement of span(U)."""
    U = np.asarray(basis, dtype=np.float64)
    return np.eye(U.shape[0]) - U @ U.T


def remove_subspace(X: np.ndarray, basis: np.ndarray, normalise: bool = True) -> np.ndarray:
    """Rows x -> (I - U U^T) x, then (by default) scaled to unit length; float64 arithmetic, float32 out.
    Computed as X - (X U) U^T: O(n d r) instead of forming the d x d matrix. A row that lies entirely in span(U)
    becomes zero and stays zero (it then scores 0 with everything)."""
    X64 = np.asarray(X, dtype=np.float64)
    U = np.asarray(basis, dtype=np.float64)
    out = X64 - (X64 @ U) @ U.T if U.size else X64.copy()
    if normalise:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.where(norms > 0, norms, 1.0)
    return out.astype(np.float32)


# ---- unlabeled text per language ------------------------------------------------------------------------------------


@dataclass
class TextSource:
    """Unlabeled sentences per language and where they came from (recorded in debias.json)."""

    sentences: dict[str, list[str]]
    checksum: str
    description: str
    files: list[str] = field(default_factory=list)
    articles: list[str] = field(default_factory=list)

    def capped(self, max_per_language: int | None) -> TextSource:
        """The first `max_per_language` sentences of each language (file order: deterministic)."""
        if max_per_language is None:
            return self
        if max_per_language < 1:
            raise UsageError(f"--max-per-language must be >= 1, not {max_per_language}")
        return TextSource({k: v[:max_per_language] for k, v in self.sentences.items()}, self.checksum,
                          f"{self.description}; first {max_per_language} per language", self.files, self.articles)


def _unique(texts: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(t for t in texts if t.strip()))


def training_sentences(data_dir: Path | str | None = None, dataset: str = "xquad-r") -> TextSource:
    """The candidate sentences of the *training* articles (`QACorpus.split`: the first 36 of XQuAD-R's 48), one
    list per language, duplicates dropped: never a sentence of the 12 held-out test articles' pools."""
    train = load_corpus(dataset, data_dir, split="train")
    sentences = {lang: _unique([c.text for c in train.candidates[lang]]) for lang in train.languages}
    return TextSource(sentences, train.checksum, f"{dataset} candidate sentences of the {len(train.articles)} "
                      f"training articles (QACorpus.split)", list(train.files), list(train.articles))


def read_text_files(paths: Sequence[Path | str]) -> TextSource:
    """One UTF-8 file per language, one sentence per line; the language comes from the file name as everywhere
    in the project (`de.txt`, `deu.txt`, `german.txt`, `xquad.de.txt`). Blank lines are skipped."""
    problems: list[Problem] = []
    sentences: dict[str, list[str]] = {}
    origin: dict[str, Path] = {}
    for p in map(Path, paths):
        lang = lang_from_path(p)
        if lang is None:
            problems.append(Problem(str(p), "file name", unknown_lang(p.stem)))
            continue
        if lang in origin:
            problems.append(Problem(str(p), "file name", f"language {lang!r} given twice (also {origin[lang]})"))
            continue
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            problems.append(Problem(str(p), "", "no such file"))
            continue
        except (IsADirectoryError, PermissionError) as e:
            problems.append(Problem(str(p), "", f"cannot read it ({type(e).__name__})"))
            continue
        except UnicodeDecodeError as e:
            problems.append(Problem(str(p), f"byte {e.start}", "not UTF-8 text"))
            continue
        texts = _unique([line.strip() for line in lines])
        if not texts:
            problems.append(Problem(str(p), "whole file", f"no sentences for language {lang!r} (the file is empty "
                                    "or blank); give at least one sentence per line"))
            continue
        origin[lang] = p
        sentences[lang] = texts
    if problems:
        raise DataError(problems)
    if len(sentences) < 2:
        raise UsageError(f"--texts needs one file per language for at least 2 languages, got "
                         f"{sorted(sentences) or 'none'}")
    files = sorted(origin.values())
    return TextSource(sentences, sha256_files(files), f"{len(files)} text files", [str(f) for f in files])


# ---- encoding and the debiased model ---------------------------------------------------------------------------------


def encode_sentences(model: SentenceTransformer, source: TextSource, *, kind: str = "passage", batch_size: int = 64,
                     cache: Any = None, identity: dict[str, Any] | None = None,
                     progress: Callable[[str, int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Each language's sentences encoded like the retrieval side they stand for (`kind` picks the model's prefix),
    L2-normalised, through the embedding cache when one is given."""
    out = {}
    for lang, texts in sorted(source.sentences.items()):
        cb = (lambda d, t, _s=f"encode {lang} ({len(texts)} sentences)": progress(_s, d, t)) if progress else None
        out[lang] = encode_cached(model, texts, kind, cache=cache, identity=identity,
                                  settings={"debias_source": source.description}, data_checksum=source.checksum,
                                  batch_size=batch_size, progress=cb)
    return out


def append_projection(model: SentenceTransformer, projection: np.ndarray) -> SentenceTransformer:
    """A copy of `model` with `Normalize` (if it does not end with one: the subspace was estimated on unit
    vectors), then `Dense(d, d, no bias, identity activation)` holding the projection, then `Normalize`. Only
    sentence-transformers' own modules: the folder loads with plain `SentenceTransformer(path)`."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    P = np.asarray(projection, dtype=np.float64)
    d = model.get_embedding_dimension()
    if P.shape != (d, d):
        raise UsageError(f"projection is {P.shape}, the model's embeddings have dimension {d}")
    out = copy.deepcopy(model)
    if type(out[-1]).__name__ != "Normalize":
        out.append(Normalize())
    # nn.Linear computes x W^T; P is symmetric, but transpose anyway so the code says what it means
    out.append(Dense(d, d, bias=False, activation_function=torch.nn.Identity(),
                     init_weight=torch.tensor(P.T, dtype=torch.float32)))
    out.append(Normalize())
    return out


@dataclass
class DebiasResult:
    """What `debias_model` wrote: the folder, the subspace, and the provenance block of debias.json."""

    out_dir: Path
    subspace: LanguageSubspace
    rank: int
    info: dict[str, Any]


def source_texts(texts: Sequence[Path | str] | None, data_dir: Path | str | None,
                 max_per_language: int | None = None) -> TextSource:
    """The user's text files when given, else the training-article sentences of XQuAD-R."""
    src = read_text_files(texts) if texts else training_sentences(data_dir)
    return src.capped(max_per_language)


def debias_model(model_name: str, rank: int | None, out_dir: Path | str, *,
                 texts: Sequence[Path | str] | None = None, data_dir: Path | str | None = None,
                 max_per_language: int | None = None, batch_size: int = 64, kind: str = "passage",
                 cache_dir: Path | str | None = None, max_seq_length: int | None = None,
                 progress: Callable[[str, int, int], None] | None = None, method: str = "lsar") -> DebiasResult:
    """Estimate LSAR's language subspace for `model_name` (any model folder, `embedded`, a hub id) from unlabeled
    sentences and write the debiased model to `out_dir`: a sentence-transformers folder (the model + Dense
    projection + Normalize) plus debias.json (provenance) and debias_subspace.npz (means, basis, singular values).
    `method="centre"`: per-language centring instead (analysis.centring; the model + LanguageCentring + Normalize;
    no rank)."""
    out = check_out_dir(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / DEBIAS_JSON).exists():
        raise UsageError(f"--out {out} is a non-empty folder that is not a debiased model; give a new folder")
    if method not in METHODS:
        raise UsageError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    timer = Timer()
    src = source_texts(texts, data_dir, max_per_language)
    lsar = method == "lsar"
    if lsar:
        check_rank(rank, len(src.sentences), rank + 1)  # the languages are known before any model is loaded
    with timer("load"):
        model = load_model(model_name, max_seq_length=max_seq_length)
    if lsar:
        check_rank(rank, len(src.sentences), model.get_embedding_dimension())  # before the slow part
    identity = model_identity(model, model_name)
    cache = EmbeddingCache(cache_dir) if cache_dir else None
    with timer("encode"):
        emb = encode_sentences(model, src, kind=kind, batch_size=batch_size, cache=cache, identity=identity,
                               progress=progress)
    with timer("estimate"):
        sub = estimate_lsar(emb)
    with timer("save"):
        debiased = (append_projection(model, sub.projection(rank)) if lsar
                    else append_centring(model, sub.languages, sub.means))
        out.mkdir(parents=True, exist_ok=True)
        debiased.save(str(out))
        sub.save(out / SUBSPACE_NPZ)
    info = debias_info(sub, rank if lsar else 0, src, identity, kind, timer.seconds)
    if not lsar:
        info |= {"rank": None, "variance_share_removed": None,
                 **centring_info(sub.languages, sub.means, identification_accuracy(emb, sub.languages, sub.means))}
    write_json(out / DEBIAS_JSON, {**info, "provenance": provenance(
        model=model_name, model_weights_sha256=identity["weights_sha256"],
        data={"source": src.description, "checksum": src.checksum, "files": src.files},
        settings={"method": method, "rank": rank if lsar else None, "kind": kind, "max_per_language": max_per_language,
                  "max_seq_length": model.max_seq_length},
        timings=timer.seconds)})
    return DebiasResult(out, sub, rank if lsar else 0, info)


def debias_info(sub: LanguageSubspace, rank: int, src: TextSource, identity: dict[str, Any], kind: str,
                seconds: Mapping[str, float]) -> dict[str, Any]:
    """The body of debias.json: what was removed and what it was estimated from."""
    total = float(np.sum(sub.singular_values ** 2))
    return {
        "method": "lsar",
        "formula": "x -> normalise((I - U_r U_r^T) x); U_r = top-r left singular vectors of (M - mu 1^T), "
                   "M = per-language mean embeddings (d x L), mu = mean of the columns of M",
        "base_model": identity.get("name"),
        "base_model_weights_sha256": identity.get("weights_sha256"),
        "rank": int(rank),
        "max_rank": sub.max_rank,
        "languages": sub.languages,
        "sentences_per_language": sub.counts,
        "encoded_as": kind,
        "data_source": src.description,
        "data_checksum": src.checksum,
        "texts_sha256": hashlib.sha256("\n".join(
            f"{lang}\t{t}" for lang in sorted(src.sentences) for t in src.sentences[lang]).encode()).hexdigest(),
        "singular_values": [float(s) for s in sub.singular_values],
        "variance_share_removed": float(np.sum(sub.singular_values[:rank] ** 2) / total) if total > 0 else 0.0,
        "modules_appended": ["Dense(in=d, out=d, bias=False, Identity) with weight I - U_r U_r^T", "Normalize"],
        "wall_time_s": float(sum(seconds.values())),
        "created_unix": time.time(),
    }
