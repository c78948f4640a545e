"""Measuring a model's alignment: encode each distinct text of the parallel sets once, measure every language pair
(`analysis.alignment`), and keep the result with its provenance in align.json. Progress is reported through a
callback, `progress(stage, done, total)`; the command line draws the bar (`cli.base.progress_bars`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hybridbatch.analysis.alignment import AlignResult, PairResult, difference, measure_pair
from hybridbatch.data.parallel import ALIGN_SOURCES, ParallelSet, load_sources
from hybridbatch.errors import UsageError
from hybridbatch.models.loading import load_model, prefixes
from hybridbatch.provenance import Progress, Timer, jsonable, provenance, write_json

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Loaded = Mapping[str, tuple[list[ParallelSet], str, list[str]]]  # what `data.parallel.load_sources` returns


class _Encoder:
    """Encodes each distinct (prefix kind, language, text) once per model and keeps the vectors in memory, so a
    question used in 10 language pairs is encoded once."""

    def __init__(self, model: SentenceTransformer, batch_size: int = 32) -> None:
        self.model = model
        self.batch_size = batch_size
        q, p = prefixes(model)
        self.prefix = {"query": q, "passage": p}
        self.cache: dict[tuple[str, str, str], np.ndarray] = {}

    def fill(self, wanted: Iterable[tuple[str, str, str]], progress: Progress | None, label: str) -> None:
        """Encode every key (kind, lang, text) not yet cached; `progress(f"encoding ({label})", done, total)`."""
        todo = list(dict.fromkeys(k for k in wanted if k not in self.cache))
        if not todo:
            return
        stage = f"encoding ({label})"
        if progress:
            progress(stage, 0, len(todo))
        step = self.batch_size * 4
        for start in range(0, len(todo), step):
            keys = todo[start : start + step]
            texts = [self.prefix[kind] + text for kind, _, text in keys]
            vecs = self.model.encode(texts, batch_size=self.batch_size, prompt="", convert_to_numpy=True,
                                     show_progress_bar=False)
            for key, vec in zip(keys, np.asarray(vecs, dtype=np.float32)):
                self.cache[key] = vec
            if progress:
                progress(stage, start + len(keys), len(todo))

    def matrix(self, kind: str, lang: str, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.cache[(kind, lang, t)] for t in texts])


def _resolve(model: SentenceTransformer | str | Path, model_name: str | None, device: str | None = "auto",
             ) -> tuple[SentenceTransformer, str]:
    if isinstance(model, (str, Path)):
        return load_model(str(model), device=device), model_name or str(model)
    card = getattr(model, "model_card_data", None)
    return model, model_name or str(getattr(card, "base_model", None) or type(model).__name__)


def align(
    model: SentenceTransformer | str | Path,
    *,
    data_dir: Path | str | None = None,
    sources: Sequence[str] = ALIGN_SOURCES,
    limit: int | None = None,
    batch_size: int = 32,
    progress: Progress | None = None,
    model_name: str | None = None,
    loaded: Loaded | None = None,
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


def align_models(models: Sequence[str], *, data_dir: Path | str | None, sources: Sequence[str] = ALIGN_SOURCES,
                 limit: int | None = None, batch_size: int = 32, progress: Progress | None = None,
                 log: Callable[[str], None] | None = None, split: str = "all", device: str | None = "auto",
                 ) -> list[AlignResult]:
    """One or two models (A, or A and B to compare) aligned on the same data, read once."""
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
    return results


def align_json(results: Sequence[AlignResult]) -> dict[str, Any]:
    """align.json: every number, provenance per model, and B - A with two models."""
    if not 1 <= len(results) <= 2:
        raise UsageError(f"alignment reports compare one or two models, got {len(results)}")
    labels = ["A", "B"][: len(results)]
    obj: dict[str, Any] = {
        "kind": "hybridbatch.align",
        "provenance": provenance(models={lab: r.model for lab, r in zip(labels, results)},
                                 settings=results[0].settings),
        "models": {lab: r.to_json() for lab, r in zip(labels, results)},
    }
    if len(results) == 2:
        obj["difference"] = {"of": "B - A", "sources": difference(results[0], results[1])}
    return obj


def write_align_json(results: Sequence[AlignResult], out_dir: Path | str) -> Path:
    """OUT/align.json (`align_json`); `report.alignment.write_align_report` adds align.md and the heatmaps."""
    return write_json(Path(out_dir) / "align.json", jsonable(align_json(results)))
