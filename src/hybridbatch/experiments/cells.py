"""One cell of a grid: train it (unless it is the zero-shot base), evaluate it on the XQuAD-R test articles (and TyDi
GoldP dev, and the domain-shift pools when asked), and keep its numbers in `OUT/cells/<key>/cell.json`.

A finished cell is never recomputed, and a killed cell resumes from its last training checkpoint, so a grid can be
stopped and re-run at will.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybridbatch.data.lookup import load_corpus
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.beir import evaluate_beir
from hybridbatch.evaluation.lareqa import evaluate_lareqa
from hybridbatch.evaluation.runtimes import DEFAULT_ENCODER, drop_exports, resolve_encoder
from hybridbatch.evaluation.shift import run_shift, summary_row
from hybridbatch.experiments.presets import BASE, RESULT_FIELDS, Cell, Preset
from hybridbatch.experiments.recipes import recipe_settings
from hybridbatch.experiments.training import train
from hybridbatch.models.loading import load_model
from hybridbatch.provenance import provenance, write_json
from hybridbatch.report.evaluation import write_eval
from hybridbatch.report.shift import shift_documents
from hybridbatch.training.config import TrainConfig


def train_config(cell: Cell, preset: Preset, data_dir: str | None, out: Path) -> TrainConfig:
    """The TrainConfig of a cell: the preset's shared settings and the cell's sampler / loss / seed; resumes when
    `out` holds a started run."""
    alpha = cell.alpha if cell.alpha is not None else 0.5
    return TrainConfig(
        model=preset.model, data=list(preset.train_data), data_dir=data_dir,
        data_weights=list(preset.train_weights) if preset.train_weights else None, out=str(out), sampler=cell.sampler,
        alpha=alpha,
        batch_size=preset.batch_size, max_steps=preset.max_steps, lr=preset.lr, max_seq_length=preset.max_seq_length,
        context=preset.context, scale=cell.scale, freeze_embeddings=preset.freeze_embeddings, seed=cell.seed,
        eval_steps=min(preset.eval_steps, max(1, preset.max_steps // 3)) if preset.eval_steps else None,
        patience=preset.patience, min_improvement=preset.min_improvement, warmup_ratio=preset.warmup_ratio,
        snapshot_steps=list(preset.snapshot_steps) if preset.snapshot_steps and cell.seed == preset.seeds[0] else None,
        resume=(out / "train_config.json").exists(), progress=True, device=preset.device,
        precision=preset.precision, **recipe_settings(cell.loss, cell.adv_weight),
    )


def train_summary(model_dir: Path) -> dict[str, Any]:
    """What a cell keeps of its train.json: steps, early stopping, the checkpoint rule and its best value, speed,
    the realised mix and epoch coverage (`best_val_loss` in runs made before the one-rule selection)."""
    tj = json.loads((model_dir / "train.json").read_text(encoding="utf-8"))
    return {k: tj[k] for k in ("steps", "stopped_early", "stop", "best_step", "best_val_loss", "selection",
                               "wall_seconds", "pairs_per_second", "mix", "coverage", "learning_curve") if k in tj}


def run_cell(cell: Cell, preset: Preset, out_root: Path, data_dir: str | None, *,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (unless base), evaluate on XQuAD-R test articles (and TyDi GoldP dev), write cell.json. Idempotent.
    A cell that is another one's run (`Cell.canonical`) reuses that run's folder; the record names both."""
    run = cell.canonical()
    record = _run_cell(run, preset, out_root, data_dir, log=log)
    if run == cell:
        return record
    return {**record, "cell": dataclasses.asdict(cell), "key": cell.key, "group": cell.group, "same_run_as": run.key}


def check_cells(cells: list[Cell] | tuple[Cell, ...], preset: Preset, data_dir: str | None) -> None:
    """Every training cell's settings checked (`TrainConfig.validate`) before a grid prints its plan or trains
    anything: a bad axis value (`--adv-weights inf`) is refused at once, naming the cell, not inside it."""
    for cell in cells:
        if cell.sampler == BASE:
            continue
        try:
            train_config(cell, preset, data_dir, Path("cells") / cell.key / "model").validate()
        except UsageError as e:
            raise UsageError(f"cell {cell.key}: {e}") from None


def _run_cell(cell: Cell, preset: Preset, out_root: Path, data_dir: str | None, *,
              log: Callable[[str], None]) -> dict[str, Any]:
    d = out_root / "cells" / cell.key
    if (d / "cell.json").exists():
        return _finished(cell, preset, d, data_dir, log)
    t0 = time.perf_counter()
    model_dir = d / "model"
    model_name = preset.model if cell.sampler == BASE else _trained(cell, preset, model_dir, data_dir, log)
    model = load_model(model_name, max_seq_length=preset.max_seq_length if not preset.context else None,
                       device=preset.device)
    encoder = resolve_encoder(preset.encoder, model)
    log(f"[{cell.key}] evaluating on {test_articles(preset.test_split)} ({encoder}) ...")
    test = load_corpus("xquad-r", data_dir, split=preset.test_split)
    res = evaluate_lareqa(model, test, context=preset.context, batch_size=preset.eval_batch_size,
                          model_name=model_name, encoder=encoder)
    write_eval(res, d / "xquad-r")
    record: dict[str, Any] = {"cell": dataclasses.asdict(cell), "key": cell.key, "group": cell.group,
                              "preset": dataclasses.asdict(preset), "encoder": encoder, "xquad-r": res.summary}
    if preset.tydi and cell.seed == preset.seeds[0]:
        log(f"[{cell.key}] evaluating on TyDi GoldP dev (domain shift) ...")
        tydi = first_questions(load_corpus("tydiqa-goldp", data_dir), preset.tydi_limit)
        model.max_seq_length = preset.tydi_max_seq_length
        beir = evaluate_beir(model, tydi, batch_size=preset.eval_batch_size, model_name=model_name, encoder=encoder)
        write_eval(beir, d / "tydiqa-goldp")
        record["tydiqa-goldp"] = beir.summary
    if preset.shift:
        record["shift"], record["shift_limit"] = (_shift_cell(cell, preset, d, data_dir, model, log, encoder),
                                                  preset.shift_limit)
    if (model_dir / "train.json").exists():
        record["train"] = train_summary(model_dir)
        if encoder != DEFAULT_ENCODER:  # exported: the checkpoint's exports are never read again, free ~1.3 GB
            drop_exports(res.model["weights_sha256"])  # the evaluation already hashed the weights
    record["wall_time_s"] = time.perf_counter() - t0
    record["provenance"] = provenance(model=preset.model, seed=cell.seed, data={"name": "xquad-r",
                                      "checksum": res.checksum, "split": preset.test_split,
                                      "train": list(preset.train_data)})
    write_json(d / "cell.json", record)
    return record


def _finished(cell: Cell, preset: Preset, d: Path, data_dir: str | None, log: Callable[[str], None],
              ) -> dict[str, Any]:
    """A finished cell's record (made with the same settings, else UsageError); it gains (or, with another --limit,
    redoes) the shift evaluations on request."""
    done = d / "cell.json"
    record = json.loads(done.read_text(encoding="utf-8"))
    _check_same_settings(done, record, preset)
    if preset.shift and ("shift" not in record or record.get("shift_limit") != preset.shift_limit):
        record["shift"] = _shift_cell(cell, preset, d, data_dir, None, log, record.get("encoder", DEFAULT_ENCODER))
        record["shift_limit"] = preset.shift_limit
        write_json(done, record)
    return record


def _trained(cell: Cell, preset: Preset, model_dir: Path, data_dir: str | None, log: Callable[[str], None]) -> str:
    """The cell's trained model folder, training it (or resuming its checkpoint) unless train.json is there."""
    if not (model_dir / "train.json").exists():
        if model_dir.exists() and not (model_dir / "train_config.json").exists():
            shutil.rmtree(model_dir)  # killed before training wrote anything resumable
        log(f"[{cell.key}] training {preset.max_steps} steps ...")
        train(train_config(cell, preset, data_dir, model_dir))
    return str(model_dir)


def _shift_cell(cell: Cell, preset: Preset, d: Path, data_dir: str | None, model: Any,
                log: Callable[[str], None], encoder: str) -> dict[str, float]:
    """TyDi GoldP and Tatoeba in multilingual pools (evaluation.shift) into d/shift/; the summary row for cell.json."""
    name = preset.model if cell.sampler == BASE else str(d / "model")
    if model is None and not (cell.sampler == BASE or (d / "model" / "modules.json").exists()):
        raise UsageError(f"{d}: --shift needs the cell's trained model in {d / 'model'} (removed by clean_models)")
    log(f"[{cell.key}] evaluating domain shift (TyDi + Tatoeba multilingual pools) ...")
    results, _ = run_shift(name, data_dir=data_dir, out_dir=d / "shift", limit=preset.shift_limit,
                           batch_size=preset.eval_batch_size, max_seq_length=preset.tydi_max_seq_length, model=model,
                           encoder=encoder, documents=shift_documents)
    return summary_row(results)


def _check_same_settings(done: Path, record: dict[str, Any], preset: Preset) -> None:
    old = record.get("preset", {})
    # compared as JSON holds them: a tuple field reads back from cell.json as a list
    diff = [f"{f} = {old[f]!r} there, {getattr(preset, f)!r} now" for f in RESULT_FIELDS
            if f in old and old[f] != json.loads(json.dumps(getattr(preset, f)))]
    if diff:
        raise UsageError(f"{done} was made with other settings ({'; '.join(diff)}); give another --out, or delete "
                         "that cell's folder to recompute it")


def test_articles(split: str | None) -> str:
    """The XQuAD-R articles cells of a preset's `test_split` are tested on, in words."""
    return "XQuAD-R test articles" if split == "test" else "all XQuAD-R articles (zero-shot)"


def first_questions(corpus: Any, n: int | None) -> Any:
    """The articles holding the first `n` questions of each language (all of them when n is None): a smaller,
    deterministic pool for the domain-shift check on CPU."""
    if n is None:
        return corpus
    arts = {q.article for lang in corpus.languages for q in corpus.questions[lang][:n]}
    return corpus.subset(arts, f"{corpus.name}:first{n}")
