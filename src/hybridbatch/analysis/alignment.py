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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridbatch import data as corpus
from hybridbatch.errors import UsageError
from hybridbatch.provenance import Timer, provenance, sha256_files

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

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


# ---- parallel data -------------------------------------------------------------------------------------------------

SOURCES = ("xquad-r-questions", "xquad-r-answers", "tatoeba")
SPLITS = ("test", "train", "all")  # XQuAD-R / MLQA-R articles: the 12 held-out, the 36 trained on, or all
MEASURES = ("parallel_cosine", "clsim", "cka", "cka_debiased", "p_at_1")
MEASURE_TITLES = {
    "parallel_cosine": "parallel cosine", "clsim": "CLSim", "cka": "linear CKA",
    "cka_debiased": "debiased CKA", "p_at_1": "P@1 (translation retrieval)",
}
# Which prefix each source is encoded with (models.prefixes): questions are queries and answer sentences are
# passages, as in retrieval; Tatoeba is symmetric bitext matching, encoded as queries on both sides (E5's advice for
# symmetric tasks).
SOURCE_KIND = {"questions": "query", "answers": "passage", "tatoeba": "query"}
TATOEBA_FOLDER = "tatoeba-laser"
PIVOT = "en"


@dataclass
class ParallelSet:
    """Row-aligned texts for one language pair: texts_a[i] is parallel to texts_b[i]; kind picks the prefix."""

    source: str
    a: str
    b: str
    kind: str
    texts_a: list[str]
    texts_b: list[str]


def _unique_pairs(pairs: Iterable[tuple[str, str]], limit: int | None) -> tuple[list[str], list[str]]:
    """Drop repeated (text_a, text_b) pairs (several XQuAD questions share one answer sentence) and keep at most
    `limit` of the remaining in order."""
    seen: dict[tuple[str, str], None] = {}
    for p in pairs:
        seen.setdefault(p, None)
    kept = list(seen)[: limit if limit is not None else None]
    return [p[0] for p in kept], [p[1] for p in kept]


def _lareqa_sets(source: str, data_dir: Path | str | None, limit: int | None,
                 corpora: dict[str, corpus.QACorpus], split: str = "all") -> tuple[list[ParallelSet], str, list[str]]:
    """XQuAD-R (or any LAReQA dataset): per unordered language pair, the ids present in both languages, in file
    order; the first `limit` ids. Questions: the two copies of one question. Answers: the answer sentences of those
    copies (may repeat, and may differ in segmentation between languages; exact repeats are dropped). `split`:
    'test' / 'train' articles (`QACorpus.split`), or 'all'."""
    dataset, _, unit = source.rpartition("-")
    if dataset not in corpora:  # questions and answers share one read
        corpora[dataset] = corpus.load_corpus(dataset, data_dir, split=None if split == "all" else split)
    corpus_ = corpora[dataset]
    by_id = corpus_.by_id()
    langs = corpus_.languages
    sets = []
    for i, a in enumerate(langs):
        for b in langs[i + 1 :]:
            ids = [qid for qid, by_lang in by_id.items() if a in by_lang and b in by_lang]
            if limit is not None:
                ids = ids[:limit]
            if unit == "questions":
                pairs = ((by_id[q][a].text, by_id[q][b].text) for q in ids)
            else:
                ca, cb = corpus_.candidates[a], corpus_.candidates[b]
                pairs = ((ca[by_id[q][a].answer].text, cb[by_id[q][b].answer].text) for q in ids)
            ta, tb = _unique_pairs(pairs, None)
            sets.append(ParallelSet(source, a, b, SOURCE_KIND[unit], ta, tb))
    return sets, corpus_.checksum, list(corpus_.files)


def _tatoeba_sets(data_dir: Path | str | None, limit: int | None) -> tuple[list[ParallelSet], str, list[str]]:
    """Tatoeba: each language with its own English side (not multi-way parallel), first `limit` lines."""
    folder = corpus.dataset_dir(TATOEBA_FOLDER, data_dir)  # --data-dir, $HYBRIDBATCH_DATA, cache; UsageError if none
    data = corpus.read_tatoeba(folder)
    files = sorted(p for p in folder.glob("tatoeba.*-eng.*") if p.is_file())
    sets = []
    for lang, (xs, ens) in sorted(data.items()):
        ta, tb = _unique_pairs(zip(xs, ens), limit)
        sets.append(ParallelSet("tatoeba", lang, PIVOT, SOURCE_KIND["tatoeba"], ta, tb))
    return sets, sha256_files(files) if files else "", [str(p) for p in files]


def parallel_sets(source: str, data_dir: Path | str | None = None, limit: int | None = None,
                  corpora: dict[str, corpus.QACorpus] | None = None, split: str = "all",
                  ) -> tuple[list[ParallelSet], str, list[str]]:
    """(parallel sets per language pair, data checksum, files) for one source name; `corpora` caches reads.
    `split` picks the XQuAD-R / MLQA-R articles (Tatoeba has no split)."""
    if source == "tatoeba":
        return _tatoeba_sets(data_dir, limit)
    dataset, _, unit = source.rpartition("-")
    if unit in ("questions", "answers") and dataset in corpus.DATASETS:
        return _lareqa_sets(source, data_dir, limit, {} if corpora is None else corpora, split)
    raise UsageError(f"unknown alignment source {source!r}: choose from {', '.join(SOURCES)} "
                     f"(or mlqa-r-questions / mlqa-r-answers)")


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
        return {m: _nanmean([r.value(m) for r in rows]) for m in MEASURES}

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


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


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


# ---- encoding ------------------------------------------------------------------------------------------------------


class _Encoder:
    """Encodes each distinct (prefix kind, language, text) once per model and keeps the vectors in memory, so a
    question used in 10 language pairs is encoded once."""

    def __init__(self, model: SentenceTransformer, batch_size: int = 32) -> None:
        from hybridbatch.models.loading import prefixes

        self.model = model
        self.batch_size = batch_size
        q, p = prefixes(model)
        self.prefix = {"query": q, "passage": p}
        self.cache: dict[tuple[str, str, str], np.ndarray] = {}

    def fill(self, wanted: Iterable[tuple[str, str, str]], progress: bool, label: str) -> None:
        """Encode every key (kind, lang, text) not yet cached, with a rich progress bar."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        todo = list(dict.fromkeys(k for k in wanted if k not in self.cache))
        if not todo:
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True, disable=not progress) as bar:
            task = bar.add_task(f"encoding ({label})", total=len(todo))
            step = self.batch_size * 4
            for start in range(0, len(todo), step):
                keys = todo[start : start + step]
                texts = [self.prefix[kind] + text for kind, _, text in keys]
                vecs = self.model.encode(texts, batch_size=self.batch_size, prompt="", convert_to_numpy=True,
                                         show_progress_bar=False)
                for key, vec in zip(keys, np.asarray(vecs, dtype=np.float32)):
                    self.cache[key] = vec
                bar.advance(task, len(keys))

    def matrix(self, kind: str, lang: str, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.cache[(kind, lang, t)] for t in texts])


# ---- align ---------------------------------------------------------------------------------------------------------


def _resolve(model: SentenceTransformer | str | Path, model_name: str | None, device: str | None = "auto",
             ) -> tuple[SentenceTransformer, str]:
    if isinstance(model, (str, Path)):
        from hybridbatch.models.loading import load_model

        return load_model(str(model), device=device), model_name or str(model)
    card = getattr(model, "model_card_data", None)
    return model, model_name or str(getattr(card, "base_model", None) or type(model).__name__)


def load_sources(sources: Sequence[str], data_dir: Path | str | None, limit: int | None, split: str = "all",
                 ) -> dict[str, tuple[list[ParallelSet], str, list[str]]]:
    """Read and check every source before any model is loaded, so a missing folder fails in a second. `split`:
    the XQuAD-R / MLQA-R articles to take ('test' keeps a before/after comparison out of the training articles)."""
    if not sources:
        raise UsageError("no alignment sources given: choose from " + ", ".join(SOURCES))
    if limit is not None and limit < 4:
        raise UsageError(f"--limit must be at least 4 items per language (debiased CKA needs n >= 4), got {limit}")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise UsageError(f"data folder {data_dir} does not exist: pass --data-dir DIR, a folder holding xquad-r/ and "
                         f"tatoeba-laser/ (or set $HYBRIDBATCH_DATA), or run `hybridbatch data download`")
    if split not in SPLITS:
        raise UsageError(f"--split must be one of {', '.join(SPLITS)}, not {split!r}")
    corpora: dict[str, corpus.QACorpus] = {}
    return {src: parallel_sets(src, data_dir, limit, corpora, split) for src in dict.fromkeys(sources)}


def align(
    model: SentenceTransformer | str | Path,
    *,
    data_dir: Path | str | None = None,
    sources: Sequence[str] = SOURCES,
    limit: int | None = None,
    batch_size: int = 32,
    progress: bool = True,
    model_name: str | None = None,
    loaded: Mapping[str, tuple[list[ParallelSet], str, list[str]]] | None = None,
    split: str = "all",
    device: str | None = "auto",
) -> AlignResult:
    """Alignment of `model` on each source: per language pair (XQuAD-R: all 55 unordered pairs of its 11 languages,
    P@1 in both directions; Tatoeba: each language with English) parallel cosine, CLSim, CKA, debiased CKA and
    P@1, plus macro means. `limit` keeps the first N items per language pair. Embeddings are the model's output
    (normalised for E5-style models). `loaded` reuses `load_sources` output (two models, one read)."""
    t0 = time.perf_counter()
    timer = Timer()
    with timer("data"):
        data = dict(loaded) if loaded is not None else load_sources(sources, data_dir, limit, split)
    with timer("load_model"):
        st_model, name = _resolve(model, model_name, device)
    enc = _Encoder(st_model, batch_size)
    pairs: dict[str, list[PairResult]] = {}
    for src, (sets, _, _) in data.items():
        with timer("encode"):
            enc.fill(((s.kind, lang, t) for s in sets for lang, texts in ((s.a, s.texts_a), (s.b, s.texts_b))
                      for t in texts), progress, f"{name}: {src}")
        with timer("measure"):
            rows = []
            for s in sets:
                if not s.texts_a:
                    continue
                X, Y = enc.matrix(s.kind, s.a, s.texts_a), enc.matrix(s.kind, s.b, s.texts_b)
                rows.append(measure_pair(X, Y, s.a, s.b, s.texts_a, s.texts_b))
            pairs[src] = rows
    settings = {"sources": list(data), "limit": limit, "split": split, "batch_size": batch_size,
                "encoding": {src: sorted({s.kind for s in data[src][0]}) for src in data},
                "prefixes": enc.prefix}
    prov = provenance(
        model=name,
        data_dir=str(data_dir) if data_dir is not None else None,
        data={src: {"checksum": checksum, "files": files} for src, (_, checksum, files) in data.items()},
        settings=settings,
        seconds={**timer.seconds, "total": time.perf_counter() - t0},
    )
    return AlignResult(name, pairs, settings, prov)


def run_align(models: Sequence[str], *, data_dir: Path | str | None, out_dir: Path | str,
              sources: Sequence[str] = SOURCES, limit: int | None = None, batch_size: int = 32,
              progress: bool = True, log: Callable[[str], None] | None = None, split: str = "all",
              device: str | None = "auto") -> dict[str, Path]:
    """What `hybridbatch align` does: read the data once, align each model (one or two), write the report."""
    if not 1 <= len(models) <= 2:
        raise UsageError(f"pass one or two --model options (A, or A and B to compare), got {len(models)}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    data = load_sources(sources, data_dir, limit, split)
    results = []
    for name in models:
        if log:
            log(f"aligning {name} on {', '.join(data)}")
        results.append(align(name, data_dir=data_dir, sources=list(data), limit=limit, batch_size=batch_size,
                             progress=progress, loaded=data, split=split, device=device))
    from hybridbatch.analysis.alignment_report import write_align

    return write_align(results, out_dir)
