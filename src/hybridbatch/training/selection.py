"""The checkpoint rule, the same for every sampler: an evaluator of the held-out ids (the caller's: training knows
no evaluation protocol; `hybridbatch.train` passes the LAReQA one), or the loss on one fixed set of validation
batches drawn by the validation sampler, or none (no held-out ids: the last step is kept)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hybridbatch.data.records import PairSet
from hybridbatch.errors import UsageError
from hybridbatch.sampling.samplers import VALIDATION_SAMPLER
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.inputs import RunData


@dataclass(frozen=True)
class HeldOutEvaluator:
    """How to build the checkpoint evaluator (a sentence-transformers `SentenceEvaluator`, whose primary metric
    chooses the checkpoint) from the held-out PairSets, and the rule's name and note for train.json."""

    build: Callable[[Sequence[PairSet]], Any]
    rule: str
    note: str = ""


@dataclass
class Selection:
    """How checkpoints are chosen: `rule` ('none', 'loss' or the evaluator's), the metric the trainer compares."""

    rule: str
    metric: str | None = None
    greater_is_better: bool | None = None
    evaluator: Any = None
    eval_batch_sampler: Any = None
    eval_batch_size: int = 0
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "metric": self.metric, "greater_is_better": self.greater_is_better,
                "eval_batch_size": self.eval_batch_size or None, "note": self.note}


def evaluator_metric(evaluator: Any) -> str:
    """The trainer's log key of an evaluator's primary metric: sentence-transformers prefixes it with the evaluator's
    name (on its first call) and the trainer with 'eval_'."""
    name, primary = getattr(evaluator, "name", ""), evaluator.primary_metric
    return f"eval_{primary if not name or primary.startswith(name + '_') else f'{name}_{primary}'}"


def build_selection(config: TrainConfig, data: RunData, world: int,
                    evaluator: HeldOutEvaluator | None = None) -> Selection:
    """Decide how checkpoints are chosen (and whether there is anything to choose with)."""
    if config.val_fraction <= 0 or not data.val_ids:
        return Selection("none", note="no validation ids (val_fraction 0): the last step is kept")
    if config.select != "loss":
        if evaluator is None:
            raise UsageError(f"select={config.select!r} needs an evaluator of the held-out ids: call "
                             "hybridbatch.train (it passes the LAReQA one), pass evaluator=, or use select='loss'")
        ev = evaluator.build(data.val_sets)
        return Selection(evaluator.rule, evaluator_metric(ev), bool(getattr(ev, "greater_is_better", True)),
                         evaluator=ev, note=evaluator.note)
    groups = len({(p.name, it.group or q) for p in data.val_sets for q, by in p.items.items() for it in by.values()})
    bs = min(config.batch_size, groups // world)
    if bs < 2:
        return Selection("none", note=f"too few validation answer groups ({groups}) for validation batches")
    sampler = functools.partial(VALIDATION_SAMPLER, world_size=world, num_batches=config.eval_batches * world)
    return Selection("loss", "eval_loss", False, eval_batch_sampler=sampler, eval_batch_size=bs,
                     note=f"loss on {config.eval_batches} fixed batch group(s) of the {VALIDATION_SAMPLER.name} "
                          f"sampler (seed {config.seed}) over the validation ids, the same for every training sampler")
