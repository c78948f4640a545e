"""The pilot that fixes a preset's training budget honestly (issue 30): one seed of one sampler trained with each
candidate learning rate and batch size until its held-out metric stops improving, and the candidate with the best
held-out value chosen. Nothing of the test corpus is read: the choice is made from the checkpoint rule's held-out
ids alone, and the same settings then serve every sampler of the grid.

Each candidate is one resumable run in `OUT/pilot/<key>/`; `pilot.json`, `pilot.md` and `pilot.png` (the candidates'
held-out curves) are rewritten from the finished runs. Two candidates can run side by side (one process each);
the report waits for the finished ones only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridbatch.errors import UsageError
from hybridbatch.experiments.cells import train_config
from hybridbatch.experiments.presets import Cell, Preset
from hybridbatch.experiments.training import train
from hybridbatch.experiments.grid_root import GRID_ROOT, check_grid_root
from hybridbatch.provenance import provenance, write_json, write_text
from hybridbatch.report.curves import metric_label, plot_curves
from hybridbatch.report.format import markdown_table
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.results import learning_curve

# Two held-out values closer than this are a tie, broken by the fewer steps to the best checkpoint (cheaper cells).
TIE = 0.002
# What the pilot writes into a grid's --out (the accepted layout is the shared `grid_root.GRID_ROOT`)
PILOT_OUT = dataclasses.replace(GRID_ROOT, command="experiment pilot",
                                writes="pilot/, pilot.json, pilot.md, pilot.png")


@dataclass(frozen=True)
class PilotCandidate:
    """One pilot run's learning rate and batch size."""

    lr: float
    batch_size: int

    @property
    def key(self) -> str:
        return f"lr{self.lr:g}-bs{self.batch_size}"


def candidates(lrs: Sequence[float], batch_sizes: Sequence[int]) -> list[PilotCandidate]:
    """Every (lr, batch size) pair, checked before any training."""
    if not lrs or not batch_sizes:
        raise UsageError("the pilot needs at least one learning rate and one batch size")
    for lr in lrs:
        if not lr > 0 or lr != lr or lr == float("inf"):
            raise UsageError(f"--lrs: learning rates must be positive and finite, got {lr}")
    for bs in batch_sizes:
        if bs < 2:
            raise UsageError(f"--batch-sizes: a batch needs at least 2 pairs (in-batch negatives), got {bs}")
    return [PilotCandidate(float(lr), int(bs)) for lr in lrs for bs in batch_sizes]


def pilot_summary(key: str, train_json: Path) -> dict[str, Any]:
    """What the pilot compares of one finished run."""
    tj = json.loads(train_json.read_text(encoding="utf-8"))
    sel = tj.get("selection") or {}
    return {"key": key, "lr": tj["settings"]["lr"], "batch_size": tj["settings"]["batch_size"],
            "metric": sel.get("metric"), "best_value": sel.get("best_value"), "best_step": tj.get("best_step"),
            "steps": tj.get("steps"), "stop": tj.get("stop"), "wall_seconds": tj.get("wall_seconds"),
            "resumed_from_step": tj.get("resumed_from_step"),
            "pairs_seen_at_best": (tj.get("best_step") or 0) * tj["settings"]["batch_size"],
            "learning_curve": tj.get("learning_curve", [])}


def choose(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The best held-out value; within TIE of it, the run that reached its best in the fewest steps."""
    done = [r for r in runs if r.get("best_value") is not None]
    if not done:
        return None
    top = max(r["best_value"] for r in done)
    return min((r for r in done if r["best_value"] >= top - TIE), key=lambda r: (r["best_step"], -r["best_value"]))


def pilot_markdown(runs: Sequence[dict[str, Any]], chosen: dict[str, Any] | None, preset: Preset,
                   sampler: str, seed: int) -> str:
    metric = metric_label(runs[0]["metric"] if runs else None)
    rows = [[r["key"], f"{r['lr']:g}", str(r["batch_size"]), f"{r['best_value']:.4f}", str(r["best_step"]),
             str(r["steps"]), (r["stop"] or {}).get("reason", "?"), _minutes(r),
             "**chosen**" if chosen and r["key"] == chosen["key"] else ""] for r in runs]
    head = (f"# Pilot: {sampler}, seed {seed}, `{preset.name}` preset\n\n"
            f"Chosen by the {metric} of the held-out training ids only (no test data read); values within {TIE} "
            "tie and go to the fewer steps. Cap "
            f"{preset.max_steps} steps, a check every {preset.eval_steps}, patience {preset.patience} "
            f"(min improvement {preset.min_improvement:g}).\n\n")
    return head + markdown_table(["run", "lr", "batch", f"best {metric}", "best step", "steps", "stopped by",
                                  "minutes (last process)", ""], rows)


def _minutes(run: dict[str, Any]) -> str:
    """Wall minutes of the run's last process: a resumed run's earlier pieces are not timed, so say which steps."""
    m = f"{(run['wall_seconds'] or 0) / 60:.0f}"
    return f"{m} (steps {run['resumed_from_step']}-{run['steps']})" if run.get("resumed_from_step") else m


def run_pilot(preset: Preset, out_root: Path, data_dir: str | None, cands: Sequence[PilotCandidate], *,
              sampler: str = "hybrid", alpha: float | None = 0.5, seed: int | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train each candidate (resuming a killed one, skipping a finished one), then report every finished
    candidate of `OUT/pilot/` and the choice."""
    check_grid_root(out_root, PILOT_OUT)  # lanes share the root; each run's training locks its own folder
    seed = preset.seeds[0] if seed is None else seed
    cell = Cell(sampler, alpha, "plain", 20.0, seed)
    root = out_root / "pilot"
    for c in cands:
        d = root / c.key
        if not (d / "train.json").exists():
            log(f"[pilot {c.key}] training until the held-out metric stops improving (cap {preset.max_steps}) ...")
            run_preset = dataclasses.replace(preset, lr=c.lr, batch_size=c.batch_size)
            train(train_config(cell, run_preset, data_dir, d))
    runs = sorted((pilot_summary(p.parent.name, p) for p in root.glob("*/train.json")),
                  key=lambda r: (r["lr"], r["batch_size"]))
    chosen = choose(runs)
    body = {"kind": "pilot", "preset": dataclasses.asdict(preset), "sampler": sampler, "alpha": alpha, "seed": seed,
            "tie": TIE, "runs": runs, "chosen": chosen and {k: chosen[k] for k in ("key", "lr", "batch_size")},
            "provenance": provenance(model=preset.model, seed=seed, data={"train": list(preset.train_data)})}
    write_json(out_root / "pilot.json", body)
    write_text(out_root / "pilot.md", pilot_markdown(runs, chosen, preset, sampler, seed))
    if runs:
        plot_curves({r["key"]: r["learning_curve"] for r in runs}, out_root / "pilot.png",
                    title=f"pilot: {sampler} seed {seed}, held-out curves per (lr, batch); circle = best checkpoint",
                    ylabel=metric_label(runs[0]["metric"]), marks={r["key"]: r["best_step"] for r in runs})
    return body


def pilot_progress(out_root: Path, metric: str = "eval_lareqa_multi_map", **record: Any) -> dict[str, Any]:
    """The unfinished candidates' held-out curves so far, read from each run's newest checkpoint with the same
    `learning_curve` train.json uses; written to pilot-partial.{json,png}. Checkpoints are too large to commit, so
    this is what a session that stops mid-pilot can keep. Nothing is chosen from it."""
    runs = {}
    for d in sorted(p for p in (Path(out_root) / "pilot").iterdir() if (p / "train_config.json").exists()):
        ckpts = sorted((d / "checkpoints").glob("checkpoint-*"), key=lambda c: int(c.name.split("-")[1]))
        if not ckpts:
            continue
        state = json.loads((ckpts[-1] / "trainer_state.json").read_text(encoding="utf-8"))
        cfg = json.loads((d / "train_config.json").read_text(encoding="utf-8"))
        stopper = state.get("stateful_callbacks", {}).get("EarlyStoppingCallback", {})
        runs[d.name] = {"lr": cfg["lr"], "batch_size": cfg["batch_size"], "seed": cfg["seed"],
                        "sampler": cfg["sampler"], "last_checkpoint": state["global_step"],
                        "learning_curve": learning_curve(state["log_history"], metric),
                        "best_value_so_far": state["best_metric"], "best_step_so_far": state.get("best_global_step"),
                        "patience_count": stopper.get("attributes", {}).get("early_stopping_patience_counter")}
    if not runs:
        raise UsageError(f"{out_root}/pilot: no started pilot run with a checkpoint")
    body = {"kind": "pilot_partial", "note": "unfinished pilot runs, read from their newest checkpoints; nothing is "
            "chosen from this", "runs": runs,
            **provenance(model=cfg["model"], seed=cfg["seed"], data={"train": cfg["data"]}, **record)}
    write_json(Path(out_root) / "pilot-partial.json", body)
    labels = {k: f"lr {r['lr']:g}, batch {r['batch_size']}" for k, r in runs.items()}
    plot_curves({labels[k]: r["learning_curve"] for k, r in runs.items()}, Path(out_root) / "pilot-partial.png",
                title="pilot (unfinished): hybrid seed 0, zero-shot training data; held-out Multi mAP per check",
                ylabel=metric_label(metric), marks={labels[k]: r["best_step_so_far"] for k, r in runs.items()})
    return body


__all__ = ["PilotCandidate", "candidates", "choose", "pilot_progress", "run_pilot"]


def adopt_chosen(out_root: Path | str, preset: Preset | None = None, data_dir: str | None = None) -> Path:
    """The chosen pilot run becomes the grid's cell of the pilot's sampler and seed (it trained that cell under the
    grid's settings, so training it again would only repeat it): copied, snapshots and all but its checkpoints, to
    `cells/<key>/model`. Refused unless `pilot.json` chose a run, the preset carries the chosen lr and batch size,
    and the run's trained settings equal the cell's (`TrainConfig.trained_settings`): equal footing with the other
    cells is checked, not assumed."""
    from hybridbatch.experiments.presets import PRESETS

    out_root = Path(out_root)
    preset = preset or PRESETS["converged"]
    report = out_root / "pilot.json"
    if not report.exists():
        raise UsageError(f"{report}: no pilot report; run `hybridbatch experiment pilot` until a candidate finishes")
    body = json.loads(report.read_text(encoding="utf-8"))
    if not body.get("chosen"):
        raise UsageError(f"{report}: the pilot has chosen nothing yet")
    key, lr, bs = body["chosen"]["key"], body["chosen"]["lr"], body["chosen"]["batch_size"]
    if (preset.lr, preset.batch_size) != (lr, bs):
        raise UsageError(f"preset {preset.name} has lr {preset.lr:g} and batch {preset.batch_size}; the pilot chose lr "
                         f"{lr:g}, batch {bs}: set them in experiments/presets.py first")
    cell = Cell(body["sampler"], body["alpha"], "plain", 20.0, body["seed"])
    run, dest = out_root / "pilot" / key, out_root / "cells" / cell.key / "model"
    ran = json.loads((run / "train_config.json").read_text(encoding="utf-8"))
    want = json.loads(json.dumps(train_config(cell, preset, data_dir, dest).trained_settings()))
    # a setting added after the run started is read at its default, as a resume reads it
    default = json.loads(json.dumps(TrainConfig().to_dict()))
    diff = sorted(k for k in want if ran.get(k, default[k]) != want[k])
    if diff:
        raise UsageError(f"{run}: trained with other settings than cell {cell.key} ({', '.join(diff)})")
    if dest.exists():
        raise UsageError(f"{dest} exists already; delete it to adopt the pilot's run again")
    import shutil

    shutil.copytree(run, dest, ignore=shutil.ignore_patterns("checkpoints"))
    return dest
