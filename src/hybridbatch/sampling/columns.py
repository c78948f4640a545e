"""The samplers' metadata columns as integer codes, read without Python objects per row.

A `datasets.Dataset` is read as the Arrow columns of its (memory-mapped) table, a mapping as numpy / Arrow arrays;
every column becomes integer codes: Arrow's hash-based `unique` (values in order of first appearance) and
`index_in` a slice of rows at a time into one preallocated array, so a 100M-row column costs its 4 B (languages 1 B)
codes per row and a slice of temporaries, not a Python string per row. A dataset with an
indices mapping (after `.shuffle` / `.select`) is encoded in table order and the codes gathered through the mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hybridbatch.errors import UsageError

CHUNK = 1 << 20  # rows per step of the chunked passes (bounds their temporaries to ~40 MiB)


def code_dtype(n: int) -> type:
    """The smallest signed integer type holding codes 0..n-1 and -1."""
    return np.int32 if n < 2**31 - 1 else np.int64


def column_names(dataset: Any) -> list[str]:
    if isinstance(dataset, Mapping):
        return list(dataset)
    return list(getattr(dataset, "column_names", None) or [])


def read_columns(dataset: Any, names: list[str]) -> tuple[dict[str, pa.ChunkedArray], np.ndarray | None]:
    """The named columns as Arrow ChunkedArrays in storage order, and the dataset's indices mapping (rows of the
    dataset -> rows of its table; None: the identity). Nothing is copied for an Arrow-backed dataset."""
    if isinstance(dataset, Mapping):
        return {c: _chunked(dataset[c]) for c in names}, None
    table = getattr(dataset, "data", None)
    if table is not None and hasattr(table, "column") and hasattr(dataset, "_indices"):
        mapping = dataset._indices  # datasets' own indices table (one uint64 column), None when there is none
        idx = None
        if mapping is not None:
            idx = np.concatenate([c.to_numpy() for c in mapping.column(0).chunks]).astype(np.int64)
        return {c: table.column(c) for c in names}, idx
    return {c: _chunked(dataset[c]) for c in names}, None  # any other column store: its column as an array


def _chunked(values: Any) -> pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        return values
    if isinstance(values, pa.Array):
        return pa.chunked_array([values])
    if isinstance(values, np.ndarray):
        return pa.chunked_array([pa.array(values)])
    return pa.chunked_array([pa.array(list(values))])


def encode(col: pa.ChunkedArray, name: str, ordered: bool = True,
           dtype: type | None = None) -> tuple[np.ndarray, pa.Array]:
    """(codes, values): `values[codes[r]]` is row r's value; codes follow first appearance when `ordered` (a
    pre-encoded dictionary column is renumbered only then). Missing values are a usage error."""
    if col.null_count:
        raise UsageError(f"column {name!r} has {col.null_count} missing value(s); every row needs one")
    if pa.types.is_dictionary(col.type):
        col = col.unify_dictionaries()
        values = col.chunk(0).dictionary if col.num_chunks else pa.array([], col.type.value_type)
        codes = _gather_indices([c.indices for c in col.chunks], len(col))
        if ordered:
            codes, old = first_seen(codes, len(values))
            values = values.take(pa.array(old))
        return codes, values
    values = pc.unique(col)  # hash-based, in order of first appearance
    return lookup(col, values, dtype), values


def lookup(col: pa.ChunkedArray, values: pa.Array, dtype: type | None = None) -> np.ndarray:
    """Each row's position in `values` (-1: null or absent), written a slice of rows at a time into one array, so
    the only full-length array is the result (int32 unless `dtype`)."""
    out = np.empty(len(col), dtype or code_dtype(len(values)))
    step = max(CHUNK, 4 * len(values))  # each call hashes `values` once
    for a in range(0, len(col), step):
        part = col.slice(a, step)
        out[a:a + len(part)] = pc.index_in(part, value_set=values).fill_null(-1).to_numpy()
    return out


def _gather_indices(chunks: list[pa.Array], n: int) -> np.ndarray:
    """Concatenated dictionary indices in their own integer type (a single chunk without a copy)."""
    if len(chunks) == 1 and chunks[0].null_count == 0:
        return chunks[0].to_numpy(zero_copy_only=False)
    out = np.empty(n, chunks[0].type.to_pandas_dtype() if chunks else np.int32)
    pos = 0
    for c in chunks:
        out[pos:pos + len(c)] = c.fill_null(-1).to_numpy(zero_copy_only=False)
        pos += len(c)
    return out


def first_seen(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes renumbered 0.. by first appearance (codes that never appear are dropped), and each new code's old one.
    Negative codes (none) stay -1."""
    n = len(codes)
    first = np.full(k, n, np.int64)
    for a in range(0, n, CHUNK):
        c = codes[a:a + CHUNK]
        ok = c >= 0
        np.minimum.at(first, c[ok], np.arange(a, a + len(c))[ok])
    old = np.argsort(first, kind="stable")[: int((first < n).sum())]
    new = np.full(k + 1, -1, code_dtype(k))  # new[-1] = -1 maps missing codes to -1
    new[old] = np.arange(len(old))
    return new[codes], old


def take(codes: np.ndarray, indices: np.ndarray | None) -> np.ndarray:
    return codes if indices is None else codes[indices]


def joint_codes(a: pa.ChunkedArray, b: pa.ChunkedArray | None, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Codes of two columns in one space (equal codes = equal values; b's nulls and '' are -1): an answer group and
    a hard negative's group are compared with each other. Values of different types are compared as strings, as
    the samplers always have (`str(v)`)."""
    if b is None:
        return encode(a, name, ordered=False)[0], None
    if a.type != b.type:
        a, b = pc.cast(a, pa.string()), pc.cast(b, pa.string())
    if pa.types.is_string(b.type) or pa.types.is_large_string(b.type):
        b = pc.if_else(pc.equal(b, ""), pa.scalar(None, b.type), b)
    values = pc.drop_null(pc.unique(pa.chunked_array(list(a.chunks) + list(b.chunks), a.type)))
    return lookup(a, values), lookup(b, values)


def filled_groups(group: pa.ChunkedArray | None, ids: pa.ChunkedArray) -> pa.ChunkedArray:
    """The answer group of each row: its group value, or its id where the group is missing or '' (an id is its own
    group)."""
    if group is None:
        return ids
    missing = pc.is_null(group)
    if pa.types.is_string(group.type) or pa.types.is_large_string(group.type):
        missing = pc.or_(missing, pc.fill_null(pc.equal(group, ""), False))
    if not pc.any(missing).as_py():
        return group
    if group.type != ids.type:
        group, ids = pc.cast(group, pa.string()), pc.cast(ids, pa.string())
    return pc.if_else(missing, ids, group)


def as_str(values: pa.Array) -> list[str]:
    """Values as the strings the samplers name them by (`str(v)` of the Python value)."""
    return [str(v) for v in values.to_pylist()]


def row_language_codes(ql: pa.ChunkedArray, pl: pa.ChunkedArray, indices: np.ndarray | None,
                   names: tuple[str, str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sorted language names and each row's query / passage language code (int8)."""
    q_t, qvals = encode(ql, names[0], ordered=False, dtype=np.int16)
    p_t, pvals = encode(pl, names[1], ordered=False, dtype=np.int16)
    qnames, pnames = as_str(qvals), as_str(pvals)
    languages = sorted(set(qnames) | set(pnames))
    pos = {lang: i for i, lang in enumerate(languages)}
    dt = np.int8 if len(languages) < 128 else np.int16
    row_q = np.array([pos[v] for v in qnames], dt)[take(q_t, indices)]
    del q_t
    row_p = np.array([pos[v] for v in pnames], dt)[take(p_t, indices)]
    return languages, row_q, row_p


def group_codes(group: pa.ChunkedArray | None, neg: pa.ChunkedArray | None, src_t: np.ndarray | None, S: int,
                indices: np.ndarray | None, name: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Answer-group and hard-negative group codes in one space per source, per dataset row (None: the id is the
    group / no hard negatives). `group` is already filled (`filled_groups`); `src_t` the storage-order sources."""
    if group is None:
        return None, None
    g, n = joint_codes(group, neg, name)
    if S > 1:  # a group is a key within its source
        assert src_t is not None
        gs = g.astype(np.int64) * S + src_t
        ns = None if n is None else np.where(n >= 0, n.astype(np.int64) * S + src_t, -1)
        del g, n
        g, n = joint_codes(pa.chunked_array([pa.array(gs)]),
                           None if ns is None else pa.chunked_array([pa.array(ns, mask=ns < 0)]), name)
    return take(g, indices), None if n is None else take(n, indices)


def n_distinct(values: np.ndarray) -> int:
    """`len(np.unique(values))` by one sort: numpy 2's `unique` is ~20x slower on 10^5+ integers, and the samplers
    count the answer groups of every option (49 options of 2M ids at 100M rows)."""
    if len(values) == 0:
        return 0
    s = np.sort(values)
    return int(np.count_nonzero(s[1:] != s[:-1])) + 1
