"""Run by tests/test_training.py under torchrun: the plain SentenceTransformerTrainer with
`functools.partial(HybridSampler, alpha=0.5)` on a shuffled user Dataset and an eval_dataset, two processes (gloo,
CPU). Each rank writes the rows its data loader gives it for the first steps, then trains."""

import functools
import json
import os
import sys

from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from hybridbatch.data.lookup import load_corpus
from hybridbatch.data.records import PairSet
from hybridbatch.sampling import HybridSampler, PairCollator, pair_dataset

model_dir, data_dir, out = sys.argv[1:4]
pairs = load_corpus("xquad-r", data_dir).split()[0].pairs(hard_negatives=True)
ids = sorted(pairs.items)
train_ds = pair_dataset(PairSet("t", {q: pairs.items[q] for q in ids[:-80]}), hard_negatives=True).shuffle(seed=3)
eval_ds = pair_dataset(PairSet("v", {q: pairs.items[q] for q in ids[-80:]}), hard_negatives=True).shuffle(seed=4)
model = SentenceTransformer(model_dir, device="cpu")
args = SentenceTransformerTrainingArguments(
    output_dir=os.path.join(out, "ckpt"), per_device_train_batch_size=8, per_device_eval_batch_size=4,
    batch_sampler=functools.partial(HybridSampler, alpha=0.5), max_steps=2, eval_strategy="steps", eval_steps=2,
    save_strategy="no", report_to="none", use_cpu=True, ddp_backend="gloo", seed=7)
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                                     loss=MultipleNegativesRankingLoss(model, gather_across_devices=True),
                                     data_collator=PairCollator(preprocess_fn=model.preprocess))
shard = trainer.get_train_dataloader().batch_sampler
rows = [b for _, b in zip(range(6), shard, strict=False)]
meta = train_ds.select_columns(["id", "query_lang", "passage_lang", "group"]).to_dict()
steps = [{k: [meta[k][r] for r in b] for k in meta} for b in rows]
trainer.train()
rank = int(os.environ["RANK"])
with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
    json.dump({"steps": steps, "global_step": trainer.state.global_step,
               "eval": [h for h in trainer.state.log_history if "eval_loss" in h]}, f)
