"""A run's inputs: the training PairSets (one per `data` entry), the question ids held out to choose the checkpoint,
and the pair datasets (sampling/dataset.py) built from them with the model's prefixes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hybridbatch.data.lookup import load_pairs
from hybridbatch.data.records import PairSet
from hybridbatch.sampling.dataset import pair_dataset
from hybridbatch.sampling.samplers import sampler_class
from hybridbatch.sampling.translations import with_row_labels
from hybridbatch.training.config import TrainConfig


def load_pairsets(config: TrainConfig) -> list[PairSet]:
    """One PairSet per `data` entry: a named dataset or LAReQA folder (train split), or a JSONL pairs file."""
    return [load_pairs(spec, config.data_dir, context=config.context, hard_negatives=config.hard_negatives,
                       split="train") for spec in config.data]


def split_validation(pairsets: list[PairSet], fraction: float, seed: int) -> tuple[list[PairSet], list[PairSet]]:
    """Hold out `fraction` of each source's question ids (all their language copies) for the checkpoint rule."""
    train, val = [], []
    for ps in pairsets:
        qids = sorted(ps.items)
        n_val = int(round(fraction * len(qids)))
        rng = np.random.default_rng([seed, 0x56414C])
        held = {qids[i] for i in rng.permutation(len(qids))[:n_val]} if n_val else set()
        train.append(PairSet(ps.name, {q: v for q, v in ps.items.items() if q not in held}, ps.checksum))
        val.append(PairSet(ps.name, {q: v for q, v in ps.items.items() if q in held}, ps.checksum))
    return train, val


@dataclass
class RunData:
    """What `prepare_data` gives the later steps: the PairSets (train / held-out validation ids), the pair
    datasets built from them with the model's prefixes, and the language codes of their `label` column (when the
    loss reads labels)."""

    train_sets: list[PairSet]
    val_sets: list[PairSet]
    train_dataset: Any = None
    val_dataset: Any = None
    languages: list[str] = field(default_factory=list)

    @property
    def val_ids(self) -> int:
        """The number of held-out question ids."""
        return sum(len(p.items) for p in self.val_sets)


def prepare_data(config: TrainConfig) -> RunData:
    """Read the training data and hold out `val_fraction` of each source's ids for checkpoint selection."""
    pairsets = load_pairsets(config)
    train_ps, val_ps = split_validation(pairsets, config.val_fraction, config.seed)
    return RunData(train_ps, val_ps)


def build_datasets(config: TrainConfig, data: RunData, query_prefix: str, passage_prefix: str) -> None:
    """The pair datasets: training rows (cross-lingual ones when the sampler needs them), and validation rows for the
    loss rule; with the `label` column when the loss reads it (`add_row_labels`)."""
    cross = sampler_class(config.sampler).needs_cross_rows(config.alpha)
    data.train_dataset = pair_dataset(data.train_sets, query_prefix, passage_prefix,
                                      hard_negatives=config.hard_negatives, cross=cross,
                                      negative_lang=config.hard_negative_lang)
    if config.select == "loss" and data.val_ids:
        data.val_dataset = pair_dataset(data.val_sets, query_prefix, passage_prefix,
                                        hard_negatives=config.hard_negatives, cross=True,
                                        negative_lang=config.hard_negative_lang)
    if config.row_labels:
        add_row_labels(data)


def add_row_labels(data: RunData) -> None:
    """The `label` column (answer group, query language, passage language) of the training and validation rows,
    added before any shuffle or select (on an index-mapped dataset it rewrites the table). The validation rows get
    the training codes, and a language only they have comes after them (the classifier never trains on it: in eval
    mode the adversarial loss is the base loss)."""
    data.train_dataset, data.languages = with_row_labels(data.train_dataset)
    if data.val_dataset is not None:
        langs = data.val_dataset.unique("query_lang") + data.val_dataset.unique("passage_lang")
        vocab = data.languages + sorted(set(langs) - set(data.languages))
        data.val_dataset, _ = with_row_labels(data.val_dataset, languages=vocab)


def plan_steps(config: TrainConfig, data: RunData, world: int) -> int:
    """max_steps, or `epochs` passes over the (id, language) items."""
    items = sum(len(ps) for ps in data.train_sets)
    steps_per_epoch = max(1, math.ceil(items / (config.batch_size * world * config.grad_accum)))
    return config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
