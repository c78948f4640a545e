"""Records of parallel QA data: candidates, questions, training items, and the corpora that hold them.

Nothing here assumes full parallelism: an id may exist in only some languages (MLQA-R style).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from hybridbatch.errors import Problem, UsageError


@dataclass(frozen=True, slots=True)
class Candidate:
    """One retrievable sentence. `doc` names its paragraph ("article_index/paragraph_index"); in XQuAD-R the same
    `doc` in two languages is the same paragraph translated."""

    lang: str
    text: str
    context: str
    doc: str
    article: str


@dataclass(frozen=True, slots=True)
class Question:
    """One question in one language; `answer` indexes `QACorpus.candidates[lang]` (the sentence holding the answer)."""

    qid: str
    lang: str
    text: str
    answer: int
    article: str
    group: str = ""  # language-independent key of the answer: ids whose answers are one sentence share it


@dataclass(frozen=True, slots=True)
class TrainItem:
    """A query and its positive passage in one language, plus optional hard negatives in the same language."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()
    group: str = ""  # answer group (empty: the id is its own group)
    negative_groups: tuple[str, ...] = ()  # the group of each negative, aligned with `negatives`


@dataclass
class PairSet:
    """Training data: items[qid][lang]. A batch pairs the query of one language with the positive of another (X-Y)
    or the same (X-X) language, for the same qid."""

    name: str
    items: dict[str, dict[str, TrainItem]]
    checksum: str = ""
    warnings: list[Problem] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted({lang for by_lang in self.items.values() for lang in by_lang})

    def ids_in(self, *langs: str) -> list[str]:
        """Question ids that exist in every one of `langs`, in a stable order."""
        return [qid for qid, by_lang in self.items.items() if all(lang in by_lang for lang in langs)]

    def __len__(self) -> int:
        return sum(len(v) for v in self.items.values())


@dataclass
class QACorpus:
    """Questions and candidate pools for several languages, as read from one file set."""

    name: str
    questions: dict[str, list[Question]]
    candidates: dict[str, list[Candidate]]
    checksum: str = ""
    files: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted(self.questions)

    def by_id(self) -> dict[str, dict[str, Question]]:
        """qid -> lang -> question (only the languages where the id exists)."""
        out: dict[str, dict[str, Question]] = {}
        for lang in self.languages:
            for q in self.questions[lang]:
                out.setdefault(q.qid, {})[lang] = q
        return out

    @property
    def articles(self) -> list[str]:
        """Article titles in first-seen order (file order of the first language that has them)."""
        seen: dict[str, None] = {}
        for lang in self.languages:
            for c in self.candidates[lang]:
                seen.setdefault(c.article, None)
        return list(seen)

    def subset(self, articles: Iterable[str], name: str | None = None) -> QACorpus:
        """Only the questions and candidates of `articles`; answer indices are remapped into the smaller pools."""
        keep = set(articles)
        questions: dict[str, list[Question]] = {}
        candidates: dict[str, list[Candidate]] = {}
        for lang in self.languages:
            old = self.candidates[lang]
            new_index = {}
            pool = []
            for i, c in enumerate(old):
                if c.article in keep:
                    new_index[i] = len(pool)
                    pool.append(c)
            candidates[lang] = pool
            questions[lang] = [
                Question(q.qid, q.lang, q.text, new_index[q.answer], q.article, q.group)
                for q in self.questions[lang]
                if q.article in keep
            ]
        return QACorpus(name or self.name, questions, candidates, self.checksum, list(self.files), list(self.warnings))

    def split(self, n_train: int = 36, n_test: int = 12) -> tuple[QACorpus, QACorpus]:
        """Split by article: the first `n_train` articles (file order) train, the last `n_test` test, so no test
        article is ever trained on. XQuAD-R has 48 articles; the order is the upstream file order, identical in all
        languages, which makes the split deterministic and documented (docs/DATA.md): no randomness, no seed.
        Because a question belongs to exactly one article, no test question id is ever in train."""
        arts = self.articles
        if n_train + n_test > len(arts):
            raise UsageError(
                f"split asks for {n_train} train + {n_test} test articles but {self.name} has only {len(arts)}"
            )
        train = self.subset(arts[:n_train], f"{self.name}:train")
        test = self.subset(arts[len(arts) - n_test :], f"{self.name}:test")
        return train, test

    def pairs(self, context: bool = False, hard_negatives: bool = False) -> PairSet:
        """Training items: the question and its answer sentence per language; hard negatives are the other sentences
        of the same paragraph, in the same language."""
        items: dict[str, dict[str, TrainItem]] = {}
        by_doc: dict[tuple[str, str], list[int]] = {}
        sentence_group: dict[tuple[str, int], str] = {}
        if hard_negatives:
            for lang in self.languages:
                for i, c in enumerate(self.candidates[lang]):
                    by_doc.setdefault((lang, c.doc), []).append(i)
                for q in self.questions[lang]:
                    sentence_group[(lang, q.answer)] = q.group or q.qid
        for lang in self.languages:
            pool = self.candidates[lang]
            for q in self.questions[lang]:
                pos = pool[q.answer]
                negs: tuple[str, ...] = ()
                neg_groups: tuple[str, ...] = ()
                if hard_negatives:
                    others = [j for j in by_doc[(lang, pos.doc)] if j != q.answer]
                    negs = tuple(passage_text(pool[j], context) for j in others)
                    # a sentence no question answers is a group of its own
                    neg_groups = tuple(sentence_group.get((lang, j), f"{lang}:{pool[j].doc}:{j}") for j in others)
                items.setdefault(q.qid, {})[lang] = TrainItem(q.text, passage_text(pos, context), negs,
                                                              q.group or q.qid, neg_groups)
        return PairSet(self.name, items, self.checksum, list(self.warnings))

    def with_answer_groups(self) -> QACorpus:
        """A copy whose questions carry `answer_groups()` keys."""
        groups = answer_groups(self)
        questions = {lang: [dataclasses.replace(q, group=groups[q.qid]) for q in qs]
                     for lang, qs in self.questions.items()}
        return dataclasses.replace(self, questions=questions)


def answer_groups(corpus: QACorpus) -> dict[str, str]:
    """qid -> a language-independent key of its answer. Two ids are one group when, in *any* language, their answers
    are the same sentence (union-find over ids): translated paragraphs are not split into the same sentences
    (XQuAD-R: 222 of 240 paragraphs have different sentence counts across languages), so a (paragraph, sentence
    index) key would not be language-independent, while the ids link the copies. The key names the group's first
    answer sentence ('<doc>#<index in paragraph>' in the first language)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_at: dict[tuple[str, int], str] = {}  # (lang, candidate) -> first qid answered by it
    name: dict[str, tuple[int, int, str]] = {}  # qid -> sortable position of its answer, and a readable key
    for li, lang in enumerate(corpus.languages):
        pool = corpus.candidates[lang]
        starts: dict[str, int] = {}
        for i, c in enumerate(pool):
            starts.setdefault(c.doc, i)
        for q in corpus.questions[lang]:
            parent.setdefault(q.qid, q.qid)
            c = pool[q.answer]
            name.setdefault(q.qid, (li, q.answer, f"{c.doc}#{q.answer - starts[c.doc]}"))
            other = first_at.setdefault((lang, q.answer), q.qid)
            a, b = find(q.qid), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    best: dict[str, tuple[int, int, str]] = {}
    for qid in parent:
        root = find(qid)
        if root not in best or name[qid] < best[root]:
            best[root] = name[qid]
    return {qid: best[find(qid)][2] for qid in parent}


def union_groups(keys: Mapping[str, Iterable[Hashable]]) -> dict[str, str]:
    """id -> the first id (in mapping order) of its group, where ids that share any key are one group (union-find).
    Readers use it for answer groups: two questions whose answers are the same text in some language must never
    be in one batch, where each would be the other's false negative."""
    first: dict[Hashable, str] = {}
    parent = {qid: qid for qid in keys}
    order = {qid: i for i, qid in enumerate(keys)}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for qid, ks in keys.items():
        for k in ks:
            a, b = find(qid), find(first.setdefault(k, qid))
            if a != b:
                lo, hi = sorted((a, b), key=order.__getitem__)
                parent[hi] = lo
    return {qid: find(qid) for qid in keys}


def passage_text(c: Candidate, context: bool) -> str:
    """The text a candidate is encoded as: the sentence alone, or the sentence followed by its paragraph (LAReQA /
    XTREME-R encode sentence + context)."""
    return f"{c.text}\n{c.context}" if context else c.text


