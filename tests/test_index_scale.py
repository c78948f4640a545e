"""The sampler index at scale (issue 20, item 4): built from numpy / Arrow columns or a memory-mapped dataset it is
the index of the real dataset (same batches for the same seed); 8 simulated ranks partition the single-process plan;
its memory is numpy-sized (bytes per row from the arrays' nbytes). benchmarks/bench_sampler_scale.py measures the
1M / 10M / 100M rows."""

from __future__ import annotations

from itertools import islice

import numpy as np
import pyarrow as pa
import pytest
from datasets import Dataset, load_from_disk

from hybridbatch.errors import UsageError
from hybridbatch.sampling import PairIndex, make_sampler, pair_dataset

KINDS = ("xx", "xy", "hybrid")


@pytest.fixture(scope="module")
def xq_small(xquad):
    """Six XQuAD-R articles (11 languages, every cross-lingual pair, hard negatives), shuffled as a user might:
    a real dataset with an indices mapping, string ids, answer groups and hard-negative groups."""
    corpus = xquad.subset(xquad.articles[:6])
    return pair_dataset(corpus.pairs(hard_negatives=True), "query: ", "passage: ", hard_negatives=True).shuffle(seed=0)


def numpy_columns(ds: Dataset) -> dict[str, object]:
    """The dataset's metadata as numpy arrays (strings) and Arrow dictionary arrays (languages)."""
    meta = ds.select_columns(["id", "query_lang", "passage_lang", "group", "negative_group"]).to_dict()
    return {"id": np.array(meta["id"]), "group": np.array(meta["group"]),
            "negative_group": np.array(meta["negative_group"]),
            "query_lang": pa.array(meta["query_lang"]).dictionary_encode(),
            "passage_lang": pa.array(meta["passage_lang"]).dictionary_encode()}


def canonical(keys: np.ndarray) -> np.ndarray:
    """Keys renumbered by first appearance (row by row; -1 stays): key values only say which keys are equal."""
    flat = keys.ravel()
    values, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    rank = np.empty(len(values), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(values))
    return np.where(flat < 0, -1, rank[inverse]).reshape(keys.shape)


def assert_same_index(a: PairIndex, b: PairIndex) -> None:
    assert (a.languages, a.sources) == (b.languages, b.sources)
    assert [list(x) for x in a.ids] == [list(x) for x in b.ids]
    for name in ("row_source", "row_id", "row_qlang", "row_plang"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    rows = np.arange(len(a))
    assert np.array_equal(canonical(a.keys[rows]), canonical(b.keys[rows]))
    for s in range(len(a.sources)):
        assert np.array_equal(a.index[s].table, b.index[s].table)
        assert np.array_equal(a.index[s].pair_col, b.index[s].pair_col)


def plans(sampler, n: int = 40) -> list[tuple]:
    return [(p.kind, p.qlang, p.plang, p.rows.tolist()) for p in (sampler.plan(g) for g in range(n))]


def test_numpy_and_memory_mapped_columns_give_the_dataset_index_and_batches(xq_small, tmp_path):
    ix = PairIndex.from_dataset(xq_small)
    assert len(ix) == len(xq_small) and len(ix.languages) == 11
    cols = numpy_columns(xq_small)
    assert_same_index(PairIndex.from_columns(**cols), ix)
    xq_small.save_to_disk(tmp_path / "ds")  # written in dataset order: the indices mapping is applied
    mapped = load_from_disk(str(tmp_path / "ds"))
    assert mapped.cache_files and mapped._indices is None  # memory-mapped Arrow, no mapping
    assert_same_index(PairIndex.from_dataset(mapped), ix)
    for kind in KINDS:
        want = plans(make_sampler(kind, xq_small, 16, seed=4, alpha=0.5))
        assert plans(make_sampler(kind, cols, 16, seed=4, alpha=0.5)) == want, kind
        assert plans(make_sampler(kind, mapped, 16, seed=4, alpha=0.5)) == want, kind
    # the dataset's own rows: the batch log names them as the dataset does
    r = int(make_sampler("xy", cols, 16, seed=4).plan(0).rows[0])
    assert ix.describe(r) == {"source": "", "id": xq_small[r]["id"], "qlang": xq_small[r]["query_lang"],
                              "plang": xq_small[r]["passage_lang"]}


def test_columns_keep_the_dataset_rules_for_missing_groups_and_repeats():
    """A missing or '' group is the id; a missing or '' hard-negative group is none; values compare as strings;
    a repeated (id, query_lang, passage_lang) is refused naming the row, from columns as from a dataset."""
    cols = {"id": [5, 7, 5, 9], "query_lang": ["en", "en", "de", "de"], "passage_lang": ["en", "en", "de", "en"],
            "group": ["5", "", None, "7"], "negative_group": ["7", None, "", "9"]}
    a, b = PairIndex.from_columns(**cols), PairIndex.from_dataset(Dataset.from_dict(cols))
    assert_same_index(a, b)
    keys = a.keys[np.arange(4)]
    # rows 0 and 2 are id 5 (group "5" and missing -> "5"); row 3's group "7" is id 7's own group
    assert keys[0, 1] == keys[2, 1] and keys[3, 1] == keys[1, 1] == keys[0, 2]
    assert keys[1, 2] == keys[2, 2] == -1 and keys[3, 2] not in keys[:, 1]
    assert [a.ids[0][i] for i in range(3)] == ["5", "7", "9"]
    with pytest.raises(UsageError, match=r"row 2 repeats \(id, query_lang, passage_lang\) = \('a', 'en', 'en'\)"):
        PairIndex.from_columns(np.array(["a", "b", "a"]), np.array(["en"] * 3), np.array(["en"] * 3))


def test_eight_simulated_ranks_partition_the_plan(xq_small):
    """Eight processes (eight samplers, each built from its own copy of the data) through accelerate's
    BatchSamplerShard: rank r's batches are exactly its share of the single-process plan, the ranks' batches of a
    step hold no id or answer group twice, and every rank trains the step's kind and languages."""
    from accelerate.data_loader import BatchSamplerShard

    W, B, steps = 8, 4, 12
    plan = make_sampler("hybrid", xq_small, B, seed=9, alpha=0.5, world_size=W)
    ranks = []
    for r in range(W):
        own = make_sampler("hybrid", numpy_columns(xq_small), B, seed=9, alpha=0.5, world_size=W)
        shard = BatchSamplerShard(own, num_processes=W, process_index=r, split_batches=False, even_batches=False)
        ranks.append(list(islice(shard, steps)))
    kinds = set()
    for k in range(steps):
        p = plan.plan(k)
        kinds.add(p.kind)
        for r in range(W):
            assert ranks[r][k] == p.rows[r * B:(r + 1) * B].tolist()
        rows = np.concatenate([ranks[r][k] for r in range(W)])
        assert sorted(rows.tolist()) == sorted(p.rows.tolist())
        ix = plan.index
        for c in (0, 1):
            assert len(set(ix.keys[rows, c].tolist())) == W * B  # no id, no answer group twice in the step
        assert len(set(ix.row_qlang[rows].tolist())) == 1
        assert set((ix.row_qlang[rows] == ix.row_plang[rows]).tolist()) == {p.kind == "xx"}
    assert kinds == {"xx", "xy"}


def synthetic(n_ids: int, L: int = 7) -> dict[str, object]:
    """n_ids ids in all L languages, every (query, passage) pair, with answer groups (two ids per group, the same in
    every language) and hard-negative groups (one per id and passage language), int32."""
    r = np.arange(n_ids * L * L)
    rid, pair = r // (L * L), r % (L * L)
    names = pa.array([f"l{i}" for i in range(L)])
    return {"id": (rid * 7 + 3).astype(np.int32), "group": (rid // 2).astype(np.int32),
            "negative_group": ((rid // 2 + 1 + pair % L) % (n_ids // 2)).astype(np.int32),
            "query_lang": pa.DictionaryArray.from_arrays(pa.array((pair // L).astype(np.int8)), names),
            "passage_lang": pa.DictionaryArray.from_arrays(pa.array((pair % L).astype(np.int8)), names)}


def test_memory_per_row_is_numpy_sized():
    """~200k rows: the index holds 10 bytes per row (id 4, two languages 1 + 1, the row table 4; one source costs
    nothing per row) and per id 4 for its value, 4 for its answer group and 4 x L for its hard negatives (one per
    passage language), read off the arrays' nbytes; a hybrid sampler adds per-language arrays of the ids (X-X and
    X-Y options of one query language share them), nothing per row and option."""
    n_ids, L = 4096, 7
    cols = synthetic(n_ids, L)
    ix = PairIndex.from_columns(**cols)
    n = n_ids * L * L
    assert n == 200_704
    assert (ix.keys.group_by, ix.keys.negative_by) == ("id", "lang")
    assert ix.nbytes() == 10 * n + (4 + 4 + 4 * L) * n_ids + 4 * L * L  # + the (x, y) -> table column map
    assert ix.index[0].table.shape == (n_ids, L * L) and ix.index[0].table.dtype == np.int32
    # a hard negative that differs per query language too stays per row, with the same keys as from a dataset
    per_row = {**cols, "negative_group": ((np.arange(n) // (L * L) + 1 + np.arange(n) % (L * L)) % n_ids)}
    a = PairIndex.from_columns(**per_row)
    assert a.keys.negative_by == "row" and a.nbytes() == ix.nbytes() - 4 * L * n_ids + 4 * n
    assert_same_index(a, PairIndex.from_dataset(Dataset.from_dict({k: np.asarray(v) if isinstance(v, np.ndarray)
                                                                   else v.to_pylist() for k, v in per_row.items()})))
    s = make_sampler("hybrid", cols, 32, seed=0, alpha=0.5)
    opts = s.options["xx"] + s.options["xy"]
    assert len(opts) == L * L and all(o.rows is None for o in opts)
    shared = {id(o.items) for o in opts} | {id(o.item_groups) for o in opts}
    assert len(shared) == 2 * L  # one ids array and one groups array per query language
    option_bytes = sum(a.nbytes for a in {id(x): x for o in opts for x in (o.items, o.item_groups)}.values())
    assert option_bytes == L * n_ids * (4 + 4)  # int32 id positions and group keys
    for g in range(3 * L):
        s.plan(g)
    stacks = [q.pending for q in s._epoch_state[0].queues.values()]
    assert stacks and all(isinstance(q.base, np.ndarray) and len(q.base) == n_ids for q in stacks)
