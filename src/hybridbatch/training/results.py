"""What a finished run writes (rank 0): the final model, `mix.json` (the realised batch mix) and `train.json`
(settings, provenance, the sampler's config and what it dropped, the checkpoint rule, curves, epoch coverage, why
it stopped)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from transformers import EarlyStoppingCallback

from hybridbatch.device import Placement
from hybridbatch.models.loading import prefixes
from hybridbatch.provenance import process_commit, provenance, write_json
from hybridbatch.sampling.mix import summarise_plans
from hybridbatch.sampling.samplers import takes_alpha
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.inputs import RunData
from hybridbatch.training.losses import loss_record
from hybridbatch.training.run_dir import batch_log_path, finalise_model, read_jsonl
from hybridbatch.training.selection import Selection


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


def loss_curve(history: list[dict[str, Any]], metric: str | None, resumed_step: int = 0
               ) -> dict[str, list[dict[str, Any]]]:
    """The training loss and the checkpoint rule's metric over the steps, from the trainer's log history; with a
    language-adversarial loss also its classifier's cross-entropy and accuracy (on the latest batch at each log, and
    with its memory on, on the earlier batches it remembers: `memory_ce`, `memory_acc`).

    Each train entry is the mean loss since the previous log. A resume between two logs restarts the trainer's
    running sum (it is not in the checkpoint), so the first entry after it covers only the steps since the resume:
    that entry says so (`from_step`), where an uninterrupted run's would cover more steps."""
    train = [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h]
    if resumed_step:
        before = [e["step"] for e in train if e["step"] <= resumed_step]
        after = next((e for e in train if e["step"] > resumed_step), None)
        if after is not None and (before[-1] if before else 0) < resumed_step:
            after["from_step"] = resumed_step + 1
    curves = {
        "train": train,
        "val": [{"step": h["step"], "metric": metric, "value": h[metric]} for h in history if metric and metric in h],
    }
    keys = ("language_ce", "language_acc", "memory_ce", "memory_acc")
    language = [{"step": h["step"], **{k: h[k] for k in keys if k in h}} for h in history if "language_ce" in h]
    return {**curves, "language": language} if language else curves


def learning_curve(history: list[dict[str, Any]], metric: str | None) -> list[dict[str, Any]]:
    """One row per held-out evaluation: its step, the checkpoint rule's value, and the mean logged training loss
    since the previous evaluation (None where no training loss was logged in between). The rows a reader plots to
    see whether a run had converged when it stopped."""
    if not metric:
        return []
    rows, last, losses = [], 0, [(h["step"], h["loss"]) for h in history if "loss" in h]
    for h in history:
        if metric not in h:
            continue
        window = [v for s, v in losses if last < s <= h["step"]]
        rows.append({"step": h["step"], "value": h[metric],
                     "train_loss": sum(window) / len(window) if window else None})
        last = h["step"]
    return rows


def stop_record(trainer: Any, config: TrainConfig, max_steps: int) -> dict[str, Any]:
    """Why training stopped: `early_stopping` (the checkpoint rule's metric did not improve for `patience`
    evaluations before the cap), `max_steps` (the cap was reached), or `interrupted` (a callback stopped it). The
    patience counter is the early-stopping callback's (restored from the checkpoint on resume)."""
    stopper = next((c for c in trainer.callback_handler.callbacks if isinstance(c, EarlyStoppingCallback)), None)
    counter = stopper.early_stopping_patience_counter if stopper is not None else None
    step = trainer.state.global_step
    if step >= max_steps:
        reason = "max_steps"
    elif stopper is not None and counter >= stopper.early_stopping_patience:
        reason = "early_stopping"
    else:
        reason = "interrupted"
    best = trainer.state.best_global_step
    return {"reason": reason, "step": step, "max_steps": max_steps, "patience": config.patience if stopper else 0,
            "evaluations_without_improvement": counter, "best_step": best,
            "best_before_last": best is not None and best < step}


def write_results(config: TrainConfig, trainer: Any, data: RunData, selection: Selection, loss: Any,
                  out: Path, world: int, max_steps: int, resumed_step: int, timer: Any, t_start: float,
                  place: Placement) -> None:
    """Rank 0: the final model, mix.json and train.json; the checkpoints go unless `keep_checkpoints`."""
    with timer("save"):
        finalise_model(trainer, out)
    sampler = trainer.train_batch_sampler
    entries = read_jsonl(batch_log_path(out, 0)) if config.batch_log else []
    micro = trainer.state.global_step * config.grad_accum
    mix = summarise_plans(entries) if entries else sampler.mix(micro)
    mix["planned"] = {"alpha": config.alpha if takes_alpha(config.sampler) else None, "sampler": config.sampler}
    write_json(out / "mix.json", mix)
    qp, pp = prefixes(trainer.model)
    write_json(out / "train.json", provenance(
        kind="train",
        model=config.model,
        data=[{"name": ps.name, "checksum": ps.checksum, "qids": len(ps.items), "items": len(ps)}
              for ps in data.train_sets],
        validation_qids=data.val_ids if selection.rule != "none" else 0,
        seed=config.seed,
        settings=config.to_dict(),
        sampler=sampler.config() if sampler is not None else None,
        selection={**selection.to_json(), "best_value": trainer.state.best_metric,
                   "best_step": trainer.state.best_global_step},
        prefixes={"query": qp, "passage": pp},
        loss=loss_record(loss, config),
        world_size=world,
        device=place.to_dict(),
        max_steps=max_steps,
        steps=trainer.state.global_step,
        stopped_early=trainer.state.global_step < max_steps,
        stop=stop_record(trainer, config, max_steps),
        best_step=trainer.state.best_global_step,
        resumed_from_step=resumed_step or None,
        wall_seconds=round(time.perf_counter() - t_start, 3),
        seconds=timer.seconds,
        pairs_per_second=round(micro * config.batch_size * world / max(timer.seconds.get("train", 1e-9), 1e-9), 2),
        mix=mix,
        coverage=realised_coverage(sampler, micro),
        loss_curve=loss_curve(trainer.state.log_history, selection.metric, resumed_step),
        learning_curve=learning_curve(trainer.state.log_history, selection.metric),
        git_commit=process_commit(),
    ))
    if not config.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
