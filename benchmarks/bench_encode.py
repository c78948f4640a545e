"""Encoding speed and accuracy per runtime, against plain `SentenceTransformer.encode` fp32 in the same run.

(a) Speed: a fixed stratified sample of XQuAD-R's distinct texts (`--per-group` per (kind, language), seed 0; no
    context; `--max-length` tokens), encoded by every runtime in `--backends`, rounds interleaved (A B C A B C ...) so
    that load changes hit every runtime alike; per runtime the median time, tokens/s (tokens = the model's own token
    count of each text, special tokens included, truncated at max length), speedup over plain ST fp32, the share of
    the CPU's fp32 peak, the one-off preparation time (export / quantisation / compilation), and the cosine of
    its sample embeddings to ST fp32's.
(b) Accuracy: for each runtime in `--full`, all of XQuAD-R (13090 queries, 13014 candidates, `--full-max-length`)
    encoded and evaluated (LAReQA, --ties expected); |delta| of Mono / Cross / Multi mAP and bias against the torch
    fp32 embeddings of the same texts (from the embedding cache when present: `--cache-dir`).

The fp32 peak: cores x clock x FMA units x SIMD lanes x 2 (from /proc/cpuinfo: `cpu MHz`, the avx512f / avx2 flags;
2 FMA units per core assumed, as on Xeon Scalable). FLOPs per token: 2 x the non-embedding weights (every weight is
one multiply-add per token) + the attention products (4 x layers x hidden x mean padded width).

Writes benchmarks/results/encode.json with provenance; per runtime `speedup_vs_st_fp32` and `max_abs_map_delta`.
Usage: python benchmarks/bench_encode.py [--backends st-fp32,torch,onnx,...] [--full onnx-int8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ALL = "st-fp32,torch,torch-bf16,onnx,onnx-int8,openvino,openvino-bf16,openvino-int8"


def cpu_peak() -> dict:
    info = Path("/proc/cpuinfo").read_text()
    mhz = max(float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz"))
    flags = next(line for line in info.splitlines() if line.startswith("flags")).split()
    lanes, isa = (16, "avx512f") if "avx512f" in flags else ((8, "avx2") if "avx2" in flags else (4, "sse"))
    cores = len(os.sched_getaffinity(0))
    fma_units = 2
    gflops = cores * mhz / 1e3 * fma_units * lanes * 2
    return {"cores": cores, "mhz": mhz, "isa": isa, "fp32_lanes": lanes, "fma_units_per_core": fma_units,
            "fp32_peak_gflops": gflops, "avx2_fp32_peak_gflops": cores * mhz / 1e3 * fma_units * 8 * 2,
            "formula": "cores x GHz x FMA units x fp32 lanes x 2 flops"}


def flops_per_token(model, mean_width: float) -> float:
    cfg = model[0].auto_model.config
    h, layers, inter = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    weights = layers * (4 * h * h + 2 * h * inter)
    return 2 * weights + 4 * layers * h * mean_width


def sample_texts(corpus, per_group: int, seed: int = 0) -> dict[str, list[str]]:
    from hybridbatch.data.records import passage_text

    rng = np.random.default_rng(seed)
    out: dict[str, list[str]] = {"query": [], "passage": []}
    for lang in corpus.languages:
        for kind, items in (("query", [q.text for q in corpus.questions[lang]]),
                            ("passage", [passage_text(c, False) for c in corpus.candidates[lang]])):
            uniq = sorted(set(items))
            pick = rng.choice(len(uniq), min(per_group, len(uniq)), replace=False)
            out[kind].extend(uniq[i] for i in sorted(pick))
    return out


class Plain:
    """What a user without this package runs: SentenceTransformer.encode, fp32, texts as given."""

    key = "st-fp32"

    def __init__(self, model):
        self.model = model

    def run(self, texts: dict[str, list[str]], prompts: dict[str, str], batch: int) -> dict[str, np.ndarray]:
        return {k: np.asarray(self.model.encode(v, prompt=prompts[k], batch_size=batch, normalize_embeddings=True,
                                                convert_to_numpy=True, show_progress_bar=False), np.float32)
                for k, v in texts.items()}


class Ours:
    def __init__(self, model, name: str, cache_dir: Path):
        from hybridbatch.evaluation.model_info import model_identity
        from hybridbatch.evaluation.runtimes import make_encoder

        self.model, self.key = model, name
        precision = "bf16" if name == "torch-bf16" else "fp32"
        self.runner = make_encoder(model, "torch" if name.startswith("torch") else name,
                                   identity=model_identity(model), cache_dir=cache_dir, precision=precision)

    def run(self, texts, prompts, batch) -> dict[str, np.ndarray]:
        from hybridbatch.evaluation.encode import encode_texts

        return {k: encode_texts(self.model, v, k, batch_size=batch, runner=self.runner) for k, v in texts.items()}


def speed(model, names: list[str], texts, prompts, rounds: int, batch: int, cache_dir: Path, log) -> dict:
    tok = model.tokenizer
    lengths = [len(x) for k, v in texts.items() for x in tok([prompts[k] + t for t in v], truncation=True,
                                                             max_length=model.max_seq_length)["input_ids"]]
    n_tokens = int(sum(lengths))
    runners, prep = {}, {}
    warm = {k: v[:8] for k, v in texts.items()}
    for name in names:
        t0 = time.perf_counter()
        runners[name] = Plain(model) if name == "st-fp32" else Ours(model, name, cache_dir)
        runners[name].run(warm, prompts, batch)  # export / quantise / compile, then one warm-up
        prep[name] = time.perf_counter() - t0
        log(f"prepared {name} in {prep[name]:.1f}s")
    times: dict[str, list[float]] = {n: [] for n in names}
    embs = {}
    for r in range(rounds):
        for name in names:
            t0 = time.perf_counter()
            embs[name] = runners[name].run(texts, prompts, batch)
            times[name].append(time.perf_counter() - t0)
            log(f"round {r + 1}/{rounds} {name}: {times[name][-1]:.1f}s")
    ref = embs["st-fp32"]
    out = {}
    for name in names:
        med = statistics.median(times[name])
        cos = np.concatenate([np.einsum("ij,ij->i", embs[name][k], ref[k]) for k in ref])
        out[name] = {"times_s": times[name], "median_s": med, "tokens_per_s": n_tokens / med,
                     "speedup_vs_st_fp32": statistics.median(times["st-fp32"]) / med, "prepare_s": prep[name],
                     "cos_to_st_fp32_min": float(cos.min()), "cos_to_st_fp32_mean": float(cos.mean())}
    return {"n_texts": sum(len(v) for v in texts.values()), "n_tokens": n_tokens,
            "mean_tokens_per_text": n_tokens / max(1, len(lengths)), "backends": out}


def accuracy(names: list[str], corpus, max_length: int, batch: int, cache_dir: Path, log) -> dict:
    from hybridbatch.evaluation.cache import EmbeddingCache
    from hybridbatch.evaluation.encode import encode_corpus
    from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings
    from hybridbatch.evaluation.model_info import model_identity
    from hybridbatch.evaluation.options import EvalOptions
    from hybridbatch.models.loading import load_model

    model = load_model("embedded", max_seq_length=max_length)
    identity = model_identity(model, "embedded")
    cache = EmbeddingCache(cache_dir)
    res = {}
    for name in ["torch", *names]:
        t0 = time.perf_counter()
        hits = cache.hits
        q, c = encode_corpus(model, corpus, EvalOptions(batch_size=batch, encoder=name, cache_dir=cache_dir),
                             cache=cache, identity=identity)
        enc_s = time.perf_counter() - t0
        r = evaluate_lareqa_embeddings(corpus, q, c, ties="expected")
        res[name] = {"summary": r.summary, "encode_s": enc_s, "from_cache": cache.hits - hits == 22,
                     "ties": r.counts["ties"]}
        log(f"full XQuAD-R {name}: encode {enc_s:.0f}s, mono {r.summary['mono']['map']:.4f}")
    ref = res["torch"]["summary"]
    for name in names:
        s = res[name]["summary"]
        d = {f"{k}_map": abs(s[k]["map"] - ref[k]["map"]) for k in ("mono", "cross", "multi")}
        res[name]["abs_delta"] = {**d, "bias": abs(s["multi"]["bias"] - ref["multi"]["bias"])}
        res[name]["max_abs_map_delta"] = max(d.values())
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--backends", default=ALL)
    ap.add_argument("--full", default="", help="runtimes to run on all of XQuAD-R for the mAP deltas")
    ap.add_argument("--per-group", type=int, default=20, help="sample texts per (kind, language)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--full-max-length", type=int, default=64)
    ap.add_argument("--cache-dir", default=None, help="embedding + export cache (default: the user cache)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "encode.json"))
    args = ap.parse_args()
    logging.disable(logging.WARNING)

    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.models.embedded import cache_root
    from hybridbatch.models.loading import load_model, prefixes
    from hybridbatch.provenance import provenance, write_json

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    cache_dir = Path(args.cache_dir) if args.cache_dir else cache_root() / "embeddings"
    corpus = load_corpus("xquad-r", args.data_dir, split=None)
    model = load_model("embedded", max_seq_length=args.max_length)
    qp, pp = prefixes(model)
    prompts = {"query": qp, "passage": pp}
    texts = sample_texts(corpus, args.per_group)
    names = [n for n in args.backends.split(",") if n]
    if "st-fp32" not in names:
        names.insert(0, "st-fp32")
    peak = cpu_peak()
    sp = speed(model, names, texts, prompts, args.rounds, args.batch_size, cache_dir, log)
    mean_width = sp["mean_tokens_per_text"]
    fpt = flops_per_token(model, mean_width)
    for v in sp["backends"].values():
        v["gflops_effective"] = v["tokens_per_s"] * fpt / 1e9
        v["share_of_fp32_peak"] = v["gflops_effective"] / peak["fp32_peak_gflops"]
    body = {"provenance": provenance(benchmark="bench_encode", model="embedded", max_length=args.max_length,
                                     load_avg=os.getloadavg(), cpus=os.cpu_count()),
            "cpu": peak, "flops_per_token": fpt, "speed_sample": sp,
            "what_was_measured": (
                f"speed_sample: {sp['n_texts']} distinct XQuAD-R texts ({args.per_group} per kind x language, seed 0), "
                f"max length {args.max_length}, batch {args.batch_size}, {args.rounds} interleaved rounds, median; "
                f"full_xquad_r: every XQuAD-R text at max length {args.full_max_length}, LAReQA --ties expected, "
                f"deltas against torch fp32 of the same texts (cached embeddings when present)")}
    write_json(args.out, body)
    log(f"wrote speed part to {args.out}")
    full = [n for n in args.full.split(",") if n]
    if full:
        acc = accuracy(full, corpus, args.full_max_length, args.batch_size, cache_dir, log)
        body["full_xquad_r"] = acc
        for name in full:
            if name in sp["backends"]:
                sp["backends"][name]["max_abs_map_delta"] = acc[name]["max_abs_map_delta"]
        body["provenance"]["load_avg_end"] = os.getloadavg()
        write_json(args.out, body)
    for name, v in sp["backends"].items():
        log(f"{name:14s} {v['tokens_per_s']:8.0f} tok/s  x{v['speedup_vs_st_fp32']:.2f}  "
            f"{100 * v['share_of_fp32_peak']:.1f}% of fp32 peak  cos>={v['cos_to_st_fp32_min']:.5f}  "
            f"dmAP={v.get('max_abs_map_delta', '-')}")
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
