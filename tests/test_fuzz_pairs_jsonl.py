"""Fuzzing `read_pairs_jsonl` (JSONL training pairs). The property, the bookkeeping and the budgets:
tests/fuzz_helpers.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import (
    MODULE_MARKS,
    JSON_ANY,
    NASTY,
    QID,
    SENTENCE,
    attempt,
    budgets,
    check_encoding_outcome,
    damaged_bytes,
    fuzz,
    scratch,
    truncations_every_prefix,
    truncations_sampled,
    utf8,
)
from hypothesis import strategies as st

from hybridbatch.data.languages import normalize_lang
from hybridbatch.data.pairs import read_pairs_jsonl

pytestmark = MODULE_MARKS


@st.composite
def jsonl_files(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]] | None]:
    """Lines mixing valid records, records with one bad field, arbitrary JSON, broken JSON and blank lines; returns
    the bytes and, when every line is valid and (id, lang) unique, the expected keys."""
    lines: list[str] = []
    keys: list[tuple[str, str]] = []
    clean = True
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["valid", "valid", "valid", "bad field", "missing field", "extra field",
                                     "arbitrary JSON", "broken JSON", "blank", "duplicate"]))
        rec: dict[str, Any] = {"id": draw(QID), "lang": draw(st.sampled_from(["en", "de", "deu", "zh-CN"])),
                               "query": draw(SENTENCE), "positive": draw(SENTENCE)}
        if draw(st.booleans()):
            rec["negative"] = draw(SENTENCE | st.lists(SENTENCE, max_size=3))
        if kind == "duplicate" and not keys:
            kind = "valid"
        if kind == "duplicate":
            rec["id"], rec["lang"] = keys[-1]
            clean = False
        elif kind == "bad field":
            rec[draw(st.sampled_from(sorted(rec)))] = draw(NASTY)
            clean = False
        elif kind == "missing field":
            del rec[draw(st.sampled_from(["id", "lang", "query", "positive"]))]
            clean = False
        elif kind == "extra field":
            rec[draw(st.text(max_size=6).filter(lambda k: k not in rec))] = draw(JSON_ANY)
        if kind == "arbitrary JSON":
            line = json.dumps(draw(JSON_ANY))
            clean = False
        elif kind == "broken JSON":
            full = json.dumps(rec, ensure_ascii=False)
            line = full[: draw(st.integers(0, len(full) - 1))] + draw(st.sampled_from(["", "}", "]", ",", "\\"]))
            clean = clean and not line.strip()
        elif kind == "blank":
            line = draw(st.sampled_from(["", " ", "\t", "\r"]))
        else:
            line = json.dumps(rec, ensure_ascii=draw(st.booleans()))
            if kind in ("valid", "extra field"):
                key = (str(rec["id"]), normalize_lang(rec["lang"]) or "")
                clean = clean and key not in keys and utf8(line)  # a raw lone surrogate is not UTF-8
                keys.append(key)
        lines.append(line)
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + draw(st.sampled_from(["", eol]))
    raw = (b"\xef\xbb\xbf" if draw(st.booleans()) else b"") + text.encode("utf-8", "surrogatepass")
    return raw, (keys if clean and keys else None)


@pytest.mark.parametrize("n", budgets(80))
def test_pairs_jsonl(n: int) -> None:
    def prop(x: tuple[bytes, list[tuple[str, str]] | None]) -> None:
        raw, expected = x
        with scratch() as d:
            f = d / "pairs.jsonl"
            f.write_bytes(raw)
            outcome, value = attempt("pairs JSONL: " + ("all lines valid" if expected else "mixed lines"),
                                     lambda: read_pairs_jsonl(f), files=[f])
        if expected is not None:
            assert outcome == "valid"
            assert sorted((q, lang) for q, by in value.items.items() for lang in by) == sorted(expected)
        elif outcome == "data-error":
            assert all(p.where.startswith("line ") or "no training pairs" in p.message for p in value.problems)

    fuzz(n, jsonl_files(), prop)


# ---- truncated real files (pairs cut from an XQuAD-R paragraph, ru + en) ---------------------------------------------


@pytest.mark.parametrize("n", budgets(15))
def test_truncated_real_files_sampled(n: int, real_small_files: dict[str, Path]) -> None:
    truncations_sampled(n, real_small_files, ["pairs JSONL"])


@pytest.mark.slow
@pytest.mark.heavy  # the exhaustive variant of the sampled test above
def test_truncated_real_files_every_prefix(real_small_files: dict[str, Path]) -> None:
    truncations_every_prefix(real_small_files, ["pairs JSONL"])


# ---- wrong encodings and random bytes --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", budgets(20))
def test_wrong_encodings_and_random_bytes(n: int) -> None:
    text = "".join(json.dumps({"id": f"q{i}", "lang": "de", "query": f"Frage {i} über Größe?",
                               "positive": "Die Größe ist 3 m."}, ensure_ascii=False) + "\n" for i in range(3))

    def prop(x: tuple[str, bytes]) -> None:
        how, raw = x
        with scratch() as d:
            f = d / "pairs.jsonl"
            f.write_bytes(raw)
            outcome, value = attempt(f"encoding: {how} (pairs JSONL)", lambda: read_pairs_jsonl(f), files=[f])
        check_encoding_outcome(how, outcome, value)

    fuzz(n, damaged_bytes(text), prop)


# ---- edge cases named one by one -------------------------------------------------------------------------------------


EDGE_JSONL = {
    "deeply nested line": "[" * 100_000 + "]" * 100_000 + "\n",
    "5000-digit id": '{"id": ' + "1" * 5000 + ', "lang": "en", "query": "q", "positive": "p"}\n',
    "lone surrogate in query": '{"id": "a", "lang": "en", "query": "\\ud800", "positive": "p"}\n',
    "lone surrogate in negative": '{"id": "a", "lang": "en", "query": "q", "positive": "p", "negative": ["\\udfff"]}\n',
    "lone surrogate in id": '{"id": "\\ud800", "lang": "en", "query": "q", "positive": "p"}\n',
    "NaN id": '{"id": NaN, "lang": "en", "query": "q", "positive": "p"}\n',
    "only blank lines": "\n \n\t\n",
}


@pytest.mark.parametrize("name", sorted(EDGE_JSONL))
def test_edge_cases_jsonl(name: str, tmp_path: Path) -> None:
    f = tmp_path / "pairs.jsonl"
    f.write_text(EDGE_JSONL[name], encoding="utf-8")
    outcome, value = attempt(f"edge case: JSONL {name}", lambda: read_pairs_jsonl(f), files=[f])
    assert outcome == "data-error"
