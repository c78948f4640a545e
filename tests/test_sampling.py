"""Batch samplers: the invariants of docs/TRAINING.md, checked on real data (the XQuAD-R train split) or on a
hand-made partially parallel PairSet, always through the pair dataset the samplers read."""

from __future__ import annotations

import functools
import json
import math
from collections import Counter

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from hybridbatch.data.records import PairSet, TrainItem
from hybridbatch.errors import UsageError
from hybridbatch.sampling import (
    DEFAULT_SAMPLER,
    SAMPLERS,
    HybridSampler,
    PairCollator,
    XXSampler,
    XYSampler,
    batch_info,
    make_sampler,
    pair_dataset,
    pairs_from_long,
    sampler_class,
    save_mix,
)
from hybridbatch.sampling.samplers import alpha_of, same_run, sampler_options, takes_alpha


@pytest.fixture(scope="module")
def xq_train(xquad):
    return xquad.split()[0]


@pytest.fixture(scope="module")
def xq_pairs(xq_train):
    return xq_train.pairs(context=False, hard_negatives=True)


@pytest.fixture(scope="module")
def xq_ds(xq_pairs):
    """Every (id, query lang, passage lang) row of the train split, with hard negatives, shuffled as a user might."""
    return pair_dataset(xq_pairs, "query: ", "passage: ", hard_negatives=True).shuffle(seed=0)


@pytest.fixture(scope="module")
def xq_hybrid(xq_ds):
    return HybridSampler(xq_ds, 32, seed=2, alpha=0.5)


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


def test_answer_groups_of_the_xquad_r_train_split(xq_train):
    """925 train ids share 596 English answer sentences: ids with one answer sentence (in any language) are one
    group, and the group key is the same in every language."""
    by_id = xq_train.by_id()
    assert len(by_id) == 925
    en = xq_train.questions["en"]
    assert len({q.answer for q in en}) == 596
    group = {q.qid: q.group for q in en}
    for lang in xq_train.languages:
        sentence_groups: dict[int, set[str]] = {}
        for q in xq_train.questions[lang]:
            assert q.group == group[q.qid], "an id's group differs across languages"
            sentence_groups.setdefault(q.answer, set()).add(q.group)
        assert all(len(g) == 1 for g in sentence_groups.values()), f"one {lang} sentence, two groups"
    assert len(set(group.values())) <= 596


# translations repeats an id by design (k translations of one answer): its invariants in test_translation_sampler.py
@pytest.mark.parametrize("name", [n for n in SAMPLERS if n != "translations"])
def test_no_id_or_answer_group_twice_in_a_batch_group(xq_ds, xq_pairs, name):
    """The issue's check: many steps of every sampler on the XQuAD-R train split, zero batch groups (2 processes x
    32 pairs) with a repeated id, answer group or hard-negative group."""
    s = make_sampler(name, xq_ds, 32, seed=3, alpha=0.5, world_size=2)
    data = xq_ds.select_columns(["id", "passage_lang", "group", "negative_group"]).to_dict()
    for p in groups(s, 400):
        assert len(p.rows) == 64
        rows = p.rows.tolist()
        ids = [data["id"][r] for r in rows]
        assert len(set(ids)) == 64, "an id repeats within a step's batches"
        keys = [data["group"][r] for r in rows] + [data["negative_group"][r] for r in rows]
        assert len(set(keys)) == len(keys), "an answer group repeats within a step's batches"
        for r in rows[:3]:  # the groups are the readers' language-independent keys
            item = xq_pairs.items[data["id"][r]][data["passage_lang"][r]]
            assert data["group"][r] == item.group


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_batch_kind_and_languages(xq_ds, name):
    s = make_sampler(name, xq_ds, 32, seed=1, alpha=0.5)
    ix = s.index
    for p in groups(s, 30):
        ql, pl = ix.row_qlang[p.rows], ix.row_plang[p.rows]
        info = batch_info(ix, p.rows)
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
        elif p.kind == "bilingual":
            assert len(set(ql)) == 1 and {ix.languages[v] for v in pl} == {p.qlang, p.plang} != {p.qlang}
            assert (info["kind"], info["qlang"], info["plang"]) == ("bilingual", p.qlang, p.plang)  # the batch log
        assert p.kind in {"xx": ["xx"], "en": ["xx"], "xy": ["xy"], "hybrid": ["xx", "xy"], "mixed": ["mixed"],
                          "random": ["random"], "hybrid-multi": ["xx", "random"], "bilingual": ["bilingual"],
                          "curriculum": ["xx", "xy"], "translations": ["xx", "translations"]}[name]


def test_rows_texts_match_the_pairset(xq_pairs, xq_ds, xq_hybrid):
    """A row's anchor is its query in qlang and its positive the answer sentence in plang (with prefixes); the
    hard negative is another sentence of the paragraph outside the answer's group."""
    rows = np.concatenate([p.rows for p in groups(xq_hybrid, 4)])
    for r in rows[:200].tolist():
        row = xq_ds[r]
        item_q = xq_pairs.items[row["id"]][row["query_lang"]]
        item_p = xq_pairs.items[row["id"]][row["passage_lang"]]
        assert row["anchor"] == "query: " + item_q.query
        assert row["positive"] == "passage: " + item_p.positive
        assert row["negative_group"] != row["group"]
        neg = row["negative"][len("passage: "):]
        if neg in item_p.negatives:
            assert item_p.negative_groups[item_p.negatives.index(neg)] == row["negative_group"]
        else:  # a paragraph without another group's sentence: another id's passage stands in
            assert neg != item_p.positive


def test_query_language_hard_negatives(xq_pairs, xq_ds):
    """negative_lang='query': a row's hard negative is the one its query-language item has (a wrong sentence of the
    same paragraph in the query's language), so an X-Y pair holds a Y answer and an X distractor; X-X rows are as
    before, and the groups the samplers dedup on follow the negative."""
    q_ds = pair_dataset(xq_pairs, "query: ", "passage: ", hard_negatives=True, negative_lang="query").shuffle(seed=0)
    assert q_ds["anchor"] == xq_ds["anchor"] and q_ds["positive"] == xq_ds["positive"]
    cross = same = 0
    for r in range(0, len(q_ds), 37):
        row, old = q_ds[r], xq_ds[r]
        item_q = xq_pairs.items[row["id"]][row["query_lang"]]
        neg = row["negative"][len("passage: "):]
        mine = item_q.negatives.index(neg) if neg in item_q.negatives else None
        if mine is not None:
            assert item_q.negative_groups[mine] == row["negative_group"] != row["group"]
        if row["query_lang"] == row["passage_lang"]:
            assert (row["negative"], row["negative_group"]) == (old["negative"], old["negative_group"])
            same += 1
        else:
            assert mine is not None or neg not in xq_pairs.items[row["id"]][row["passage_lang"]].negatives
            cross += 1
    assert cross > 100 and same > 5
    s = make_sampler("xy", q_ds, 32, seed=1)
    for p in groups(s, 50):  # still no group twice, hard negatives included
        keys = s.index.keys[p.rows]
        flat = [v for v in keys[:, 1:].ravel().tolist() if v >= 0]
        assert len(flat) == len(set(flat))
    with pytest.raises(UsageError, match="negative_lang"):
        pair_dataset(xq_pairs, hard_negatives=True, negative_lang="answer")


@pytest.mark.parametrize("name", ["xx", "xy", "hybrid", "mixed", "random", "hybrid-multi"])
@pytest.mark.parametrize("per_pair", [False, True])
def test_partial_parallelism_uses_only_existing_copies(name, per_pair):
    ps = partial_pairs()
    ds = pair_dataset(ps, hard_negatives=True)
    s = make_sampler(name, ds, 3, seed=0, alpha=0.5, per_pair=per_pair)
    seen_pairs = set()
    for p in groups(s, 300):
        for r in p.rows.tolist():
            row = ds[r]
            qid, ql, pl = row["id"], row["query_lang"], row["passage_lang"]
            assert ql in ps.items[qid] and pl in ps.items[qid]
            assert row["anchor"] == ps.items[qid][ql].query
            assert row["positive"] == ps.items[qid][pl].positive
            seen_pairs.add((ql, pl))
    if name in ("xy", "hybrid"):
        assert {("en", "de"), ("de", "en"), ("en", "fr"), ("fr", "en")} <= seen_pairs


def test_language_pairs_without_enough_ids_are_dropped_and_reported():
    ds = pair_dataset(partial_pairs(n=12))  # de & fr share ids 3..5 only (3 ids)
    s = XYSampler(ds, 4, seed=0)
    pairs = {(p.qlang, p.plang) for p in groups(s, 200)}
    assert ("de", "fr") not in pairs and ("fr", "de") not in pairs
    assert ("en", "de") in pairs
    dropped = {d["option"]: d for d in s.config()["dropped"]}
    assert set(dropped) == {"xy de-fr", "xy fr-de"} and dropped["xy de-fr"]["distinct_groups"] == 3


def test_plans_are_deterministic_per_seed_and_epoch(xq_ds):
    a = HybridSampler(xq_ds, 32, seed=7)
    b = HybridSampler(xq_ds, 32, seed=7)
    for g in [5, 0, 17, 3]:  # any order of asking
        assert np.array_equal(a.plan(g).rows, b.plan(g).rows)
        assert a.plan(g).kind == b.plan(g).kind
    c = HybridSampler(xq_ds, 32, seed=8)
    assert not np.array_equal(a.plan(0).rows, c.plan(0).rows)
    a.set_epoch(1)
    assert not np.array_equal(a.plan(0).rows, b.plan(0).rows)
    assert np.array_equal(a.plan(0).rows, b.plan(0, epoch=1).rows)
    b.set_epoch(1)  # iterating yields exactly the planned rows
    it = iter(b)
    for g in range(3):
        assert next(it) == b.plan(g).rows.tolist()


def test_an_epoch_draws_items_without_replacement(xq_train):
    """One epoch of X-X (or mixed) batches covers nearly every (id, language) item; before, ids were drawn with
    replacement and about a third of the items went unseen."""
    ds = pair_dataset(xq_train.pairs(), cross=True)
    for name in ("xx", "mixed", "xy"):
        s = make_sampler(name, ds, 32, seed=0)
        cov = s.coverage()
        assert cov["steps"] == len(s) and cov["items"] == 10175
        assert cov["query_items"] > 0.85, (name, cov)
    per_item = Counter()
    s = XXSampler(ds, 32, seed=0)
    for p in groups(s, len(s)):
        per_item.update(zip(s.index.row_id[p.rows].tolist(), s.index.row_qlang[p.rows].tolist()))
    assert max(per_item.values()) <= 3  # nothing drawn over and over


def test_accelerate_sharding_gives_every_rank_the_same_step(xq_ds):
    """Run the sampler through accelerate's own BatchSamplerShard (what `accelerator.prepare` wraps a batch sampler
    in): at each step both ranks get the same kind and languages and disjoint ids and answer groups."""
    from accelerate.data_loader import BatchSamplerShard

    W = 2
    s = HybridSampler(xq_ds, 16, seed=11, world_size=W, num_batches=40)
    shards = [list(BatchSamplerShard(s, num_processes=W, process_index=r, split_batches=False, even_batches=False))
              for r in range(W)]
    assert len(shards[0]) == len(shards[1]) == 20
    for step, (b0, b1) in enumerate(zip(*shards, strict=True)):
        i0, i1 = batch_info(s.index, b0), batch_info(s.index, b1)
        assert (i0["kind"], i0["qlang"], i0["plang"]) == (i1["kind"], i1["qlang"], i1["plang"])
        assert not set(i0["qids"]) & set(i1["qids"])
        assert not set(s.index.keys[b0, 1]) & set(s.index.keys[b1, 1])
        assert i0["kind"] == s.plan(step).kind


def test_alpha_is_honoured_within_binomial_tolerance(xq_ds):
    for alpha in (0.5, 0.2):
        s = HybridSampler(xq_ds, 32, seed=2, alpha=alpha)
        n = 1500
        mix = s.mix(n)
        sd = math.sqrt(alpha * (1 - alpha) / n)
        assert abs(mix["xx_share"] - alpha) < 4 * sd, mix["xx_share"]
        assert mix["steps"] == n and sum(mix["kinds"].values()) == n
    assert HybridSampler(xq_ds, 32, alpha=1.0).mix(200)["kinds"] == {"xx": 200}
    assert HybridSampler(xq_ds, 32, alpha=0.0).mix(200)["kinds"] == {"xy": 200}


def test_hybrid_at_alpha_1_and_0_is_xx_and_xy_batch_for_batch(xq_ds):
    """The sweep's end points reuse the xx / xy runs: that is honest only if the batches are the same ones."""
    for alpha, other in ((1.0, XXSampler), (0.0, XYSampler)):
        h, o = HybridSampler(xq_ds, 32, seed=3, alpha=alpha), other(xq_ds, 32, seed=3)
        for step in range(60):
            a, b = h.plan(step), o.plan(step)
            assert (a.kind, a.qlang, a.plang) == (b.kind, b.qlang, b.plang) and np.array_equal(a.rows, b.rows)
    h = HybridSampler(xq_ds, 32, seed=0, alpha=0.5)
    xx = XXSampler(xq_ds, 32, seed=0)
    assert any(not np.array_equal(h.plan(i).rows, xx.plan(i).rows) for i in range(10))


def test_hybrid_multi_mixes_passage_languages_within_its_multilingual_batches(xq_ds):
    s = make_sampler("hybrid-multi", xq_ds, 32, seed=4, alpha=0.3)
    mix = s.mix(1000)
    assert set(mix["kinds"]) == {"xx", "random"}
    assert abs(mix["kinds"]["xx"] / 1000 - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 1000)
    for p in groups(s, 40):
        if p.kind == "random":
            assert len(set(s.index.row_plang[p.rows].tolist())) >= 5


def test_bilingual_batches_put_own_language_negatives_beside_foreign_positives(xq_ds):
    """Every bilingual batch has one query language X, passages in X (a share alpha of the pairs, binomially) and in
    one Y != X; the Y-passage queries therefore have X-language wrong answers among their in-batch negatives. Over
    many batches the monolingual share of pairs is alpha, as for hybrid at the same alpha."""
    ix = None
    for alpha in (0.5, 0.25):
        s = make_sampler("bilingual", xq_ds, 32, seed=5, alpha=alpha)
        ix = s.index
        mono = total = 0
        for p in groups(s, 300):
            ql, pl = ix.row_qlang[p.rows], ix.row_plang[p.rows]
            assert len(set(ql.tolist())) == 1 and len(set(pl.tolist())) == 2
            assert ((pl == ql) | (pl == ix.languages.index(p.plang))).all()
            mono += int((pl == ql).sum())
            total += len(pl)
        sd = math.sqrt(alpha * (1 - alpha) / total)
        assert abs(mono / total - alpha) < 4 * sd, (alpha, mono / total)
    pairs = Counter((p.qlang, p.plang) for p in groups(make_sampler("bilingual", xq_ds, 32, seed=5), 1100))
    assert len(pairs) == 110 and min(pairs.values()) >= 5  # every ordered (X, Y) pair, spread evenly


def test_bilingual_is_not_an_xx_run_at_alpha_1(xq_ds):
    """A grid must not substitute the xx run for bilingual at alpha 1: its batches are X-X, but other ones."""
    from hybridbatch.experiments.grid import Cell

    b, xx = make_sampler("bilingual", xq_ds, 32, seed=3, alpha=1.0), XXSampler(xq_ds, 32, seed=3)
    plans = groups(b, 20)
    assert all((b.index.row_qlang[p.rows] == b.index.row_plang[p.rows]).all() for p in plans)
    assert any(not np.array_equal(p.rows, xx.plan(i).rows) for i, p in enumerate(plans))
    assert Cell("bilingual", 1.0).canonical() == Cell("bilingual", 1.0)


def test_curriculum_moves_from_xx_to_xy_over_its_ramp_with_hybrids_share(xq_ds):
    """The curriculum draws X-X batches early and X-Y batches late (reversed on request); over its ramp the share of
    X-X batches is alpha, as for hybrid; past the ramp it stays at the end value; alpha 1 / 0 are the xx / xy runs."""
    from hybridbatch.sampling.samplers import CurriculumSampler

    n = 400
    for alpha, rev in ((0.5, False), (0.5, True), (0.25, False)):
        s = CurriculumSampler(xq_ds, 32, seed=6, alpha=alpha, ramp_batches=n, reverse=rev)
        xx = np.array([p.kind == "xx" for p in groups(s, n)], dtype=float)
        early, late = xx[: n // 4].mean(), xx[-n // 4:].mean()
        span = 0.5 * (min(1.0, 2 * alpha) - max(0.0, 2 * alpha - 1))  # 2/3 of the quarters' expected gap
        assert (early > late + span) != rev and (late > early + span) == rev, (alpha, rev, early, late)
        sd = math.sqrt(alpha * (1 - alpha) / n)
        assert abs(xx.mean() - alpha) < 4 * sd, (alpha, xx.mean())
        assert s.p_xx(0, n + 50) == (max(0.0, 2 * alpha - 1) if not rev else min(1.0, 2 * alpha))
    for alpha, other in ((1.0, XXSampler), (0.0, XYSampler)):
        s, o = CurriculumSampler(xq_ds, 32, seed=6, alpha=alpha, ramp_batches=50), other(xq_ds, 32, seed=6)
        assert all(np.array_equal(p.rows, o.plan(i).rows) for i, p in enumerate(groups(s, 8)))
    assert CurriculumSampler(xq_ds, 32, alpha=0.5).ramp_batches == len(s)  # one epoch unless told
    with pytest.raises(UsageError, match="ramp_batches"):
        CurriculumSampler(xq_ds, 32, alpha=0.5, ramp_batches=0)


def test_the_trainer_spreads_the_curriculum_over_the_run_not_an_epoch(xq_ds):
    """100 steps are a fraction of an epoch: the trainer's sampler must reach the ramp's end at the last step (each
    step is grad_accum batch groups), or a short run would only see the curriculum's X-X half."""
    from hybridbatch.training.config import TrainConfig
    from hybridbatch.training.trainer import sampler_factory

    s = sampler_factory(TrainConfig(sampler="curriculum", alpha=0.5, max_steps=30, grad_accum=2), 1)(xq_ds, 32)
    assert s.ramp_batches == 60 < len(s)
    assert s.p_xx(0, 0) > 0.99 and s.p_xx(0, 59) < 0.01
    plain = sampler_factory(TrainConfig(sampler="hybrid", max_steps=30), 1)(xq_ds, 32)
    assert not hasattr(plain, "ramp_batches")


def test_languages_uniform_per_batch(xq_ds):
    mix = XXSampler(xq_ds, 32, seed=4).mix(1100)
    counts = np.array(list(mix["lang_pairs"].values()))
    assert len(counts) == 11
    assert counts.min() >= 1100 // 11 - 1  # rounds of the option draw: every language once per round


def test_a_dataset_dict_is_several_sources_in_proportion_to_size(tmp_path):
    big, small = partial_pairs("big", 60), partial_pairs("small", 20)
    dd = DatasetDict({"big": pair_dataset(big), "small": pair_dataset(small)})
    s = HybridSampler(dd, 3, seed=9, alpha=1.0)
    n = 3000
    mix = s.mix(n)
    p = len(big) / (len(big) + len(small))
    share = mix["sources"]["big"] / n
    assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)
    for plan in groups(s, 100):  # one source per batch, and the rows index the sources in key order
        srcs = {s.index.row_source[r] for r in plan.rows}
        assert len(srcs) == 1
        first = int(plan.rows[0])
        expected = dd["big"][first] if first < len(dd["big"]) else dd["small"][first - len(dd["big"])]
        assert expected["id"].startswith(plan.source)
    path = save_mix(tmp_path / "mix.json", mix, alpha=1.0)
    saved = json.loads(path.read_text())
    assert saved["sources"] == mix["sources"] and saved["alpha"] == 1.0


def test_pairs_from_long_user_data_keeps_groups_apart():
    """A user's long data (one row per id and language) with their own group column and column names."""
    rows = []
    for i in range(40):
        for lang in ("en", "de", "fr"):
            rows.append({"qid": f"q{i}", "language": lang, "question": f"{lang} question {i}",
                         "answer": f"{lang} answer {i // 2}", "answer_key": f"a{i // 2}"})
    long = Dataset.from_list(rows)
    pairs = pairs_from_long(long, id_column="qid", lang_column="language", query_column="question",
                            positive_column="answer", group_column="answer_key")
    assert len(pairs) == 40 * 9 and set(pairs.column_names) >= {"anchor", "positive", "id", "group"}
    renamed = pairs.rename_column("id", "question_id").map(lambda r: {"anchor": r["anchor"].upper()})
    s = HybridSampler(renamed.shuffle(seed=1), 8, seed=0, id_column="question_id")
    data = s.dataset.select_columns(["question_id", "group"]).to_dict()
    for p in groups(s, 100):
        g = [data["group"][r] for r in p.rows]
        assert len(set(g)) == len(g) == 8  # two ids share each answer: never in one batch


def test_the_registry_answers_what_callers_used_to_ask_of_sampler_names():
    """What each sampler takes and needs, read off its class: which take alpha (a sweep varies it), which run a
    sweep reuses at an end point, the alpha of the plain samplers, the options one settings dict keeps."""
    assert [n for n in SAMPLERS if takes_alpha(n)] == ["hybrid", "hybrid-multi", "bilingual", "curriculum",
                                                       "translations"]
    assert (same_run("hybrid", 1.0), same_run("hybrid", 0.0), same_run("hybrid", 0.5)) == ("xx", "xy", None)
    assert (same_run("hybrid-multi", 1.0), same_run("hybrid-multi", 0.0)) == ("xx", None)
    assert (same_run("curriculum", 1.0), same_run("bilingual", 1.0), same_run("xx", None)) == ("xx", None, None)
    assert (alpha_of("xx"), alpha_of("xy"), alpha_of("en"), alpha_of("hybrid")) == (1.0, 0.0, None, None)
    assert sampler_options("xx", alpha=0.3, per_pair=True, ramp_batches=5, world_size=2) == {"world_size": 2}
    assert sampler_options("xy", alpha=0.3, per_pair=True) == {"per_pair": True}
    assert sampler_options("curriculum", alpha=0.3, ramp_batches=5, reverse=True, lang_weighting="size") == {
        "alpha": 0.3, "ramp_batches": 5, "reverse": True, "lang_weighting": "size"}
    assert sampler_class(DEFAULT_SAMPLER) is HybridSampler
    needs = {n: (sampler_class(n).needs_cross_rows(0.5), sampler_class(n).needs_cross_rows(1.0)) for n in SAMPLERS}
    assert needs == {"xx": (False, False), "xy": (True, True), "hybrid": (True, False), "en": (False, False),
                     "mixed": (False, False), "random": (True, True), "hybrid-multi": (True, False),
                     "bilingual": (True, True), "curriculum": (True, False), "translations": (True, False)}
    for bad in (1.5, -0.1, float("nan")):  # alpha is checked whether or not the sampler takes it
        with pytest.raises(UsageError, match=r"alpha must be in \[0, 1\]"):
            sampler_options("xx", alpha=bad)
    with pytest.raises(UsageError, match="unknown sampler 'zz'; choose one of xx, xy, hybrid"):
        sampler_class("zz")


def test_bilingual_at_alpha_1_trains_on_the_rows_its_class_asks_for(xq_pairs):
    """Bilingual batches are drawn over (X, Y) options even at alpha 1: the pair dataset built the way training
    builds it (cross-lingual rows when the class needs them) fills them, with every pair monolingual."""
    ds = pair_dataset(xq_pairs, cross=sampler_class("bilingual").needs_cross_rows(1.0))
    s = make_sampler("bilingual", ds, 32, seed=0, alpha=1.0)
    ix = s.index
    for p in groups(s, 20):
        assert p.kind == "bilingual" and p.qlang != p.plang and (ix.row_qlang[p.rows] == ix.row_plang[p.rows]).all()


def test_bad_input_is_a_usage_error(xq_ds):
    with pytest.raises(UsageError, match=r"alpha must be in \[0, 1\]"):
        HybridSampler(xq_ds, 32, alpha=1.5)
    with pytest.raises(UsageError, match="unknown sampler"):
        make_sampler("nope", xq_ds, 32)
    with pytest.raises(UsageError, match="lower --batch-size"):
        HybridSampler(xq_ds, 5000)
    with pytest.raises(UsageError, match="missing 'id'"):
        HybridSampler(xq_ds.remove_columns("id"), 8)
    with pytest.raises(UsageError, match="repeats"):
        XXSampler(Dataset.from_dict({"anchor": ["a", "b"], "positive": ["c", "d"], "id": ["1", "1"],
                                     "query_lang": ["en", "en"], "passage_lang": ["en", "en"]}), 1)
    en_only = pair_dataset(PairSet("en", {f"q{i}": {"en": TrainItem(f"q {i}", f"a {i}")} for i in range(50)}))
    with pytest.raises(UsageError, match="at least two languages"):
        XYSampler(en_only, 8)
    with pytest.raises(UsageError, match="at least two languages"):
        HybridSampler(en_only, 8, alpha=0.5)
    HybridSampler(en_only, 8, alpha=1.0)  # all X-X: one language is enough
    de_only = pair_dataset(PairSet("de", {f"q{i}": {"de": TrainItem(f"q {i}", f"a {i}")} for i in range(50)}))
    with pytest.raises(UsageError, match="needs English"):
        make_sampler("en", de_only, 8)


def test_the_collator_keeps_metadata_away_from_the_loss(tiny_model, xq_ds):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    feats = [xq_ds[i] for i in range(4)]
    batch = PairCollator(preprocess_fn=model.preprocess)(feats)
    assert {k.rsplit("_input_ids", 1)[0] for k in batch if k.endswith("_input_ids")} == {"anchor", "positive",
                                                                                        "negative"}
    kept = PairCollator(preprocess_fn=model.preprocess, keep_metadata=True)(feats)
    assert kept["_meta"]["id"] == [f["id"] for f in feats]


def test_plugs_into_the_plain_sentence_transformers_trainer(tiny_model, xq_pairs, tmp_path):
    """The issue's check: a `.shuffle()`d user Dataset and an eval_dataset with `functools.partial(HybridSampler,
    alpha=0.5)` in the plain SentenceTransformerTrainer: it trains, and evaluates on its own sampler's batches."""
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    import hybridbatch

    ids = sorted(xq_pairs.items)
    train = PairSet("t", {q: xq_pairs.items[q] for q in ids[:-60]})
    held = PairSet("v", {q: xq_pairs.items[q] for q in ids[-60:]})
    train_ds = pair_dataset(train, hard_negatives=True).shuffle(seed=1)
    eval_ds = pair_dataset(held, hard_negatives=True).select(range(0, 60 * 121, 2))
    model = SentenceTransformer(str(tiny_model), device="cpu")
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "ckpt"), per_device_train_batch_size=16, per_device_eval_batch_size=8,
        report_to="none", use_cpu=True, batch_sampler=functools.partial(hybridbatch.HybridSampler, alpha=0.5), seed=5,
        max_steps=2, eval_strategy="steps", eval_steps=2, save_strategy="no",
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                                         loss=MultipleNegativesRankingLoss(model),
                                         data_collator=PairCollator(preprocess_fn=model.preprocess))
    loader = trainer.get_train_dataloader()
    sampler = loader.batch_sampler
    assert isinstance(sampler, HybridSampler) and sampler.alpha == 0.5 and sampler.seed == 5
    batch = next(iter(loader))
    assert batch["anchor_input_ids"].shape[0] == 16 and "negative_input_ids" in batch and "id_input_ids" not in batch
    trainer.train()
    assert trainer.state.global_step == 2
    assert any("eval_loss" in h for h in trainer.state.log_history)
    assert isinstance(trainer.get_eval_dataloader().batch_sampler, HybridSampler)


def test_a_dataset_dict_in_the_trainer_keeps_one_source_per_step():
    """sentence-transformers turns a DatasetDict into one sampler per source plus a multi-dataset sampler; ours
    decides the source once per group of world_size batches, so both ranks train on one source at a step."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import ConcatDataset

    from hybridbatch.sampling import ProportionalGroupSampler

    parts = {"big": pair_dataset(partial_pairs("big", 60)), "small": pair_dataset(partial_pairs("small", 30))}
    subs = [HybridSampler(d, 3, seed=1, world_size=2) for d in parts.values()]
    multi = ProportionalGroupSampler(ConcatDataset(list(parts.values())), batch_samplers=subs, seed=1)
    assert len(multi) == sum(len(s) for s in subs)
    offset = len(parts["big"])
    shards = [list(BatchSamplerShard(multi, num_processes=2, process_index=r, split_batches=False,
                                     even_batches=False)) for r in range(2)]
    sources = Counter()
    for b0, b1 in zip(*shards, strict=True):
        s0, s1 = {r >= offset for r in b0}, {r >= offset for r in b1}
        assert len(s0) == 1 and s0 == s1
        sources[s0.pop()] += 1
    assert sources[False] == len(subs[0]) // 2 and sources[True] == len(subs[1]) // 2


def test_jsonl_pairs_carry_their_group(tmp_path):
    """A user's JSONL pairs may name the answer group; ids sharing it never meet in a batch group."""
    from hybridbatch.data.pairs import read_pairs_jsonl

    lines = [json.dumps({"id": f"q{i}", "lang": lang, "query": f"{lang} q{i}", "positive": f"{lang} a{i}",
                         "group": f"g{i // 2}"}) for i in range(12) for lang in ("en", "de")]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    ps = read_pairs_jsonl(tmp_path / "p.jsonl")
    assert ps.items["q3"]["de"].group == "g1"
    s = HybridSampler(pair_dataset(ps), 3, seed=0, world_size=2)
    for p in groups(s, 50):
        g = s.index.keys[p.rows, 1].tolist()
        assert len(set(g)) == 6
