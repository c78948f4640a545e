"""Hybrid-batch training: `train_model(config)` as a short sequence of named steps (settings: training/config.py).

`prepare_data` (training data, XQuAD-R train split by default, minus a few % of the ids held out for checkpoint
selection; training/inputs.py), `load_for_training` (training/model.py), `build_datasets` (the pair datasets of
sampling/dataset.py), `build_selection` (one sampler-independent checkpoint rule: the caller's evaluator of the
held-out ids, or the loss on fixed validation batches; training/selection.py), `training_arguments` (with
`batch_sampler=functools.partial(<sampler>, ...)`, exactly as a user of sentence-transformers would pass it),
`build_trainer` (training/hybrid_trainer.py) and `write_results` (training/results.py). The loss is InfoNCE with in-batch
negatives, or the multi-positive form over translation batches, optionally with the language-adversarial term
(training/losses.py; those two read the rows' `label` column, which `build_datasets` then adds). Training knows no
evaluation protocol: `hybridbatch.train` (experiments/training.py) passes the LAReQA evaluator of the held-out ids.
Progress is reported only through the `callbacks` given.

Output folder (`config.out`, training/run_dir.py): a standard sentence-transformers model folder, plus
- `train.json`: settings, provenance (git commit, data checksums, seed, wall time), realised batch mix and epoch
  coverage, options dropped for lack of answer groups (`sampler.dropped`), the checkpoint rule (`selection`), curves;
- `train_config.json`: the resolved settings, written first; `--resume` checks them;
- `batches.jsonl` (rank 0; `batches.rank<r>.jsonl` for other ranks): one line per trained micro-batch (step, kind,
  source, languages, a hash of its (qid, qlang, plang) rows, its qids) - what the model actually saw;
- `mix.json`: the realised batch mix;
- `checkpoints/checkpoint-<step>` (with `adversary.pt`, the language classifier, when the loss has one): written to
  `checkpoints/.staging` and renamed, so a killed run never leaves a half-written checkpoint behind (the
  transformers Trainer writes in place); removed after a successful run unless `keep_checkpoints`;
- `snapshots/step-<n>/`: the model at each of `snapshot_steps` (kept: test-set learning curves).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sentence_transformers import SentenceTransformerTrainingArguments
from transformers import EarlyStoppingCallback, TrainerCallback
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_utils import set_seed

from hybridbatch.device import Placement, placement
from hybridbatch.models.loading import prefixes
from hybridbatch.provenance import Timer
from hybridbatch.sampling.base import world_size_from_env
from hybridbatch.sampling.collator import PairCollator
from hybridbatch.sampling.samplers import sampler_class, sampler_options
from hybridbatch.sampling.sources import MultiSourceSampler
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.hybrid_trainer import HybridTrainer, Snapshots
from hybridbatch.training.inputs import RunData, build_datasets, plan_steps, prepare_data
from hybridbatch.training.losses import make_loss
from hybridbatch.training.model import load_for_training
from hybridbatch.training.results import write_results
from hybridbatch.training.run_dir import barrier, open_batch_log, out_dir_mode, prepare_out_dir, rank
from hybridbatch.training.selection import HeldOutEvaluator, Selection, build_selection


def sampler_factory(config: TrainConfig, world: int) -> Any:
    """The training batch sampler as sentence-transformers takes it: a partial of the sampler class (the trainer
    passes dataset, batch size, seed...). One epoch is one pass over the (id, language) items."""
    run = config.max_steps * config.grad_accum if config.max_steps else None  # a ramp spans the run, not one epoch
    kw = sampler_options(config.sampler, world_size=world, lang_weighting=config.lang_weighting, alpha=config.alpha,
                         per_pair=config.per_pair, ramp_batches=run, k=config.k, queries=config.queries,
                         own=config.own)
    if len(config.data) > 1 or config.data_weights:  # several sources: each its own sampler and kinds, weighted
        return functools.partial(MultiSourceSampler, sampler=config.sampler, weights=config.data_weights, **kw)
    return functools.partial(sampler_class(config.sampler), **kw)


def check_sampler(config: TrainConfig, data: RunData, world: int) -> None:
    """Build the training sampler once up front, so a batch size the data cannot fill is a UsageError before any
    output exists (the trainer builds its own copy later)."""
    sampler_factory(config, world)(data.train_dataset, batch_size=config.batch_size, drop_last=True,
                                   seed=config.seed)


# LanguageAdversarialLoss.classifier as the trainer names it: the optimizer's parameters are the loss's named_parameters()
HEAD_PARAMETERS = r"^classifier\."


def head_learning_rate(config: TrainConfig) -> dict[str, Any]:
    """The adversary's classifier on a learning rate of its own (`adversarial_lr`), through sentence-transformers'
    `learning_rate_mapping`: a fresh head at the encoder's small rate never leaves chance, and then the reversed
    gradient carries nothing."""
    if config.adversarial_weight > 0 and config.adversarial_lr is not None:
        return {"learning_rate_mapping": {HEAD_PARAMETERS: config.adversarial_lr}}
    return {}


def training_arguments(config: TrainConfig, out: Path, max_steps: int, world: int, selection: Selection,
                       place: Placement) -> Any:
    """The `SentenceTransformerTrainingArguments` of a run (the one place device / precision settings belong)."""
    use_val = selection.rule != "none"
    eval_steps = config.eval_steps or max(1, max_steps // 10)
    save_steps = eval_steps if use_val else (config.save_steps or max(1, max_steps // 10))
    if use_val and config.save_steps and config.save_steps % eval_steps == 0:
        save_steps = config.save_steps
    return SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        max_steps=max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=selection.eval_batch_size or config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        **head_learning_rate(config),
        weight_decay=config.weight_decay,
        warmup_steps=int(round(config.warmup_ratio * max_steps)),
        max_grad_norm=config.max_grad_norm,
        lr_scheduler_type="linear",
        seed=config.seed,
        batch_sampler=sampler_factory(config, world),
        logging_steps=max(1, min(config.logging_steps, max_steps)),
        eval_strategy="steps" if use_val else "no",
        eval_steps=eval_steps if use_val else None,
        save_strategy="steps",
        save_steps=save_steps,
        save_total_limit=max(1, config.save_total_limit),
        load_best_model_at_end=use_val,
        metric_for_best_model=selection.metric,
        greater_is_better=selection.greater_is_better,
        restore_callback_states_from_checkpoint=True,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_drop_last=True,
        ddp_find_unused_parameters=True if world > 1 else None,  # arbitrary models may have unused heads
        **place.training_kwargs(world),  # CPU: use_cpu + gloo, as always; CUDA: NCCL; bf16 / fp16 autocast
    )


def build_trainer(config: TrainConfig, model: Any, args: Any, data: RunData, selection: Selection, loss: Any,
                  log: Any, callbacks: Sequence[TrainerCallback] = ()) -> Any:
    """The HybridTrainer of a run, with early stopping and the caller's callbacks (its progress display)."""
    extra: list[Any] = []
    if config.snapshot_steps:
        extra.append(Snapshots(Path(config.out) / "snapshots", config.snapshot_steps))
    if selection.rule != "none" and config.patience > 0:
        extra.append(EarlyStoppingCallback(early_stopping_patience=config.patience,
                                           early_stopping_threshold=config.min_improvement))
    trainer = HybridTrainer(
        model=model, args=args, train_dataset=data.train_dataset, eval_dataset=data.val_dataset, loss=loss,
        evaluator=selection.evaluator, data_collator=PairCollator(preprocess_fn=model.preprocess, keep_metadata=True),
        callbacks=[*extra, *callbacks], batch_log=log, eval_batch_sampler=selection.eval_batch_sampler,
        source_name=data.train_sets[0].name)
    if config.progress:  # the callbacks show progress (the CLI's bar: loss and validation); no dicts printed too
        trainer.remove_callback(PrinterCallback)
    return trainer


def train_model(config: TrainConfig, *, evaluator: HeldOutEvaluator | None = None,
                callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train a model as `config` says; returns the output folder (a sentence-transformers model + train.json).
    `evaluator` builds the checkpoint rule's evaluator from the held-out ids (needed unless select='loss');
    `callbacks` (transformers TrainerCallbacks) follow the run, e.g. a progress bar. Bad settings raise UsageError /
    ModelError / DataError before anything is written."""
    t_start, timer = time.perf_counter(), Timer()
    config.validate()
    mode = out_dir_mode(config)  # every rank reads the same untouched folder: writes start after the barrier
    my_rank, world = rank(), world_size_from_env()
    with timer("data"):
        data = prepare_data(config)
    place = placement(config.device, config.precision)  # resolved once: model, TrainingArguments and train.json agree
    set_seed(config.seed)
    with timer("model"):
        model = load_for_training(config, place)
    with timer("pair_table"):
        build_datasets(config, data, *prefixes(model))
    check_sampler(config, data, world)  # fail on bad settings before anything is written
    selection = build_selection(config, data, world, evaluator)
    max_steps = plan_steps(config, data, world)
    loss = make_loss(model, config, world, data.languages)
    args = training_arguments(config, Path(config.out), max_steps, world, selection, place)  # initialises distributed
    out, resume_ckpt, resumed_step = prepare_out_dir(config, mode, my_rank)
    log = open_batch_log(config, out, my_rank, resumed_step)
    trainer = build_trainer(config, model, args, data, selection, loss, log, callbacks)
    try:
        with timer("train"):
            trainer.train(resume_from_checkpoint=str(resume_ckpt) if resume_ckpt else None)
    finally:
        if log is not None:
            log.close()
    barrier()
    if my_rank == 0:
        write_results(config, trainer, data, selection, loss, out, world, max_steps, resumed_step, timer, t_start,
                      place)
    barrier()
    return out
