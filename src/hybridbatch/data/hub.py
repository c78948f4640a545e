"""The paper's data from the Hugging Face hub, streamed with `datasets` at pinned revisions: mMARCO (its main
training source, parallel by query id across 14 languages) and MIRACL (its third evaluation set, native queries in
16 languages, not parallel).

Both hub repositories are loading scripts over plain files, and `datasets` no longer runs loading scripts, so the
files are streamed directly (`load_dataset("text" | "json", data_files=..., streaming=True)`) from
`hf://datasets/<repo>@<revision>/<path>`, or from a local copy of the same layout (`base=FOLDER`, what the tests
and offline users do). Formats, as on the hub (docs/DATA.md):

- mMARCO (unicamp-dl/mmarco @ 714e2341, "Change the naming of translation versions"):
  `data/triples.train.ids.small.tsv` (`qid \\t positive pid \\t negative pid`, language-independent ids),
  `data/google/queries/{train,dev}/<language>_queries.{train,dev}.tsv` (`qid \\t text`),
  `data/google/collections/<language>_collection.tsv` (`pid \\t text`); <language> is an English name (`english`).
- MIRACL (miracl/miracl @ 33075b83): `miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-<split>.tsv`
  (`qid \\t query`), `miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-<split>.tsv` (`qid \\t Q0 \\t docid \\t
  relevance`, 1 relevant, 0 judged not relevant); passages in miracl/miracl-corpus @ 262aa62d:
  `miracl-corpus-v1.0-<lang>/docs-<i>.jsonl.gz` (`{"docid", "title", "text"}`).

Passages are kept only when a chosen query needs them, but each collection file is streamed through once (an
mMARCO collection is 3-8 GB per language).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridbatch.data.records import PairSet, TrainItem, union_groups
from hybridbatch.data.roots import data_roots
from hybridbatch.errors import DataError, HybridBatchError, Problem, UsageError


@dataclass(frozen=True)
class HubRepo:
    """A dataset repository on the hub at a pinned revision (a commit sha cited in its history)."""

    repo: str
    revision: str
    license: str

    def base(self) -> str:
        return f"hf://datasets/{self.repo}@{self.revision}"


MMARCO = HubRepo("unicamp-dl/mmarco", "714e2341460cf550592cd5e5d8dc164f020fe445", "Apache-2.0 (MS MARCO terms apply)")
MIRACL = HubRepo("miracl/miracl", "33075b837ae3ee130037274357829bcd0f0692de", "Apache-2.0")
MIRACL_CORPUS = HubRepo("miracl/miracl-corpus", "262aa62d062e95c5487d7115094ffb2721830965", "Apache-2.0")

MMARCO_LANGUAGES = {"en": "english", "ar": "arabic", "zh": "chinese", "nl": "dutch", "fr": "french",
                    "de": "german", "hi": "hindi", "id": "indonesian", "it": "italian", "ja": "japanese",
                    "pt": "portuguese", "ru": "russian", "es": "spanish", "vi": "vietnamese"}
PAPER_MMARCO = ("en", "ar", "zh", "de", "es", "ru", "hi")  # the paper's mMARCO languages (Table 9)
MIRACL_LANGUAGES = ("ar", "bn", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "zh")
MIRACL_SPLITS = ("train", "dev")


_HUB_URL = re.compile(r"^hf://datasets/([^/@]+/[^/@]+)(?:@([^/]*))?(/.*)?$")
# a commit sha (7-40 hex digits) or a branch / tag name as git allows it (no spaces, `..`, `~^:?*[\\`, leading `-`)
_REVISION = re.compile(r"^(?:[0-9a-f]{7,40}|(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,100})$")
# the modules whose exceptions mean "the hub or the network failed", whatever client `datasets` uses underneath
_TRANSPORT = ("httpx", "httpx2", "httpcore", "requests", "urllib3", "huggingface_hub", "fsspec", "aiohttp")


def check_hub_url(url: str) -> None:
    """Refuse a hub address whose revision is not of the form of a commit sha or a git ref, before any download
    (a mistyped revision otherwise ends in the hub client's traceback)."""
    m = _HUB_URL.match(url)
    if url.startswith("hf://") and (m is None or (m.group(2) is not None and not _REVISION.match(m.group(2)))):
        raise UsageError(f"{url}: not a hub address of the form hf://datasets/<owner>/<name>@<revision>/<path>, "
                         "<revision> a commit sha (hex digits) or a branch or tag name; the pinned revisions are "
                         "in docs/DATA.md")


def _is_transport_error(e: BaseException) -> bool:
    if isinstance(e, (OSError, ConnectionError, TimeoutError, RuntimeError, ValueError)):
        return True
    return any(c.__module__.split(".")[0] in _TRANSPORT for c in type(e).__mro__)


def _stream(builder: str, files: str | list[str], token: str | bool | None = None) -> Any:
    import datasets

    for f in [files] if isinstance(files, str) else files:
        check_hub_url(f)
    try:
        return datasets.load_dataset(builder, data_files={"train": files}, split="train", streaming=True, token=token)
    except FileNotFoundError as e:
        if str(files).startswith("hf://"):
            raise _offline(str(files), e) from None
        raise UsageError(f"{files}: not found ({e}); a local copy must keep the hub layout (docs/DATA.md)") from None


def _offline(url: str, e: BaseException) -> HybridBatchError:
    """The one message for a failed hub read: what failed, and the local-folder alternative."""
    reason = " ".join(str(e).split())[:300]
    return HybridBatchError(
        f"cannot read {url} from the Hugging Face hub ({type(e).__name__}: {reason}). mMARCO and MIRACL are streamed "
        "from the hub at pinned revisions; offline, download the files on a machine with network (`huggingface-cli "
        "download <repo> --repo-type dataset --revision <sha> --include <paths>`, docs/DATA.md) and use the local "
        "folder: base=FOLDER in the library, or on the command line put it at DIR/mmarco (DIR/miracl and "
        "DIR/miracl-corpus) and pass --data-dir DIR.")


def stream_tsv(url: str, columns: int, token: str | bool | None = None, limit: int | None = None,
               keep: set[str] | None = None) -> Iterator[list[str]]:
    """The tab-separated fields of each line of `url` (a hub or local path): exactly `columns` fields (the last may
    hold tabs when `columns` is 2); only lines whose first field is in `keep`, when given; at most `limit` lines.
    A malformed line among those kept is a DataError naming the file and line; lines that `keep` skips are not
    checked (one bad line elsewhere in a multi-GB collection does not end the load)."""
    problems: list[Problem] = []
    n_out = 0
    try:
        for n, row in enumerate(_stream("text", url, token), 1):
            line = row["text"].rstrip("\r")
            if not line.strip() or (keep is not None and line.split("\t", 1)[0].strip() not in keep):
                continue
            fields = line.split("\t", columns - 1) if columns == 2 else line.split("\t")
            if len(fields) != columns or not all(f.strip() for f in fields):
                problems.append(Problem(url, f"line {n}", f"expected {columns} tab-separated fields, got "
                                                          f"{len(fields)}: {line[:60]!r}"))
                if len(problems) >= 20:
                    break
                continue
            yield [f.strip() for f in fields]
            n_out += 1
            if limit is not None and n_out >= limit:
                break
    except (HybridBatchError, GeneratorExit):
        raise
    except Exception as e:  # noqa: BLE001  (only the hub client's and the network's errors; others re-raised)
        if not _is_transport_error(e):
            raise
        raise _offline(url, e) from None
    if problems:
        raise DataError(problems)


def _check_langs(langs: Iterable[str], known: Iterable[str], what: str) -> list[str]:
    langs, known = list(langs), list(known)
    bad = [x for x in langs if x not in known]
    if bad or not langs:
        raise UsageError(f"{what} languages: {', '.join(bad) or 'none given'} not available; choose from "
                         f"{', '.join(known)}")
    return langs


def mmarco_files(lang: str, base: str | None = None) -> dict[str, str]:
    """The mMARCO files of one language (and the shared triples) at the pinned revision, or under `base`."""
    root, name = (base or MMARCO.base()).rstrip("/"), MMARCO_LANGUAGES[lang]
    return {"triples": f"{root}/data/triples.train.ids.small.tsv",
            "queries": f"{root}/data/google/queries/train/{name}_queries.train.tsv",
            "collection": f"{root}/data/google/collections/{name}_collection.tsv"}


def miracl_files(lang: str, split: str = "train", base: str | None = None,
                 corpus_base: str | None = None) -> dict[str, str]:
    """The MIRACL topics, qrels and corpus files (a glob over its docs-<i>.jsonl.gz) of one language and split."""
    root, corpus = (base or MIRACL.base()).rstrip("/"), (corpus_base or MIRACL_CORPUS.base()).rstrip("/")
    stem = f"miracl-v1.0-{lang}"
    return {"topics": f"{root}/{stem}/topics/topics.{stem}-{split}.tsv",
            "qrels": f"{root}/{stem}/qrels/qrels.{stem}-{split}.tsv",
            "corpus": f"{corpus}/miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz"}


def mmarco_pairs(languages: Sequence[str] = PAPER_MMARCO, limit: int | None = 10_000, base: str | None = None,
                 max_negatives: int = 4, token: str | bool | None = None) -> PairSet:
    """mMARCO training pairs for `languages`: the first `limit` training triples (None: all 39.8M, which needs the
    collections' passages in memory), grouped by query id: query, its positive passage and up to `max_negatives`
    negatives per language, parallel by id (`mmarco:<qid>` in every language). Queries sharing a positive passage
    share an answer group (`mmarco:p<pid>`); a negative's group is its passage's."""
    langs = _check_langs(languages, MMARCO_LANGUAGES, "mMARCO")
    pos: dict[str, str] = {}
    negs: dict[str, list[str]] = {}
    for qid, p, n in stream_tsv(mmarco_files(langs[0], base)["triples"], 3, token, limit):
        if pos.setdefault(qid, p) == p and n != p and len(negs.setdefault(qid, [])) < max_negatives:
            negs[qid].append(n)
    pids = set(pos.values()) | {n for v in negs.values() for n in v}
    items: dict[str, dict[str, TrainItem]] = {}
    for lang in langs:
        files = mmarco_files(lang, base)
        queries = dict(stream_tsv(files["queries"], 2, token, keep=set(pos)))
        passages = dict(stream_tsv(files["collection"], 2, token, keep=pids))
        for qid, p in pos.items():
            if qid not in queries or p not in passages:
                continue
            kept = [n for n in negs.get(qid, []) if n in passages]
            items.setdefault(f"mmarco:{qid}", {})[lang] = TrainItem(
                queries[qid], passages[p], tuple(passages[n] for n in kept), f"mmarco:p{p}",
                tuple(f"mmarco:p{n}" for n in kept))
    return PairSet("mmarco", items, f"{MMARCO.repo}@{MMARCO.revision}" if base is None else "")


def _miracl_docs(url: str, docids: set[str], token: str | bool | None) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    try:
        for n, doc in enumerate(_stream("json", url, token), 1):
            docid = str(doc.get("docid", ""))
            if not docid or not isinstance(doc.get("text"), str):
                raise DataError(Problem(url, f"record {n}", "expected {\"docid\", \"title\", \"text\"} strings"))
            if docid in docids:
                out[docid] = (str(doc.get("title") or ""), doc["text"])
                if len(out) == len(docids):
                    break
    except HybridBatchError:
        raise
    except Exception as e:  # noqa: BLE001  (as in stream_tsv)
        if not _is_transport_error(e):
            raise
        raise _offline(url, e) from None
    return out


def miracl_pairs(languages: Sequence[str] = ("sw",), split: str = "train", limit: int | None = None,
                 base: str | None = None, corpus_base: str | None = None, with_title: bool = False,
                 token: str | bool | None = None) -> PairSet:
    """MIRACL pairs: per language and query (the first `limit` of its topics), the query, its first relevant passage
    (qrels relevance 1) and its judged non-relevant passages (relevance 0) as hard negatives. Ids are
    `miracl:<lang>:<qid>`, each in one language: MIRACL is not parallel, so it gives X-X batches only. Queries
    whose relevant passages overlap share an answer group; `with_title` puts the article title before a passage."""
    langs = _check_langs(languages, MIRACL_LANGUAGES, "MIRACL")
    if split not in MIRACL_SPLITS:
        raise UsageError(f"MIRACL split must be one of {', '.join(MIRACL_SPLITS)} (test topics have no qrels), "
                         f"not {split!r}")
    items: dict[str, dict[str, TrainItem]] = {}
    for lang in langs:
        files = miracl_files(lang, split, base, corpus_base)
        topics = dict(stream_tsv(files["topics"], 2, token, limit))
        rel: dict[str, dict[str, list[str]]] = {q: {"1": [], "0": []} for q in topics}
        for qid, _q0, docid, r in stream_tsv(files["qrels"], 4, token, keep=set(topics)):
            rel[qid]["1" if r not in ("0", "-1") else "0"].append(docid)
        docs = _miracl_docs(files["corpus"], {d for r in rel.values() for ds in r.values() for d in ds}, token)
        text = (lambda d: f"{docs[d][0]}\n{docs[d][1]}" if with_title and docs[d][0] else docs[d][1])
        key = (lambda q: f"miracl:{lang}:{q}")
        found = {q: [d for d in r["1"] if d in docs] for q, r in rel.items()}
        groups = union_groups({key(q): ds for q, ds in found.items() if ds})
        group_of_doc = {d: groups[key(q)] for q, ds in found.items() if ds for d in ds}
        for qid, ds in found.items():
            if not ds:
                continue
            negs = [d for d in rel[qid]["0"] if d in docs and d not in ds]
            items[key(qid)] = {lang: TrainItem(topics[qid], text(ds[0]), tuple(text(d) for d in negs),
                                               groups[key(qid)],
                                               tuple(group_of_doc.get(d, f"miracl:{lang}:doc:{d}") for d in negs))}
    return PairSet(f"miracl:{split}", items, f"{MIRACL.repo}@{MIRACL.revision}" if base is None else "")


HUB_SOURCES = ("mmarco", "miracl")


def hub_source(spec: str, data_dir: Path | str | None = None) -> PairSet | None:
    """The PairSet of `--data mmarco[:LANGS]` / `miracl[:LANGS]` (LANGS comma-separated ISO codes; default the
    paper's mMARCO languages, MIRACL Swahili), or None for any other spec. Read from a local copy in the hub layout
    when a data root holds `mmarco/` (`miracl/`, and `miracl-corpus/` beside it), else streamed from the hub at the
    pinned revision."""
    name, _, langs = spec.partition(":")
    if name not in HUB_SOURCES:
        return None
    chosen = [x.strip() for x in langs.split(",")] if langs else None
    local = {d: next((r / d for r in data_roots(data_dir) if (r / d).is_dir()), None)
             for d in ("mmarco", "miracl", "miracl-corpus")}
    if name == "mmarco":
        return mmarco_pairs(chosen or PAPER_MMARCO, base=_folder(local["mmarco"]))
    return miracl_pairs(chosen or ("sw",), base=_folder(local["miracl"]), corpus_base=_folder(local["miracl-corpus"]))


def _folder(path: Path | None) -> str | None:
    return None if path is None else str(path)
