"""Cross-language consistency of a parallel QA file set: what no reader can see file by file, for `data check`.

Two mistakes read without an error, because each file is valid on its own: a language file that is a copy of
another language's (de.json == en.json: every question has the same text in both), and parallel ids that point at
other questions (ids rotated or shuffled within a file: the id's answer then sits in another paragraph than in the
other languages). Both are warnings naming the file: a few identical questions (names, numbers) are normal, and a
data set may legitimately differ in one language.

How the second is decided without trusting paragraph order across files: the *position* of an id's answer is the
set of ids answered in the same paragraph. In a parallel set, ids answered together in one language are answered
together in every other (XQuAD-R: for all 1190 ids in all 11 languages). An id whose set, restricted to the ids
both languages have, shares less than half of its members with the set of most other languages is misplaced (so
a paragraph that gained one stray id does not make all its ids misplaced). Sentence order within a paragraph
is not compared: translations split sentences differently (222 of XQuAD-R's 240 paragraphs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from itertools import combinations
from pathlib import Path

from hybridbatch.data.records import QACorpus
from hybridbatch.errors import Problem

#: a language pair whose shared ids have the same question text at least this often is reported (XQuAD-R: at most
#: 3 of 1190, el / en)
COPY_SHARE = 0.5


def consistency_warnings(corpus: QACorpus, files: Mapping[str, Path | str]) -> list[Problem]:
    """The warnings of both checks for a corpus read from `files` (language -> file)."""
    return identical_texts(corpus, files) + misplaced_answers(corpus, files)


def _file(files: Mapping[str, Path | str], lang: str) -> str:
    return str(files.get(lang, f"{lang}.json"))


def identical_texts(corpus: QACorpus, files: Mapping[str, Path | str]) -> list[Problem]:
    """A warning per language pair whose shared question ids mostly have the very same question text: one file is
    probably a copy of the other's language."""
    by_id = corpus.by_id()
    out = []
    for a, b in combinations(corpus.languages, 2):
        shared = [d for d in by_id.values() if a in d and b in d]
        same = sum(d[a].text == d[b].text for d in shared)
        if shared and same >= COPY_SHARE * len(shared):
            out.append(Problem(_file(files, a), "questions", (
                f"{same} of the {len(shared)} questions it shares with {Path(_file(files, b)).name} have the very "
                f"same text there: is one file a copy of the other language's?")))
    return out


def _paragraph_sets(corpus: QACorpus, lang: str) -> tuple[dict[str, frozenset[str]], dict[str, str],
                                                          dict[str, list[str]]]:
    """qid -> the ids answered in the same paragraph (itself included), qid -> that paragraph's `doc`, and doc ->
    its ids in file order."""
    pool = corpus.candidates[lang]
    order: dict[str, list[str]] = {}
    doc_of = {q.qid: pool[q.answer].doc for q in corpus.questions[lang]}
    for qid, doc in doc_of.items():
        order.setdefault(doc, []).append(qid)
    return {qid: frozenset(order[doc]) for qid, doc in doc_of.items()}, doc_of, order


def _show_doc(doc: str) -> str:
    art, _, par = doc.partition("/")
    return f"data[{art}].paragraphs[{par}]" if par else doc


def _apart(here: frozenset[str], there: frozenset[str]) -> bool:
    """Whether an id's paragraph mates here and there are mostly different ones (fewer than half shared): an id
    moved to another paragraph, not a paragraph that gained or lost one id."""
    return 2 * len(here & there) < len(here | there)


def misplaced_answers(corpus: QACorpus, files: Mapping[str, Path | str]) -> list[Problem]:
    """A warning per language file holding ids whose answer sits with other ids, or at another place among its
    paragraph's questions (their file order, counting the ids both languages have), than in most other languages
    (see the module docstring): ids rotated by one keep most paragraph mates, but every one of them moves a place.
    It names how many and the first one, with its place here and there."""
    sets, docs, orders = {}, {}, {}
    for lang in corpus.languages:
        sets[lang], docs[lang], orders[lang] = _paragraph_sets(corpus, lang)
    out = []
    for lang in corpus.languages:
        bad = _moved(lang, corpus.languages, sets, docs, orders)
        if not bad:
            continue
        qid = bad[0]
        there = Counter(docs[m][qid] for m in corpus.languages if m != lang and qid in docs[m]).most_common(1)[0]
        at = next(orders[m][there[0]].index(qid) for m in corpus.languages
                  if m != lang and docs[m].get(qid) == there[0])
        out.append(Problem(_file(files, lang), "question ids", (
            f"{len(bad)} of {len(sets[lang])} question ids have their answer in another paragraph, or at another "
            f"place in it, than in the other languages (first: {qid!r}, question "
            f"{orders[lang][docs[lang][qid]].index(qid) + 1} of {_show_doc(docs[lang][qid])} here, question {at + 1} "
            f"of {_show_doc(there[0])} in {there[1]} other language(s)): are the ids rotated or shuffled?")))
    return out


def _places(order: dict[str, list[str]], keep: Mapping[str, object]) -> dict[str, tuple[int, int]]:
    """qid -> (its place among its paragraph's questions that `keep` has, file order; how many those are)."""
    out = {}
    for ids in order.values():
        kept = [q for q in ids if q in keep]
        out.update((q, (i, len(kept))) for i, q in enumerate(kept))
    return out


def _moved(lang: str, langs: list[str], sets: dict, docs: dict, orders: dict) -> list[str]:
    """The ids of `lang` that sit apart from their paragraph mates in most other languages that have them, or at
    another place among them (counted from the paragraph's first and from its last question: rotated ids keep
    their order, so only their places tell)."""
    differ: Counter[str] = Counter()
    n_others: Counter[str] = Counter()
    for m in langs:
        if m == lang:
            continue
        mine, theirs = _places(orders[lang], sets[m]), _places(orders[m], sets[lang])
        for qid, (i, n) in mine.items():
            j, k = theirs[qid]
            n_others[qid] += 1
            if i != j or n - i != k - j:
                differ[qid] += 1
                continue
            here = frozenset(q for q in sets[lang][qid] if q in sets[m])  # mates both languages have
            there = frozenset(q for q in sets[m][qid] if q in sets[lang])
            differ[qid] += _apart(here, there)
    return [qid for qid in sets[lang] if n_others[qid] and 2 * differ[qid] > n_others[qid]]
