"""Fuzzing `read_mkqa` (MKQA JSONL lines, both pairings). The property, the bookkeeping and the budgets:
tests/fuzz_helpers.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fuzz_helpers import (
    MODULE_MARKS,
    JSON_ANY,
    NASTY_STRINGS,
    QID,
    SENTENCE,
    SURROGATES,
    attempt,
    budgets,
    fuzz,
    scratch,
)
from hypothesis import strategies as st

from hybridbatch.data.languages import normalize_lang

pytestmark = MODULE_MARKS


@st.composite
def mkqa_lines(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]] | None]:
    """(file bytes, the (pid, language) keys it must read as, or None). Half the time a clean file (unique keys,
    language codes as MKQA writes them, non-empty answers); else MKQA-shaped lines with random damage: fields
    missing or of the wrong type, unknown or bad language codes, empty answers, duplicates, random JSON and text."""
    if draw(st.booleans()):
        keys = draw(st.lists(st.tuples(st.sampled_from(["mkqa:1", "mkqa:2", "mkqa:-3"]),
                                       st.sampled_from(["en", "zh_cn", "ja", "km", "ms"])), min_size=1, max_size=8,
                             unique=True))
        lines = [json.dumps({"pid": pid, "lang": lang, "question": draw(SENTENCE),
                             "answers": draw(st.lists(SENTENCE, min_size=1, max_size=3)), "split": "dev"},
                            ensure_ascii=draw(st.booleans())) for pid, lang in keys]
        return "\n".join(lines).encode("utf-8"), [(pid, normalize_lang(lang)) for pid, lang in keys]
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        choice = draw(st.integers(0, 9))
        if choice <= 5:
            rec: dict[str, Any] = {"pid": draw(st.sampled_from(["mkqa:1", "mkqa:2", "mkqa:-3"]) | QID),
                                   "lang": draw(st.sampled_from(["en", "zh_cn", "ja", "km", "xx", ""]) | JSON_ANY),
                                   "question": draw(SENTENCE | NASTY_STRINGS | SURROGATES | JSON_ANY),
                                   "answers": draw(st.lists(SENTENCE | NASTY_STRINGS, max_size=3) | JSON_ANY),
                                   "split": "dev"}
            for k in draw(st.lists(st.sampled_from(sorted(rec)), max_size=2, unique=True)):
                del rec[k]
            line = json.dumps(rec, ensure_ascii=draw(st.booleans()))
        elif choice <= 7:
            line = json.dumps(draw(JSON_ANY))
        else:
            line = draw(st.text(max_size=40)).replace("\n", " ")
        lines.append(line)
    return "\n".join(lines).encode("utf-8", "surrogatepass"), None


@pytest.mark.parametrize("n", budgets(60))
def test_mkqa_lines(n: int) -> None:
    from hybridbatch.data.mkqa import read_mkqa

    def prop(x: tuple[bytes, list[tuple[str, str]] | None]) -> None:
        raw, expected = x
        with scratch() as d:
            f = d / "mkqa_dev.jsonl"
            f.write_bytes(raw)
            for pairing in ("questions", "answers"):
                label = f"MKQA JSONL ({pairing}): " + ("clean" if expected else "damaged")
                outcome, value = attempt(label, lambda: read_mkqa(f, pairing), files=[f])
                if expected is not None:
                    assert outcome == "valid"
                    assert sorted((q, lang) for q, by in value.items.items() for lang in by) == sorted(expected)
                elif outcome == "data-error":
                    assert all(p.where.startswith("line ") or p.where == "file" for p in value.problems)

    fuzz(n, mkqa_lines(), prop)
