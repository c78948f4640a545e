"""What a sampler knows about its dataset: read from the dataset's own metadata columns, nothing else.

No registry and no fingerprint: `.map`, `.select`, `.shuffle`, an eval dataset or a second trainer all work, because
the index is rebuilt from whatever dataset the sampler is given. It is built from integer codes of the columns
(columns.py), so its memory grows as numpy arrays: about 11 B per row on parallel data with answer groups and hard
negatives (docs/TRAINING.md, "Scale: the sampling path at 100M rows"), not a Python object per row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from hybridbatch.errors import UsageError
from hybridbatch.sampling.columns import (
    CHUNK,
    as_str,
    code_dtype,
    column_names,
    encode,
    filled_groups,
    first_seen,
    group_codes,
    read_columns,
    row_language_codes,
    take,
)
from hybridbatch.sampling.rows import Labels, RowKeys, SourceRows


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


def concat_sources(dataset: Any, source_column: str) -> Any:
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
    group and its hard negative's group (-1: none). Ids and sources are numbered in order of first appearance, so
    the index is identical on every process."""

    languages: list[str]
    sources: list[str]
    ids: list[Labels]
    index: list[SourceRows]
    row_source: np.ndarray
    row_id: np.ndarray
    row_qlang: np.ndarray
    row_plang: np.ndarray
    keys: RowKeys
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_dataset(cls, dataset: Any, columns: PairColumns = PairColumns()) -> PairIndex:
        """The index of a `datasets.Dataset` (its Arrow columns, memory-mapped or not) or of a mapping of column
        name -> numpy / Arrow array."""
        names = set(column_names(dataset))
        missing = [c for c in (columns.id, columns.query_lang, columns.passage_lang) if c not in names]
        if missing:
            raise UsageError(
                f"hybridbatch samplers read the columns {columns.id!r}, {columns.query_lang!r} and "
                f"{columns.passage_lang!r} (optional {columns.group!r}, {columns.source!r}) of the dataset; missing "
                f"{', '.join(map(repr, missing))} (columns: {', '.join(sorted(names))}). Build pairs with "
                "hybridbatch.sampling.pairs_from_long, or name your columns with id_column=... etc.")
        cols, indices = read_columns(dataset, [c for c in columns.names() if c in names])
        if (len(cols[columns.id]) if indices is None else len(indices)) == 0:
            raise UsageError("the training data has no (question, passage) pairs")
        return cls._build(cols, indices, columns)

    @classmethod
    def from_columns(cls, id: Any, query_lang: Any, passage_lang: Any, group: Any = None,
                     negative_group: Any = None, source: Any = None) -> PairIndex:
        """The index of numpy / Arrow columns (e.g. memory-mapped .npy files, or an Arrow DictionaryArray of
        language names), equal to the index of a dataset with these columns."""
        given = {"id": id, "query_lang": query_lang, "passage_lang": passage_lang, "group": group,
                 "negative_group": negative_group, "source": source}
        return cls.from_dataset({k: v for k, v in given.items() if v is not None})

    @classmethod
    def _build(cls, cols: dict[str, pa.ChunkedArray], indices: np.ndarray | None, c: PairColumns) -> PairIndex:
        """Codes per column in table order, gathered through the indices mapping, then renumbered where the order
        matters (sources and ids: by first appearance in the dataset)."""
        src_t = encode(cols[c.source], c.source, ordered=False)[0] if c.source in cols else None
        row_source, sources, row_id, id_offset, ids = _ids(cols, src_t, indices, c)
        languages, row_q, row_p = row_language_codes(cols[c.query_lang], cols[c.passage_lang], indices,
                                                 (c.query_lang, c.passage_lang))
        group = filled_groups(cols.get(c.group), cols[c.id]) if c.group in cols or c.negative_group in cols else None
        group, negative = group_codes(group, cols.get(c.negative_group), src_t, len(sources), indices, c.group)
        del src_t
        keys = RowKeys(row_source, row_id, id_offset, group, negative, row_p, len(languages)).compacted()
        del group, negative  # the per-row codes, unless a column varies within an id and passage language
        tables = _tables(row_source, row_id, row_q, row_p, np.diff(id_offset), len(languages))
        for s, t in enumerate(tables):
            if isinstance(t, int):
                ql, pl = languages[row_q[t]], languages[row_p[t]]
                raise UsageError(f"row {t} repeats (id, query_lang, passage_lang) = ({ids[s][row_id[t]]!r}, {ql!r}, "
                                 f"{pl!r}){' in source ' + repr(sources[s]) if sources[s] else ''}")
        return cls(languages, sources, ids, tables, row_source, row_id, row_q, row_p, keys)

    def __len__(self) -> int:
        return len(self.row_source)

    def has(self, s: int) -> np.ndarray:
        """bool [n_ids, L]: the languages each id of source s exists in (it has its own X-X row). Read-only."""
        if ("has", s) not in self._cache:
            h = self.index[s].has()
            h.flags.writeable = False
            self._cache["has", s] = h
        return self._cache["has", s]

    def items(self, s: int) -> int:
        """(id, language) items of source s: the weight of the source draw."""
        return int(self.has(s).sum())

    def lang_items(self, s: int, x: int) -> tuple[np.ndarray, np.ndarray]:
        """The ids of source s in language x and their answer-group keys: the items of every X-X / X-Y option of
        query language x (one shared copy, not one per passage language)."""
        if ("lang", s, x) not in self._cache:
            ids = np.nonzero(self.has(s)[:, x])[0]
            groups = self.keys[self.index[s][ids, x, x], 1]
            dt = code_dtype(max(len(self.index[s]), int(groups.max(initial=0)) + 1))
            self._cache["lang", s, x] = (ids.astype(dt), groups.astype(dt))
        return self._cache["lang", s, x]

    def nbytes(self) -> int:
        """Bytes held by the index's arrays (the ids' Arrow array included)."""
        rows = sum(a.nbytes if a.strides != (0,) else 0  # a broadcast (one source) holds no bytes per row
                   for a in (self.row_source, self.row_id, self.row_qlang, self.row_plang))
        return (rows + self.keys.nbytes + sum(t.nbytes for t in self.index)
                + sum(lab.values.nbytes for lab in self.ids))

    def describe(self, row: int) -> dict[str, Any]:
        s = int(self.row_source[row])
        return {"source": self.sources[s], "id": self.ids[s][int(self.row_id[row])],
                "qlang": self.languages[int(self.row_qlang[row])], "plang": self.languages[int(self.row_plang[row])]}


def _ids(cols: dict[str, pa.ChunkedArray], src_t: np.ndarray | None, indices: np.ndarray | None,
         c: PairColumns) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, list[Labels]]:
    """(row_source, sources, row_id, id_offset, ids): sources and each source's ids by first appearance."""
    if src_t is None:
        svals: pa.Array = pa.array([""])
        n = len(cols[c.id]) if indices is None else len(indices)
        row_source = np.broadcast_to(np.int8(0), (n,))  # one source: no bytes per row
    else:
        svals = encode(cols[c.source], c.source, ordered=False)[1]
        row_source, old = first_seen(take(src_t, indices), len(svals))
        svals = svals.take(pa.array(old))
        row_source = row_source.astype(code_dtype(len(svals)) if len(svals) > 127 else np.int8)
    S = len(svals)
    i_t, ivals = encode(cols[c.id], c.id, ordered=indices is None and S == 1)
    if S == 1:
        if indices is not None:
            row_id, old = first_seen(i_t[indices], len(ivals))
            ivals = ivals.take(pa.array(old))
        else:
            row_id = i_t
        return row_source, as_str(svals), row_id, np.array([0, len(ivals)], np.int64), [Labels(ivals)]
    s_of = np.empty(len(svals), np.int64)  # storage-order source code -> dataset-order one
    s_of[old] = np.arange(S)
    pair = i_t.astype(np.int64) * S + s_of[src_t]  # an id is a key within its source
    del i_t
    pcode, pvals_a = encode(pa.chunked_array([pa.array(pair)]), c.id, ordered=indices is None)
    del pair
    pvals = pvals_a.to_numpy()
    if indices is not None:
        pcode, old = first_seen(pcode[indices], len(pvals))
        pvals = pvals[old]
    src_of_pair = pvals % S
    order = np.argsort(src_of_pair, kind="stable")
    counts = np.bincount(src_of_pair, minlength=S)
    id_offset = np.r_[0, np.cumsum(counts)].astype(np.int64)
    rank = np.empty(len(pvals), np.int64)
    rank[order] = np.arange(len(pvals)) - id_offset[src_of_pair[order]]
    row_id = rank.astype(code_dtype(len(pvals)))[pcode]
    ids = [Labels(ivals.take(pa.array(pvals[order[id_offset[s]:id_offset[s + 1]]] // S))) for s in range(S)]
    return row_source, as_str(svals), row_id, id_offset, ids


def _tables(row_source: np.ndarray, row_id: np.ndarray, row_q: np.ndarray, row_p: np.ndarray,
            n_ids: np.ndarray, L: int) -> list[SourceRows | int]:
    """Each source's rows by (id, language pair), filled a chunk of rows at a time; a source whose rows repeat an
    (id, query lang, passage lang) gets the first repeating row instead."""
    S = len(n_ids)
    present = np.zeros(S * L * L, np.int64)
    for a in range(0, len(row_id), CHUNK):
        pair = (row_source[a:a + CHUNK].astype(np.int64) * L + row_q[a:a + CHUNK]) * L + row_p[a:a + CHUNK]  # int64
        present += np.bincount(pair, minlength=S * L * L)
    pair_cols = []
    for s in range(S):
        pc = np.full(L * L, -1, np.int32)
        here = np.nonzero(present[s * L * L:(s + 1) * L * L])[0]
        pc[here] = np.arange(len(here))
        pair_cols.append(pc.reshape(L, L))
    dt = code_dtype(len(row_id))
    tables = [np.full((int(n_ids[s]), max(1, int((pair_cols[s] >= 0).sum()))), -1, dt) for s in range(S)]
    for fill in (True, False):  # the second pass checks: a repeated cell holds only one of its rows
        bad = [False] * S
        for a in range(0, len(row_id), CHUNK):
            rs, rows = row_source[a:a + CHUNK], np.arange(a, min(a + CHUNK, len(row_id)), dtype=dt)
            for s in (range(S) if S > 1 else (0,)):
                sel = rows if S == 1 else rows[rs == s]
                flat = row_id[sel].astype(np.int64) * tables[s].shape[1] + pair_cols[s][row_q[sel], row_p[sel]]
                if fill:
                    tables[s].flat[flat] = sel
                else:
                    bad[s] = bad[s] or bool((tables[s].flat[flat] != sel).any())
    out: list[SourceRows | int] = []
    for s in range(S):
        if bad[s]:
            rows = np.nonzero(row_source == s)[0]
            flat = (row_id[rows].astype(np.int64) * L + row_q[rows]) * L + row_p[rows]
            first = np.zeros(len(rows), bool)
            first[np.unique(flat, return_index=True)[1]] = True
            out.append(int(rows[~first][0]))
        else:
            out.append(SourceRows(tables[s], pair_cols[s]))
    return out


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
    if len(set(zip(sources, ids, strict=True))) < len(ids):  # an id repeated: k translations of its answer
        kind = "translations"
    elif len(ql) == 1 and len(pl) == 1:
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
