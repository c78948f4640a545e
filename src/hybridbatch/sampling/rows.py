"""The index's arrays behind small accessors: ids as an Arrow array, rows by (id, language pair), row keys
computed from per-row codes, and a numpy-backed stack of a queue's items. Each costs bytes per row in numpy, and the
per-row reads of the batch path go through memoryviews."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa

from hybridbatch.sampling.columns import CHUNK, as_str


class Labels(Sequence):
    """The ids of one source as strings, kept as one Arrow array (10M ids are not 10M Python strings)."""

    def __init__(self, values: pa.Array) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return as_str(self.values[i])
        return str(self.values[int(i)].as_py())


_INT = (int, np.integer)


class _Views:
    """Per-row reads through memoryviews of the arrays (a third of the cost of numpy scalar indexing: the batch path
    reads a few values per row); made on first use and left out when pickled."""

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_v"}

    def _views(self) -> Any:
        try:
            return self._v
        except AttributeError:
            self._v = self._make_views()
            return self._v

    def _make_views(self) -> Any:
        raise NotImplementedError


def _mv(a: np.ndarray | None) -> memoryview | None:
    return None if a is None else memoryview(np.ascontiguousarray(a))


class SourceRows(_Views):
    """The rows of one source by (id, query language, passage language): `rows[i, x, y]` as on an ids x L x L
    array (-1: no such row). Stored as one int32 column per language pair that occurs, so it costs 4 B per id and
    pair present: 4 B per row on parallel data, and no L x L cube when only X-X rows exist."""

    def __init__(self, table: np.ndarray, pair_col: np.ndarray) -> None:
        self.table = table  # [ids, pairs present]
        self.pair_col = pair_col  # [L, L]: the table column of (x, y), -1 when no id has that pair

    def _make_views(self) -> Any:
        return _mv(self.table), self.pair_col.tolist()

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.table), *self.pair_col.shape)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, key: tuple[Any, Any, Any]) -> Any:
        i, x, y = key
        if type(i) is int and isinstance(x, _INT) and isinstance(y, _INT):  # one row: the per-batch path
            table, cols = self._views()
            c = cols[x][y]
            return table[i, c] if c >= 0 else -1
        col = self.pair_col[x, y]
        if np.ndim(col) == 0:
            if col >= 0:
                return self.table[i, col]
            return -1 if np.ndim(i) == 0 and not isinstance(i, slice) else np.full(len(self.table[i, :1]), -1)
        if isinstance(x, slice) or isinstance(y, slice):  # a language axis kept: as on the cube, it stays last
            got = self.table[i][..., np.maximum(col, 0)]
        else:
            got = self.table[i, np.maximum(col, 0)]
        return np.where(col >= 0, got, -1)

    def has(self) -> np.ndarray:
        """bool [ids, L]: the languages each id exists in (it has its own X-X row)."""
        L = len(self.pair_col)
        out = np.zeros((len(self.table), L), bool)
        for x in range(L):
            if self.pair_col[x, x] >= 0:
                out[:, x] = self.table[:, self.pair_col[x, x]] >= 0
        return out

    @property
    def nbytes(self) -> int:
        return self.table.nbytes + self.pair_col.nbytes


@dataclass
class RowKeys(_Views):
    """`keys[rows]` -> [k, 3] int64: each row's id key, answer-group key and hard-negative group key (-1: none),
    integers that are equal exactly when the keys are; `keys[rows, c]` one column. Computed on access from the
    per-row codes (no [rows, 3] matrix): id keys 0..n_id-1 (source offset + id), group keys from n_id on. A group
    column that is one per id (or per id and passage language) is stored so (`compacted`): 4 B per id, not per row."""

    row_source: np.ndarray
    row_id: np.ndarray
    id_offset: np.ndarray  # [sources]: the first id key of each source
    group: np.ndarray | None  # group codes (None: the id is the group)
    negative: np.ndarray | None  # hard-negative group codes, -1: none (None: no hard negatives)
    row_plang: np.ndarray | None = None
    n_lang: int = 0
    group_by: str = "row"  # where a row's code sits: "row", "id" (its id key), "lang" (id key x L + passage lang)
    negative_by: str = "row"

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.row_id), 3)

    def __len__(self) -> int:
        return len(self.row_id)

    def column(self, c: int, rows: Any) -> np.ndarray:
        n_id = int(self.id_offset[-1])
        if c == 0 or (c == 1 and self.group is None):
            ids = self.row_id[rows].astype(np.int64)
            if len(self.id_offset) > 2:  # several sources: each source's ids after the previous ones'
                ids += self.id_offset[self.row_source[rows]]
            return ids if c == 0 else n_id + ids
        if c == 1:
            return n_id + self.group[self._slot(self.group_by, rows)].astype(np.int64)
        if self.negative is None:
            return np.full(np.shape(self.row_id[rows]), -1, np.int64)
        neg = self.negative[self._slot(self.negative_by, rows)].astype(np.int64)
        return np.where(neg >= 0, n_id + neg, -1)

    def _slot(self, by: str, rows: Any) -> Any:
        """Where the codes of `rows` sit in an array stored `by` row, id or (id, passage language)."""
        if by == "row":
            return rows
        k = self.column(0, rows)
        return k if by == "id" else k * self.n_lang + self.row_plang[rows]

    def compacted(self) -> RowKeys:
        """The same keys, each group column stored per id or per (id, passage language) where it is one: an answer
        group is usually the same in all languages of an id, a hard negative the same per passage language."""
        out = self
        for name in ("group", "negative"):
            codes = getattr(self, name)
            for by in ("id", "lang") if codes is not None else ():
                packed = self._pack(codes, by)
                if packed is not None:
                    out = replace(out, **{name: packed, f"{name}_by": by})
                    break
        return out

    def _pack(self, codes: np.ndarray, by: str) -> np.ndarray | None:
        """`codes` stored `by` id (or id and passage language), None when two rows of one slot differ."""
        out = np.full(int(self.id_offset[-1]) * (self.n_lang if by == "lang" else 1), -2, codes.dtype)
        for a in range(0, len(codes), CHUNK):
            slot, v = self._slot(by, np.arange(a, min(a + CHUNK, len(codes)))), codes[a:a + CHUNK]
            unset = out[slot] == -2
            out[slot[unset]] = v[unset]
            if not np.array_equal(out[slot], v):
                return None
        out[out == -2] = -1
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        rows = rows if isinstance(rows, (slice, np.ndarray)) or np.ndim(rows) == 0 else np.asarray(rows, np.int64)
        if isinstance(cols, (int, np.integer)):
            return self.column(int(cols), rows)
        return np.stack([self.column(c, rows) for c in range(3)[cols]], axis=-1)

    def _make_views(self) -> Any:
        src = None if len(self.id_offset) == 2 else _mv(self.row_source)  # one source: its ids start at 0
        return (src, _mv(self.row_id), self.id_offset.tolist(), _mv(self.group), _mv(self.negative),
                int(self.id_offset[-1]), _mv(self.row_plang), self.n_lang)

    def row(self, r: int) -> tuple[int, ...]:
        """The keys of row r that exist (the per-batch check: about a microsecond)."""
        src, rid, offset, group, negative, n_id, plang, L = self._views()
        k = rid[r] if src is None else offset[src[r]] + rid[r]
        if group is None:
            g = n_id + k
        else:
            by = self.group_by
            g = n_id + group[r if by == "row" else (k if by == "id" else k * L + plang[r])]
        if negative is None:
            return (k, g)
        by = self.negative_by
        neg = negative[r if by == "row" else (k if by == "id" else k * L + plang[r])]
        return (k, g) if neg < 0 else (k, g, n_id + neg)

    def items(self, rows: np.ndarray, chunk: int = 4096) -> Iterator[tuple[list[int], int]]:
        """(keys as a list, row) for `rows` in order, read a chunk at a time."""
        for a in range(0, len(rows), chunk):
            part = rows[a:a + chunk]
            yield from zip(self[part].tolist(), part.tolist(), strict=True)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.group, self.negative) if a is not None)


class ItemStack(_Views):
    """A queue's pending item positions, popped from the end: one pass's order as a numpy array plus the few items
    pushed back on top, so a queue of 10M items is an array, not 10M Python ints."""

    def __init__(self, items: np.ndarray | None = None) -> None:
        items = np.zeros(0, np.int32) if items is None else items
        self.base = np.ascontiguousarray(items, np.int32 if len(items) < 2**31 else np.int64)  # positions
        self.top = len(self.base)
        self.extra: list[int] = []

    def _make_views(self) -> Any:
        return _mv(self.base)

    def __len__(self) -> int:
        return self.top + len(self.extra)

    def __bool__(self) -> bool:
        return self.top > 0 or bool(self.extra)

    def pop(self) -> int:
        if self.extra:
            return self.extra.pop()
        if self.top == 0:
            raise IndexError("pop from an empty ItemStack")
        self.top -= 1
        return self._views()[self.top]

    def extend(self, items: Any) -> None:
        self.extra.extend(items)
