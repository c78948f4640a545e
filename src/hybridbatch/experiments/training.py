"""`train(config)` as the package offers it (`hybridbatch.train`): training (training/) with the checkpoint rule
of evaluation/ composed in. Training knows no evaluation protocol; this is where the LAReQA evaluator of the
held-out ids is handed to it, so `select='lareqa'` means what it always has."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hybridbatch.data.records import PairSet
from hybridbatch.evaluation.evaluator import LAReQAEvaluator
from hybridbatch.report.curves import plot_train_json
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.run_dir import rank
from hybridbatch.training.selection import HeldOutEvaluator
from hybridbatch.training.trainer import train_model


def lareqa_evaluator(held_out: Sequence[PairSet]) -> LAReQAEvaluator:
    """LAReQA Multi mAP of the held-out ids (all their languages) against a pool of their answers in every language."""
    return LAReQAEvaluator.from_pairs(list(held_out), name="lareqa", primary_metric="multi_map", context=False,
                                      batch_size=64, write_csv=False)


LAREQA_RULE = HeldOutEvaluator(lareqa_evaluator, "lareqa", note="LAReQA Multi mAP of the validation ids (all their "
                               "languages) against a pool of their answers in every language")


def train(config: TrainConfig, *, callbacks: Sequence[Any] = ()) -> Path:
    """Train a model as `config` says, choosing checkpoints by the LAReQA rule (`select='lareqa'`, the default) or
    the validation loss; `callbacks` (transformers TrainerCallbacks) follow the run. Returns the output folder, which
also holds `learning_curve.png` (the held-out metric and training loss against the step)."""
    out = train_model(config, evaluator=LAREQA_RULE, callbacks=callbacks)
    if rank() == 0 and (out / "train.json").exists():
        plot_train_json(out / "train.json")  # learning_curve.png beside train.json (none without held-out ids)
    return out
