"""Hybrid-batch training: loss, trainer, checkpoints and resume, multi-process (the settings: training/config.py).

`train(config)` is a short sequence of named steps: `prepare_data` (training data, XQuAD-R train split by default,
minus a few % of the ids held out for checkpoint selection), `load_model`, `build_datasets` (the pair datasets of
sampling/dataset.py), `build_selection` (one sampler-independent checkpoint rule: LAReQA mAP of the held-out ids, or
the loss on fixed validation batches), `training_arguments` (with `batch_sampler=functools.partial(<sampler>, ...)`,
exactly as a user of sentence-transformers would pass it), `build_trainer` (training/hf.py) and `write_results`.
The loss is InfoNCE with in-batch negatives (`MultipleNegativesRankingLoss`, or its GradCache variant).

Output folder (`config.out`): a standard sentence-transformers model folder, plus
- `train.json`: settings, provenance (git commit, data checksums, seed, wall time), realised batch mix and epoch
  coverage, options dropped for lack of answer groups (`sampler.dropped`), the checkpoint rule (`selection`), curves;
- `train_config.json`: the resolved settings, written first; `--resume` checks them;
- `batches.jsonl` (rank 0; `batches.rank<r>.jsonl` for other ranks): one line per trained micro-batch (step, kind,
  source, languages, a hash of its (qid, qlang, plang) rows, its qids) - what the model actually saw;
- `mix.json`: the realised batch mix;
- `checkpoints/checkpoint-<step>`: written to `checkpoints/.staging` and renamed, so a killed run never leaves a
  half-written checkpoint behind (the transformers Trainer writes in place); removed after a successful run unless
  `keep_checkpoints`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.errors import HybridBatchError, ModelError, UsageError
from hybridbatch.training.config import LOSS_SCALE, TrainConfig  # noqa: F401  (the public names live here too)
from hybridbatch.device import Placement, placement

# --------------------------------------------------------------------------------------------------------------------
# Data and model
# --------------------------------------------------------------------------------------------------------------------


def load_pairsets(config: TrainConfig) -> list[Any]:
    """One PairSet per `data` entry: a named dataset or LAReQA folder (train split), or a JSONL pairs file.
    Uses `corpus.load_pairs` when the corpus module has it; otherwise falls back to
    `load_corpus(spec).split()[0].pairs(...)` / `read_pairs_jsonl`."""
    from hybridbatch import data as corpus
    out = []
    for spec in config.data:
        load_pairs = getattr(corpus, "load_pairs", None)
        if load_pairs is not None:
            ps = load_pairs(spec, config.data_dir, context=config.context, hard_negatives=config.hard_negatives,
                            split="train")
        elif str(spec).endswith(".jsonl") and hasattr(corpus, "read_pairs_jsonl"):
            ps = corpus.read_pairs_jsonl(Path(spec))
        else:
            c = corpus.load_corpus(spec, config.data_dir)
            n_art = len(c.articles)
            train_c = c.split()[0] if n_art >= 48 else c  # XQuAD-R: first 36 articles; smaller sets: all
            ps = train_c.pairs(context=config.context, hard_negatives=config.hard_negatives)
        out.append(ps)
    return out


def split_validation(pairsets: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Hold out `fraction` of each source's question ids (all their language copies) for the validation loss."""
    from hybridbatch.data.records import PairSet

    train, val = [], []
    for ps in pairsets:
        qids = sorted(ps.items)
        n_val = int(round(fraction * len(qids)))
        rng = np.random.default_rng([seed, 0x56414C])
        held = {qids[i] for i in rng.permutation(len(qids))[:n_val]} if n_val else set()
        train.append(PairSet(ps.name, {q: v for q, v in ps.items.items() if q not in held}, ps.checksum))
        val.append(PairSet(ps.name, {q: v for q, v in ps.items.items() if q in held}, ps.checksum))
    return train, val


def load_st_model(name: str, max_seq_length: int | None = None, device: str = "auto", **prefixes: str | None) -> Any:
    """`models.load_model(name)` when the models module has it, else `SentenceTransformer(name)`; any failure
    becomes a ModelError (e.g. a hub id while offline)."""
    from hybridbatch import models
    loader = getattr(models, "load_model", None)
    try:
        if loader is not None:
            model = loader(name, device=device, max_seq_length=max_seq_length, **prefixes)
        else:
            if name == "embedded":
                raise ModelError("the embedded model is not available in this build; pass --model PATH_OR_ID")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(name, device=device)
    except HybridBatchError:
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure is the user's model name / network
        raise ModelError(f"cannot load model {name!r}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                         " (a hub id needs network; offline, pass a local sentence-transformers folder)") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def freeze_word_embeddings(model: Any) -> int:
    """Stop training the word embeddings (most of a multilingual model's parameters: ~9 s instead of ~11 s a step
    on CPU for e5-small). Returns the number of frozen parameters."""
    inner = getattr(model[0], "auto_model", None)
    if inner is None or not hasattr(inner, "get_input_embeddings"):
        raise UsageError("--freeze-embeddings needs a transformer model as the first module")
    emb = inner.get_input_embeddings()
    n = 0
    for p in emb.parameters():
        p.requires_grad_(False)
        n += p.numel()
    return n


def freeze_unused_pooler(model: Any) -> int:
    """A BERT-style `pooler` is never used by sentence-transformers pooling: freeze it so the optimizer skips it
    (and DDP does not wait for its gradients)."""
    inner = getattr(model[0], "auto_model", None)
    n = 0
    for name, p in (inner.named_parameters() if inner is not None else []):
        if name.startswith("pooler."):
            p.requires_grad_(False)
            n += p.numel()
    return n


def make_loss(model: Any, config: TrainConfig, world_size: int = 1) -> Any:
    """InfoNCE with in-batch negatives (+ the hard negative column when present): MNRL, or the GradCache variant
    (constant memory in the batch size). `symmetric` adds the passage -> query direction (own softmax, averaged);
    with several processes the in-batch negatives are gathered across ranks."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    kw: dict[str, Any] = {
        "scale": config.scale,
        "gather_across_devices": world_size > 1,
        "directions": ("query_to_doc", "doc_to_query") if config.symmetric else ("query_to_doc",),
        "partition_mode": "per_direction" if config.symmetric else "joint",
    }
    if config.cached_loss:
        return CachedMultipleNegativesRankingLoss(model, mini_batch_size=config.mini_batch_size, **kw)
    return MultipleNegativesRankingLoss(model, **kw)


# --------------------------------------------------------------------------------------------------------------------
# Output folder
# --------------------------------------------------------------------------------------------------------------------

_OWN_MARKERS = ("train_config.json", "train.json")


def check_out_dir(config: TrainConfig) -> str:
    """Decide what to do with the output folder before anything is written: 'fresh', 'resume' or 'overwrite'.
    A non-empty folder needs --resume or --overwrite, and --overwrite only deletes folders this command made."""
    from hybridbatch.provenance import check_out_dir as check_writable

    out = check_writable(config.out)
    non_empty = out.exists() and any(out.iterdir())
    ours = any((out / m).exists() for m in _OWN_MARKERS)
    if config.resume:
        if not non_empty:
            logging.getLogger(__name__).warning(
                "%s: --resume, but there is no run to resume (the folder is missing or empty): starting afresh", out)
            return "fresh"
        if not (out / "train_config.json").exists():
            raise UsageError(f"{out}: nothing to resume (no train_config.json); use a new --out folder")
        saved = json.loads((out / "train_config.json").read_text(encoding="utf-8"))
        now = config.trained_settings()
        diff = sorted(k for k in now if k in saved and saved[k] != now[k])
        if diff:
            changes = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in diff)
            raise UsageError(f"{out}: --resume with different settings ({changes}); an exact resume needs the same "
                             "settings")
        if (out / "train.json").exists():
            raise UsageError(f"{out}: this run already finished (train.json exists); nothing to resume")
        return "resume"
    if non_empty:
        if not config.overwrite:
            raise UsageError(f"{out}: output folder exists and is not empty; pass --resume to continue that run or "
                             "--overwrite to replace it, or choose another --out")
        if not ours:
            raise UsageError(f"{out}: not a hybridbatch training folder (no train_config.json / train.json); "
                             "refusing to delete it with --overwrite")
        return "overwrite"
    return "fresh"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (the staging folder never counts)."""
    best: tuple[int, Path] | None = None
    if not run_dir.is_dir():
        return None
    for p in run_dir.iterdir():
        if p.is_dir() and p.name.startswith("checkpoint-") and p.name[11:].isdigit():
            if (p / "trainer_state.json").exists() and (best is None or int(p.name[11:]) > best[0]):
                best = (int(p.name[11:]), p)
    return best[1] if best else None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: drop it (its step is redone after the resume)
            continue
    return out


def batch_log_path(out: Path, rank: int) -> Path:
    return out / ("batches.jsonl" if rank == 0 else f"batches.rank{rank}.jsonl")


# --------------------------------------------------------------------------------------------------------------------
# train()
# --------------------------------------------------------------------------------------------------------------------


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _finalise_model(trainer: Any, out: Path) -> None:
    """Save the final model into a temp folder beside `out`'s files, then move each entry into place."""
    tmp = out / ".final"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save(str(tmp))
    for p in tmp.iterdir():
        dest = out / p.name
        if dest.is_dir():
            shutil.rmtree(dest)
        os.replace(p, dest)
    tmp.rmdir()


@dataclass
class RunData:
    """What `prepare_data` gives the later steps: the PairSets (train / held-out validation ids) and the pair
    datasets built from them with the model's prefixes."""

    train_sets: list[Any]
    val_sets: list[Any]
    train_dataset: Any = None
    val_dataset: Any = None


def prepare_data(config: TrainConfig) -> RunData:
    """Read the training data and hold out `val_fraction` of each source's ids for checkpoint selection."""
    pairsets = load_pairsets(config)
    train_ps, val_ps = split_validation(pairsets, config.val_fraction, config.seed)
    return RunData(train_ps, val_ps)


def build_datasets(config: TrainConfig, data: RunData, query_prefix: str, passage_prefix: str) -> None:
    """The pair datasets (sampling.pair_dataset): training rows, and validation rows for the loss rule."""
    from hybridbatch.sampling.dataset import pair_dataset
    from hybridbatch.sampling.samplers import sampler_class

    cross = sampler_class(config.sampler).needs_cross_rows(config.alpha)
    data.train_dataset = pair_dataset(data.train_sets, query_prefix, passage_prefix,
                                      hard_negatives=config.hard_negatives, cross=cross,
                                      negative_lang=config.hard_negative_lang)
    if config.select == "loss" and _val_ids(data):
        data.val_dataset = pair_dataset(data.val_sets, query_prefix, passage_prefix,
                                        hard_negatives=config.hard_negatives, cross=True,
                                        negative_lang=config.hard_negative_lang)


def _val_ids(data: RunData) -> int:
    return sum(len(p.items) for p in data.val_sets)


def sampler_factory(config: TrainConfig, world: int) -> Any:
    """The training batch sampler as sentence-transformers takes it: a partial of the sampler class (the trainer
    passes dataset, batch size, seed...). One epoch is one pass over the (id, language) items."""
    import functools

    from hybridbatch.sampling.samplers import sampler_class, sampler_options

    run = config.max_steps * config.grad_accum if config.max_steps else None  # a ramp spans the run, not one epoch
    kw = sampler_options(config.sampler, world_size=world, lang_weighting=config.lang_weighting, alpha=config.alpha,
                         per_pair=config.per_pair, ramp_batches=run)
    if len(config.data) > 1 or config.data_weights:  # several sources: each its own sampler and kinds, weighted
        from hybridbatch.sampling.sources import MultiSourceSampler

        return functools.partial(MultiSourceSampler, sampler=config.sampler, weights=config.data_weights, **kw)
    return functools.partial(sampler_class(config.sampler), **kw)


@dataclass
class Selection:
    """The checkpoint rule, the same for every sampler: LAReQA mAP on the held-out validation ids (`lareqa`), or the
    loss on one fixed set of validation batches drawn by the `random` sampler (`loss`)."""

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


def build_selection(config: TrainConfig, data: RunData, world: int) -> Selection:
    """Decide how checkpoints are chosen (and whether there is anything to choose with)."""
    import functools

    if config.val_fraction <= 0 or not _val_ids(data):
        return Selection("none", note="no validation ids (val_fraction 0): the last step is kept")
    if config.select == "lareqa":
        from hybridbatch.evaluation.evaluator import LAReQAEvaluator

        ev = LAReQAEvaluator.from_pairs(data.val_sets, name="lareqa", primary_metric="multi_map",
                                        context=False, batch_size=64, write_csv=False)
        return Selection("lareqa", "eval_lareqa_multi_map", True, evaluator=ev,
                         note="LAReQA Multi mAP of the validation ids (all their languages) against a pool of their "
                              "answers in every language")
    from hybridbatch.sampling.samplers import VALIDATION_SAMPLER

    groups = len({(p.name, it.group or q) for p in data.val_sets for q, by in p.items.items() for it in by.values()})
    bs = min(config.batch_size, groups // world)
    if bs < 2:
        return Selection("none", note=f"too few validation answer groups ({groups}) for validation batches")
    sampler = functools.partial(VALIDATION_SAMPLER, world_size=world, num_batches=config.eval_batches * world)
    return Selection("loss", "eval_loss", False, eval_batch_sampler=sampler, eval_batch_size=bs,
                     note=f"loss on {config.eval_batches} fixed batch group(s) of the random sampler (seed "
                          f"{config.seed}) over the validation ids, the same for every training sampler")


def training_arguments(config: TrainConfig, out: Path, max_steps: int, world: int, selection: Selection,
                       place: Placement) -> Any:
    """The `SentenceTransformerTrainingArguments` of a run (the one place device / precision settings belong)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

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


def load_model(config: TrainConfig, place: Placement) -> Any:
    """The model to train, on the run's device, with the freezing the config asks for."""
    model = load_st_model(config.model, config.max_seq_length, device=place.device,
                          query_prefix=config.query_prefix, passage_prefix=config.passage_prefix,
                          allow_missing_weights=config.allow_missing_weights)
    if config.freeze_embeddings:
        freeze_word_embeddings(model)
    freeze_unused_pooler(model)
    return model


def plan_steps(config: TrainConfig, data: RunData, world: int) -> int:
    """max_steps, or `epochs` passes over the (id, language) items."""
    items = sum(len(ps) for ps in data.train_sets)
    steps_per_epoch = max(1, math.ceil(items / (config.batch_size * world * config.grad_accum)))
    return config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))


def prepare_out_dir(config: TrainConfig, mode: str, rank: int) -> tuple[Path, Path | None, int]:
    """After distributed init: rank 0 clears / creates the folder; returns (out, checkpoint to resume, its step)."""
    from hybridbatch.provenance import write_json

    out = Path(config.out)
    if rank == 0:
        if mode == "overwrite":
            for p in out.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        out.mkdir(parents=True, exist_ok=True)
        if mode != "resume":
            write_json(out / "train_config.json", config.trained_settings())
    _barrier()
    ckpt = latest_checkpoint(out / "checkpoints") if mode == "resume" else None
    step = json.loads((ckpt / "trainer_state.json").read_text())["global_step"] if ckpt else 0
    return out, ckpt, step


def build_trainer(config: TrainConfig, model: Any, args: Any, data: RunData, selection: Selection, loss: Any,
                  log: Any) -> Any:
    from transformers import EarlyStoppingCallback

    from hybridbatch.sampling.collator import PairCollator
    from hybridbatch.training.hf import HybridTrainer, RichProgress

    callbacks: list[Any] = []
    if selection.rule != "none" and config.patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    if config.progress:
        callbacks.append(RichProgress())
    trainer = HybridTrainer(
        model=model, args=args, train_dataset=data.train_dataset, eval_dataset=data.val_dataset, loss=loss,
        evaluator=selection.evaluator, data_collator=PairCollator(preprocess_fn=model.preprocess, keep_metadata=True),
        callbacks=callbacks, batch_log=log, eval_batch_sampler=selection.eval_batch_sampler,
        source_name=data.train_sets[0].name)
    if config.progress:  # our rich bar shows loss and validation; HF's printer would repeat them as dicts
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def open_batch_log(config: TrainConfig, out: Path, rank: int, resumed_step: int) -> Any:
    """The batch log, keeping what the steps before a resumed checkpoint trained (those after it are redone)."""
    if not config.batch_log:
        return None
    path = batch_log_path(out, rank)
    kept = [e for e in _read_jsonl(path) if e.get("step", 0) < resumed_step] if resumed_step else []
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in kept)
    return open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by train()


def realised_coverage(sampler: Any, micro_batches: int) -> list[dict[str, Any]]:
    """Per epoch trained: the share of (id, language) items the trained batch groups covered."""
    if sampler is None or not hasattr(sampler, "coverage"):
        return []
    per_epoch = sampler.num_batches // sampler.world_size
    groups = micro_batches  # one group per micro-batch step across ranks
    out = []
    epoch = 0
    while groups > 0:
        n = min(groups, per_epoch)
        out.append({"epoch": epoch, **sampler.coverage(n, epoch=epoch)})
        groups -= n
        epoch += 1
    return out


def write_results(config: TrainConfig, trainer: Any, data: RunData, selection: Selection, loss: Any,
                  out: Path, world: int, max_steps: int, resumed_step: int, timer: Any, t_start: float,
                  place: Placement) -> None:
    """Rank 0: the final model, mix.json and train.json."""
    from hybridbatch.provenance import process_commit, provenance, write_json
    from hybridbatch.sampling.mix import summarise_plans
    from hybridbatch.sampling.samplers import takes_alpha

    with timer("save"):
        _finalise_model(trainer, out)
    sampler = trainer.train_batch_sampler
    entries = _read_jsonl(batch_log_path(out, 0)) if config.batch_log else []
    micro = trainer.state.global_step * config.grad_accum
    mix = summarise_plans(entries) if entries else sampler.mix(micro)
    mix["planned"] = {"alpha": config.alpha if takes_alpha(config.sampler) else None, "sampler": config.sampler}
    write_json(out / "mix.json", mix)
    history = trainer.state.log_history
    metric = selection.metric
    curve = {
        "train": [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h],
        "val": [{"step": h["step"], "metric": metric, "value": h[metric]} for h in history if metric and metric in h],
    }
    qp, pp = prefixes_of(trainer.model)
    write_json(out / "train.json", provenance(
        kind="train",
        model=config.model,
        data=[{"name": ps.name, "checksum": ps.checksum, "qids": len(ps.items), "items": len(ps)}
              for ps in data.train_sets],
        validation_qids=_val_ids(data) if selection.rule != "none" else 0,
        seed=config.seed,
        settings=config.to_dict(),
        sampler=sampler.config() if sampler is not None else None,
        selection={**selection.to_json(), "best_value": trainer.state.best_metric,
                   "best_step": trainer.state.best_global_step},
        prefixes={"query": qp, "passage": pp},
        loss={"type": type(loss).__name__, "scale": config.scale, "directions": list(loss.directions),
              "gather_across_devices": bool(loss.gather_across_devices), "hard_negatives": config.hard_negatives,
              "hard_negative_lang": config.hard_negative_lang if config.hard_negatives else None,
              "mini_batch_size": config.mini_batch_size if config.cached_loss else None},
        world_size=world,
        device=place.to_dict(),
        max_steps=max_steps,
        steps=trainer.state.global_step,
        stopped_early=trainer.state.global_step < max_steps,
        best_step=trainer.state.best_global_step,
        resumed_from_step=resumed_step or None,
        wall_seconds=round(time.perf_counter() - t_start, 3),
        seconds=timer.seconds,
        pairs_per_second=round(micro * config.batch_size * world / max(timer.seconds.get("train", 1e-9), 1e-9), 2),
        mix=mix,
        coverage=realised_coverage(sampler, micro),
        loss_curve=curve,
        git_commit=process_commit(),
    ))
    if not config.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)


def prefixes_of(model: Any) -> tuple[str, str]:
    from hybridbatch.models.loading import prefixes

    return prefixes(model)


def train(config: TrainConfig) -> Path:
    """Train a model as `config` says; returns the output folder (a sentence-transformers model + train.json).
    Bad settings raise UsageError / ModelError / DataError before anything is written."""
    from transformers.trainer_utils import set_seed

    from hybridbatch.provenance import Timer
    from hybridbatch.sampling.base import world_size_from_env

    t_start, timer = time.perf_counter(), Timer()
    config.validate()
    mode = check_out_dir(config)  # every rank reads the same untouched folder: writes start after the barrier
    rank, world = _rank(), world_size_from_env()
    with timer("data"):
        data = prepare_data(config)
    place = placement(config.device, config.precision)  # resolved once: model, TrainingArguments and train.json agree
    set_seed(config.seed)
    with timer("model"):
        model = load_model(config, place)
    with timer("pair_table"):
        build_datasets(config, data, *prefixes_of(model))
    check_sampler(config, data, world)  # fail on bad settings before anything is written
    selection = build_selection(config, data, world)
    max_steps = plan_steps(config, data, world)
    loss = make_loss(model, config, world)
    args = training_arguments(config, Path(config.out), max_steps, world, selection, place)  # initialises distributed
    out, resume_ckpt, resumed_step = prepare_out_dir(config, mode, rank)
    log = open_batch_log(config, out, rank, resumed_step)
    trainer = build_trainer(config, model, args, data, selection, loss, log)
    try:
        with timer("train"):
            trainer.train(resume_from_checkpoint=str(resume_ckpt) if resume_ckpt else None)
    finally:
        if log is not None:
            log.close()
    _barrier()
    if rank == 0:
        write_results(config, trainer, data, selection, loss, out, world, max_steps, resumed_step, timer, t_start,
                      place)
    _barrier()
    return out


def check_sampler(config: TrainConfig, data: RunData, world: int) -> None:
    """Build the training sampler once up front, so a batch size the data cannot fill is a UsageError before any
    output exists (the trainer builds its own copy later)."""
    sampler_factory(config, world)(data.train_dataset, batch_size=config.batch_size, drop_last=True,
                                   seed=config.seed)


def _barrier() -> None:
    with contextlib.suppress(Exception):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()
