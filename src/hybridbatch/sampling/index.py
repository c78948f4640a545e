"""What a sampler knows about its dataset: read from the dataset's own metadata columns, nothing else.

No registry and no fingerprint: `.map`, `.select`, `.shuffle`, an eval dataset or a second trainer all work, because
the index is rebuilt from whatever dataset the sampler is given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybridbatch.errors import UsageError


@dataclass(frozen=True)
class PairColumns:
    """The metadata column names (constructor arguments of every sampler). `group`, `negative_group` and `source`
    are optional: without `group` an id is its own group; without `source` there is one source."""

    id: str = "id"
    query_lang: str = "query_lang"
    passage_lang: str = "passage_lang"
    group: str = "group"
    negative_group: str = "negative_group"
    source: str = "source"

    def names(self) -> tuple[str, ...]:
        return (self.id, self.query_lang, self.passage_lang, self.group, self.negative_group, self.source)


def _concat(dataset: Any, source_column: str) -> Any:
    """A DatasetDict is several sources: one dataset (in key order) whose source column names the key."""
    from datasets import DatasetDict, concatenate_datasets

    if not isinstance(dataset, DatasetDict):
        return dataset
    parts = []
    for name, ds in dataset.items():
        if source_column in ds.column_names:
            ds = ds.remove_columns(source_column)
        parts.append(ds.add_column(source_column, [name] * len(ds)))
    return concatenate_datasets(parts)


@dataclass
class PairIndex:
    """Rows of the pair dataset by (source, id, query language, passage language).

    `index[s][i, x, y]` is the row of the i-th id of source s with query language x and passage language y (-1: no
    such row). `keys[r]` holds integer keys of row r that must not repeat within a batch group: its id, its answer
    group and its hard negative's group (-1: none). Keys are assigned in row order, identical on every process."""

    languages: list[str]
    sources: list[str]
    ids: list[list[str]]
    index: list[np.ndarray]
    row_source: np.ndarray
    row_id: np.ndarray
    row_qlang: np.ndarray
    row_plang: np.ndarray
    keys: np.ndarray

    @classmethod
    def from_dataset(cls, dataset: Any, columns: PairColumns = PairColumns()) -> PairIndex:
        names = set(getattr(dataset, "column_names", None) or [])
        missing = [c for c in (columns.id, columns.query_lang, columns.passage_lang) if c not in names]
        if missing:
            raise UsageError(
                f"hybridbatch samplers read the columns {columns.id!r}, {columns.query_lang!r} and "
                f"{columns.passage_lang!r} (optional {columns.group!r}, {columns.source!r}) of the dataset; missing "
                f"{', '.join(map(repr, missing))} (columns: {', '.join(sorted(names))}). Build pairs with "
                "hybridbatch.sampling.pairs_from_long, or name your columns with id_column=... etc.")
        if len(dataset) == 0:
            raise UsageError("the training data has no (question, passage) pairs")
        # one columnar read (`dataset[col]` iterates row by row on an indices mapping, e.g. after .shuffle)
        data = dataset.select_columns([c for c in columns.names() if c in names]).to_dict()
        qid = [str(v) for v in data[columns.id]]
        ql = [str(v) for v in data[columns.query_lang]]
        pl = [str(v) for v in data[columns.passage_lang]]
        src = [str(v) for v in data[columns.source]] if columns.source in data else [""] * len(qid)
        group = [str(v) if v not in (None, "") else q for v, q in zip(data[columns.group], qid, strict=True)] \
            if columns.group in data else qid
        neg = [None if v in (None, "") else str(v) for v in data[columns.negative_group]] \
            if columns.negative_group in data else None
        languages = sorted(set(ql) | set(pl))
        lpos = {lang: i for i, lang in enumerate(languages)}
        sources = list(dict.fromkeys(src))
        spos = {s: i for i, s in enumerate(sources)}
        L = len(languages)
        ids: list[list[str]] = [[] for _ in sources]
        id_pos: list[dict[str, int]] = [{} for _ in sources]
        n = len(qid)
        row_source = np.empty(n, np.int32)
        row_id = np.empty(n, np.int64)
        row_q = np.empty(n, np.int16)
        row_p = np.empty(n, np.int16)
        key_code: dict[str, int] = {}
        keys = np.full((n, 3), -1, np.int64)
        for r in range(n):
            s = spos[src[r]]
            i = id_pos[s].setdefault(qid[r], len(ids[s]))
            if i == len(ids[s]):
                ids[s].append(qid[r])
            row_source[r], row_id[r], row_q[r], row_p[r] = s, i, lpos[ql[r]], lpos[pl[r]]
            keys[r, 0] = key_code.setdefault(f"i\t{src[r]}\t{qid[r]}", len(key_code))
            keys[r, 1] = key_code.setdefault(f"g\t{src[r]}\t{group[r]}", len(key_code))
            if neg is not None and neg[r] is not None:
                keys[r, 2] = key_code.setdefault(f"g\t{src[r]}\t{neg[r]}", len(key_code))
        index = []
        for s in range(len(sources)):
            idx = np.full((len(ids[s]), L, L), -1, np.int64)
            rows = np.nonzero(row_source == s)[0]
            taken = np.zeros(len(rows), bool)
            flat = (row_id[rows] * L + row_q[rows]) * L + row_p[rows]
            _, first = np.unique(flat, return_index=True)
            taken[first] = True
            if not taken.all():
                r = int(rows[~taken][0])
                raise UsageError(f"row {r} repeats (id, query_lang, passage_lang) = ({qid[r]!r}, {ql[r]!r}, "
                                 f"{pl[r]!r}){' in source ' + repr(src[r]) if src[r] else ''}")
            idx[row_id[rows], row_q[rows], row_p[rows]] = rows
            index.append(idx)
        return cls(languages, sources, ids, index, row_source, row_id, row_q, row_p, keys)

    def __len__(self) -> int:
        return len(self.row_source)

    def has(self, s: int) -> np.ndarray:
        """bool [n_ids, L]: the languages each id of source s exists in (it has its own X-X row)."""
        return np.diagonal(self.index[s], axis1=1, axis2=2) >= 0

    def items(self, s: int) -> int:
        """(id, language) items of source s: the weight of the source draw."""
        return int(self.has(s).sum())

    def describe(self, row: int) -> dict[str, Any]:
        s = int(self.row_source[row])
        return {"source": self.sources[s], "id": self.ids[s][int(self.row_id[row])],
                "qlang": self.languages[int(self.row_qlang[row])], "plang": self.languages[int(self.row_plang[row])]}


def batch_fingerprint(entries: list[tuple[str, str, str, str]]) -> str:
    """A short hash of a batch's (source, id, query lang, passage lang) tuples, for batch logs."""
    h = hashlib.sha1()
    for e in entries:
        h.update(("\t".join(e) + "\n").encode())
    return h.hexdigest()[:16]


def describe_batch(sources: list[str], ids: list[str], qlangs: list[str], plangs: list[str]) -> dict[str, Any]:
    """What a batch is (kind, source, languages; '*' when they vary per pair), read back from its rows' metadata."""
    mono = [q == p for q, p in zip(qlangs, plangs, strict=True)]
    ql, pl, src = set(qlangs), set(plangs), set(sources)
    plang = pl.copy().pop() if len(pl) == 1 else "*"
    if len(ql) == 1 and len(pl) == 1:
        kind = "xx" if all(mono) else "xy"
    elif len(ql) == 1 and len(pl) == 2 and ql <= pl:  # one query language, its own and one other passage language
        kind, plang = "bilingual", (pl - ql).pop()
    else:
        kind = "mixed" if all(mono) else ("xy-per-pair" if not any(mono) else "random")
    return {
        "kind": kind,
        "source": src.pop() if len(src) == 1 else "*",
        "qlang": ql.pop() if len(ql) == 1 else "*",
        "plang": plang,
        "qids": list(ids),
        "hash": batch_fingerprint(list(zip(sources, ids, qlangs, plangs, strict=True))),
    }


def batch_info(index: PairIndex, rows: Any) -> dict[str, Any]:
    """`describe_batch` of dataset rows."""
    d = [index.describe(int(r)) for r in rows]
    return describe_batch([x["source"] for x in d], [x["id"] for x in d], [x["qlang"] for x in d],
                          [x["plang"] for x in d])
