"""Training to convergence (issue 30): early stopping with patience, why a run stopped and its learning curve in
train.json, the best checkpoint kept, the patience count carried across a resume, weight snapshots along the way,
and the pilot that chooses a budget from the held-out metric alone."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from transformers import TrainerCallback

from hybridbatch.experiments.cells import train_config
from hybridbatch.experiments.pilot import PilotCandidate, candidates, choose
from hybridbatch.experiments.presets import PRESETS, Cell
from hybridbatch.experiments.training import train
from hybridbatch.errors import UsageError
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.results import learning_curve


def config(tiny_model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    # min_improvement 1.0: no mAP gain can count, so every check after the first adds one to the patience count and
    # the stopping step is known in advance whatever the tiny model learns
    base = dict(model=str(tiny_model), data=[str(data / "xquad-r")], out=str(out), batch_size=8, max_steps=30,
                eval_steps=2, save_steps=2, patience=2, min_improvement=1.0, logging_steps=1, progress=False, seed=4)
    base.update(kw)
    return TrainConfig(**base)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_learning_curve_pairs_each_check_with_the_loss_since_the_last():
    history = [{"step": 1, "loss": 4.0}, {"step": 2, "loss": 2.0}, {"step": 2, "eval_m": 0.1},
               {"step": 4, "eval_m": 0.3}, {"step": 5, "loss": 1.0}, {"step": 6, "loss": 3.0},
               {"step": 6, "eval_m": 0.2}]
    assert learning_curve(history, "eval_m") == [{"step": 2, "value": 0.1, "train_loss": 3.0},
                                                 {"step": 4, "value": 0.3, "train_loss": None},
                                                 {"step": 6, "value": 0.2, "train_loss": 2.0}]
    assert learning_curve(history, None) == []


def test_early_stopping_keeps_the_best_checkpoint_and_says_why(tiny_model, shared_data, tmp_path):
    out = tmp_path / "run"
    train(config(tiny_model, shared_data, out, snapshot_steps=[2, 4, 6]))
    j = json.loads((out / "train.json").read_text())
    # checks at 2 (first: the best so far), 4 (count 1), 6 (count 2 = patience): stopped at 6 of a 30-step cap
    assert j["steps"] == 6 and j["stopped_early"]
    assert j["stop"] == {"reason": "early_stopping", "step": 6, "max_steps": 30, "patience": 2,
                         "evaluations_without_improvement": 2, "best_step": j["best_step"],
                         "best_before_last": j["best_step"] < 6}
    curve = j["learning_curve"]
    assert [r["step"] for r in curve] == [2, 4, 6]
    assert [r["value"] for r in curve] == [v["value"] for v in j["loss_curve"]["val"]]
    assert all(r["train_loss"] is not None and r["train_loss"] > 0 for r in curve)
    # the checkpoint rule: the first step with the highest held-out value, and its weights are the saved model
    values = [r["value"] for r in curve]
    assert j["best_step"] == curve[values.index(max(values))]["step"]
    best = weights(out / "snapshots" / f"step-{j['best_step']}")
    final = weights(out)
    assert all(torch.equal(best[k], final[k]) for k in final)
    assert not all(torch.equal(weights(out / "snapshots" / "step-2")[k], weights(out / "snapshots" / "step-6")[k])
                   for k in final), "snapshots of different steps must differ"
    assert (out / "learning_curve.png").stat().st_size > 5000
    assert not (out / "checkpoints").exists()


class Interrupt(Exception):
    pass


class StopAfterSave(TrainerCallback):
    """Kills the run (by an exception) right after the checkpoint of `step` is written: a crash mid-training."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise Interrupt


def test_resume_keeps_the_patience_count(tiny_model, shared_data, tmp_path):
    """Patience 3: checks at 2 (best), 4, 6, 8 -> stops at 8. Cut after the checkpoint of step 6 (count 2) and
    resumed, the run must stop at 8 as well; a count restarted at the resume would run on to 12."""
    out = tmp_path / "run"
    cfg = config(tiny_model, shared_data, out, patience=3)
    with pytest.raises(Interrupt):
        train(cfg, callbacks=[StopAfterSave(6)])
    assert not (out / "train.json").exists() and (out / "checkpoints" / "checkpoint-6").exists()
    train(cfg.replace(resume=True))
    j = json.loads((out / "train.json").read_text())
    assert j["resumed_from_step"] == 6
    assert j["steps"] == 8 and j["stop"]["reason"] == "early_stopping"
    assert j["stop"]["evaluations_without_improvement"] == 3


def test_no_early_stop_says_the_cap_was_reached(tiny_model, shared_data, tmp_path):
    out = tmp_path / "run"
    train(config(tiny_model, shared_data, out, max_steps=4, patience=0))
    j = json.loads((out / "train.json").read_text())
    assert j["steps"] == 4 and j["stop"]["reason"] == "max_steps" and j["stop"]["patience"] == 0


def test_settings_are_checked():
    with pytest.raises(UsageError, match="min improvement"):
        TrainConfig(min_improvement=float("nan")).validate()
    with pytest.raises(UsageError, match="snapshot steps"):
        TrainConfig(snapshot_steps=[0, 100]).validate()
    with pytest.raises(UsageError, match="learning rates"):
        candidates([3e-5, float("inf")], [32])
    with pytest.raises(UsageError, match="at least 2"):
        candidates([3e-5], [1])
    assert [c.key for c in candidates([3e-5, 1e-4], [32, 100])] == [
        "lr3e-05-bs32", "lr3e-05-bs100", "lr0.0001-bs32", "lr0.0001-bs100"]


def test_pilot_chooses_the_best_held_out_value_ties_to_fewer_steps():
    runs = [{"key": "a", "best_value": 0.300, "best_step": 900}, {"key": "b", "best_value": 0.3015, "best_step": 400},
            {"key": "c", "best_value": 0.290, "best_step": 100}, {"key": "d", "best_value": None, "best_step": None}]
    assert choose(runs)["key"] == "b"  # a and b tie (within 0.002); b got there in fewer steps
    runs[0]["best_value"] = 0.310
    assert choose(runs)["key"] == "a"
    assert choose([{"key": "d", "best_value": None}]) is None


def test_converged_preset_trains_until_the_held_out_metric_stops():
    p = PRESETS["converged"]
    cfg = train_config(Cell("hybrid", 0.5, seed=0), p, None, Path("unused"))
    assert (cfg.patience, cfg.min_improvement, cfg.eval_steps, cfg.max_steps) == (p.patience, p.min_improvement,
                                                                                   p.eval_steps, p.max_steps)
    assert cfg.patience > 0 and cfg.max_steps >= 300 and cfg.data == ["xlinghealth", "mkqa:answers"]
    assert cfg.snapshot_steps == list(p.snapshot_steps)
    assert all(s % p.eval_steps == 0 for s in p.snapshot_steps)
    assert train_config(Cell("hybrid", 0.5, seed=1), p, None, Path("unused")).snapshot_steps is None
    # the pilot's candidate changes only lr and batch size
    pilot = train_config(Cell("hybrid", 0.5, seed=0), dataclasses.replace(p, lr=1e-4, batch_size=16), None,
                         Path("unused"))
    assert dataclasses.replace(pilot, lr=p.lr, batch_size=p.batch_size) == cfg
    assert PilotCandidate(1e-4, 16).key == "lr0.0001-bs16"


def test_the_chosen_pilot_run_becomes_the_grids_cell(tmp_path, tiny_model, shared_data):
    """Two real pilot candidates on a tiny model; the chosen run is adopted as the hybrid seed-0 cell only under a
    preset carrying its lr and with the cell's own settings, and without its checkpoints."""
    from hybridbatch.experiments.pilot import adopt_chosen, run_pilot

    preset = dataclasses.replace(PRESETS["demo"], model=str(tiny_model), max_steps=6, eval_steps=2, batch_size=8,
                                 patience=0, snapshot_steps=(2, 4), seeds=(0,))
    body = run_pilot(preset, tmp_path, str(shared_data), candidates([1e-4, 3e-4], [8]), log=lambda s: None)
    chosen = body["chosen"]
    assert chosen and {r["key"] for r in body["runs"]} == {"lr0.0001-bs8", "lr0.0003-bs8"}
    other = 3e-4 if chosen["lr"] == 1e-4 else 1e-4
    with pytest.raises(UsageError, match=f"the pilot chose lr {chosen['lr']:g}, batch 8: set them"):
        adopt_chosen(tmp_path, dataclasses.replace(preset, lr=other), str(shared_data))
    with pytest.raises(UsageError, match=r"trained with other settings than cell hybrid-a0.5-plain-seed0 \(max_steps"):
        adopt_chosen(tmp_path, dataclasses.replace(preset, lr=chosen["lr"], max_steps=8), str(shared_data))
    cell = tmp_path / "cells" / "hybrid-a0.5-plain-seed0"
    assert not cell.exists()
    dest = adopt_chosen(tmp_path, dataclasses.replace(preset, lr=chosen["lr"]), str(shared_data))
    assert dest == cell / "model" and (dest / "train.json").exists() and (dest / "model.safetensors").exists()
    assert sorted(p.name for p in (dest / "snapshots").iterdir()) == ["step-2", "step-4"]
    assert not (dest / "checkpoints").exists()
    run = tmp_path / "pilot" / chosen["key"]
    assert weights(dest).keys() == weights(run).keys()
    assert all(torch.equal(weights(dest)[k], weights(run)[k]) for k in weights(run))
    with pytest.raises(UsageError, match="exists already"):
        adopt_chosen(tmp_path, dataclasses.replace(preset, lr=chosen["lr"]), str(shared_data))


@pytest.mark.slow
def test_test_curves_evaluate_the_snapshots_like_the_cell(tmp_path, tiny_model, shared_data):
    """A first-seed cell keeps its snapshots; the curves evaluate each one on the test articles as the cell was
    evaluated, and the kept checkpoint's row is the cell's own numbers."""
    from hybridbatch.experiments.cells import run_cell
    from hybridbatch.experiments.convergence import test_curves
    from hybridbatch.experiments.presets import Preset

    preset = Preset("t", model=str(tiny_model), max_steps=4, batch_size=8, max_seq_length=32, eval_steps=2,
                    patience=0, snapshot_steps=(2, 4), tydi=False, seeds=(0,), eval_batch_size=256, encoder="torch")
    record = run_cell(Cell("xx", seed=0), preset, tmp_path, str(shared_data), log=lambda m: None)
    body = test_curves(tmp_path, preset, str(shared_data), ["xx-plain"], 0, log=lambda m: None)
    rows = body["curves"]["xx-plain-seed0"]
    best = record["train"]["best_step"]
    assert [r["step"] for r in rows] == [2, 4] and [r["chosen"] for r in rows] == [s == best for s in (2, 4)]
    chosen = next(r for r in rows if r["chosen"])
    assert chosen["multi.map"] == record["xquad-r"]["multi"]["map"]
    other = next(r for r in rows if not r["chosen"])
    evaluated = json.loads((tmp_path / "cells" / "xx-plain-seed0" / "curve" / f"step-{other['step']}" /
                            "eval.json").read_text())["summary"]
    assert other["mono.map"] == evaluated["mono"]["map"] and 0 < other["mono.map"] <= 1
    assert (tmp_path / "curves.png").stat().st_size > 5000 and "(chosen)" in (tmp_path / "curves.md").read_text()
