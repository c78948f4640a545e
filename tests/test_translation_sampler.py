"""TranslationSampler on the real XQuAD-R train split: every batch is whole slots of k translations of one answer,
slots never share an id, answer group or hard-negative group, no row twice, seeds reproduce, alpha 1 is xx, and
the label column the multi-positive loss reads."""

from __future__ import annotations

import numpy as np
import pytest

from hybridbatch.errors import UsageError
from hybridbatch.sampling import XXSampler, pair_dataset
from hybridbatch.sampling.translations import LABEL_FIELDS, TranslationSampler, with_row_labels

B = 16


@pytest.fixture(scope="module")
def xq_plain(xquad):
    """Every (id, query lang, passage lang) row of the train split, with hard negatives."""
    pairs = xquad.split()[0].pairs(context=False, hard_negatives=True)
    return pair_dataset(pairs, "query: ", "passage: ", hard_negatives=True)


@pytest.fixture(scope="module")
def xq_ds(xq_plain):
    """The same rows shuffled, as a user might."""
    return xq_plain.shuffle(seed=0)


@pytest.fixture(scope="module")
def meta(xq_ds):
    return xq_ds.select_columns(["id", "query_lang", "passage_lang", "group", "negative_group"]).to_dict()


def check_slots(sampler: TranslationSampler, meta: dict, n_groups: int) -> list:
    k = sampler.k
    plans = [sampler.plan(g) for g in range(n_groups)]
    for plan in plans:
        rows = plan.rows.tolist()
        assert len(rows) == B and len(set(rows)) == B  # one batch group, no row twice
        slots = [rows[i:i + k] for i in range(0, B, k)]
        seen: set[str] = set()
        for slot in slots:
            ids = {meta["id"][r] for r in slot}
            groups = {meta["group"][r] for r in slot}
            assert len(ids) == 1 and len(groups) == 1  # one answer, k translations of it
            assert len({meta["passage_lang"][r] for r in slot}) == k
            keys = ids | groups | {meta["negative_group"][r] for r in slot}
            assert seen.isdisjoint(keys), "two slots share an id, answer group or hard-negative group"
            seen |= keys
    return plans


def test_one_query_language_with_its_own_copy(xq_ds, meta):
    s = TranslationSampler(xq_ds, B, seed=3, k=4)
    for plan in check_slots(s, meta, 40):
        assert plan.kind == "translations" and plan.plang == "*"
        for i in range(0, B, 4):
            slot = plan.rows[i:i + 4].tolist()
            assert {meta["query_lang"][r] for r in slot} == {plan.qlang}  # one query language per batch group
            assert meta["passage_lang"][slot[0]] == plan.qlang  # own=True: the own-language answer first
    assert s.config()["k"] == 4 and s.slots == 4 and s.dropped == []


def test_cross_lingual_only_and_parallel(xq_ds, meta):
    xy = TranslationSampler(xq_ds, B, seed=3, k=2, own=False)
    for plan in check_slots(xy, meta, 30):
        assert all(meta["passage_lang"][r] != plan.qlang for r in plan.rows)
    par = TranslationSampler(xq_ds, B, seed=3, k=4, queries="parallel")
    for plan in check_slots(par, meta, 30):
        assert plan.qlang == "*"
        assert all(meta["query_lang"][r] == meta["passage_lang"][r] for r in plan.rows)  # X-X rows, k languages


def test_seeds_reproduce_and_differ(xq_ds):
    a = TranslationSampler(xq_ds, B, seed=7, k=2)
    b = TranslationSampler(xq_ds, B, seed=7, k=2)
    c = TranslationSampler(xq_ds, B, seed=8, k=2)
    first = [a.plan(g).rows.tolist() for g in range(20)]
    assert first == [b.plan(g).rows.tolist() for g in range(20)]
    assert first != [c.plan(g).rows.tolist() for g in range(20)]
    a.set_epoch(1)
    assert [a.plan(g).rows.tolist() for g in range(20)] != first  # a new epoch, new batches
    assert list(iter(b))[:20] == first  # what the trainer's loader gets (world size 1)


def test_an_epoch_draws_each_query_item_at_most_once(xq_ds):
    s = TranslationSampler(xq_ds, B, seed=1, k=4)
    cov = s.coverage()
    # B / k query items per step: the base sampler's step count covers 1 / k of the (id, X) items, none twice
    assert cov["max_passes"] == 1
    assert cov["query_items"] == pytest.approx(s.num_batches * B / 4 / cov["items"])


def test_alpha_one_is_the_xx_sampler_and_alpha_mixes(xq_ds):
    xx = XXSampler(xq_ds, B, seed=5)
    one = TranslationSampler(xq_ds, B, seed=5, k=2, alpha=1.0)
    assert [one.plan(g).rows.tolist() for g in range(15)] == [xx.plan(g).rows.tolist() for g in range(15)]
    half = TranslationSampler(xq_ds, B, seed=5, k=2, alpha=0.5)
    kinds = half.mix(200)["kinds"]
    assert set(kinds) == {"xx", "translations"} and 70 <= kinds["xx"] <= 130


def test_refusals(xq_ds):
    with pytest.raises(UsageError, match="multiple of k"):
        TranslationSampler(xq_ds, 15, k=2)
    with pytest.raises(UsageError, match="k"):
        TranslationSampler(xq_ds, B, k=1)
    with pytest.raises(UsageError, match="queries"):
        TranslationSampler(xq_ds, B, k=2, queries="all")
    with pytest.raises(UsageError, match="at least 12 languages"):
        TranslationSampler(xq_ds, 24, k=12)  # XQuAD-R has 11


def test_columns_named_by_arguments(xq_ds, meta):
    small = xq_ds.select(range(20000)).rename_columns({"id": "qid", "passage_lang": "plang", "group": "answer"})
    s = TranslationSampler(small, 8, seed=0, k=2, id_column="qid", passage_lang_column="plang",
                           group_column="answer")
    plan = s.plan(0)
    ids = small.select(plan.rows.tolist())["qid"]
    assert all(ids[i] == ids[i + 1] for i in range(0, 8, 2)) and len(set(ids)) == 4


def test_row_labels(xq_plain):
    meta = xq_plain.select_columns(["query_lang", "passage_lang", "group"]).to_dict()
    labelled, vocab = with_row_labels(xq_plain)
    assert LABEL_FIELDS == ("group", "query_lang", "passage_lang")
    assert vocab == ["ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"]
    labels = np.array(labelled["label"])
    assert labels.shape == (len(xq_plain), 3)
    for r in (0, 1, 500, 77777):
        assert vocab[labels[r, 1]] == meta["query_lang"][r] and vocab[labels[r, 2]] == meta["passage_lang"][r]
    by_group: dict[str, set[int]] = {}
    for g, code in zip(meta["group"], labels[:, 0].tolist(), strict=True):
        by_group.setdefault(g, set()).add(code)
    assert all(len(c) == 1 for c in by_group.values())  # one code per answer group ...
    assert len({next(iter(c)) for c in by_group.values()}) == len(by_group)  # ... and distinct groups, codes
    _, given = with_row_labels(xq_plain.select(range(10)), languages=vocab)
    assert given == vocab
    with pytest.raises(UsageError, match="not in the given vocabulary"):
        with_row_labels(xq_plain.select(range(10)), languages=["en"])
    with pytest.raises(UsageError, match="already has"):
        with_row_labels(labelled.select(range(10)))
