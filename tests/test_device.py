"""Where training and evaluation run (`hybridbatch.device`) and which prefixes a model gets (`models.prefixes`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hybridbatch.device import Placement, placement, resolve_device, resolve_precision
from hybridbatch.errors import UsageError
from hybridbatch.models.loading import load_model, prefixes, set_prefixes

NO_CUDA = not torch.cuda.is_available()


# ---- device and precision -------------------------------------------------------------------------------------------


def test_cpu_keeps_the_training_arguments_it_always_had():
    """CPU runs stay bit-identical because they get exactly use_cpu + gloo, and no mixed precision."""
    p = placement("cpu", "auto")
    assert p == Placement("cpu", "fp32")
    assert p.training_kwargs(1) == {"use_cpu": True, "ddp_backend": None}
    assert p.training_kwargs(2) == {"use_cpu": True, "ddp_backend": "gloo"}
    assert Placement("cpu", "bf16").training_kwargs(1) == {"use_cpu": True, "ddp_backend": None, "bf16": True}


def test_cuda_gets_nccl_and_mixed_precision():
    assert Placement("cuda:1", "bf16").training_kwargs(4) == {"use_cpu": False, "ddp_backend": "nccl", "bf16": True}
    assert Placement("cuda", "fp16").training_kwargs(1) == {"use_cpu": False, "ddp_backend": None, "fp16": True}
    with pytest.raises(UsageError, match="MPS"):
        Placement("mps", "fp32").training_kwargs(2)


def test_auto_follows_accelerate_launch(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")
    assert resolve_device("auto") == "cpu"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cpu") == "fp32"


@pytest.mark.parametrize("device, precision, msg", [
    ("gpu", "auto", "--device must be one of"),
    ("cpu", "half", "--precision must be one of"),
    ("cpu", "fp16", "fp16 needs a GPU"),
])
def test_bad_words_are_usage_errors(device, precision, msg):
    with pytest.raises(UsageError, match=msg):
        placement(device, precision)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_is_an_error_not_a_silent_cpu_run():
    assert resolve_device("auto") in ("cpu", "mps")
    with pytest.raises(UsageError, match="no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(UsageError, match="no CUDA GPU"):
        load_model("embedded", device="cuda:0")


def test_nothing_in_src_forces_the_cpu():
    src = Path(__file__).resolve().parents[1] / "src"
    hits = subprocess.run(["grep", "-rnE", "--include=*.py", 'use_cpu=True|device="cpu"', str(src)],
                          capture_output=True, text=True)
    assert hits.stdout == ""


# ---- prefixes -------------------------------------------------------------------------------------------------------


def test_model_without_prompts_is_encoded_without_prefixes(tiny_model):
    """A plain Hugging Face folder (LaBSE / XLM-R style: no prompts) gets no E5 prefix, in evaluation and training."""
    from hybridbatch.evaluation.encode import encode_texts

    model = load_model(str(tiny_model.parent / "hf"), device="cpu", max_seq_length=32)
    assert prefixes(model) == ("", "")
    texts = ["Wer hat den Vertrag unterzeichnet?", "The treaty was signed in 1648."]
    got = encode_texts(model, texts, "query")
    bare = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    e5 = model.encode(["query: " + t for t in texts], normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(got, bare, atol=1e-6)
    assert not np.allclose(got, e5, atol=1e-3)


def test_pair_table_uses_no_prefix_for_a_model_without_prompts(tiny_model, xquad):
    from hybridbatch.sampling.dataset import pair_dataset

    model = load_model(str(tiny_model.parent / "hf"), device="cpu")
    qp, pp = prefixes(model)
    pairs = xquad.subset({xquad.questions["en"][0].article}, "one").pairs()
    row = pair_dataset(pairs, qp, pp)[0]
    assert not row["anchor"].startswith("query: ") and not row["positive"].startswith("passage: ")


def test_the_models_own_prompts_are_used_and_can_be_overridden(tiny_model):
    from hybridbatch.evaluation.encode import encode_texts

    model = load_model(str(tiny_model), device="cpu")
    assert prefixes(model) == ("query: ", "passage: ")  # saved prompts (ST's empty 'document' placeholder skipped)
    model = load_model(str(tiny_model), device="cpu", query_prefix="Q: ", passage_prefix="")
    assert prefixes(model) == ("Q: ", "")
    texts = ["hola mundo"]
    np.testing.assert_allclose(encode_texts(model, texts, "query"),
                               model.encode(["Q: hola mundo"], normalize_embeddings=True), atol=1e-6)
    np.testing.assert_allclose(encode_texts(model, texts, "passage"),
                               model.encode(texts, normalize_embeddings=True), atol=1e-6)
    # sentence-transformers' own encode_document agrees with ours
    set_prefixes(model, passage="P: ")
    np.testing.assert_allclose(model.encode_document(texts, normalize_embeddings=True),
                               encode_texts(model, texts, "passage"), atol=1e-6)
    with pytest.raises(UsageError):
        set_prefixes(model, query=3)  # type: ignore[arg-type]


def test_cli_prefix_flags_train_with_them_and_the_model_keeps_them(tiny_model, shared_data, tmp_path):
    """`train --query-prefix/--passage-prefix` on a model without prompts: train.json records them, the saved model
    carries them as its prompts, so `eval` of that folder uses them with no flag."""
    out = tmp_path / "run"
    r = subprocess.run([sys.executable, "-m", "hybridbatch.cli", "train", "--model", str(tiny_model.parent / "hf"),
                        "--data", str(shared_data / "xquad-r"), "--out", str(out), "--batch-size", "4",
                        "--max-steps", "2", "--val-fraction", "0", "--max-seq-length", "16", "--no-progress",
                        "--device", "cpu", "--query-prefix", "frage: ", "--passage-prefix", "antwort: "],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    j = json.loads((out / "train.json").read_text())
    assert j["prefixes"] == {"query": "frage: ", "passage": "antwort: "}
    assert j["device"] == {"device": "cpu", "precision": "fp32"}
    assert prefixes(load_model(str(out), device="cpu")) == ("frage: ", "antwort: ")


@pytest.mark.slow
def test_embedded_model_keeps_its_e5_prompts(embedded_model):
    model = load_model("embedded", device="cpu")
    assert prefixes(model) == ("query: ", "passage: ")
