"""Which learning rate lets the adversary's language classifier learn at all within a cell's budget?

The adv cells' classifier stayed at chance for all 100 steps (results/adv-classifier.json) on the encoder's 3e-5.
This probe trains a fresh classifier (the adversary's own shape, `language_classifier`) on the base model's frozen,
normalised embeddings of MKQA questions and answers (12 languages), with the trainer's schedule: AdamW, weight
decay 0.01, 10 % warmup then linear decay over 100 steps of 96 embeddings (3 columns x batch 32). Frozen embeddings
are the easy case (no encoder pushing back): a rate that fails here fails in training too.

    python examples/adv_head_probe.py [--data-dir ../shared/data] [--out results/adv-head-probe.json]
"""

from __future__ import annotations

import argparse
import math
import random
import time

import torch
import torch.nn.functional as F

from hybridbatch.data.lookup import pair_source
from hybridbatch.models.loading import load_model
from hybridbatch.provenance import provenance, write_json
from hybridbatch.training.adversarial import language_classifier

RATES = (3e-5, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
STEPS, BATCH, WARMUP = 100, 96, 10


def embed(data_dir: str, n_ids: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str], str]:
    pairs = pair_source("mkqa:answers", data_dir)
    langs = pairs.languages
    texts, labels = [], []
    for qid in random.Random(seed).sample(sorted(pairs.items), n_ids):
        for lang, item in pairs.items[qid].items():
            texts += [item.query, item.positive]
            labels += [langs.index(lang)] * 2
    model = load_model("embedded", max_seq_length=48)
    x = torch.tensor(model.encode(texts, batch_size=128, normalize_embeddings=True))
    return x, torch.tensor(labels), langs, pairs.checksum


def probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, lr: float, seed: int) -> dict[str, float]:
    """Train on 80 %, report the training curve and the held-out cross-entropy / accuracy."""
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=gen)
    train, test = perm[: int(0.8 * len(y))], perm[int(0.8 * len(y)):]
    torch.manual_seed(seed)
    head = language_classifier(x.shape[1], n_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / WARMUP if s < WARMUP else max(0.0, (STEPS - s) / (STEPS - WARMUP)))
    curve = []
    for _ in range(STEPS):
        idx = train[torch.randint(len(train), (BATCH,), generator=gen)]
        head.train()
        loss = F.cross_entropy(head(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        curve.append(loss.item())
    head.eval()
    with torch.no_grad():
        logits = head(x[test])
    return {"lr": lr, "train_ce_steps_1_10": sum(curve[:10]) / 10, "train_ce_steps_41_60": sum(curve[40:60]) / 20,
            "train_ce_steps_91_100": sum(curve[90:]) / 10, "held_out_ce": F.cross_entropy(logits, y[test]).item(),
            "held_out_acc": (logits.argmax(1) == y[test]).float().mean().item()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--out", default="results/adv-head-probe.json")
    ap.add_argument("--ids", type=int, default=400, help="MKQA question ids (x 12 languages x question + answer)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    x, y, langs, checksum = embed(args.data_dir, args.ids, args.seed)
    rows = [probe(x, y, len(langs), lr, args.seed) for lr in RATES]
    print(f"{len(y)} embeddings, {len(langs)} languages, chance cross-entropy ln {len(langs)} = "
          f"{math.log(len(langs)):.3f}")
    print("| head lr | train CE steps 1-10 | 41-60 | 91-100 | held-out CE | held-out acc |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['lr']:g} | {r['train_ce_steps_1_10']:.3f} | {r['train_ce_steps_41_60']:.3f} | "
              f"{r['train_ce_steps_91_100']:.3f} | {r['held_out_ce']:.3f} | {r['held_out_acc']:.3f} |")
    write_json(args.out, provenance(
        what="fresh language classifier on frozen base-model embeddings: can it learn within the cell budget?",
        command="python examples/adv_head_probe.py", model="embedded", seed=args.seed,
        data={"source": "mkqa:answers", "checksum": checksum, "ids": args.ids, "embeddings": len(y),
              "languages": langs}, schedule={"steps": STEPS, "batch": BATCH, "warmup": WARMUP, "optimizer": "AdamW",
                                             "weight_decay": 0.01},
        chance_ce=math.log(len(langs)), rows=rows, wall_seconds=round(time.perf_counter() - t0, 1)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
