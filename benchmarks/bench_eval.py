"""Evaluation speed and memory.

(a) Full XQuAD-R shapes (13090 queries x 13014 candidates, dim 384) with random normalised embeddings: every LAReQA
    metric for every setting (11 mono + 110 cross + 11 multi) + bias + per-query scores; time split and peak memory.
(b) End to end (encode + score) against the obvious alternative: sentence-transformers' InformationRetrievalEvaluator
    run once per setting (each run re-encodes its queries and pool), on a subset of XQuAD-R, same model, same run.
(c) Scoring against a plain chunked torch implementation of the same metrics (one float64 matmul per chunk of 128
    queries against the union pool, strict counts per pool, ranks -> the same metric functions), on the same
    embeddings (the embedded model's full XQuAD-R embeddings from the embedding cache when present, else random),
    interleaved rounds in the same run; ours in every tie mode.

Prints a table and writes benchmarks/results/eval.json with provenance.
Usage: python benchmarks/bench_eval.py [--data-dir ../shared/data] [--articles 2] [--model tiny|embedded|PATH]
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_full(corpus, dim: int = 384, seed: int = 0) -> dict:
    from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings
    from hybridbatch.report.evaluation import write_eval

    rng = np.random.default_rng(seed)

    def rnd(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    q = {lang: rnd(len(corpus.questions[lang])) for lang in corpus.languages}
    c = {lang: rnd(len(corpus.candidates[lang])) for lang in corpus.languages}
    emb_mib = sum(v.nbytes for v in (*q.values(), *c.values())) / 2**20
    gc.collect()
    rss0 = rss_mib()
    t0 = time.perf_counter()
    r = evaluate_lareqa_embeddings(corpus, q, c, backend="numpy")
    wall = time.perf_counter() - t0
    rss1 = rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        write_eval(r, tmp)
        write_s = time.perf_counter() - t1
    # second run under tracemalloc for the peak of Python/NumPy allocations made by the evaluation itself
    tracemalloc.start()
    evaluate_lareqa_embeddings(corpus, q, c, backend="numpy")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "queries": r.counts["n_queries"], "candidates": r.counts["n_candidates"], "dim": dim,
        "settings_scored": r.counts["n_mono_settings"] + r.counts["n_cross_pairs"] + r.counts["n_multi_settings"],
        "per_query_rows": r.counts["rows_per_query_file"],
        "wall_s": wall, "score_s": r.timings["score_s"], "metric_s": r.timings["metric_s"], "write_s": write_s,
        "tracemalloc_peak_mib": peak / 2**20, "embeddings_mib": emb_mib,
        "process_maxrss_before_mib": rss0, "process_maxrss_after_mib": rss1,
    }


def torch_reference(corpus, q_emb, c_emb, chunk: int = 128) -> dict:
    """Plain chunked float64 scoring: mAP per setting (strict tie rule) the straightforward way."""
    import torch

    import hybridbatch.evaluation.metrics as M
    from hybridbatch.evaluation.lareqa import cell_means, macro_from_cells, relevant_matrix

    langs = corpus.languages
    sizes = [len(corpus.candidates[lang]) for lang in langs]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    bounds = {lang: int(starts[i]) for i, lang in enumerate(langs)}
    union = torch.from_numpy(np.concatenate([c_emb[lang] for lang in langs])).double()
    rows = {"qlang": [], "pool": [], "ap": []}
    for li, lang in enumerate(langs):
        rel = torch.from_numpy(relevant_matrix(corpus, lang, bounds))
        qs = torch.from_numpy(q_emb[lang]).double()
        for a in range(0, len(qs), chunk):
            s = qs[a : a + chunk] @ union.T
            r = rel[a : a + chunk]
            valid = r >= 0
            rs = s.gather(1, r.clamp(min=0))
            s.scatter_(1, r.clamp(min=0), float("-inf"))  # relevant items never count as non-relevant above
            counts = torch.zeros(r.shape[0], len(langs), r.shape[1], dtype=torch.int64)
            for j in range(r.shape[1]):
                above = s > rs[:, j : j + 1]
                for p in range(len(langs)):
                    counts[:, p, j] = above[:, starts[p] : starts[p + 1]].sum(1)
            counts, valid_np, rs_np = counts.numpy(), valid.numpy(), rs.numpy()
            for pj in range(len(langs)):
                ok = valid_np[:, pj]
                rows["qlang"].append(np.full(ok.sum(), li)); rows["pool"].append(np.full(ok.sum(), pj))
                rows["ap"].append(M.average_precision(counts[ok, pj, pj] + 1))
            ranks = M.ranks_from_counts(counts.sum(1), rs_np, valid_np)
            ok = valid_np.any(1)
            rows["qlang"].append(np.full(ok.sum(), li)); rows["pool"].append(np.full(ok.sum(), len(langs)))
            rows["ap"].append(M.average_precision(ranks[ok]))
    pq = {k: np.concatenate(v) for k, v in rows.items()}
    return macro_from_cells(cell_means(pq, len(langs), "ap"))


def real_or_random_embeddings(corpus, cache_dir: Path | None, max_length: int = 64):
    """The embedded model's XQuAD-R embeddings if the embedding cache holds all of them, else random ones."""
    from hybridbatch.data.records import passage_text
    from hybridbatch.evaluation.cache import EmbeddingCache
    from hybridbatch.evaluation.encode import encode_cached
    from hybridbatch.evaluation.model_info import model_identity

    if cache_dir and Path(cache_dir).is_dir():
        from hybridbatch.models.loading import load_model

        model = load_model("embedded", max_seq_length=max_length)
        ident = model_identity(model, "embedded")
        cache = EmbeddingCache(cache_dir)
        q, c = {}, {}
        try:
            for kind, items, dst in (("passage", corpus.candidates, c), ("query", corpus.questions, q)):
                for lang in corpus.languages:
                    texts = [passage_text(x, False) if kind == "passage" else x.text for x in items[lang]]
                    dst[lang] = encode_cached(model, texts, kind, cache=cache, identity=ident,
                                              settings={"context": False} if kind == "passage" else {},
                                              data_checksum=corpus.checksum, runner=_NoEncode())
            return q, c, f"embedded model, max length {max_length} (embedding cache)"
        except LookupError:
            pass
    rng = np.random.default_rng(0)

    def rnd(n: int) -> np.ndarray:
        x = rng.standard_normal((n, 384)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return ({lang: rnd(len(corpus.questions[lang])) for lang in corpus.languages},
            {lang: rnd(len(corpus.candidates[lang])) for lang in corpus.languages}, "random normalised, dim 384")


class _NoEncode:
    """A runner that refuses to encode: real embeddings are only taken from the cache."""

    key = "torch"

    def encode(self, *a, **k):
        raise LookupError("not cached")


def bench_vs_reference(corpus, q, c, what: str, rounds: int = 2) -> dict:
    from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings

    times: dict[str, list[float]] = {"torch_reference": [], "ours_expected": [], "ours_optimistic": []}
    results = {}
    for _ in range(rounds):
        t0 = time.perf_counter()
        results["torch_reference"] = torch_reference(corpus, q, c)
        times["torch_reference"].append(time.perf_counter() - t0)
        for mode in ("expected", "optimistic"):
            t0 = time.perf_counter()
            r = evaluate_lareqa_embeddings(corpus, q, c, ties=mode)
            times[f"ours_{mode}"].append(time.perf_counter() - t0)
            results[f"ours_{mode}"] = {k: r.summary[k]["map"] for k in ("mono", "cross", "multi")}
            results[f"ours_{mode}_split"] = r.timings
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"embeddings": what, "rounds": rounds, "times_s": times, "median_s": med,
            "ours_expected_vs_reference": med["torch_reference"] / med["ours_expected"],
            "map": {k: v for k, v in results.items() if not k.endswith("split")},
            "ours_split_s": {k: v for k, v in results.items() if k.endswith("split")},
            "max_abs_map_diff_optimistic_vs_reference": max(
                abs(results["ours_optimistic"][k] - results["torch_reference"][k]) for k in ("mono", "cross", "multi"))}


def load_bench_model(spec: str):
    from sentence_transformers import SentenceTransformer

    if spec == "tiny":
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import build_tiny_model

        path = build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-")))
        return SentenceTransformer(str(path), device="cpu"), "tiny random BERT (tests/conftest.py, hidden 32)"
    from hybridbatch.models.loading import load_model

    return load_model(spec), spec


def ir_evaluator_runs(model, corpus, batch_size: int) -> tuple[float, dict]:
    """One InformationRetrievalEvaluator per setting, as a user without this package would do it."""
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    from hybridbatch.data.records import passage_text
    from hybridbatch.models.loading import prefixes

    qp, pp = prefixes(model)
    langs = corpus.languages
    by_id = corpus.by_id()
    pools = {lang: {f"{lang}:{i}": passage_text(c, False) for i, c in enumerate(corpus.candidates[lang])}
             for lang in langs}
    scores: dict[str, float] = {}
    t0 = time.perf_counter()
    runs = 0
    for x in langs:
        queries = {q.qid: q.text for q in corpus.questions[x]}
        for y in [*langs, "multi"]:
            pool_langs = langs if y == "multi" else [y]
            pool = {k: v for lang in pool_langs for k, v in pools[lang].items()}
            rel = {q.qid: {f"{lang}:{by_id[q.qid][lang].answer}" for lang in pool_langs if lang in by_id[q.qid]}
                   for q in corpus.questions[x]}
            ev = InformationRetrievalEvaluator(
                queries, pool, rel, map_at_k=[len(pool)], ndcg_at_k=[10], mrr_at_k=[10], accuracy_at_k=[1, 10],
                precision_recall_at_k=[1, 10], batch_size=batch_size, write_csv=False, show_progress_bar=False,
                query_prompt=qp, corpus_prompt=pp, name=f"{x}-{y}")
            res = ev(model)
            runs += 1
            key = next(k for k in res if k.endswith(f"cosine_map@{len(pool)}"))
            scores[f"{x}->{y}"] = float(res[key])
    return time.perf_counter() - t0, {"runs": runs, "map": scores}


def bench_end_to_end(corpus, model, model_desc: str, batch_size: int = 64) -> dict:
    from hybridbatch.evaluation.lareqa import evaluate_lareqa

    t0 = time.perf_counter()
    r = evaluate_lareqa(model, corpus, batch_size=batch_size, backend="numpy")
    ours = time.perf_counter() - t0
    theirs, info = ir_evaluator_runs(model, corpus, batch_size)
    # sanity: the two agree on the Mono mAP cells (full-ranking AP; no ties with a real model)
    langs = corpus.languages
    mono_theirs = float(np.mean([info["map"][f"{x}->{x}"] for x in langs]))
    return {
        "model": model_desc, "languages": len(langs), "queries": r.counts["n_queries"],
        "candidates": r.counts["n_candidates"], "ir_evaluator_runs": info["runs"],
        "ours_s": ours, "ours_split_s": r.timings, "ir_evaluator_s": theirs, "speedup": theirs / ours,
        "mono_map_ours": r.summary["mono"]["map"], "mono_map_ir_evaluator": mono_theirs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--articles", type=int, default=2, help="articles of XQuAD-R for the end-to-end subset")
    ap.add_argument("--model", default="tiny", help="tiny (random test model), embedded, or a model folder")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval.json"))
    ap.add_argument("--cache-dir", default=None, help="embedding cache with the embedded model's XQuAD-R "
                    "embeddings (default: the user cache)")
    ap.add_argument("--only-reference", action="store_true", help="run part (c) only")
    args = ap.parse_args()
    logging.disable(logging.WARNING)

    from rich.console import Console
    from rich.table import Table

    from hybridbatch.data.lookup import lareqa_files
    from hybridbatch.data.qa import read_lareqa
    from hybridbatch.models.embedded import cache_root
    from hybridbatch.provenance import provenance, write_json

    corpus = read_lareqa(lareqa_files(Path(args.data_dir) / "xquad-r"), "xquad-r")
    q, c, what = real_or_random_embeddings(corpus, Path(args.cache_dir) if args.cache_dir else
                                           cache_root() / "embeddings")
    ref = bench_vs_reference(corpus, q, c, what)
    con0 = Console(width=150)
    con0.print(f"(c) scoring on {what}: torch reference {ref['median_s']['torch_reference']:.2f}s, ours expected "
               f"{ref['median_s']['ours_expected']:.2f}s, optimistic {ref['median_s']['ours_optimistic']:.2f}s; "
               f"max |mAP diff| optimistic vs reference {ref['max_abs_map_diff_optimistic_vs_reference']:.2e}")
    if args.only_reference:
        import json
        import os

        body = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
        body["scoring_vs_reference"] = ref  # parts (a) and (b) of an earlier run are kept as they were
        body["scoring_vs_reference_provenance"] = provenance(benchmark="bench_eval", part="c", cpus=os.cpu_count(),
                                                             load_avg=os.getloadavg())
        write_json(args.out, body)
        return
    full = bench_full(corpus)
    sub = corpus.subset(corpus.articles[: args.articles], name=f"xquad-r:first{args.articles}")
    model, desc = load_bench_model(args.model)
    e2e = bench_end_to_end(sub, model, desc)

    con = Console(width=150)
    t = Table(title="(a) all LAReQA metrics, full XQuAD-R shapes, random embeddings (after encoding)")
    for c in ("queries x candidates", "settings", "wall s", "score s", "metric s", "write s", "peak MiB (tracemalloc)",
              "maxrss MiB"):
        t.add_column(c, justify="right")
    t.add_row(f"{full['queries']} x {full['candidates']}", str(full["settings_scored"]), f"{full['wall_s']:.2f}",
              f"{full['score_s']:.2f}", f"{full['metric_s']:.2f}", f"{full['write_s']:.2f}",
              f"{full['tracemalloc_peak_mib']:.0f}", f"{full['process_maxrss_after_mib']:.0f}")
    con.print(t)
    t = Table(title=f"(b) end to end vs InformationRetrievalEvaluator per setting ({e2e['model']})")
    for c in ("langs", "queries", "candidates", "IR runs", "ours s", "IR evaluator s", "speedup", "Mono mAP ours / IR"):
        t.add_column(c, justify="right")
    t.add_row(str(e2e["languages"]), str(e2e["queries"]), str(e2e["candidates"]), str(e2e["ir_evaluator_runs"]),
              f"{e2e['ours_s']:.2f}", f"{e2e['ir_evaluator_s']:.2f}", f"{e2e['speedup']:.1f}x",
              f"{e2e['mono_map_ours']:.4f} / {e2e['mono_map_ir_evaluator']:.4f}")
    con.print(t)
    import os

    write_json(args.out, {"provenance": provenance(benchmark="bench_eval", cpus=os.cpu_count(),
                                                   load_avg=os.getloadavg()),
                          "full_xquad_r_random": full, "end_to_end": e2e, "scoring_vs_reference": ref})
    con.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
