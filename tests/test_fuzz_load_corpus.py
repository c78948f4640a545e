"""Fuzzing `load_corpus` on folders (format detection, language files, TyDi names, junk entries), checked against
`data check`. The property, the bookkeeping and the budgets: tests/fuzz_helpers.py."""

from __future__ import annotations

from typing import Any

import pytest
from corpus_helpers import valid_doc
from fuzz_helpers import (
    MODULE_MARKS,
    attempt,
    budgets,
    fuzz,
    scratch,
    squad_docs,
    write_json,
)
from hypothesis import strategies as st

from hybridbatch.data.checks import check_paths
from hybridbatch.data.lookup import load_corpus

pytestmark = MODULE_MARKS


FOLDER_NAMES = ["en.json", "de.json", "deu.json", "german.json", "xquad.es.json", "zh-CN.json", "xx.json",
                "notes.json", ".hidden.json", "english_tydiqa_dev.json", "arabic_tydiqa_dev.json",
                "english_tydiqa_train.json", "klingon_tydiqa_dev.json", "pairs.jsonl", "README.md"]


@st.composite
def qa_folders(draw: st.DrawFn) -> dict[str, Any]:
    """File name -> content: a valid document, a randomly changed one, garbage, empty; or a folder / dangling link."""
    out: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(FOLDER_NAMES), unique=True, max_size=4)):
        kind = draw(st.sampled_from(["valid LAReQA", "valid LAReQA", "valid SQuAD", "changed", "garbage", "empty",
                                     "a folder", "dangling symlink"]))
        if kind == "valid LAReQA":
            out[name] = valid_doc()
        elif kind == "valid SQuAD":
            doc = valid_doc()
            for art in doc["data"]:
                for par in art["paragraphs"]:
                    del par["sentences"], par["sentence_breaks"]
            out[name] = doc
        elif kind == "changed":
            out[name] = draw(squad_docs(lareqa=draw(st.booleans()), max_mutations=2))
        elif kind == "garbage":
            out[name] = draw(st.binary(max_size=200))
        else:
            out[name] = {"empty": b"", "a folder": "<dir>", "dangling symlink": "<dangling>"}[kind]
    return out


@pytest.mark.parametrize("n", budgets(60))
def test_load_corpus_folders(n: int) -> None:
    def prop(spec: dict[str, Any]) -> None:
        with scratch() as d:
            folder = d / "set"
            folder.mkdir()
            for name, content in spec.items():
                p = folder / name
                if content == "<dir>":
                    p.mkdir()
                elif content == "<dangling>":
                    p.symlink_to(d / "nowhere.json")
                elif isinstance(content, bytes):
                    p.write_bytes(content)
                else:
                    write_json(p, content)
            outcome, value = attempt("load_corpus(folder)", lambda: load_corpus(folder), folder=folder,
                                     usage_ok=True)
            if outcome == "usage-error":  # only when there is nothing to read
                entries = [p.name for p in folder.glob("*.json") if not p.name.startswith(".")]
                tydi = [e for e in entries if "_tydiqa_" in e]  # any TyDi name makes it a TyDi folder
                assert not entries or (tydi and not any(e.endswith("_dev.json") for e in tydi)), value
            if not any("_tydiqa_" in n or n.endswith(".jsonl") for n in spec):  # data check agrees
                problems, _ = check_paths([folder])
                assert bool(problems) == (outcome != "valid"), (problems, outcome)

    fuzz(n, qa_folders(), prop)
