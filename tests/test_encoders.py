"""Encoding runtimes: length bucketing, the ONNX / OpenVINO exports of a real (tiny) model reproduce PyTorch, exports
are cached by weights, unsupported models and missing packages give clear errors, and the torch options (precision,
several devices) reach sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest

import hybridbatch.evaluation.exported as X
import hybridbatch.evaluation.runtimes as E
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.encode import encode_texts
from hybridbatch.evaluation.model_info import model_identity

TEXTS = ["Berlin hat 3,7 Millionen Einwohner.", "kurz", "Το νησί βρίσκεται στο νότιο Αιγαίο.", "kurz",
         "A much longer sentence about the history of the city, with many words, commas and clauses in it."]


@pytest.fixture(scope="module")
def st_tiny(tiny_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_model), device="cpu")


def test_length_batches_cover_every_index_once_and_group_similar_lengths():
    lengths = [5, 40, 3, 39, 6, 41, 4]
    batches = E.length_batches(lengths, 3)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert [sorted(lengths[i] for i in b) for b in batches] == [[39, 40, 41], [4, 5, 6], [3]]


@pytest.mark.parametrize("name, tol", [("onnx", 1e-5), ("openvino", 1e-4), ("onnx-int8", 0.2)])
def test_exports_reproduce_torch_and_are_cached(st_tiny, tmp_path, name, tol):
    pytest.importorskip("onnx")
    if name.startswith("openvino"):
        pytest.importorskip("openvino")
    ident = model_identity(st_tiny)
    want = encode_texts(st_tiny, TEXTS, "passage", batch_size=2)
    runner = E.make_encoder(st_tiny, name, identity=ident, cache_dir=tmp_path)
    got = encode_texts(st_tiny, TEXTS, "passage", batch_size=2, runner=runner)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.max(1 - np.einsum("ij,ij->i", got, want)) < tol
    np.testing.assert_array_equal(got[1], got[3])  # a repeated text gets one identical embedding
    exported = sorted(p.name for p in (tmp_path / "exported").iterdir())
    assert all(p.startswith(ident["weights_sha256"][:16]) for p in exported)
    # a second runner finds the export instead of redoing it
    stamp = {p: p.stat().st_mtime_ns for p in (tmp_path / "exported").rglob("*") if p.is_file()}
    again = encode_texts(st_tiny, TEXTS, "passage", batch_size=4,
                         runner=E.make_encoder(st_tiny, name, identity=ident, cache_dir=tmp_path))
    assert {p: p.stat().st_mtime_ns for p in stamp} == stamp
    # batch composition does not change fp32 results; int8 with dynamic activation ranges moves a little
    np.testing.assert_allclose(again, got, atol=1e-5 if "int8" not in name else 1e-3)
    # a grid frees a finished checkpoint's exports: every folder of these weights goes, and only those
    (tmp_path / "exported" / "0123456789abcdef-onnx-L8").mkdir()
    assert E.drop_exports(ident["weights_sha256"], tmp_path) == len(exported)
    assert [p.name for p in (tmp_path / "exported").iterdir()] == ["0123456789abcdef-onnx-L8"]


def test_bad_choices_and_unsupported_models_are_refused(st_tiny, tmp_path):
    with pytest.raises(UsageError, match="encoder must be one of"):
        E.make_encoder(st_tiny, "tensorrt")
    with pytest.raises(UsageError, match="precision"):
        E.make_encoder(st_tiny, "onnx", precision="fp16", cache_dir=tmp_path)
    from sentence_transformers import SentenceTransformer, models

    word = st_tiny[0]
    odd = SentenceTransformer(modules=[word, models.Pooling(word.get_embedding_dimension(), pooling_mode="max")],
                              device="cpu")
    with pytest.raises(UsageError, match="mean or CLS pooling"):
        E.make_encoder(odd, "onnx", cache_dir=tmp_path)


def test_missing_package_names_the_extra(st_tiny, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_openvino(name, *a, **k):
        if name == "openvino" or name.startswith("openvino."):
            raise ImportError("no openvino here")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    monkeypatch.setattr("importlib.import_module", lambda n: no_openvino(n))
    with pytest.raises(UsageError, match=r"hybridbatch\[fast\]"):
        X.require_runtime("openvino", "openvino")


class Recorder:
    """A stand-in for a SentenceTransformer that records what encode() was asked to do."""

    def __init__(self):
        self.calls = []
        self.dtype = None

    def encode(self, texts, **kw):
        self.calls.append(kw)
        return np.ones((len(texts), 4), dtype=np.float32)

    def to(self, dtype):
        self.dtype = dtype
        return self


def test_torch_precision_and_devices_reach_sentence_transformers():
    import torch

    rec = Recorder()
    enc = E.TorchRuntime(rec, precision="bf16", devices=["cuda:0", "cuda:1"])
    assert enc.key == "torch-bf16" and enc.model.dtype == torch.bfloat16 and rec.dtype is None  # a cast copy
    enc.encode(["a", "b"], "query: ", 8)
    call = enc.model.calls[-1]
    assert call["device"] == ["cuda:0", "cuda:1"] and call["batch_size"] == 8 and call["prompt"] == "query: "
    one = E.TorchRuntime(rec, devices=["cuda:0"])
    one.encode(["a"], None, 4)
    assert "device" not in rec.calls[-1] and one.key == "torch"


def test_cli_encoder_and_ties_options(tiny_model, shared_data, tmp_path):
    """`eval --encoder onnx --ties pessimistic` through the CLI (in this process: the options' path from the command
    line to eval.json is the point, the export itself is tested above), and bad values refused with exit 2."""
    import json

    from test_cli_errors import run_cli

    pytest.importorskip("onnx")
    data = tmp_path / "data"
    data.mkdir()
    for lang in ("de", "en"):
        obj = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        art = obj["data"][0]
        obj["data"] = [{**art, "paragraphs": art["paragraphs"][:1]}]
        (data / f"{lang}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    base = ["eval", "--model", str(tiny_model), "--data", str(data), "--split", "all", "--no-progress",
            "--cache-dir", str(tmp_path / "cache")]
    code, text = run_cli([*base, "--encoder", "onnx", "--ties", "pessimistic", "--out", str(tmp_path / "o")])
    assert code == 0, text
    body = json.loads((tmp_path / "o" / "eval.json").read_text())
    assert body["settings"]["encoder"] == "onnx" and body["settings"]["ties"] == "pessimistic"
    assert body["tie_rule"].startswith("pessimistic") and "(onnx)" in text
    assert any((tmp_path / "cache" / "exported").iterdir())  # the export sits next to the embedding cache
    for bad, needle in ((["--ties", "random"], "--ties"), (["--encoder", "tensorrt"], "--encoder"),
                        (["--encoder", "onnx", "--precision", "fp16"], "--precision")):
        code, text = run_cli([*base, *bad, "--out", str(tmp_path / "x")])
        assert code == 2 and needle in text and "Traceback" not in text, text
        assert not (tmp_path / "x" / "eval.json").exists()
