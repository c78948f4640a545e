"""Experiments built from the other modules: grids of (sampler, alpha, loss, seed) cells that each train and evaluate,
the paper's comparison as a preset, and the README demo.

A cell's results live in `OUT/cells/<key>/cell.json`; a finished cell is never recomputed, and a killed cell resumes
from its last training checkpoint. So `hybridbatch sweep` / `experiment paper` can be stopped and re-run at will.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.errors import UsageError
from hybridbatch.provenance import check_out_dir, provenance, write_json, write_text
from hybridbatch.report import tables as report
from hybridbatch.sampling.samplers import MIX_SAMPLERS, XX_AT_ALPHA_ONE

# plain InfoNCE; symmetric (+ passage -> query); one hard negative in the passage's language (hardneg) or in the
# query's own language (hardneg-q: the X-Y pairs meet a wrong answer in X, the comparison behind language bias)
LOSSES = ("plain", "symmetric", "hardneg", "hardneg-q")
BASE = "base"  # the zero-shot cell: no training


@dataclass(frozen=True)
class Cell:
    """One point of a grid. `alpha` matters only for samplers that mix batch types (hybrid and our own)."""

    sampler: str
    alpha: float | None = None
    loss: str = "plain"
    scale: float = 20.0
    seed: int = 0

    @property
    def key(self) -> str:
        if self.sampler == BASE:
            return BASE
        a = "" if self.alpha is None else f"-a{self.alpha:g}"
        s = "" if self.scale == 20.0 else f"-t{self.scale:g}"
        return f"{self.sampler}{a}-{self.loss}{s}-seed{self.seed}"

    @property
    def group(self) -> str:
        """The cell's name without the seed: what error bars are taken over."""
        return self.key.rsplit("-seed", 1)[0]

    def canonical(self) -> Cell:
        """The cell whose run this one is. At alpha 1 the mixing samplers draw exactly the xx batches, and hybrid at
        alpha 0 exactly the xy ones (no coin is tossed then; tested), so a sweep reuses those runs."""
        if self.sampler in XX_AT_ALPHA_ONE and self.alpha == 1.0:
            return dataclasses.replace(self, sampler="xx", alpha=None)
        if self.sampler == "hybrid" and self.alpha == 0.0:
            return dataclasses.replace(self, sampler="xy", alpha=None)
        return self


@dataclass(frozen=True)
class Preset:
    """Training and evaluation settings shared by every cell of a grid."""

    name: str
    model: str = "embedded"
    max_steps: int = 200
    batch_size: int = 32
    max_seq_length: int = 64
    lr: float = 3e-5
    freeze_embeddings: bool = True
    eval_steps: int | None = None  # validation-loss checks (early stopping); each costs a few batches of compute
    context: bool = False
    eval_batch_size: int = 128
    tydi: bool = True
    tydi_limit: int | None = None  # questions per language (their paragraphs form the pool); None: all of dev
    tydi_max_seq_length: int = 128  # paragraphs are long: a longer limit than the training one
    seeds: tuple[int, ...] = (0, 1, 2)
    note: str = ""
    shift: bool = False  # also the domain-shift evaluations (evaluation.shift: TyDi + Tatoeba pools), every seed
    shift_limit: int | None = None  # their --limit (None: all of TyDi dev and Tatoeba)
    device: str = "auto"  # training.device: auto | cpu | cuda | mps (training and evaluation)
    precision: str = "auto"  # training precision: auto | fp32 | bf16 | fp16
    encoder: str = "torch"  # evaluation runtime (evaluation.encoders): auto = the measured fastest one here


PRESETS: dict[str, Preset] = {
    "demo": Preset("demo", max_steps=60, batch_size=32, max_seq_length=48, eval_steps=20, tydi=False, seeds=(0,),
                   note="README demo: one short hybrid run; shows the pipeline, not the paper's effect sizes."),
    "small": Preset("small", max_steps=100, batch_size=32, max_seq_length=48, eval_steps=25, tydi=True,
                    tydi_limit=100, encoder="auto",
                    seeds=(0, 1, 2),
                    note="2-core CPU preset: short sequences, frozen word embeddings, 100 steps of batch 32; "
                         "TyDi GoldP on 100 dev questions per language, first seed only."),
    "full": Preset("full", max_steps=2000, batch_size=100, max_seq_length=128, freeze_embeddings=False,
                   eval_batch_size=256, tydi=True, seeds=(0, 1, 2),
                   note="GPU preset: the paper's batch 100, full sequences, all weights trained."),
}


def expand_grid(samplers: Sequence[str], alphas: Sequence[float], losses: Sequence[str], scales: Sequence[float],
                seeds: Sequence[int], include_base: bool = False) -> list[Cell]:
    """Every combination; alpha varies only for samplers that mix batch types, the others get one cell."""
    from hybridbatch.sampling.samplers import SAMPLERS

    for sampler in samplers:
        if sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
    if not samplers or not seeds or not losses or not scales:
        raise UsageError("the grid is empty: give at least one sampler, seed, loss and scale")
    for scale in scales:
        if not scale > 0:
            raise UsageError(f"loss scale must be positive, got {scale}")
    for loss in losses:
        if loss not in LOSSES:
            raise UsageError(f"unknown loss variant {loss!r}; choose from {', '.join(LOSSES)}")
    for a in alphas:
        if not 0.0 <= a <= 1.0:
            raise UsageError(f"alpha must be in [0, 1], got {a}")
    cells = [Cell(BASE)] if include_base else []
    for sampler, loss, scale, seed in itertools.product(samplers, losses, scales, seeds):
        for alpha in (alphas if sampler in MIX_SAMPLERS else [None]):
            cells.append(Cell(sampler, alpha, loss, scale, seed))
    return list(dict.fromkeys(cells))


# ---- one cell ----------------------------------------------------------------------------------------------------


def _train_config(cell: Cell, preset: Preset, data_dir: str | None, out: Path) -> Any:
    from hybridbatch.training.trainer import TrainConfig

    alpha = cell.alpha if cell.alpha is not None else 0.5
    return TrainConfig(
        model=preset.model, data=["xquad-r"], data_dir=data_dir, out=str(out), sampler=cell.sampler, alpha=alpha,
        batch_size=preset.batch_size, max_steps=preset.max_steps, lr=preset.lr, max_seq_length=preset.max_seq_length,
        context=preset.context, hard_negatives=cell.loss.startswith("hardneg"), symmetric=cell.loss == "symmetric",
        hard_negative_lang="query" if cell.loss == "hardneg-q" else "passage",
        scale=cell.scale, freeze_embeddings=preset.freeze_embeddings, seed=cell.seed,
        eval_steps=min(preset.eval_steps, max(1, preset.max_steps // 3)) if preset.eval_steps else None,
        resume=(out / "train_config.json").exists(), progress=True, device=preset.device,
        precision=preset.precision,
    )


def train_summary(model_dir: Path) -> dict[str, Any]:
    """What a cell keeps of its train.json: steps, early stopping, the checkpoint rule and its best value, speed,
    the realised mix and epoch coverage (`best_val_loss` in runs made before the one-rule selection)."""
    tj = json.loads((model_dir / "train.json").read_text(encoding="utf-8"))
    return {k: tj[k] for k in ("steps", "stopped_early", "best_step", "best_val_loss", "selection", "wall_seconds",
                               "pairs_per_second", "mix", "coverage") if k in tj}


def run_cell(cell: Cell, preset: Preset, out_root: Path, data_dir: str | None, *,
             log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (unless base), evaluate on XQuAD-R test articles (and TyDi GoldP dev), write cell.json. Idempotent.
    A cell that is another one's run (`Cell.canonical`) reuses that run's folder; the record names both."""
    run = cell.canonical()
    record = _run_cell(run, preset, out_root, data_dir, log=log)
    if run == cell:
        return record
    return {**record, "cell": dataclasses.asdict(cell), "key": cell.key, "group": cell.group, "same_run_as": run.key}


def _run_cell(cell: Cell, preset: Preset, out_root: Path, data_dir: str | None, *,
              log: Callable[[str], None]) -> dict[str, Any]:
    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.lareqa import evaluate_beir, evaluate_lareqa, write_eval
    from hybridbatch.models.loading import load_model
    from hybridbatch.training.trainer import train

    d = out_root / "cells" / cell.key
    done = d / "cell.json"
    if done.exists():
        record = json.loads(done.read_text(encoding="utf-8"))
        _check_same_settings(done, record, preset)
        if preset.shift and ("shift" not in record or record.get("shift_limit") != preset.shift_limit):
            # a finished cell gains (or, with another --limit, redoes) the shift evaluations on request
            record["shift"] = _shift_cell(cell, preset, d, data_dir, None, log, record.get("encoder", "torch"))
            record["shift_limit"] = preset.shift_limit
            write_json(done, record)
        return record
    t0 = time.perf_counter()
    model_dir = d / "model"
    if cell.sampler == BASE:
        model_name = preset.model
    else:
        if not (model_dir / "train.json").exists():
            if model_dir.exists() and not (model_dir / "train_config.json").exists():
                shutil.rmtree(model_dir)  # killed before training wrote anything resumable
            log(f"[{cell.key}] training {preset.max_steps} steps ...")
            train(_train_config(cell, preset, data_dir, model_dir))
        model_name = str(model_dir)
    model = load_model(model_name, max_seq_length=preset.max_seq_length if not preset.context else None,
                       device=preset.device)
    from hybridbatch.evaluation.encoders import resolve_encoder

    encoder = resolve_encoder(preset.encoder, model)
    log(f"[{cell.key}] evaluating on XQuAD-R test articles ({encoder}) ...")
    test = load_corpus("xquad-r", data_dir, split="test")
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
        if encoder != "torch":  # this checkpoint's exports are never read again: free their disk (~1.3 GB)
            from hybridbatch.evaluation.encoders import drop_exports

            drop_exports(res.model["weights_sha256"])  # the evaluation already hashed the weights
    record["wall_time_s"] = time.perf_counter() - t0
    record["provenance"] = provenance(model=preset.model, seed=cell.seed, data={"name": "xquad-r",
                                      "checksum": res.checksum})
    write_json(done, record)
    return record


def _shift_cell(cell: Cell, preset: Preset, d: Path, data_dir: str | None, model: Any,
                log: Callable[[str], None], encoder: str) -> dict[str, float]:
    """TyDi GoldP and Tatoeba in multilingual pools (evaluation.shift) into d/shift/; the summary row for cell.json."""
    from hybridbatch.evaluation.shift import run_shift, summary_row

    name = preset.model if cell.sampler == BASE else str(d / "model")
    if model is None and not (cell.sampler == BASE or (d / "model" / "modules.json").exists()):
        raise UsageError(f"{d}: --shift needs the cell's trained model in {d / 'model'} (removed by clean_models)")
    log(f"[{cell.key}] evaluating domain shift (TyDi + Tatoeba multilingual pools) ...")
    results, _ = run_shift(name, data_dir=data_dir, out_dir=d / "shift", limit=preset.shift_limit,
                           batch_size=preset.eval_batch_size, max_seq_length=preset.tydi_max_seq_length, model=model,
                           encoder=encoder)
    return summary_row(results)


# The preset fields that change a cell's numbers: a finished cell made with other values must not be reused.
RESULT_FIELDS = ("model", "max_steps", "batch_size", "max_seq_length", "lr", "freeze_embeddings", "eval_steps",
                 "context", "tydi_limit", "tydi_max_seq_length", "precision", "encoder")


def _check_same_settings(done: Path, record: dict[str, Any], preset: Preset) -> None:
    old = record.get("preset", {})
    diff = [f"{f} = {old[f]!r} there, {getattr(preset, f)!r} now" for f in RESULT_FIELDS
            if f in old and old[f] != getattr(preset, f)]
    if diff:
        raise UsageError(f"{done} was made with other settings ({'; '.join(diff)}); give another --out, or delete "
                         "that cell's folder to recompute it")


def first_questions(corpus: Any, n: int | None) -> Any:
    """The articles holding the first `n` questions of each language (all of them when n is None): a smaller,
    deterministic pool for the domain-shift check on CPU."""
    if n is None:
        return corpus
    arts = {q.article for lang in corpus.languages for q in corpus.questions[lang][:n]}
    return corpus.subset(arts, f"{corpus.name}:first{n}")


# ---- grids -------------------------------------------------------------------------------------------------------

SUMMARY_KEYS = (("mono", "map"), ("cross", "map"), ("multi", "map"), ("multi", "bias"))
# the domain-shift columns (evaluation.shift): the multilingual pool, the per-language pools and where the relevant
# item lands (gap = candidates of other segments ranked above it: the pool's language bias)
SHIFT_KEYS = ("tydi_multi_map", "tydi_multi_ndcg10", "tydi_own_map", "tydi_gap_mean", "tydi_miss1_other_lang",
              "tatoeba_multi_r1", "tatoeba_gap_mean", "tatoeba_own_r1", "tatoeba_miss1_query_lang")
SHIFT_TITLES = ("TyDi multi-pool mAP", "TyDi multi-pool nDCG@10", "TyDi per-language pools mAP", "TyDi gap",
                "TyDi top-1 foreign", "Tatoeba multi-pool P@1", "Tatoeba gap", "Tatoeba X->en P@1",
                "Tatoeba top-1 own language")


def _get(summary: dict[str, Any], setting: str, metric: str) -> float:
    v = summary.get(setting, {}).get(metric)
    return float("nan") if v is None else float(v)


def aggregate(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and sample std over seeds for each group (sampler, alpha, loss, scale)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(r["group"], []).append(r)
    rows = []
    for g, rs in groups.items():
        row: dict[str, Any] = {"group": g, **{k: rs[0]["cell"][k] for k in ("sampler", "alpha", "loss", "scale")},
                               "seeds": [r["cell"]["seed"] for r in rs]}
        for setting, metric in SUMMARY_KEYS:
            vals = np.array([_get(r["xquad-r"], setting, metric) for r in rs])
            row[f"{setting}_{metric}"] = float(np.mean(vals))
            row[f"{setting}_{metric}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        if any("tydiqa-goldp" in r for r in rs):  # the first seed of each run command (small preset)
            vals = np.array([float(r["tydiqa-goldp"].get("ndcg10", float("nan"))) for r in rs if "tydiqa-goldp" in r])
            row["tydi_ndcg10"] = float(np.mean(vals))
            if len(vals) > 1:
                row["tydi_ndcg10_std"] = float(np.std(vals, ddof=1))
        for k in SHIFT_KEYS if all("shift" in r for r in rs) else ():
            vals = np.array([float(r["shift"].get(k, float("nan"))) for r in rs])
            row[f"shift_{k}"] = float(np.mean(vals))
            row[f"shift_{k}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        rows.append(row)
    return rows


def grid_markdown(rows: list[dict[str, Any]], title: str) -> str:
    """The paper's table shape: Mono / Cross / Multi mAP and language bias, mean ± std over seeds."""
    has_tydi = any("tydi_ndcg10" in r for r in rows)
    head = "| cell | seeds | XQ Mono mAP | XQ Cross mAP | XQ Multi mAP | bias (rank dist.) |"
    sep = "|---|---|---|---|---|---|"
    if has_tydi:
        head += " TyDi nDCG@10 (per-language pools; seeds that ran it) |"
        sep += "---|"
    lines = [f"### {title}", "", head, sep]

    def f(r: dict[str, Any], k: str, digits: int = 3) -> str:
        if k not in r or math.isnan(r[k]):
            return "-"
        sd = r.get(f"{k}_std")
        return f"{r[k]:.{digits}f} ± {sd:.{digits}f}" if sd is not None and len(r["seeds"]) > 1 else f"{r[k]:.{digits}f}"

    for r in rows:
        line = (f"| {r['group']} | {len(r['seeds'])} | {f(r, 'mono_map')} | {f(r, 'cross_map')} | "
                f"{f(r, 'multi_map')} | {f(r, 'multi_bias', 1)} |")
        if has_tydi:
            line += f" {f(r, 'tydi_ndcg10')} |"
        lines.append(line)
    if any("shift_tydi_multi_map" in r for r in rows):  # the domain-shift pools (evaluation.shift), every seed
        lines += ["", "| cell | " + " | ".join(SHIFT_TITLES) + " |", "|---|" + "---|" * len(SHIFT_KEYS)]
        lines += [f"| {r['group']} | " + " | ".join(f(r, f"shift_{k}", 1 if k.endswith("_gap_mean") else 3)
                                                    for k in SHIFT_KEYS) + " |"
                  for r in rows if "shift_tydi_multi_map" in r]
    return "\n".join(lines) + "\n"


def check_inputs(out_root: Path, data_dir: str | None, tydi: bool, shift: bool = False) -> None:
    """Fail before any model is built or trained: the output folder must be a folder we can write, and the data
    must be there."""
    from hybridbatch.data.lookup import load_corpus

    check_out_dir(out_root)
    load_corpus("xquad-r", data_dir, split="test")
    if tydi or shift:
        load_corpus("tydiqa-goldp", data_dir)
    if shift:
        from hybridbatch.data.lookup import dataset_dir

        dataset_dir("tatoeba-laser", data_dir)


def run_grid(cells: Sequence[Cell], preset: Preset, out_root: Path, data_dir: str | None, *, title: str,
             log: Callable[[str], None] = print, name: str = "grid") -> dict[str, Any]:
    """Run (or reuse) every cell, then write <name>.json, <name>.md and, when alpha varies, the alpha plot
    (alpha.png; <name>-alpha.png for another name, so sweeps sharing one cells/ folder keep their own tables)."""
    check_inputs(out_root, data_dir, preset.tydi, preset.shift)
    t0 = time.perf_counter()
    records = []
    for i, cell in enumerate(cells, 1):
        log(f"cell {i}/{len(cells)}: {cell.key}")
        records.append(run_cell(cell, preset, out_root, data_dir, log=log))
    rows = aggregate(records)
    same = {r["key"]: r["same_run_as"] for r in records if "same_run_as" in r}
    md = grid_markdown(rows, title)
    if same:
        md += "\n" + "".join(f"- {k} is the {v} run (the sampler draws the same batches)\n" for k, v in same.items())
    body = {"kind": "grid", "title": title, "preset": dataclasses.asdict(preset), "rows": rows,
            "cells": [r["key"] for r in records], "same_run_as": same, "wall_time_s": time.perf_counter() - t0,
            "provenance": provenance(model=preset.model, seeds=list(preset.seeds))}
    write_json(out_root / f"{name}.json", body)
    write_text(out_root / f"{name}.md", md)
    if len({r["alpha"] for r in rows if r["sampler"] == "hybrid"}) > 1:
        report.plot_alpha(rows, out_root / ("alpha.png" if name == "grid" else f"{name}-alpha.png"))
    return body


# ---- significance over seeds ---------------------------------------------------------------------------------------


def seed_averaged_run(runs: Sequence[Any]) -> Any:
    """One stats.Run whose per-query scores are the mean over seeds: the comparison then asks whether the sampler,
    not one lucky seed, makes the difference (the bootstrap still resamples question ids)."""
    first = runs[0]
    pq = dict(first.per_query)
    for metric in ("ap", "ap20", "r1", "r10", "ndcg10", "rank_distance"):
        if metric in pq:
            pq[metric] = np.mean(np.stack([r.per_query[metric] for r in runs]), axis=0)
    cell_dir = first.path.parent  # cells/<key>/<dataset> -> cells/<key>+seeds
    return dataclasses.replace(first, per_query=pq, path=cell_dir.with_name(f"{cell_dir.name}+seeds"))


SEED_CI_METRICS = ("ap", "rank_distance")  # the rows of the paper's table


def significance(out_root: Path, reference: str, others: Sequence[str], seeds: Sequence[int],
                 key_of: Callable[[str, int], str], dataset: str = "xquad-r") -> list[dict[str, Any]]:
    """reference vs each other group: per-query scores averaged over seeds, paired bootstrap + randomisation; with
    several seeds also a two-level bootstrap CI (seeds and questions, `stats.seed_bootstrap`) for mAP and bias."""
    from hybridbatch.analysis.significance import load_run

    def runs_of(group: str) -> list[Any]:
        return [load_run(out_root / "cells" / key_of(group, s) / dataset) for s in seeds]

    ref = runs_of(reference)
    out = []
    for other in others:
        cmp = compare_seeded(runs_of(other), ref)
        cmp["run_a"], cmp["run_b"], cmp["seeds"] = other, reference, list(seeds)
        out.append(cmp)
    return out


def compare_seeded(runs_a: Sequence[Any], runs_b: Sequence[Any]) -> dict[str, Any]:
    """B vs A when each side is one run per seed (the same seeds, in order): `compare` on the seed-averaged
    per-query scores, plus the two-level (seeds + questions) CI for mAP and bias when there are several seeds."""
    from hybridbatch.analysis.significance import aligned, compare, seed_bootstrap

    cmp = compare(seed_averaged_run(runs_a), seed_averaged_run(runs_b))
    for row in cmp["rows"]:
        if len(runs_a) > 1 and row["metric"] in SEED_CI_METRICS:
            per_seed = [aligned(a, b, row["metric"], row["setting"]) for a, b in zip(runs_a, runs_b, strict=True)]
            _, row["seed_ci_low"], row["seed_ci_high"] = seed_bootstrap(
                [p[0] for p in per_seed], [p[1] for p in per_seed], n_boot=cmp["n_boot"], seed=cmp["seed"])
    return cmp


def significance_markdown(cmps: list[dict[str, Any]]) -> str:
    seeded = any("seed_ci_low" in r for c in cmps for r in c["rows"])
    lines = ["| B vs A | setting | A | B | B - A | 95% CI (questions) | p |"
             + (" 95% CI (seeds + questions) |" if seeded else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if seeded else "")]
    for c in cmps:
        for r in c["rows"]:
            if r["metric"] not in SEED_CI_METRICS:
                continue
            line = (f"| {c['run_b']} vs {c['run_a']} | {r['name']} | {r['a']:.4f} | {r['b']:.4f} | "
                    f"{r['diff']:+.4f} | [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}] | {r['p_value']:.4f} |")
            if seeded:
                line += (f" [{r['seed_ci_low']:+.4f}, {r['seed_ci_high']:+.4f}] |" if "seed_ci_low" in r else " - |")
            lines.append(line)
    return "\n".join(lines) + "\n"


PAPER_SAMPLERS = ("en", "xx", "xy", "hybrid", "hybrid-multi")
# ours, beyond the paper: also compared against every other sampler
OWN_SAMPLERS = ("hybrid-multi", "bilingual", "curriculum")


def paper(preset: Preset, out_root: Path, data_dir: str | None, *, samplers: Sequence[str] = PAPER_SAMPLERS,
          log: Callable[[str], None] = print) -> dict[str, Any]:
    """Zero-shot base + each sampler (hybrid at alpha 0.5) x seeds; then hybrid vs each other sampler
    (significance.md) and each of our own samplers vs each other sampler (significance-<name>.md)."""
    expand_grid(samplers, [0.5], ["plain"], [20.0], preset.seeds)  # validates names before any work
    cells = [Cell(BASE)] + [Cell(s, 0.5 if s in MIX_SAMPLERS else None, "plain", 20.0, seed)
                            for s in samplers for seed in preset.seeds]
    body = run_grid(cells, preset, out_root, data_dir, title=f"paper ({preset.name} preset)", log=log)

    def key_of(sampler: str, seed: int) -> str:
        return BASE if sampler == BASE else Cell(sampler, 0.5 if sampler in MIX_SAMPLERS else None, "plain", 20.0,
                                                 seed).key

    for ref in [s for s in ("hybrid", *OWN_SAMPLERS) if s in samplers]:
        cmps = significance(out_root, ref, [s for s in samplers if s != ref] + [BASE], preset.seeds, key_of)
        name = "significance" if ref == "hybrid" else f"significance-{ref}"
        write_json(out_root / f"{name}.json", {"kind": "significance", "reference": ref, "comparisons": cmps,
                                               "provenance": provenance(model=preset.model)})
        write_text(out_root / f"{name}.md", significance_markdown(cmps))
        body[name] = cmps
    return body


def demo(out_root: Path, data_dir: str | None, *, log: Callable[[str], None] = print, device: str = "auto",
         precision: str = "auto") -> dict[str, Any]:
    """The README's main job: zero-shot base vs a short hybrid run, both on the XQuAD-R test articles, with the
    significance of the difference. Reuses finished pieces when re-run."""
    from hybridbatch.models.embedded import build_embedded_model

    preset = dataclasses.replace(PRESETS["demo"], device=device, precision=precision)
    check_inputs(out_root, data_dir, preset.tydi)
    build_embedded_model()  # once, with its own progress message, before the long work starts
    cells = [Cell(BASE), Cell("hybrid", 0.5, "plain", 20.0, 0)]
    body = run_grid(cells, preset, out_root, data_dir, title="demo: zero-shot base vs hybrid (alpha 0.5)", log=log)
    from hybridbatch.analysis.significance import compare, write_compare

    cmp = compare(out_root / "cells" / cells[0].key / "xquad-r", out_root / "cells" / cells[1].key / "xquad-r")
    write_compare(cmp, out_root / "compare")
    report.plot_side_by_side(body["rows"], out_root / "base_vs_hybrid.png")
    body["compare"] = cmp
    return body


def clean_models(out_root: Path) -> int:
    """Delete trained weights of finished cells (results stay); returns the number of folders removed."""
    n = 0
    for cell_json in out_root.glob("cells/*/cell.json"):
        m = cell_json.parent / "model"
        if m.exists():
            shutil.rmtree(m)
            n += 1
    return n


__all__ = ["Cell", "Preset", "PRESETS", "expand_grid", "run_cell", "run_grid", "aggregate", "grid_markdown",
           "paper", "significance", "compare_seeded", "clean_models", "demo"]
