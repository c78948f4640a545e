"""Train a multilingual retriever on your own parallel data with hybrid batches (docs/LIBRARY.md).

Your data: one row per (id, language); the same id in several languages is one question translated.
Run: python examples/train_your_data.py MODEL_PATH_OR_ID [MAX_STEPS]
"""

import functools
import sys

from datasets import Dataset
from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from hybridbatch.evaluation.evaluator import LAReQAEvaluator
from hybridbatch.sampling import HybridSampler, PairCollator, pairs_from_long

facts = ["Water boils at 100 degrees.", "Paris is in France.", "Bees make honey.", "The Moon orbits the Earth.",
         "Ice is frozen water.", "Cats chase mice.", "Rome is in Italy.", "Owls hunt at night."]
tag = {"en": "", "de": " (de)", "fr": " (fr)"}  # stand-ins for real translations
rows = [{"id": f"q{i}", "lang": lang, "query": f"Which fact is number {i}?{t}", "positive": fact + t}
        for i, fact in enumerate(facts) for lang, t in tag.items()]
long = Dataset.from_list(rows)

model = SentenceTransformer(sys.argv[1])
# the model's own prompts ("query: " / "passage: " for E5) on the texts: the evaluator encodes with them too
pairs = pairs_from_long(long, model=model).shuffle(seed=0)  # anchor, positive, id, query_lang, passage_lang, group
args = SentenceTransformerTrainingArguments(
    output_dir="runs/example", per_device_train_batch_size=4, max_steps=int(sys.argv[2]) if len(sys.argv) > 2 else 20,
    batch_sampler=functools.partial(HybridSampler, alpha=0.5), report_to="none", save_strategy="no")
evaluator = LAReQAEvaluator.from_lists([r["id"] for r in rows], [r["lang"] for r in rows], [r["query"] for r in rows],
                                       [r["lang"] for r in rows], [r["positive"] for r in rows], list(range(len(rows))))
trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=pairs, evaluator=evaluator,
                                     loss=MultipleNegativesRankingLoss(model),
                                     data_collator=PairCollator(preprocess_fn=model.preprocess))
trainer.train()
print(evaluator(model))
