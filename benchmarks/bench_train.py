"""Training speed and memory.

(a) Sampler cost: mean time to plan one batch of 128 on the XQuAD-R train split (36 articles, 11 languages), for
    every sampler, with and without hard negatives (target < 1 ms).
(b) Throughput: our trainer (`hybridbatch.train`, hybrid sampler, batch log on) vs the plain
    `SentenceTransformerTrainer` with its default batch sampler, same model, pair table, batch, length and steps, in
    one run, interleaved (A B A B) to even out a shared CPU; pairs/s from the train() wall time (target >= 0.95x).
(c) Peak memory of a training step: batch 128 with the cached (GradCache) loss vs batch 32 with the plain loss,
    each in a fresh subprocess, as the growth of peak RSS over the RSS before the first step (target <= 1.5x).

Prints a table and writes benchmarks/results/train.json with provenance. Sections left out with --skip are carried
over from the previous file, under `carried_over` with that file's commit and settings (never mixed into this run).
Usage: python benchmarks/bench_train.py [--data-dir ../shared/data] [--model tiny|embedded|PATH] [--steps 20]
       python benchmarks/bench_train.py --model embedded --freeze-embeddings --batch 32 --max-seq-length 48 \
           --steps 40 --rounds 3 --skip memory      # the run behind results/train.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def tiny_model_path(cache: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import build_tiny_model

    if not (cache / "st" / "modules.json").exists():
        build_tiny_model(cache)
    return cache / "st"


def resolve_model(name: str, tmp: Path) -> str:
    return str(tiny_model_path(tmp / "tiny")) if name == "tiny" else name


def pairs(data_dir: Path, hard: bool):
    from hybridbatch.data.lookup import load_corpus

    return load_corpus(data_dir / "xquad-r").split()[0].pairs(context=False, hard_negatives=hard)


def bench_sampler(data_dir: Path, batch: int = 128, n: int = 300) -> list[dict]:
    from hybridbatch.sampling import SAMPLERS, make_sampler, pair_dataset

    rows = []
    for hard in (False, True):
        table = pair_dataset(pairs(data_dir, hard), "query: ", "passage: ", hard_negatives=hard)
        for name in SAMPLERS:
            s = make_sampler(name, table, batch, seed=0)
            s.plan(0)
            t0, c0 = time.perf_counter(), time.process_time()
            for g in range(1, n + 1):
                s.plan(g)
            ms = (time.perf_counter() - t0) / n * 1000
            cpu_ms = (time.process_time() - c0) / n * 1000  # CPU time: less sensitive to a shared machine
            rows.append({"sampler": name, "hard_negatives": hard, "batch": batch, "ms_per_batch": round(ms, 4),
                         "cpu_ms_per_batch": round(cpu_ms, 4)})
    return rows


def run_ours(model: str, data_dir: Path, out: Path, steps: int, batch: int, length: int, freeze: bool = False,
             device: str = "auto") -> float:
    from hybridbatch.experiments.training import train
    from hybridbatch.training.config import TrainConfig

    cfg = TrainConfig(model=model, data=[str(data_dir / "xquad-r")], out=str(out), batch_size=batch,
                      max_steps=steps, max_seq_length=length, val_fraction=0.0, save_steps=10**9, progress=False,
                      seed=1, freeze_embeddings=freeze, device=device)
    train(cfg)
    j = json.loads((out / "train.json").read_text())
    return steps * batch / j["seconds"]["train"]


def run_plain(model_name: str, data_dir: Path, out: Path, steps: int, batch: int, length: int, freeze: bool = False,
              device: str = "auto") -> float:
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )

    from hybridbatch.models.loading import load_model, prefixes
    from hybridbatch.sampling import pair_dataset
    from hybridbatch.device import placement
    from hybridbatch.training.model import freeze_word_embeddings

    place = placement(device, "auto")
    model = load_model(model_name, max_seq_length=length, device=place.device)
    if freeze:
        freeze_word_embeddings(model)
    qp, pp = prefixes(model)
    table = pair_dataset(pairs(data_dir, False), qp, pp).select_columns(["anchor", "positive"])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch, learning_rate=3e-5,
        weight_decay=0.01, warmup_steps=int(0.1 * steps), seed=1, report_to="none", save_strategy="no",
        disable_tqdm=True, dataloader_drop_last=True, logging_steps=10, **place.training_kwargs(),
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=table,
                                         loss=MultipleNegativesRankingLoss(model))
    t0 = time.perf_counter()
    trainer.train()
    return steps * batch / (time.perf_counter() - t0)


def bench_throughput(model: str, data_dir: Path, tmp: Path, steps: int, batch: int, length: int,
                     rounds: int = 2, freeze: bool = False, device: str = "auto") -> dict:
    """Interleaved A B, B A, A B, ... so that neither trainer always runs first (page cache, a neighbour's load)."""
    ours, plain = [], []
    for r in range(rounds):
        order = ("plain", "ours") if r % 2 == 0 else ("ours", "plain")
        for who in order:
            if who == "plain":
                plain.append(run_plain(model, data_dir, tmp / f"plain{r}", steps, batch, length, freeze, device))
            else:
                ours.append(run_ours(model, data_dir, tmp / f"ours{r}", steps, batch, length, freeze, device))
            print(f"round {r} {who}: {(plain if who == 'plain' else ours)[-1]:.2f} pairs/s", flush=True)
    o, p = float(np.median(ours)), float(np.median(plain))
    per_round = [round(a / b, 3) for a, b in zip(ours, plain, strict=True)]
    return {"steps": steps, "batch": batch, "max_seq_length": length, "freeze_embeddings": freeze, "rounds": rounds,
            "ours_pairs_per_s": round(o, 2), "plain_pairs_per_s": round(p, 2), "ratio": round(o / p, 3),
            "ratio_per_round": per_round, "ours_runs": ours, "plain_runs": plain}


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(model: str, data_dir: str, batch: int, cached: bool, length: int, steps: int) -> None:
    """Runs in a fresh process: a few optimizer steps, then prints peak-RSS growth in MiB as JSON."""
    import torch

    from hybridbatch.models.loading import load_model, prefixes
    from hybridbatch.sampling import HybridSampler, pair_dataset
    from hybridbatch.training.config import TrainConfig
    from hybridbatch.training.losses import make_loss

    m = load_model(model, max_seq_length=length)
    qp, pp = prefixes(m)
    table = pair_dataset(pairs(Path(data_dir), False), qp, pp)
    sampler = HybridSampler(table, batch, seed=0)
    loss_fn = make_loss(m, TrainConfig(cached_loss=cached, mini_batch_size=32))
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=3e-5)
    m.train()

    def step(g: int) -> None:
        rows = sampler.plan(g).rows.tolist()
        ex = table[rows]
        feats = [m.preprocess(ex["anchor"]), m.preprocess(ex["positive"])]
        loss = loss_fn(feats, None)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)  # keep gradient buffers: the growth is then what the batch costs

    # One warm-up step allocates the optimizer state and gradients (the same for both settings), so the growth
    # measured after it is what the batch itself costs: activations and the similarity matrix.
    step(0)
    import gc

    gc.collect()
    rss_before = _status_mib("VmRSS")
    peak_before = _status_mib("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS (Linux)
        f.write("5")
    t0 = time.perf_counter()
    for g in range(1, steps + 1):
        step(g)
    wall = time.perf_counter() - t0
    peak = _status_mib("VmHWM")
    print(json.dumps({"batch": batch, "cached": cached, "rss_before_mib": round(rss_before, 1),
                      "peak_mib": round(peak, 1), "peak_before_mib": round(peak_before, 1),
                      "growth_mib": round(peak - rss_before, 1), "s_per_step": round(wall / steps, 3)}))


def bench_memory(model: str, data_dir: Path, length: int, steps: int = 1) -> dict:
    res = {}
    for batch, cached in ((32, False), (128, True), (128, False)):
        cmd = [sys.executable, __file__, "--_memory-child", model, str(data_dir), str(batch), str(int(cached)),
               str(length), str(steps)]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res[f"{'cached' if cached else 'plain'}_{batch}"] = json.loads(r.stdout.strip().splitlines()[-1])
    ratio = res["cached_128"]["growth_mib"] / max(res["plain_32"]["growth_mib"], 1e-9)
    return {**res, "ratio_cached128_vs_plain32": round(ratio, 3)}


def carry_over(path: Path, skipped: list[str]) -> dict | None:
    """The sections this run skipped, from the previous result file, each labelled with the run that made it."""
    if not skipped or not path.exists():
        return None
    old = json.loads(path.read_text(encoding="utf-8"))
    origin = {k: old.get(k) for k in ("git_commit", "created", "model", "settings")}
    out = {}
    for k in skipped:
        if k in old.get("results", {}):
            out[k] = {"from": origin, "result": old["results"][k]}
        elif k in (old.get("carried_over") or {}):
            out[k] = old["carried_over"][k]
    return out or None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_memory-child":
        a = sys.argv[2:]
        memory_child(a[0], a[1], int(a[2]), bool(int(a[3])), int(a[4]), int(a[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("HYBRIDBATCH_DATA", ROOT.parent / "shared" /
                                                                          "data")))
    ap.add_argument("--model", default="tiny", help="tiny (random 2-layer BERT, default), embedded, or a path")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-seq-length", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2, help="interleaved rounds of (plain, ours)")
    ap.add_argument("--freeze-embeddings", action="store_true", help="both trainers freeze the word embeddings "
                    "(the small preset does)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (both trainers)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["sampler", "throughput", "memory"])
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from hybridbatch.provenance import provenance, write_json

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        model = resolve_model(args.model, tmp)
        results: dict = {}
        if "sampler" not in args.skip:
            results["sampler"] = bench_sampler(args.data_dir)
        if "throughput" not in args.skip:
            results["throughput"] = bench_throughput(model, args.data_dir, tmp, args.steps, args.batch,
                                                     args.max_seq_length, args.rounds, args.freeze_embeddings,
                                                     args.device)
        if "memory" not in args.skip:
            results["memory"] = bench_memory(model, args.data_dir, args.max_seq_length)

    from rich.console import Console
    from rich.table import Table

    con = Console()
    if "sampler" in results:
        t = Table(title="sampler cost per batch of 128 (XQuAD-R train, target < 1 ms)")
        for c in ("sampler", "hard negatives", "wall ms / batch", "CPU ms / batch"):
            t.add_column(c)
        for r in results["sampler"]:
            t.add_row(r["sampler"], str(r["hard_negatives"]), f"{r['ms_per_batch']:.3f}",
                      f"{r['cpu_ms_per_batch']:.3f}")
        con.print(t)
    if "throughput" in results:
        r = results["throughput"]
        t = Table(title=f"training throughput, {args.model}, batch {r['batch']}, length {r['max_seq_length']}, "
                        f"{r['steps']} steps (target >= 0.95x)")
        for c in ("trainer", "pairs / s (median)", "runs"):
            t.add_column(c)
        t.add_row("hybridbatch (hybrid sampler)", f"{r['ours_pairs_per_s']:.1f}",
                  ", ".join(f"{x:.1f}" for x in r["ours_runs"]))
        t.add_row("plain SentenceTransformerTrainer", f"{r['plain_pairs_per_s']:.1f}",
                  ", ".join(f"{x:.1f}" for x in r["plain_runs"]))
        t.add_row("ratio", f"{r['ratio']:.3f}x", "")
        con.print(t)
    if "memory" in results:
        m = results["memory"]
        t = Table(title="peak memory growth of a training step (target: cached 128 <= 1.5x plain 32)")
        for c in ("setting", "growth MiB", "peak RSS MiB", "s / step"):
            t.add_column(c)
        for k in ("plain_32", "cached_128", "plain_128"):
            t.add_row(k, f"{m[k]['growth_mib']:.1f}", f"{m[k]['peak_mib']:.1f}", f"{m[k]['s_per_step']:.3f}")
        t.add_row("ratio cached 128 / plain 32", f"{m['ratio_cached128_vs_plain32']:.3f}x", "", "")
        con.print(t)
    path = ROOT / "benchmarks" / "results" / "train.json"
    body = provenance(kind="bench_train", model=args.model, settings=vars(args) | {"data_dir": str(args.data_dir)},
                      results=results, cpu_count=os.cpu_count())
    carried = carry_over(path, args.skip)
    if carried:
        body["carried_over"] = carried
    write_json(path, body)
    con.print(f"written {path}")


if __name__ == "__main__":
    main()
