"""The GPU check (issue #10, item 2), run by benchmarks/gpu_check.sh.

(a) agreement: the same 20 steps of a tiny random BERT (dropout off, so no device RNG is involved) on the CPU in fp32
    and on the GPU in fp32 give per-step training losses within 1e-4;
(b) speed: 200 steps of batch 100, `--sampler hybrid`, bf16, on the XQuAD-R train split, with a model of XLM-R-base's
    shape (random weights, the e5 tokenizer): pairs/s and peak GPU memory of `hybridbatch.train`, and the same with
    the plain `SentenceTransformerTrainer` (its default sampler) for the ratio;
(c) evaluation: encoding full XQuAD-R (all 11 languages, questions and candidate sentences) on the GPU: texts/s.

The GPU machine has no network and takes at most 64 MiB of files, so nothing is downloaded and no real model goes
there: models are built from a config plus the e5 tokenizer.json, and data come from the payload folder that
`gpu_check.sh prepare` fills (git-ignored). `--smoke` runs the same code on the CPU at toy sizes (CI runs it).

Writes JSON with provenance: benchmarks/results/gpu_check.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = ROOT / "benchmarks" / "gpu_payload"
XLMR_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
SMOKE_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


def tokenizer_file(payload: Path) -> Path:
    """The e5 (= XLM-R sentencepiece) tokenizer.json: the payload's copy, else the installed package's."""
    if (payload / "tokenizer.json").is_file():
        return payload / "tokenizer.json"
    from hybridbatch.models.embedded import e5_tokenizer_file

    return e5_tokenizer_file()


def build_model(out: Path, tok_file: Path, shape: dict[str, int], seed: int, dropout: float) -> str:
    """A random XLM-R-architecture encoder of `shape` with the e5 tokenizer, saved as a sentence-transformers folder
    (mean pooling, normalise, E5 prompts)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_file), bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>")
    cfg = XLMRobertaConfig(vocab_size=len(tok), max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                           hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout, **shape)
    torch.manual_seed(seed)
    hf = out / "hf"
    XLMRobertaModel(cfg, add_pooling_layer=False).save_pretrained(hf)
    tok.save_pretrained(hf)
    word = Transformer(str(hf), max_seq_length=128)
    model = SentenceTransformer(modules=[word, Pooling(word.get_embedding_dimension(), pooling_mode="mean"),
                                         Normalize()], prompts={"query": "query: ", "passage": "passage: "},
                                device="cpu")  # built on the host: the check moves it where it runs
    model.save(str(out / "st"))
    shutil.rmtree(hf)
    return str(out / "st")


def train_ours(model: str, data: Path, out: Path, *, steps: int, batch: int, length: int, device: str,
               precision: str, seed: int = 0, logging_steps: int = 10) -> dict[str, Any]:
    from hybridbatch.experiments.training import train
    from hybridbatch.training.config import TrainConfig

    cfg = TrainConfig(model=model, data=[str(data)], out=str(out), sampler="hybrid", batch_size=batch,
                      max_steps=steps, max_seq_length=length, val_fraction=0.0, save_steps=10**9, progress=False,
                      seed=seed, device=device, precision=precision, logging_steps=logging_steps, overwrite=True)
    peak = _reset_peak(device)
    train(cfg)
    j = json.loads((out / "train.json").read_text(encoding="utf-8"))
    return {"pairs_per_s": round(steps * batch / j["seconds"]["train"], 2), "train_s": j["seconds"]["train"],
            "peak_gpu_mib": peak(), "device": j.get("device"), "losses": [p["loss"] for p in j["loss_curve"]["train"]]}


def train_plain(model_name: str, data: Path, out: Path, *, steps: int, batch: int, length: int, device: str,
                precision: str, seed: int = 0) -> dict[str, Any]:
    """The plain sentence-transformers trainer, its default batch sampler, on the same pair table."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.models.loading import load_model, prefixes
    from hybridbatch.sampling.dataset import pair_dataset
    from hybridbatch.device import placement

    place = placement(device, precision)
    model = load_model(model_name, device=place.device, max_seq_length=length)
    qp, pp = prefixes(model)
    table = pair_dataset(load_corpus(str(data)).split()[0].pairs(), qp, pp).select_columns(["anchor", "positive"])
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch, learning_rate=3e-5,
        weight_decay=0.01, warmup_steps=int(0.1 * steps), seed=seed, report_to="none", save_strategy="no",
        disable_tqdm=True, dataloader_drop_last=True, logging_steps=10, **place.training_kwargs())
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=table,
                                         loss=MultipleNegativesRankingLoss(model, scale=20.0))
    peak = _reset_peak(device)
    t0 = time.perf_counter()
    trainer.train()
    secs = time.perf_counter() - t0
    return {"pairs_per_s": round(steps * batch / secs, 2), "train_s": round(secs, 3), "peak_gpu_mib": peak()}


def _reset_peak(device: str):
    """Reset CUDA's peak-memory counter now; the returned function reads it (None off CUDA)."""
    if not device.startswith("cuda"):
        return lambda: None
    import torch

    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return lambda: round(torch.cuda.max_memory_allocated() / 2**20, 1)


def check_agreement(tmp: Path, tok: Path, data: Path, device: str, steps: int, batch: int = 16) -> dict[str, Any]:
    model = build_model(tmp / "tiny", tok, {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                            "intermediate_size": 64}, seed=0, dropout=0.0)
    kw = {"steps": steps, "batch": batch, "length": 32, "precision": "fp32", "logging_steps": 1}
    cpu = train_ours(model, data, tmp / "a-cpu", device="cpu", **kw)
    dev = train_ours(model, data, tmp / "a-dev", device=device, **kw)
    diff = max(abs(a - b) for a, b in zip(cpu["losses"], dev["losses"], strict=True))
    return {"steps": steps, "device": dev["device"], "cpu_losses": cpu["losses"], "device_losses": dev["losses"],
            "max_abs_diff": diff, "tolerance": 1e-4, "pass": bool(len(cpu["losses"]) == steps and diff <= 1e-4)}


def check_speed(tmp: Path, tok: Path, data: Path, device: str, shape: dict[str, int], steps: int, batch: int,
                length: int, precision: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    model = build_model(tmp / "xlmr", tok, shape, seed=1, dropout=0.1)
    build_s = time.perf_counter() - t0
    kw = {"steps": steps, "batch": batch, "length": length, "device": device, "precision": precision}
    plain = train_plain(model, data, tmp / "b-plain", **kw)
    ours = train_ours(model, data, tmp / "b-ours", **kw)
    ours.pop("losses")
    return {"model_shape": shape, "build_s": round(build_s, 1), "steps": steps, "batch": batch,
            "max_seq_length": length, "precision": precision, "sampler": "hybrid", "ours": ours, "plain": plain,
            "ratio": round(ours["pairs_per_s"] / plain["pairs_per_s"], 3), "model_dir": model}


def check_eval(model_dir: str, data: Path, device: str, batch: int, languages: list[str] | None) -> dict[str, Any]:
    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.lareqa import evaluate_lareqa
    from hybridbatch.models.loading import load_model

    corpus = load_corpus(str(data))
    if languages:
        corpus = corpus.subset({q.article for q in corpus.questions[languages[0]][:20]}, "smoke")
    model = load_model(model_dir, device=device, max_seq_length=128)
    res = evaluate_lareqa(model, corpus, batch_size=batch, model_name="xlmr-base-shaped-random")
    n_texts = res.counts["n_queries"] + res.counts["n_candidates"]
    enc = res.timings["encode_s"]
    return {"device": str(model.device), "batch_size": batch, "texts": n_texts, "encode_s": round(enc, 3),
            "texts_per_s": round(n_texts / enc, 1), "timings": res.timings, "counts": res.counts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, toy sizes: exercises every path in ~2 min (CI)")
    ap.add_argument("--payload", type=Path, default=PAYLOAD, help="folder with tokenizer.json and xquad-r/")
    ap.add_argument("--data-dir", type=Path, default=None, help="folder holding xquad-r/ (default: the payload's)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    from hybridbatch.provenance import provenance, write_json

    device = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU visible; run with --smoke for the CPU smoke mode")
    data = (args.data_dir or args.payload) / "xquad-r"
    if not (data / "en.json").is_file():
        sys.exit(f"gpu_check: {data}/en.json missing; run `benchmarks/gpu_check.sh prepare` (or pass --data-dir)")
    tok = tokenizer_file(args.payload)
    out = args.out or ROOT / "benchmarks" / "results" / ("gpu_check_smoke.json" if args.smoke else "gpu_check.json")
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        results["a_agreement"] = check_agreement(tmp, tok, data, device, steps=6 if args.smoke else 20,
                                                 batch=8 if args.smoke else 16)
        a = results["a_agreement"]
        print(f"(a) CPU vs {device} fp32, {a['steps']} steps: max |loss diff| {a['max_abs_diff']:.2e}", flush=True)
        speed = check_speed(tmp, tok, data, device, SMOKE_SHAPE if args.smoke else XLMR_BASE,
                            steps=3 if args.smoke else 200, batch=8 if args.smoke else 100, length=64,
                            precision="bf16")
        model_dir = speed.pop("model_dir")
        results["b_speed"] = speed
        print(f"(b) ours {speed['ours']['pairs_per_s']} pairs/s, plain {speed['plain']['pairs_per_s']} pairs/s, "
              f"ratio {speed['ratio']}, peak {speed['ours']['peak_gpu_mib']} MiB", flush=True)
        results["c_eval"] = check_eval(model_dir, data, device, batch=64 if args.smoke else 512,
                                       languages=["en", "de"] if args.smoke else None)
        print(f"(c) encoding {results['c_eval']['texts']} texts: {results['c_eval']['texts_per_s']} texts/s",
              flush=True)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    write_json(out, provenance(kind="gpu_check", mode="smoke" if args.smoke else "gpu", device=device, gpu=gpu,
                               cuda=torch.version.cuda, results=results,
                               wall_s=round(time.perf_counter() - t0, 1)))
    print(f"wrote {out}")
    if not results["a_agreement"]["pass"]:
        sys.exit("gpu_check: (a) CPU and device losses differ by more than 1e-4")


if __name__ == "__main__":
    main()
