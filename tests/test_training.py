"""Training: config, loss, trainer outputs, bad input (exit 2, nothing written), atomic checkpoints, exact resume
after SIGKILL, and two-process training with torchrun (gloo on CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hybridbatch.errors import UsageError
from hybridbatch.experiments.training import train
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.losses import make_loss
from hybridbatch.training.run_dir import out_dir_mode

ROOT = Path(__file__).resolve().parents[1]


def small_config(tiny_model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model=str(tiny_model), data=[str(data / "xquad-r")], out=str(out), batch_size=8, max_steps=6,
                eval_steps=3, eval_batches=2, progress=False, seed=3)
    base.update(kw)
    return TrainConfig(**base)



def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


# ---- config -------------------------------------------------------------------------------------------------------


def test_config_from_toml_and_yaml_with_overrides(tmp_path):
    (tmp_path / "c.toml").write_text('[train]\nsampler = "xy"\nalpha = 0.3\nbatch_size = 16\ndata = "mlqa-r"\n')
    cfg = TrainConfig.from_file(tmp_path / "c.toml")
    assert (cfg.sampler, cfg.alpha, cfg.batch_size, cfg.data) == ("xy", 0.3, 16, ["mlqa-r"])
    assert cfg.lr == 3e-5 and cfg.weight_decay == 0.01 and cfg.max_seq_length == 64  # defaults kept
    cfg2 = cfg.replace(alpha=0.6, batch_size=None)  # None = flag not given
    assert cfg2.alpha == 0.6 and cfg2.batch_size == 16
    (tmp_path / "c.yaml").write_text("sampler: hybrid\nsymmetric: true\ndata: [xquad-r, extra.jsonl]\n")
    cfg3 = TrainConfig.from_file(tmp_path / "c.yaml")
    assert cfg3.symmetric and cfg3.data == ["xquad-r", "extra.jsonl"]
    (tmp_path / "bad.toml").write_text("alpah = 0.5\n")
    with pytest.raises(UsageError, match="unknown setting.*alpah"):
        TrainConfig.from_file(tmp_path / "bad.toml")
    (tmp_path / "broken.toml").write_text("alpha = = 1\n")
    with pytest.raises(UsageError, match="not a valid TOML"):
        TrainConfig.from_file(tmp_path / "broken.toml")


@pytest.mark.parametrize("kw,msg", [
    ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
    ({"sampler": "zz"}, "unknown sampler"),
    ({"batch_size": 1}, "batch size"),
    ({"lr": 0}, "learning rate"),
    ({"resume": True, "overwrite": True}, "exclude"),
])
def test_config_validation(kw, msg):
    with pytest.raises(UsageError, match=msg):
        TrainConfig(**kw).validate()


# ---- loss ---------------------------------------------------------------------------------------------------------


def test_loss_options(tiny_model):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    model = SentenceTransformer(str(tiny_model), device="cpu")
    plain = make_loss(model, TrainConfig())
    assert isinstance(plain, MultipleNegativesRankingLoss) and plain.scale == 20.0
    assert plain.directions == ("query_to_doc",) and not plain.gather_across_devices
    sym = make_loss(model, TrainConfig(symmetric=True, scale=10), world_size=2)
    assert sym.directions == ("query_to_doc", "doc_to_query") and sym.partition_mode == "per_direction"
    assert sym.gather_across_devices and sym.scale == 10
    cached = make_loss(model, TrainConfig(cached_loss=True, mini_batch_size=4))
    assert isinstance(cached, CachedMultipleNegativesRankingLoss) and cached.mini_batch_size == 4


def test_cached_loss_matches_plain_loss_and_gradients(tiny_model):
    """GradCache is an exact re-computation: same loss and same gradients as the plain loss on one batch."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    model.eval()  # no dropout, so the two passes see the same network
    texts = [[f"query: question {i}" for i in range(12)], [f"passage: answer number {i}" for i in range(12)],
             [f"passage: other sentence {i}" for i in range(12)]]
    feats = [model.preprocess(t) for t in texts]
    out = {}
    for cached in (False, True):
        model.zero_grad()
        loss_fn = make_loss(model, TrainConfig(cached_loss=cached, mini_batch_size=5))
        loss = loss_fn([dict(f) for f in feats], None)
        loss.backward()
        grad = model[0].auto_model.encoder.layer[0].attention.self.query.weight.grad.clone()
        out[cached] = (loss.item(), grad)
    assert out[False][0] == pytest.approx(out[True][0], abs=1e-5)
    assert torch.allclose(out[False][1], out[True][1], atol=1e-5)


# ---- bad input: exit 2, nothing written -----------------------------------------------------------------------------


def test_cli_bad_input_exits_2_and_writes_nothing(main_cli, tmp_path, tiny_model, shared_data):
    data = str(shared_data / "xquad-r")
    out = tmp_path / "run"
    base = ["train", "--model", str(tiny_model), "--data", data, "--out", str(out), "--max-steps", "2",
            "--no-progress"]
    code, err = main_cli(*base, "--alpha", "1.5")
    assert code == 2 and "alpha must be in [0, 1]" in err
    code, err = main_cli(*base, "--batch-size", "5000")
    assert code == 2 and "lower --batch-size" in err
    en = tmp_path / "en.jsonl"
    en.write_text("".join(json.dumps({"id": f"q{i}", "lang": "en", "query": f"question {i}",
                                      "positive": f"answer {i}"}) + "\n" for i in range(40)))
    code, err = main_cli("train", "--model", str(tiny_model), "--data", str(en), "--out",
                        str(out), "--sampler", "xy", "--batch-size", "4", "--no-progress")
    assert code == 2 and "at least two languages" in err
    assert not out.exists(), "a rejected run must not create its output folder"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, err = main_cli(*base)
    assert code == 2 and "not empty" in err and "--resume" in err
    code, err = main_cli(*base, "--overwrite")
    assert code == 2 and "refusing to delete" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_unknown_model_offline_is_a_model_error(main_cli, monkeypatch, tmp_path, shared_data):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "run"
    code, err = main_cli("train", "--model", "no-such-org/no-such-model-xyz", "--data",
                        str(shared_data / "xquad-r"), "--out", str(out), "--no-progress")
    assert code == 2 and "no-such-org/no-such-model-xyz" in err
    assert not out.exists()


def test_resume_refuses_changed_settings(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    cfg = TrainConfig(out=str(out))
    (out / "train_config.json").write_text(json.dumps(cfg.trained_settings()))
    assert out_dir_mode(cfg.replace(resume=True)) == "resume"
    with pytest.raises(UsageError, match="alpha"):
        out_dir_mode(cfg.replace(resume=True, alpha=0.2))


# ---- a real (tiny) training run -----------------------------------------------------------------------------------


def test_train_writes_model_and_provenance(tiny_model, shared_data, tmp_path):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    cfg = small_config(tiny_model, shared_data, out, freeze_embeddings=True, hard_negatives=True,
                       keep_checkpoints=True, save_total_limit=1)
    before = weights(tiny_model)
    assert train(cfg) == out
    j = json.loads((out / "train.json").read_text())
    assert j["git_commit"] and j["seed"] == 3 and j["steps"] == 6 and j["settings"]["sampler"] == "hybrid"
    assert j["data"][0]["checksum"] and j["data"][0]["qids"] > 800 and j["validation_qids"] > 30
    assert j["mix"]["steps"] == 6 and set(j["mix"]["kinds"]) <= {"xx", "xy"}
    assert j["loss_curve"]["val"] and j["loss"]["hard_negatives"] and j["prefixes"]["query"] == "query: "
    # one checkpoint rule for every sampler, stated; the realised epoch coverage next to the mix
    assert j["selection"]["rule"] == "lareqa" and j["selection"]["metric"] == "eval_lareqa_multi_map"
    assert all(v["metric"] == "eval_lareqa_multi_map" and 0 <= v["value"] <= 1 for v in j["loss_curve"]["val"])
    assert j["coverage"][0]["steps"] == 6 and 0 < j["coverage"][0]["query_items"] < 1
    assert j["sampler"]["dropped"] == []
    assert j["wall_seconds"] > 0 and j["pairs_per_second"] > 0
    log = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(6)) and all(len(set(e["qids"])) == 8 for e in log)
    # a standard sentence-transformers folder
    model = SentenceTransformer(str(out), device="cpu")
    assert model.encode(["hello"]).shape == (1, 32)
    after = weights(out)
    emb = next(k for k in after if "word_embeddings" in k)
    assert torch.equal(before[emb], after[emb]), "--freeze-embeddings must leave the word embeddings unchanged"
    layer = next(k for k in after if "layer.0.attention.self.query.weight" in k)
    assert not torch.equal(before[layer], after[layer])
    # checkpoints: renamed into place complete, no staging leftovers
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert all(c.startswith("checkpoint-") for c in ckpts if not c.startswith(".") and c != "eval"), ckpts
    staging = out / "checkpoints" / ".staging"
    assert not staging.exists() or not any(staging.iterdir())
    # a finished run cannot be resumed or silently overwritten
    with pytest.raises(UsageError, match="already finished"):
        out_dir_mode(cfg.replace(resume=True))
    with pytest.raises(UsageError, match="not empty"):
        out_dir_mode(cfg)


def test_training_alone_takes_its_evaluator_and_reports_through_callbacks(tiny_model, shared_data, tmp_path):
    """training/ knows no evaluation protocol: without the caller's evaluator the LAReQA rule is refused before
    anything is written; progress reaches the library's progress(stage, done, total) callback through the callbacks."""
    from hybridbatch.training.hybrid_trainer import ProgressCallback
    from hybridbatch.training.trainer import train_model as train_alone

    out = tmp_path / "run"
    with pytest.raises(UsageError, match="needs an evaluator of the held-out ids"):
        train_alone(small_config(tiny_model, shared_data, out))
    assert not out.exists()
    seen: list[tuple[str, int, int]] = []
    train_alone(small_config(tiny_model, shared_data, out, max_steps=2, val_fraction=0.0),
                callbacks=[ProgressCallback(lambda *a: seen.append(a))])
    assert seen == [("train", 0, 2), ("train", 1, 2), ("train", 2, 2)]
    assert json.loads((out / "train.json").read_text())["selection"]["rule"] == "none"


# ---- resume after SIGKILL -----------------------------------------------------------------------------------------


def _train_cmd(tiny_model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hybridbatch.cli", "train", "--model", str(tiny_model), "--data",
            str(data / "xquad-r"), "--out", str(out), "--batch-size", "8", "--max-steps", "12", "--eval-steps", "4",
            "--save-steps", "4", "--seed", "5", "--no-progress", *extra]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tiny_model, shared_data, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full, cut = tmp_path / "full", tmp_path / "cut"
    subprocess.run(_train_cmd(tiny_model, shared_data, full), check=True, env=env, capture_output=True)

    proc = subprocess.Popen(_train_cmd(tiny_model, shared_data, cut), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (cut / "checkpoints" / "checkpoint-8").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "train.json").exists()

    subprocess.run(_train_cmd(tiny_model, shared_data, cut, "--resume"), check=True, env=env, capture_output=True)
    a = json.loads((full / "train.json").read_text())
    b = json.loads((cut / "train.json").read_text())
    assert b["resumed_from_step"] == 8 and a["steps"] == b["steps"] == 12
    log_a = [json.loads(x) for x in (full / "batches.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (cut / "batches.jsonl").read_text().splitlines()]
    assert [(e["step"], e["hash"]) for e in log_a] == [(e["step"], e["hash"]) for e in log_b]
    wa, wb = weights(full), weights(cut)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k
    assert a["mix"] == b["mix"]


# ---- two processes ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_torchrun_two_processes_share_batch_type_with_disjoint_ids(tiny_model, shared_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29571",
           "-m", "hybridbatch.cli", "train", "--model", str(tiny_model), "--data", str(shared_data / "xquad-r"),
           "--out", str(out), "--batch-size", "8", "--max-steps", "4", "--eval-steps", "2", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    r0 = [json.loads(x) for x in (out / "batches.jsonl").read_text().splitlines()]
    r1 = [json.loads(x) for x in (out / "batches.rank1.jsonl").read_text().splitlines()]
    assert len(r0) == len(r1) == 4
    for a, b in zip(r0, r1, strict=True):
        assert a["step"] == b["step"]
        assert (a["kind"], a["qlang"], a["plang"]) == (b["kind"], b["qlang"], b["plang"])
        assert not set(a["qids"]) & set(b["qids"])
    j = json.loads((out / "train.json").read_text())
    assert j["world_size"] == 2 and j["loss"]["gather_across_devices"] is True
    assert j["sampler"]["world_size"] == 2


@pytest.mark.slow
def test_torchrun_plain_sentence_transformers_trainer_with_our_sampler(tiny_model, shared_data, tmp_path):
    """The issue's check, two processes: a shuffled user Dataset and an eval_dataset in the plain
    SentenceTransformerTrainer with functools.partial(HybridSampler, alpha=0.5); each step both ranks get one
    kind and language pair with disjoint ids and answer groups."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29573",
           str(ROOT / "tests" / "ddp_plain_trainer.py"), str(tiny_model), str(shared_data), str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src")})
    assert r.returncode == 0, r.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{k}.json").read_text()) for k in (0, 1))
    assert r0["global_step"] == r1["global_step"] == 2 and r0["eval"]
    assert len(r0["steps"]) == len(r1["steps"]) == 6
    for a, b in zip(r0["steps"], r1["steps"], strict=True):
        assert len(a["id"]) == len(b["id"]) == 8
        langs = {(q, p) for q, p in zip(a["query_lang"] + b["query_lang"], a["passage_lang"] + b["passage_lang"],
                                        strict=True)}
        assert len(langs) == 1  # hybrid batches: one (X, Y) per step on every rank
        assert len(set(a["id"] + b["id"])) == 16 and len(set(a["group"] + b["group"])) == 16
