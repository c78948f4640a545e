"""Determinism end to end on CPU: the same seed gives the identical batch sequence, bit-identical weights and
identical metrics; another seed gives another batch sequence. And a sweep killed mid-way (SIGKILL) resumes to the
same table as an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hybridbatch.experiments.training import train
from hybridbatch.training.config import TrainConfig


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def _batches(folder: Path) -> list[tuple[int, str]]:
    return [(e["step"], e["hash"]) for e in map(json.loads, (folder / "batches.jsonl").read_text().splitlines())]


def _run(tiny_model: Path, data: Path, out: Path, seed: int) -> Path:
    return train(TrainConfig(model=str(tiny_model), data=[str(data / "xquad-r")], out=str(out), batch_size=8,
                             max_steps=4, val_fraction=0.0, progress=False, seed=seed, sampler="hybrid"))


@pytest.mark.slow
def test_same_seed_same_batches_weights_and_metrics(tiny_model, shared_data, tmp_path):
    from sentence_transformers import SentenceTransformer

    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.evaluation.lareqa import evaluate_lareqa

    a = _run(tiny_model, shared_data, tmp_path / "a", seed=1)
    b = _run(tiny_model, shared_data, tmp_path / "b", seed=1)
    c = _run(tiny_model, shared_data, tmp_path / "c", seed=2)
    assert _batches(a) == _batches(b)
    assert [h for _, h in _batches(a)] != [h for _, h in _batches(c)], "another seed must give other batches"
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa), "same seed: weights must be bit-identical on CPU"
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    corpus = load_corpus(str(shared_data / "xquad-r"), split="test").subset(
        load_corpus(str(shared_data / "xquad-r"), split="test").articles[:2])
    ra = evaluate_lareqa(SentenceTransformer(str(a), device="cpu"), corpus, batch_size=64)
    rb = evaluate_lareqa(SentenceTransformer(str(b), device="cpu"), corpus, batch_size=64)
    assert ra.summary == rb.summary
    for k, v in ra.per_query.items():
        assert np.array_equal(v, rb.per_query[k], equal_nan=v.dtype.kind == "f"), k


@pytest.mark.slow
def test_hybrid_at_alpha_1_trains_the_xx_weights(tiny_model, shared_data, tmp_path):
    """Why a sweep may reuse the xx run as its alpha = 1 point: same batches, so bit-identical weights."""
    runs = {}
    for name, sampler, alpha in (("xx", "xx", 0.5), ("h1", "hybrid", 1.0), ("h05", "hybrid", 0.5)):
        runs[name] = _weights(train(TrainConfig(
            model=str(tiny_model), data=[str(shared_data / "xquad-r")], out=str(tmp_path / name), batch_size=8,
            max_steps=3, val_fraction=0.0, progress=False, seed=5, sampler=sampler, alpha=alpha)))
    assert all(torch.equal(runs["xx"][k], runs["h1"][k]) for k in runs["xx"])
    # each kind draws from its own stream, so a hybrid run differs from xx only once it draws an X-Y batch
    kinds = [json.loads(x)["kind"] for x in (tmp_path / "h05" / "batches.jsonl").read_text().splitlines()]
    assert "xy" in kinds
    assert any(not torch.equal(runs["xx"][k], runs["h05"][k]) for k in runs["xx"])


def _sweep_cmd(tiny_model: Path, data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "hybridbatch.cli", "sweep", "--out", str(out), "--preset", "demo", "--model",
            str(tiny_model), "--steps", "6", "--samplers", "hybrid", "--alphas", "0,1", "--seeds", "0",
            "--data-dir", str(data)]


@pytest.mark.slow
@pytest.mark.heavy  # CI keeps the killed-training resume (test_training) and the grid's cell reuse (test_experiments)
def test_sweep_killed_mid_way_resumes_to_the_same_table(tiny_model, shared_data, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(_sweep_cmd(tiny_model, shared_data, full), check=True, env=env, capture_output=True)

    proc = subprocess.Popen(_sweep_cmd(tiny_model, shared_data, cut), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    second = cut / "cells" / "xx-plain-seed0" / "model" / "checkpoints"
    deadline = time.time() + 600
    # kill while the second cell trains: the first cell is finished, the second has a checkpoint
    while not (second.exists() and any(p.name.startswith("checkpoint-") for p in second.iterdir())):
        assert proc.poll() is None, "the sweep ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (cut / "cells" / "xy-plain-seed0" / "cell.json").exists()
    assert not (cut / "grid.json").exists()
    first_stamp = (cut / "cells" / "xy-plain-seed0" / "cell.json").stat().st_mtime_ns

    subprocess.run(_sweep_cmd(tiny_model, shared_data, cut), check=True, env=env, capture_output=True)
    assert (cut / "cells" / "xy-plain-seed0" / "cell.json").stat().st_mtime_ns == first_stamp
    rows_full = json.loads((full / "grid.json").read_text())["rows"]
    rows_cut = json.loads((cut / "grid.json").read_text())["rows"]
    # a resume replays the same batches; weights agree to float rounding (see test_training), so metrics to 1e-6
    assert len(rows_full) == len(rows_cut)
    # the end points ran as the xx / xy cells and are reported as the sweep's hybrid alpha 0 / 1
    assert [(r["group"], r["sampler"], r["alpha"]) for r in rows_full] == [("hybrid-a0-plain", "hybrid", 0.0),
                                                                          ("hybrid-a1-plain", "hybrid", 1.0)]
    for a, b in zip(rows_full, rows_cut, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert (b[k] == pytest.approx(a[k], abs=1e-6)) if isinstance(a[k], float) else (a[k] == b[k]), k
    assert not list(cut.rglob("*.tmp"))
