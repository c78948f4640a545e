"""The bias-targeted methods through the public training path (TrainConfig / train / `hybridbatch train`): the
translation sampler with the multi-positive loss, and the language-adversarial loss. Settings are refused before
anything is written; runs on the tiny model and the real XQuAD-R train pairs write a plain sentence-transformers
folder and a train.json that records the loss; the classifier is saved beside each checkpoint, never in the model,
and a resume restores it."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hybridbatch.data.records import PairSet
from hybridbatch.errors import UsageError
from hybridbatch.experiments.training import train
from hybridbatch.sampling.dataset import pair_dataset
from hybridbatch.training.adversarial import MEMORY_KEYS, LanguageAdversarialLoss
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.hybrid_trainer import HEAD_FILE
from hybridbatch.training.inputs import RunData, add_row_labels
from hybridbatch.training.losses import loss_record, make_loss
from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss

XQ_LANGS = ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]


def small_config(tiny_model: Path, data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model=str(tiny_model), data=[str(data / "xquad-r")], out=str(out), batch_size=8, max_steps=4,
                eval_steps=2, eval_batches=1, select="loss", progress=False, seed=3, lr=1e-3)
    base.update(kw)
    return TrainConfig(**base)



def tensors(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for f in sorted(folder.rglob("*.safetensors")) for k, v in load_file(str(f)).items()}


# ---- settings ------------------------------------------------------------------------------------------------------

TRANSLATIONS = {"sampler": "translations", "loss": "multi-positive"}


@pytest.mark.parametrize("kw,msg", [
    ({"loss": "multi-positive"}, "loss 'multi-positive' needs batches holding translations of one answer "
                                 r"\(sampler 'translations'\); sampler 'hybrid' puts each answer in a batch once"),
    ({"sampler": "translations"}, "InfoNCE would take them for negatives; use loss 'multi-positive'"),
    ({"loss": "supcon"}, "loss must be one of infonce, multi-positive, consistency, got 'supcon'"),
    ({**TRANSLATIONS, "multi_positive_form": "max"}, "multi positive form must be one of mean, sum, got 'max'"),
    ({**TRANSLATIONS, "k": 1}, r"k \(translations per answer in a batch\) must be an integer >= 2, got 1"),
    ({**TRANSLATIONS, "queries": "all"}, "queries must be one of one, parallel, not 'all'"),
    ({"adversarial_weight": -0.1}, r"adversarial weight must be >= 0 and finite \(0: off\), got -0.1"),
    ({"adversarial_weight": float("inf")}, "adversarial weight must be >= 0 and finite"),
    ({"adversarial_weight": float("nan")}, "adversarial weight must be >= 0 and finite"),
    ({"adversarial_weight": 0.1, "adversarial_hidden": -1}, "adversarial hidden must be >= 0"),
    ({"adversarial_weight": 0.1, "adversarial_lr": 0.0}, r"adversarial lr must be > 0 and finite \(unset: the "),
    ({"adversarial_weight": 0.1, "adversarial_lr": float("nan")}, "adversarial lr must be > 0 and finite"),
    ({"adversarial_weight": 0.1, "adversarial_memory": -1}, r"adversarial memory must be >= 0 \(0: off\), got -1"),
    ({"adversarial_memory": 1.5}, r"adversarial_memory: expected an integer, got a number \(1.5\)"),
    ({"adversarial_weight": 0.1, "cached_loss": True}, r"cached loss \(GradCache\) is InfoNCE only"),
    ({**TRANSLATIONS, "cached_loss": True}, r"cached loss \(GradCache\) is InfoNCE only"),
    ({"adversarial_weight": "0.1"}, r"adversarial_weight: expected a number, got a string \('0.1'\)"),
    ({**TRANSLATIONS, "own": 1}, r"own: expected true or false, got an integer \(1\)"),
])
def test_bad_settings_are_refused(kw, msg):
    with pytest.raises(UsageError, match=msg):
        TrainConfig(**kw).validate()


def test_good_settings_pass_and_files_are_type_checked(tmp_path):
    TrainConfig(**TRANSLATIONS, k=4, queries="parallel", own=False, multi_positive_form="sum").validate()
    TrainConfig(adversarial_weight=0.5, adversarial_hidden=0, sampler="xy").validate()
    TrainConfig(**TRANSLATIONS, adversarial_weight=0.1).validate()
    (tmp_path / "c.toml").write_text('sampler = "translations"\nloss = "multi-positive"\nk = 4\nown = false\n'
                                     'adversarial_weight = 0.2\n')
    cfg = TrainConfig.from_file(tmp_path / "c.toml")
    assert (cfg.sampler, cfg.loss, cfg.k, cfg.own, cfg.adversarial_weight, cfg.row_labels) == (
        "translations", "multi-positive", 4, False, 0.2, True)
    assert not TrainConfig().row_labels and TrainConfig(adversarial_weight=0.1).row_labels
    (tmp_path / "bad.yaml").write_text("k: 2.5\n")
    with pytest.raises(UsageError, match=r"bad.yaml: k: expected an integer, got a number \(2.5\)"):
        TrainConfig.from_file(tmp_path / "bad.yaml")


def test_refused_before_anything_is_written(main_cli, tiny_model, shared_data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UsageError, match="batch size 9 must be a multiple of k = 2"):
        train(small_config(tiny_model, shared_data, out, **TRANSLATIONS, batch_size=9))
    assert not out.exists()
    base = ["train", "--model", str(tiny_model), "--data", str(shared_data / "xquad-r"), "--out", str(out),
            "--max-steps", "2", "--no-progress"]
    code, err = main_cli(*base, "--loss", "multi-positive")
    assert code == 2 and "needs batches holding translations of one answer" in err
    code, err = main_cli(*base, "--adversarial-weight", "-1")
    assert code == 2 and "adversarial weight must be >= 0" in err
    code, err = main_cli(*base, "--adversarial-weight", "0.5", "--adversarial-lr", "0")
    assert code == 2 and "adversarial lr must be > 0 and finite" in err  # the flag reaches the config
    code, err = main_cli(*base, "--adversarial-weight", "0.5", "--adversarial-memory", "-5")
    assert code == 2 and "adversarial memory must be >= 0" in err
    code, err = main_cli(*base, "--sampler", "translations", "--loss", "multi-positive",
                        "--k", "12", "--batch-size", "24")
    assert code == 2 and "at least 12 languages" in err  # XQuAD-R has 11
    assert not out.exists()


# ---- the loss of a run ---------------------------------------------------------------------------------------------


def test_make_loss_and_its_record(tiny_model):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    model = SentenceTransformer(str(tiny_model), device="cpu")
    plain = make_loss(model, TrainConfig())
    assert isinstance(plain, MultipleNegativesRankingLoss)
    # the record of the existing losses: exactly the keys and values it always had
    assert loss_record(plain, TrainConfig()) == {
        "type": "MultipleNegativesRankingLoss", "scale": 20.0, "directions": ["query_to_doc"],
        "gather_across_devices": False, "hard_negatives": False, "hard_negative_lang": None, "mini_batch_size": None}

    cfg = TrainConfig(**TRANSLATIONS, symmetric=True, multi_positive_form="sum", scale=10.0)
    mp = make_loss(model, cfg, world_size=2)
    assert isinstance(mp, MultiPositiveRankingLoss) and mp.form == "sum" and mp.scale == 10.0
    assert mp.directions == ("query_to_doc", "doc_to_query") and mp.gather_across_devices
    rec = json.loads(json.dumps(loss_record(mp, cfg)))
    assert rec["type"] == "MultiPositiveRankingLoss" and rec["gather_across_devices"] is True
    assert rec["config"] == {"scale": 10.0, "similarity_fct": "cos_sim", "form": "sum",
                             "directions": ["query_to_doc", "doc_to_query"], "gather_across_devices": True,
                             "label_index": 0}

    adv_cfg = TrainConfig(adversarial_weight=0.3, adversarial_hidden=0, hard_negatives=True,
                          hard_negative_lang="query")
    adv = make_loss(model, adv_cfg, languages=["de", "en", "es"])
    assert isinstance(adv, LanguageAdversarialLoss) and isinstance(adv.loss, MultipleNegativesRankingLoss)
    assert adv.label_columns == (1, 2, 1)  # the hard negative is in the query's language
    assert isinstance(adv.classifier, torch.nn.Linear) and adv.classifier.out_features == 3
    rec = json.loads(json.dumps(loss_record(adv, adv_cfg)))
    assert rec["type"] == "LanguageAdversarialLoss" and rec["directions"] == ["query_to_doc"]
    assert rec["hard_negative_lang"] == "query"
    assert {k: rec["config"][k] for k in ("loss", "languages", "weight", "hidden", "label_columns")} == {
        "loss": "MultipleNegativesRankingLoss", "languages": ["de", "en", "es"], "weight": 0.3, "hidden": 0,
        "label_columns": [1, 2, 1]}
    with pytest.raises(UsageError, match="at least two training languages"):
        make_loss(model, adv_cfg, languages=["en"])


def test_row_labels_of_train_and_validation_rows(xquad):
    """Validation rows get the training codes; a language only they have comes after the training ones (the
    classifier, trained only in training mode, tells the training languages)."""
    pairs = xquad.split()[0].pairs(context=False, hard_negatives=False)
    ids = sorted(pairs.items)
    train_ps = PairSet("xq", {q: {lang: pairs.items[q][lang] for lang in ("de", "en")} for q in ids[:30]}, "c")
    val_ps = PairSet("xq", {q: {lang: pairs.items[q][lang] for lang in ("en", "zh")} for q in ids[30:40]}, "c")
    data = RunData([train_ps], [val_ps], pair_dataset(train_ps), pair_dataset(val_ps))
    add_row_labels(data)
    assert data.languages == ["de", "en"]  # what the classifier tells apart: the training languages
    assert data.train_dataset.column_names[-1] == "label" and len(data.train_dataset) == 30 * 4
    rows = data.val_dataset.select_columns(["query_lang", "passage_lang", "label"]).to_dict()
    vocab = ["de", "en", "zh"]
    assert all(vocab[lab[1]] == q and vocab[lab[2]] == p
               for q, p, lab in zip(rows["query_lang"], rows["passage_lang"], rows["label"], strict=True))
    assert {tuple(lab[1:]) for lab in rows["label"]} == {(1, 1), (1, 2), (2, 1), (2, 2)}


# ---- runs ----------------------------------------------------------------------------------------------------------


def test_translation_batches_with_the_multi_positive_loss(main_cli, tiny_model, shared_data, tmp_path):
    """Through the CLI flags: every logged batch is k = 2 translations of 4 answers, the folder is a plain
    sentence-transformers model, train.json records the loss and the sampler's k."""
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    code, err = main_cli("train", "--model", str(tiny_model), "--data",
                        str(shared_data / "xquad-r"), "--out", str(out), "--batch-size", "8", "--max-steps", "3",
                        "--eval-steps", "3", "--eval-batches", "1", "--select", "loss", "--seed", "3",
                        "--sampler", "translations", "--loss", "multi-positive", "--k", "2", "--alpha", "0",
                        "--multi-positive-form", "mean", "--no-progress")
    assert code == 0, err
    j = json.loads((out / "train.json").read_text())
    assert j["steps"] == 3 and j["settings"]["loss"] == "multi-positive" and j["settings"]["k"] == 2
    assert j["loss"]["type"] == "MultiPositiveRankingLoss" and j["loss"]["config"]["form"] == "mean"
    assert j["sampler"]["sampler"] == "translations" and j["sampler"]["k"] == 2 and j["sampler"]["alpha"] == 0.0
    assert j["mix"]["kinds"] == {"translations": 3} and j["loss_curve"]["val"][0]["metric"] == "eval_loss"
    log = [json.loads(line) for line in (out / "batches.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in log] == ["translations"] * 3
    for e in log:
        assert len(set(e["qids"])) == 4 and all(e["qids"][i] == e["qids"][i + 1] for i in range(0, 8, 2))
    model = SentenceTransformer(str(out), device="cpu")
    assert set(model.state_dict()) == set(SentenceTransformer(str(tiny_model), device="cpu").state_dict())
    assert model.encode(["query: hello"]).shape == (1, 32)
    assert not (out / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize("memory", [0, 40])
def test_adversarial_run_and_a_resume_that_restores_the_classifier(monkeypatch, tiny_model, shared_data, tmp_path,
                                                                   memory):
    """adversarial_weight > 0 trains the classifier jointly; it goes beside each checkpoint (adversary.pt), never
    into the model, with its memory when it has one; resuming from checkpoint-2 loads exactly the head saved there,
    and the resumed run reaches the uninterrupted run's checkpoint-4 (model and head)."""
    full = tmp_path / "full"
    cfg = small_config(tiny_model, shared_data, full, adversarial_weight=0.5, adversarial_hidden=16,
                       keep_checkpoints=True, save_steps=2, hard_negatives=True, val_fraction=0.0,
                       adversarial_memory=memory)
    train(cfg)
    j = json.loads((full / "train.json").read_text())
    assert j["loss"]["type"] == "LanguageAdversarialLoss" and j["loss"]["config"]["languages"] == XQ_LANGS
    assert j["loss"]["config"]["weight"] == 0.5 and j["loss"]["config"]["loss"] == "MultipleNegativesRankingLoss"
    lang = j["loss_curve"]["language"]
    assert lang and all(v["language_ce"] > 0 and 0 <= v["language_acc"] <= 1 for v in lang)
    assert all(("memory_ce" in v) == bool(memory) for v in lang[1:])  # from the second batch on, with a memory
    assert j["loss"]["config"]["memory"] == memory
    assert set(j["mix"]["kinds"]) <= {"xx", "xy"}
    saved = tensors(full)
    assert saved and set(saved) == set(tensors(tiny_model))  # the model's tensors, no classifier
    heads = {s: torch.load(full / "checkpoints" / f"checkpoint-{s}" / HEAD_FILE, weights_only=True) for s in (2, 4)}
    assert set(heads[2]) - set(MEMORY_KEYS) == {"1.weight", "1.bias", "3.weight", "3.bias"}  # dropout, linear, ...
    if memory:  # the last `memory` embeddings and their languages, capped
        assert heads[4][MEMORY_KEYS[0]].shape == (memory, 32) and heads[4][MEMORY_KEYS[1]].shape == (memory,)
    else:
        assert not set(MEMORY_KEYS) & set(heads[2])
    assert heads[2]["3.weight"].shape == (len(XQ_LANGS), 16)
    assert not any(torch.equal(heads[2][k], heads[4][k]) for k in heads[2] if k not in MEMORY_KEYS)  # trained
    for s in (2, 4):
        assert not {tuple(v.shape) for v in heads[s].values()} & {tuple(v.shape) for v in tensors(
            full / "checkpoints" / f"checkpoint-{s}").values()}

    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "train.json").unlink()
    shutil.rmtree(cut / "checkpoints" / "checkpoint-4")
    loaded: list[dict[str, torch.Tensor]] = []
    original = LanguageAdversarialLoss.load_head_state_dict

    def spy(self, state):
        loaded.append({k: v.clone() for k, v in state.items()})
        original(self, state)

    monkeypatch.setattr(LanguageAdversarialLoss, "load_head_state_dict", spy)
    train(cfg.replace(out=str(cut), resume=True))
    assert json.loads((cut / "train.json").read_text())["resumed_from_step"] == 2
    assert loaded and all(torch.equal(loaded[0][k], heads[2][k]) for k in heads[2])
    again = torch.load(cut / "checkpoints" / "checkpoint-4" / HEAD_FILE, weights_only=True)
    for k in heads[4]:
        torch.testing.assert_close(again[k], heads[4][k], atol=1e-6, rtol=0)
    a, b = tensors(full / "checkpoints" / "checkpoint-4"), tensors(cut / "checkpoints" / "checkpoint-4")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)


DUMP_HEAD = '''
import os, sys
from pathlib import Path
import torch
from hybridbatch.training import hybrid_trainer as hf

dump = Path(sys.argv[1])
sys.argv = ["hybridbatch", *sys.argv[2:]]
train = hf.HybridTrainer.train

def train_and_dump(self, *args, **kwargs):
    result = train(self, *args, **kwargs)
    dump.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu().clone() for k, v in self.loss.head_state_dict().items()},
               dump / f"rank{os.environ['RANK']}.pt")
    return result

hf.HybridTrainer.train = train_and_dump
from hybridbatch.cli import main
main()
'''


@pytest.mark.slow
def test_two_processes_train_one_classifier(tiny_model, shared_data, tmp_path):
    """Under torchrun (gloo) each rank trains on its own batch, yet the ranks' classifiers end bit-identical: their
    gradients are averaged before every optimizer step (DDP averages the model's only)."""
    import os
    import subprocess

    script = tmp_path / "dump_head.py"
    script.write_text(DUMP_HEAD)
    out, dump = tmp_path / "ddp", tmp_path / "dump"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29591",
           str(script), str(dump), "train", "--model", str(tiny_model), "--data", str(shared_data / "xquad-r"),
           "--out", str(out), "--batch-size", "8", "--max-steps", "3", "--val-fraction", "0", "--lr", "1e-3",
           "--adversarial-weight", "0.5", "--adversarial-hidden", "16", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    h0, h1 = (torch.load(dump / f"rank{k}.pt", weights_only=True) for k in (0, 1))
    assert set(h0) == {"1.weight", "1.bias", "3.weight", "3.bias"}
    for k in h0:
        assert torch.equal(h0[k], h1[k]), k
    j = json.loads((out / "train.json").read_text())
    assert j["world_size"] == 2 and j["loss"]["gather_across_devices"] is True
    assert j["loss"]["type"] == "LanguageAdversarialLoss"
