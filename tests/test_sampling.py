"""Batch samplers: the invariants of docs/TRAINING.md, each checked on real data (XQuAD-R train split) or on a
hand-made partially parallel PairSet."""

from __future__ import annotations

import functools
import json
import math

import numpy as np
import pytest

from hybridbatch.data.records import PairSet, TrainItem
from hybridbatch.errors import UsageError
from hybridbatch.sampling.samplers import (
    SAMPLERS,
    HybridSampler,
    XXSampler,
    XYSampler,
    batch_info,
    build_pair_table,
    make_sampler,
    save_mix,
)


@pytest.fixture(scope="module")
def xq_pairs(xquad):
    return xquad.split()[0].pairs(context=False, hard_negatives=True)


@pytest.fixture(scope="module")
def xq_table(xq_pairs):
    return build_pair_table(xq_pairs, "query: ", "passage: ", hard_negatives=True)


def partial_pairs(name: str = "toy", n: int = 12) -> PairSet:
    """q0..q{n-1} in en; the first half also in de; q3.. also in fr: ids exist in 1 to 3 languages."""
    items: dict[str, dict[str, TrainItem]] = {}
    for i in range(n):
        langs = ["en"] + (["de"] if i < n // 2 else []) + (["fr"] if i >= 3 else [])
        items[f"{name}{i}"] = {
            lang: TrainItem(f"{name} question {i} {lang}", f"{name} answer {i} {lang}", (f"{name} other {i} {lang}",))
            for lang in langs
        }
    return PairSet(name, items, "sha-" + name)


def groups(sampler, n):
    return [sampler.plan(g) for g in range(n)]


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_no_question_id_twice_in_a_batch_or_group(xq_table, name):
    s = make_sampler(name, xq_table, 64, seed=3, alpha=0.5, world_size=2)
    for p in groups(s, 40):
        assert len(p.rows) == 128
        qids = xq_table.row_qid[p.rows]
        assert len(set(qids.tolist())) == 128, "a question id repeats within a step's batches"
        keys = xq_table.keys[p.rows].ravel()
        keys = keys[keys >= 0]
        assert len(set(keys.tolist())) == len(keys), "a text (query, positive, hard negative) repeats in a step"


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_batch_kind_and_languages(xq_table, name):
    s = make_sampler(name, xq_table, 32, seed=1, alpha=0.5)
    for p in groups(s, 30):
        ql, pl = xq_table.row_qlang[p.rows], xq_table.row_plang[p.rows]
        info = batch_info(xq_table, p.rows)
        if p.kind == "xx":
            assert len(set(ql)) == 1 and (ql == pl).all()
            assert info["qlang"] == p.qlang == p.plang
            if name == "en":
                assert p.qlang == "en"
        elif p.kind == "xy":
            assert len(set(ql)) == 1 and len(set(pl)) == 1 and (ql != pl).all()
            assert (info["qlang"], info["plang"]) == (p.qlang, p.plang)
        elif p.kind == "mixed":
            assert (ql == pl).all() and len(set(ql)) > 1
        elif p.kind == "random":
            assert len(set(zip(ql.tolist(), pl.tolist(), strict=True))) > 1
        assert p.kind in {"xx": ["xx"], "en": ["xx"], "xy": ["xy"], "hybrid": ["xx", "xy"], "mixed": ["mixed"],
                          "random": ["random"], "hybrid-multi": ["xx", "random"]}[name]


def test_rows_texts_match_the_pairset(xq_pairs, xq_table):
    """A row's anchor is its query in qlang and its positive the answer sentence in plang (with prefixes)."""
    s = make_sampler("hybrid", xq_table, 16, seed=5)
    rows = np.concatenate([p.rows for p in groups(s, 10)])
    for r in rows[:200].tolist():
        d = xq_table.describe(r)
        item_q = xq_pairs.items[d["qid"]][d["qlang"]]
        item_p = xq_pairs.items[d["qid"]][d["plang"]]
        row = xq_table.dataset[r]
        assert row["anchor"] == "query: " + item_q.query
        assert row["positive"] == "passage: " + item_p.positive
        neg = row["negative"][len("passage: "):]
        if item_p.negatives:  # another sentence of the same paragraph, in the passage's language
            assert neg in item_p.negatives
        else:  # a one-sentence paragraph: another question's passage stands in
            assert neg != item_p.positive


@pytest.mark.parametrize("name", ["xx", "xy", "hybrid", "mixed", "random", "hybrid-multi"])
@pytest.mark.parametrize("per_pair", [False, True])
def test_partial_parallelism_uses_only_existing_copies(name, per_pair):
    ps = partial_pairs()
    table = build_pair_table(ps, hard_negatives=True)
    s = make_sampler(name, table, 3, seed=0, alpha=0.5, per_pair=per_pair)
    seen_pairs = set()
    for p in groups(s, 300):
        for r in p.rows.tolist():
            d = table.describe(r)
            assert d["qlang"] in ps.items[d["qid"]] and d["plang"] in ps.items[d["qid"]]
            row = table.dataset[r]
            assert row["anchor"] == ps.items[d["qid"]][d["qlang"]].query
            assert row["positive"] == ps.items[d["qid"]][d["plang"]].positive
            seen_pairs.add((d["qlang"], d["plang"]))
    if name in ("xy", "hybrid"):
        # en-de, en-fr, de-fr and back all have >= 3 shared ids here
        assert {("en", "de"), ("de", "en"), ("en", "fr"), ("fr", "en")} <= seen_pairs


def test_language_pairs_without_enough_ids_are_not_drawn():
    ps = partial_pairs(n=12)  # de & fr share ids 3..5 only (3 ids)
    table = build_pair_table(ps)
    s = XYSampler(table, 4, seed=0)
    pairs = {(p.qlang, p.plang) for p in groups(s, 200)}
    assert ("de", "fr") not in pairs and ("fr", "de") not in pairs
    assert ("en", "de") in pairs


def test_plans_are_a_pure_function_of_seed_epoch_step(xq_table):
    a = HybridSampler(xq_table, 32, seed=7)
    b = HybridSampler(xq_table, 32, seed=7)
    for g in [5, 0, 17, 3]:  # any order: no state carried between batches
        assert np.array_equal(a.plan(g).rows, b.plan(g).rows)
        assert a.plan(g).kind == b.plan(g).kind
    c = HybridSampler(xq_table, 32, seed=8)
    assert not np.array_equal(a.plan(0).rows, c.plan(0).rows)
    a.set_epoch(1)
    assert not np.array_equal(a.plan(0).rows, b.plan(0).rows)
    assert np.array_equal(a.plan(0).rows, b.plan(0, epoch=1).rows)
    # iterating yields exactly the planned rows
    b.set_epoch(1)
    it = iter(b)
    for g in range(3):
        assert next(it) == b.plan(g).rows.tolist()


def test_accelerate_sharding_gives_every_rank_the_same_step(xq_table):
    """Run the sampler through accelerate's own BatchSamplerShard (what `accelerator.prepare` wraps a batch sampler
    in): at each step both ranks get the same kind and languages and disjoint question ids."""
    from accelerate.data_loader import BatchSamplerShard

    W = 2
    s = HybridSampler(xq_table, 16, seed=11, world_size=W, num_batches=40)
    shards = [list(BatchSamplerShard(s, num_processes=W, process_index=r, split_batches=False, even_batches=False))
              for r in range(W)]
    assert len(shards[0]) == len(shards[1]) == 20
    for step, (b0, b1) in enumerate(zip(*shards, strict=True)):
        i0, i1 = batch_info(xq_table, b0), batch_info(xq_table, b1)
        assert (i0["kind"], i0["qlang"], i0["plang"]) == (i1["kind"], i1["qlang"], i1["plang"])
        assert not set(i0["qids"]) & set(i1["qids"])
        assert i0["kind"] == s.plan(step).kind


def test_alpha_is_honoured_within_binomial_tolerance(xq_table):
    for alpha in (0.5, 0.2):
        s = HybridSampler(xq_table, 32, seed=2, alpha=alpha)
        n = 2000
        mix = s.mix(n)
        sd = math.sqrt(alpha * (1 - alpha) / n)
        assert abs(mix["xx_share"] - alpha) < 4 * sd, mix["xx_share"]
        assert mix["steps"] == n and sum(mix["kinds"].values()) == n
    assert HybridSampler(xq_table, 32, alpha=1.0).mix(200)["kinds"] == {"xx": 200}
    assert HybridSampler(xq_table, 32, alpha=0.0).mix(200)["kinds"] == {"xy": 200}


def test_hybrid_at_alpha_1_and_0_is_xx_and_xy_batch_for_batch(xq_table):
    """The sweep's end points reuse the xx / xy runs: that is honest only if the batches are the same ones."""
    for alpha, other in ((1.0, XXSampler), (0.0, XYSampler)):
        for seed in (0, 3):
            h, o = HybridSampler(xq_table, 32, seed=seed, alpha=alpha), other(xq_table, 32, seed=seed)
            for step in range(60):
                a, b = h.plan(step), o.plan(step)
                assert (a.kind, a.qlang, a.plang) == (b.kind, b.qlang, b.plang) and np.array_equal(a.rows, b.rows), (alpha, step)
    # and in between the coin is tossed: alpha 0.5 is neither
    h = HybridSampler(xq_table, 32, seed=0, alpha=0.5)
    assert any(not np.array_equal(h.plan(i).rows, XXSampler(xq_table, 32, seed=0).plan(i).rows) for i in range(10))


def test_hybrid_multi_mixes_passage_languages_within_its_multilingual_batches(xq_table):
    """Our sampler: X-X with probability alpha, else batches whose pairs each draw their own languages."""
    s = make_sampler("hybrid-multi", xq_table, 32, seed=4, alpha=0.3)
    mix = s.mix(1000)
    assert set(mix["kinds"]) == {"xx", "random"}
    assert abs(mix["kinds"]["xx"] / 1000 - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 1000)
    for p in groups(s, 40):
        if p.kind == "random":
            assert len(set(xq_table.row_plang[p.rows].tolist())) >= 5  # in-batch negatives in many languages


def test_languages_uniform_per_batch(xq_table):
    s = HybridSampler(xq_table, 32, seed=4, alpha=1.0)
    mix = s.mix(2200)
    counts = np.array(list(mix["lang_pairs"].values()))
    assert len(counts) == 11
    assert counts.min() > 2200 / 11 * 0.7  # uniform over the 11 languages


def test_sources_drawn_in_proportion_to_size(tmp_path):
    big, small = partial_pairs("big", 60), partial_pairs("small", 20)
    table = build_pair_table([big, small])
    s = HybridSampler(table, 3, seed=9, alpha=1.0)
    n = 3000
    mix = s.mix(n)
    p = len(big) / (len(big) + len(small))
    share = mix["sources"]["big"] / n
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)
    for plan in groups(s, 100):  # one source per batch
        assert len({table.row_source[r] for r in plan.rows}) == 1
    path = save_mix(tmp_path / "mix.json", mix, alpha=1.0)
    saved = json.loads(path.read_text())
    assert saved["sources"] == mix["sources"] and saved["alpha"] == 1.0


def test_bad_input_is_a_usage_error(xq_table):
    with pytest.raises(UsageError, match=r"alpha must be in \[0, 1\]"):
        HybridSampler(xq_table, 32, alpha=1.5)
    with pytest.raises(UsageError, match="alpha"):
        make_sampler("hybrid", xq_table, 32, alpha=-0.1)
    with pytest.raises(UsageError, match="unknown sampler"):
        make_sampler("nope", xq_table, 32)
    with pytest.raises(UsageError, match="lower --batch-size"):
        HybridSampler(xq_table, 5000)
    with pytest.raises(UsageError, match="lower --batch-size"):
        HybridSampler(xq_table, 600, world_size=2)  # 1200 ids needed per step, 889 available
    en_only = PairSet("en", {f"q{i}": {"en": TrainItem(f"q {i}", f"a {i}")} for i in range(50)})
    table = build_pair_table(en_only)
    with pytest.raises(UsageError, match="at least two languages"):
        XYSampler(table, 8)
    with pytest.raises(UsageError, match="at least two languages"):
        HybridSampler(table, 8, alpha=0.5)
    HybridSampler(table, 8, alpha=1.0)  # all X-X: one language is enough
    de_only = PairSet("de", {f"q{i}": {"de": TrainItem(f"q {i}", f"a {i}")} for i in range(50)})
    with pytest.raises(UsageError, match="needs English"):
        make_sampler("en", build_pair_table(de_only), 8)


def test_plugs_into_the_plain_sentence_transformers_trainer(tiny_model, xq_table, tmp_path):
    """`batch_sampler=functools.partial(HybridSampler, alpha=...)` in the training args: the ST trainer builds our
    sampler over the pair table's dataset."""
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )

    model = SentenceTransformer(str(tiny_model), device="cpu")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "ckpt"), per_device_train_batch_size=16, report_to="none", use_cpu=True,
        batch_sampler=functools.partial(HybridSampler, alpha=0.25, num_batches=8), seed=5, max_steps=1,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=xq_table.dataset,
                                         loss=MultipleNegativesRankingLoss(model))
    loader = trainer.get_train_dataloader()
    sampler = loader.batch_sampler
    assert isinstance(sampler, HybridSampler) and sampler.alpha == 0.25 and sampler.seed == 5
    batch = next(iter(loader))
    assert batch["anchor_input_ids"].shape[0] == 16 and "negative_input_ids" in batch
