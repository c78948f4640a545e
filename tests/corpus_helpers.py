"""Builders for small, realistic LAReQA / SQuAD files (for the corpus tests): contexts are joined sentences, breaks and
answer starts are computed, so a test changes exactly one thing it means to break."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def paragraph(sentences: list[str], qas: list[tuple[str, str, int, str]]) -> dict[str, Any]:
    """A LAReQA paragraph; each qa is (id, question, sentence index holding the answer, answer text in it)."""
    context = " ".join(sentences)
    breaks, pos = [], 0
    for s in sentences:
        breaks.append([pos, pos + len(s)])
        pos += len(s) + 1
    out = []
    for qid, question, k, answer in qas:
        start = breaks[k][0] + sentences[k].index(answer)
        out.append({"id": qid, "question": question, "answers": [{"text": answer, "answer_start": start}]})
    return {"context": context, "qas": out, "sentence_breaks": breaks, "sentences": list(sentences)}


def doc(articles: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    return {"version": "1.1", "data": [{"title": t, "paragraphs": ps} for t, ps in articles]}


def write(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def valid_doc(lang: str = "en") -> dict[str, Any]:
    """Two articles, three paragraphs, five questions: the base every bad-input test mutates."""
    t = f"[{lang}] "
    return doc([
        ("Rivers", [
            paragraph([t + "The Rhine flows north.", "It is 1,230 km long.", "Basel lies on it."],
                      [("r1", t + "How long is the Rhine?", 1, "1,230 km"),
                       ("r2", t + "Which city lies on the Rhine?", 2, "Basel")]),
            paragraph([t + "The Danube flows east.", "It ends in the Black Sea."],
                      [("r3", t + "Where does the Danube end?", 1, "Black Sea")]),
        ]),
        ("Mountains", [
            paragraph([t + "Mont Blanc is 4,805 m high.", "It lies between France and Italy."],
                      [("m1", t + "How high is Mont Blanc?", 0, "4,805 m"),
                       ("m2", t + "Which countries share Mont Blanc?", 1, "France and Italy")]),
        ]),
    ])


# Partially parallel set (MLQA-R style): which languages each question id exists in.
PARTIAL_IDS = {
    "q1": ("en", "de", "es"),
    "q2": ("en", "de"),
    "q3": ("de", "es", "zh"),
    "q4": ("en", "zh"),
    "q5": ("es", "zh"),
    "q6": ("en", "de", "es"),
}
PARTIAL_ARTICLE = {"q1": "A", "q2": "A", "q3": "B", "q4": "B", "q5": "C", "q6": "C"}


def partial_set(folder: Path) -> dict[str, Path]:
    """Four languages; every id exists in 2 or 3 of them; each question has its own answer sentence."""
    files = {}
    for lang in ("de", "en", "es", "zh"):
        arts: dict[str, list[dict[str, Any]]] = {}
        for qid, langs in PARTIAL_IDS.items():
            if lang not in langs:
                continue
            sents = [f"{lang} intro for {qid}.", f"{lang} answer {qid} is here.", f"{lang} outro {qid}."]
            arts.setdefault(PARTIAL_ARTICLE[qid], []).append(
                paragraph(sents, [(qid, f"{lang} question {qid}?", 1, f"answer {qid}")]))
        files[lang] = write(folder / f"{lang}.json", doc(sorted(arts.items())))
    return files
