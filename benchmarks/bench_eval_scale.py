"""Evaluation resource bounds as the candidate pool grows: memory stays within the stated bound, time grows linearly.

Setup: XQuAD-R's real shape (11 languages, the real per-language pool sizes, 13014 candidates, the real relevant
structure: 11 relevant copies per query), the pool grown to 1x, 4x and 16x by appending random normalised candidates
(non-relevant) to every language's pool. Queries: a fixed subset, the same question ids in all 11 languages
(default 96 ids = 1056 queries of the 13090), so 16x fits the time budget on 2 cores; the per-query cost is reported
and the full 13090-query time extrapolated from it (scoring cost is linear in the number of queries).
Embeddings (dim 384) are "planted": each question id has a random topic vector, its questions and its relevant
candidates are the topic plus noise, everything else is random, which gives a mediocre model (Mono mAP ~0.3-0.5)
whose range-search results on FAISS are realistic; `--worst` makes the queries random (FAISS's worst case).

Each (pool scale, backend) runs in a fresh subprocess so that its peak RSS is its own. Measured inside
`evaluate_lareqa_embeddings`: wall time (untraced run), the peak of traced Python/NumPy allocations (tracemalloc, a
second run) and the peak RSS increase (VmHWM reset through /proc/self/clear_refs; FAISS's C++ allocations only
show here). Checked against the bound stated in docs/EVALUATION.md ("Resource bounds"):

    traced peak  <= union copy of the pool (N d 4 B) + one query block (block_mib) + one exact re-scoring step
                    (retrieval.exact_mib: 9 MiB at d 384) + outputs + 16 MiB
    RSS increase <= the same + FAISS's copy of the pool (N d 4 B, faiss only) + 64 MiB (allocator, BLAS buffers)

where outputs = per-query rows (queries x (languages + 1) x 62 B) + rank counts (queries_per_language x languages x
11 relevant x 4 B) + exact scores (queries x 11 x 8 B). Prints a table and writes benchmarks/results/eval_scale.json
with provenance. Default run: ~4 min on 2 shared cores (FAISS: RSS only unless --traced-faiss).

Usage: python benchmarks/bench_eval_scale.py [--data-dir ../shared/data] [--scales 1,4,16] [--ids 96]
       [--backends numpy,faiss] [--block-mib 64] [--worst]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DIM = 384
MIB = 2**20
PER_QUERY_ROW_BYTES = 62  # qid 4 + qlang 2 + pool 2 + n_relevant 2 + first_rank 4 + 6 float64 metrics (48)
TRACED_SLACK_MIB = 16
RSS_SLACK_MIB = 64


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def build(data_dir: Path, scale: int, n_ids: int, worst: bool, seed: int = 0):
    """(corpus with the query subset and grown pools, query embeddings, candidate embeddings)."""
    from hybridbatch.data.lookup import lareqa_files
    from hybridbatch.data.qa import read_lareqa
    from hybridbatch.data.records import QACorpus

    full = read_lareqa(lareqa_files(data_dir / "xquad-r"), "xquad-r")
    langs = full.languages
    ids = [q.qid for q in full.questions[langs[0]][:n_ids]]
    keep = set(ids)
    questions = {lang: [q for q in full.questions[lang] if q.qid in keep] for lang in langs}
    sizes = {lang: len(full.candidates[lang]) * scale for lang in langs}
    # candidates are only counted by the evaluation; a range stands in for the (real + synthetic) candidate list
    corpus = QACorpus(f"xquad-r-x{scale}", questions, {lang: range(sizes[lang]) for lang in langs}, full.checksum)
    rng = np.random.default_rng(seed)
    topic = {qid: _unit(rng.standard_normal((1, DIM), dtype=np.float32))[0] for qid in ids}
    c_emb = {}
    for lang in langs:
        c = np.empty((sizes[lang], DIM), dtype=np.float32)
        for a in range(0, len(c), 65536):  # float32 in slices: no float64 temporaries
            c[a : a + 65536] = rng.standard_normal((min(65536, len(c) - a), DIM), dtype=np.float32)
        for q in questions[lang]:
            c[q.answer] = topic[q.qid] + 1.5 * rng.standard_normal(DIM, dtype=np.float32) / np.sqrt(DIM)
        c_emb[lang] = _unit(c)
    q_emb = {}
    for lang in langs:
        noise = 1.5 * rng.standard_normal((len(questions[lang]), DIM), dtype=np.float32) / np.float32(np.sqrt(DIM))
        base = (np.zeros_like(noise) if worst else np.stack([topic[q.qid] for q in questions[lang]]))
        q_emb[lang] = _unit(base + noise)
    return corpus, q_emb, c_emb


def _status(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(args) -> dict:
    from hybridbatch.evaluation.retrieval import block_queries, exact_mib
    from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings

    corpus, q, c = build(Path(args.data_dir), args.scale, args.ids, args.worst)
    n_pool = sum(len(v) for v in c.values())
    n_q = sum(len(v) for v in q.values())
    n_l = len(corpus.languages)
    emb_mib = sum(v.nbytes for v in (*q.values(), *c.values())) / MIB
    kw = dict(backend=args.backend, block_mib=args.block_mib)
    warm = type(corpus)(corpus.name, {k: v[:2] for k, v in corpus.questions.items()}, corpus.candidates)
    evaluate_lareqa_embeddings(warm, {k: v[:2] for k, v in q.items()}, c, **kw)  # warm-up: imports, FAISS init
    gc.collect()
    rss0 = _status("VmRSS")
    hwm_reset = _reset_hwm()
    t0 = time.perf_counter()
    r = evaluate_lareqa_embeddings(corpus, q, c, **kw)
    wall = time.perf_counter() - t0
    rss_peak = _status("VmHWM") if hwm_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    traced = None
    if args.backend == "numpy" or args.traced_faiss:  # FAISS's own allocations are C++: RSS is its measure
        del r
        gc.collect()
        tracemalloc.start()
        r = evaluate_lareqa_embeddings(corpus, q, c, **kw)
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    h = hashlib.sha256()
    for k in ("ap", "first_rank", "rank_distance", "n_relevant"):
        h.update(np.ascontiguousarray(r.per_query[k]).tobytes())
    union_mib = n_pool * DIM * 4 / MIB
    q_per_lang = max(len(v) for v in q.values())
    outputs_mib = (n_q * (n_l + 1) * PER_QUERY_ROW_BYTES + q_per_lang * n_l * 11 * 4 + n_q * 11 * 8) / MIB
    bound_traced = union_mib + args.block_mib + exact_mib(DIM) + outputs_mib + TRACED_SLACK_MIB
    bound_rss = bound_traced + (union_mib if args.backend == "faiss" else 0.0) + RSS_SLACK_MIB
    return {
        "scale": args.scale, "backend": args.backend, "candidates": n_pool, "queries": n_q,
        "queries_per_block": block_queries(n_pool, args.backend, 512, args.block_mib),
        "wall_s": wall, "score_s": r.timings["score_s"], "metric_s": r.timings["metric_s"],
        "ms_per_query": 1000 * wall / n_q, "full_13090_queries_s_extrapolated": wall / n_q * 13090,
        "embeddings_mib": emb_mib, "union_copy_mib": union_mib, "outputs_mib": outputs_mib,
        "traced_peak_mib": None if traced is None else traced / MIB, "bound_traced_mib": bound_traced,
        "rss_before_mib": rss0, "rss_peak_mib": rss_peak, "rss_increase_mib": rss_peak - rss0,
        "bound_rss_increase_mib": bound_rss, "rss_peak_method": "VmHWM reset" if hwm_reset else "ru_maxrss",
        "pass_traced": traced is None or traced / MIB <= bound_traced, "pass_rss": rss_peak - rss0 <= bound_rss,
        "mono_map": r.summary["mono"]["map"], "multi_map": r.summary["multi"]["map"],
        "per_query_sha256": h.hexdigest(), "load_avg": os.getloadavg(),
    }


def _f(v, d: int) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--scales", default="1,4,16")
    ap.add_argument("--backends", default="numpy,faiss")
    ap.add_argument("--ids", type=int, default=96, help="question ids in the query subset (x 11 languages)")
    ap.add_argument("--block-mib", type=float, default=64.0)
    ap.add_argument("--worst", action="store_true", help="random queries: FAISS's worst case")
    ap.add_argument("--traced-faiss", action="store_true", help="also trace allocations on FAISS (a second run)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "eval_scale.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scale", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    from rich.console import Console
    from rich.table import Table

    from hybridbatch.provenance import provenance, write_json

    con = Console(width=170)
    rows = []
    t_all = time.perf_counter()
    for backend in args.backends.split(","):
        for scale in (int(s) for s in args.scales.split(",")):
            cmd = [sys.executable, __file__, "--worker", "--scale", str(scale), "--backend", backend, "--data-dir",
                   args.data_dir, "--ids", str(args.ids), "--block-mib", str(args.block_mib)]
            cmd += ["--worst"] * args.worst + ["--traced-faiss"] * args.traced_faiss
            p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            if p.returncode != 0:
                raise SystemExit(f"worker {backend} x{scale} failed:\n{p.stderr[-3000:]}")
            rows.append(json.loads(p.stdout.strip().splitlines()[-1]))
            con.print(f"{backend} x{scale}: {rows[-1]['wall_s']:.1f} s", highlight=False)
    base = {(r["backend"]): r for r in rows if r["scale"] == 1}
    for r in rows:
        b = base.get(r["backend"])
        r["time_ratio_vs_1x"] = r["wall_s"] / b["wall_s"] if b else None
        r["pool_ratio_vs_1x"] = r["candidates"] / b["candidates"] if b else None
        r["ms_per_query_ratio_vs_1x"] = r["ms_per_query"] / b["ms_per_query"] if b else None
    # the backends must agree exactly at every scale
    agree = {}
    for scale in {r["scale"] for r in rows}:
        hashes = {r["per_query_sha256"] for r in rows if r["scale"] == scale}
        agree[str(scale)] = len(hashes) == 1

    t = Table(title=f"Evaluation vs pool size: {rows[0]['queries']} queries (fixed), XQuAD-R shape grown with random "
              f"candidates, dim {DIM}, block {args.block_mib:g} MiB" + (" [worst case: random queries]"
                                                                        if args.worst else ""))
    for col in ("backend", "pool", "x", "q/block", "wall s", "ms/query", "time x", "13090 q s (extrap.)",
                "traced MiB", "bound", "RSS +MiB", "bound", "PASS", "same ranks"):
        t.add_column(col, justify="right")
    for r in rows:
        ok = r["pass_traced"] and r["pass_rss"]
        t.add_row(r["backend"], str(r["candidates"]), f"{r['scale']}", str(r["queries_per_block"]),
                  f"{r['wall_s']:.2f}", f"{r['ms_per_query']:.2f}", _f(r["time_ratio_vs_1x"], 1),
                  f"{r['full_13090_queries_s_extrapolated']:.0f}", _f(r["traced_peak_mib"], 0),
                  _f(r["bound_traced_mib"], 0), f"{r['rss_increase_mib']:.0f}", f"{r['bound_rss_increase_mib']:.0f}",
                  "[green]PASS" if ok else "[red]FAIL", "yes" if agree[str(r["scale"])] else "[red]NO")
    con.print(t)
    con.print("bound (docs/EVALUATION.md): traced <= union copy + block + exact step + outputs + 16 MiB; RSS "
              "increase <= that + FAISS index copy (faiss) + 64 MiB. The embeddings passed in are not counted (they "
              "are the input: candidates x dim x 4 B). 13090 q s: linear extrapolation from the subset (an upper "
              "estimate: per-block fixed costs are spread over few queries).", highlight=False)
    out = {
        "provenance": provenance(benchmark="bench_eval_scale", cpus=os.cpu_count(), load_avg=os.getloadavg(),
                                 args={k: v for k, v in vars(args).items() if k not in ("worker", "scale", "backend")},
                                 total_s=time.perf_counter() - t_all),
        "bound": {
            "traced_mib": "N*d*4/MiB (union copy) + block_mib + exact_mib(d) (9 MiB at d 384) + outputs + 16",
            "rss_increase_mib": "bound traced + N*d*4/MiB (FAISS index, faiss only) + 64",
            "outputs": f"queries*(languages+1)*{PER_QUERY_ROW_BYTES} B + queries_per_language*languages*11*4 B + "
                       "queries*11*8 B",
        },
        "rows": rows,
        "backends_agree_exactly": agree,
        "all_pass": all(r["pass_traced"] and r["pass_rss"] for r in rows),
    }
    write_json(args.out, out)
    con.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
