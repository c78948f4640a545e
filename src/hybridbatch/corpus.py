"""Parallel question-answer data: questions keyed by (question id, language), per-language candidate pools, and the
training items derived from them. Nothing here assumes full parallelism: an id may exist in only some languages
(MLQA-R style).

Flow: readers (LAReQA JSON, SQuAD JSON, JSONL pairs) -> `QACorpus` / `PairSet` -> sampling -> training;
`QACorpus` -> retrieval -> metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataError, Problem
from .provenance import sha256_files


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


@dataclass(frozen=True, slots=True)
class TrainItem:
    """A query and its positive passage in one language, plus optional hard negatives in the same language."""

    query: str
    positive: str
    negatives: tuple[str, ...] = ()


@dataclass
class PairSet:
    """Training data: items[qid][lang]. A batch pairs the query of one language with the positive of another (X-Y)
    or the same (X-X) language, for the same qid."""

    name: str
    items: dict[str, dict[str, TrainItem]]
    checksum: str = ""

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
                Question(q.qid, q.lang, q.text, new_index[q.answer], q.article)
                for q in self.questions[lang]
                if q.article in keep
            ]
        return QACorpus(name or self.name, questions, candidates, self.checksum, list(self.files))

    def split(self, n_train: int = 36, n_test: int = 12) -> tuple[QACorpus, QACorpus]:
        """Split by article: the first `n_train` articles (file order) train, the last `n_test` test, so no test
        article is ever trained on. XQuAD-R has 48 articles; the order is the upstream file order, identical in all
        languages, which makes the split deterministic and documented."""
        arts = self.articles
        if n_train + n_test > len(arts):
            from .errors import UsageError

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
        if hard_negatives:
            for lang in self.languages:
                for i, c in enumerate(self.candidates[lang]):
                    by_doc.setdefault((lang, c.doc), []).append(i)
        for lang in self.languages:
            pool = self.candidates[lang]
            for q in self.questions[lang]:
                pos = pool[q.answer]
                negs: tuple[str, ...] = ()
                if hard_negatives:
                    negs = tuple(
                        passage_text(pool[j], context) for j in by_doc[(lang, pos.doc)] if j != q.answer
                    )
                items.setdefault(q.qid, {})[lang] = TrainItem(q.text, passage_text(pos, context), negs)
        return PairSet(self.name, items, self.checksum)


def passage_text(c: Candidate, context: bool) -> str:
    """The text a candidate is encoded as: the sentence alone, or the sentence followed by its paragraph (LAReQA /
    XTREME-R encode sentence + context)."""
    return f"{c.text}\n{c.context}" if context else c.text


LANG_FROM_FILE = {
    # TyDi QA GoldP file names use language names.
    "arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id", "korean": "ko",
    "russian": "ru", "swahili": "sw", "telugu": "te",
}


def _load_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(Problem(str(path), f"byte {e.start}", "not valid UTF-8")) from None
    except OSError as e:
        raise DataError(Problem(str(path), "", f"cannot read: {e.strerror or e}")) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(Problem(str(path), f"line {e.lineno} column {e.colno}", f"malformed JSON: {e.msg}")) from None
    if not isinstance(obj, Mapping) or not isinstance(obj.get("data"), list):
        raise DataError(Problem(str(path), "data", "expected a SQuAD-style object with a 'data' list"))
    return obj


def read_lareqa(files: Mapping[str, Path], name: str = "lareqa") -> QACorpus:
    """Read LAReQA JSON (XQuAD-R / MLQA-R): SQuAD JSON whose paragraphs carry `sentences` and `sentence_breaks`.
    `files` maps language code -> file. The answer sentence is the one with start <= answer_start < end."""
    questions: dict[str, list[Question]] = {}
    candidates: dict[str, list[Candidate]] = {}
    for lang, path in sorted(files.items()):
        path = Path(path)
        obj = _load_json(path)
        qs: list[Question] = []
        pool: list[Candidate] = []
        for ai, art in enumerate(obj["data"]):
            title = str(art.get("title", ai))
            for pi, par in enumerate(art["paragraphs"]):
                ctx = par["context"]
                doc = f"{ai}/{pi}"
                first = len(pool)
                breaks = par["sentence_breaks"]
                for sent in par["sentences"]:
                    pool.append(Candidate(lang, sent, ctx, doc, title))
                for qa in par["qas"]:
                    start = qa["answers"][0]["answer_start"]
                    hit = next((k for k, (s, e) in enumerate(breaks) if s <= start < e), None)
                    if hit is None:
                        raise DataError(Problem(
                            str(path), f"data[{ai}].paragraphs[{pi}].qas[{qa['id']}].answers[0].answer_start",
                            f"answer start {start} lies outside every sentence",
                        ))
                    qs.append(Question(str(qa["id"]), lang, qa["question"], first + hit, title))
        questions[lang] = qs
        candidates[lang] = pool
    return QACorpus(name, questions, candidates, sha256_files(files.values()), [str(p) for p in files.values()])


def lareqa_files(folder: Path) -> dict[str, Path]:
    """`<lang>.json` files in a folder, keyed by language code."""
    return {p.stem: p for p in sorted(Path(folder).glob("*.json")) if len(p.stem) <= 3}


DATASETS = ("xquad-r", "mlqa-r", "tydiqa-goldp", "tatoeba-laser")


def data_root(data_dir: Path | str | None = None) -> Path:
    """Where named datasets live: `--data-dir`, else `$HYBRIDBATCH_DATA`, else the user cache."""
    import os

    import platformdirs

    if data_dir:
        return Path(data_dir)
    if os.environ.get("HYBRIDBATCH_DATA"):
        return Path(os.environ["HYBRIDBATCH_DATA"])
    return Path(platformdirs.user_cache_dir("hybridbatch")) / "data"


def load_corpus(spec: str | Path, data_dir: Path | str | None = None) -> QACorpus:
    """A named dataset ('xquad-r', 'mlqa-r') under the data root, or a folder of `<lang>.json` LAReQA files."""
    from .errors import UsageError

    path = Path(spec)
    if str(spec) in DATASETS:
        path = data_root(data_dir) / str(spec)
        if not path.exists():
            raise UsageError(
                f"dataset {spec!r} not found under {path.parent}. Run `hybridbatch data download {spec}` "
                f"(needs network), or point at a local copy with --data-dir DIR or $HYBRIDBATCH_DATA."
            )
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    files = lareqa_files(path) if path.is_dir() else {path.stem: path}
    if not files:
        raise UsageError(f"{path}: no <lang>.json files in this folder")
    return read_lareqa(files, path.name)
