"""The multi-source training set (sampling/sources.py) on the real disjoint sources: XLingHealth (passages), MKQA
question <-> question and Tatoeba bitext (alignment pairs), and a MIRACL-style monolingual source: per-source batch
shares within binomial tolerance of the weights, one source per batch (group), and no source ever given a kind it
cannot make."""

from __future__ import annotations

import functools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datasets import DatasetDict
from torch.utils.data import ConcatDataset

from hybridbatch.data.lookup import load_pairs
from hybridbatch.data.records import PairSet, TrainItem
from hybridbatch.errors import UsageError
from hybridbatch.sampling.dataset import pair_dataset
from hybridbatch.sampling.index import batch_info
from hybridbatch.sampling.samplers import XYSampler
from hybridbatch.sampling.sources import MultiSourceSampler, WeightedGroupSampler, source_pairings
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.trainer import sampler_factory


def only(ps: PairSet, langs: set[str]) -> PairSet:
    """`ps` in `langs` only (ids left with one language or none dropped), to keep the datasets small."""
    items = {q: {lang: it for lang, it in by.items() if lang in langs} for q, by in ps.items.items()}
    return PairSet(ps.name, {q: by for q, by in items.items() if len(by) >= 2}, ps.checksum)


@pytest.fixture(scope="module")
def sets(shared_data: Path) -> list[PairSet]:
    return [load_pairs("xlinghealth", shared_data), only(load_pairs("mkqa", shared_data), {"en", "es", "zh", "ar"}),
            only(load_pairs("tatoeba-laser", shared_data), {"en", "de", "es", "zh"})]


@pytest.fixture(scope="module")
def ds(sets):
    return pair_dataset(sets, "query: ", "passage: ", hard_negatives=True)


def test_pairings_are_read_off_the_rows(ds) -> None:
    sampler = MultiSourceSampler(ds, 8, seed=0, weights=[1, 1, 1], world_size=1)
    assert source_pairings(ds, sampler.index) == {"xlinghealth": "passages", "mkqa": "alignment",
                                                  "tatoeba-laser": "alignment"}
    assert {x.name: [k.name for k in x.sampler.kinds] for x in sampler.sources} == {
        "xlinghealth": ["xx", "xy"], "mkqa": ["xy"], "tatoeba-laser": ["xy"]}


def test_shares_follow_the_weights_and_each_batch_has_one_source(ds) -> None:
    n = 2400
    for weights in ([2, 1, 1], [1, 1, 6]):
        s = MultiSourceSampler(ds, 8, seed=5, sampler="hybrid", alpha=0.5, weights=weights, world_size=1,
                               num_batches=n)
        got = Counter(s.plan(g).source for g in range(n))
        for name, w in zip(("xlinghealth", "mkqa", "tatoeba-laser"), weights, strict=True):
            p = w / sum(weights)
            assert abs(got[name] - n * p) <= 4 * math.sqrt(n * p * (1 - p)), (weights, got)
        src = np.asarray(ds["source"])
        for g in range(0, n, 7):
            plan = s.plan(g)
            assert set(src[plan.rows]) == {plan.source}
            assert batch_info(s.index, plan.rows)["source"] == plan.source  # what the batch log records
    assert s.mix()["sources"] == dict(sorted(got.items()))


def test_a_source_without_passages_never_gets_a_kind_it_cannot_make(ds) -> None:
    s = MultiSourceSampler(ds, 8, seed=1, sampler="hybrid", alpha=0.5, world_size=1, num_batches=1200)
    ql, pl = np.asarray(ds["query_lang"]), np.asarray(ds["passage_lang"])
    kinds = Counter()
    for g in range(1200):
        plan = s.plan(g)
        kinds[(plan.source, plan.kind)] += 1
        if plan.source != "xlinghealth":
            assert plan.kind == "xy" and (ql[plan.rows] != pl[plan.rows]).all()
    assert set(kinds) == {("xlinghealth", "xx"), ("xlinghealth", "xy"), ("mkqa", "xy"),
                                     ("tatoeba-laser", "xy")}
    # default weights: in proportion to each source's (id, language) items
    items = {x.name: x.sampler.index.items(0) for x in s.sources}
    assert items == {"xlinghealth": 3740, "mkqa": 7032, "tatoeba-laser": 6000}
    assert np.allclose(s.shares, [items[x.name] / sum(items.values()) for x in s.sources])


def test_samplers_whose_kinds_a_source_cannot_make_drop_it(ds) -> None:
    s = MultiSourceSampler(ds, 8, seed=1, sampler="xx", world_size=1)
    assert [x.name for x in s.sources] == ["xlinghealth"]
    assert [(d["source"], d["pairing"]) for d in s.dropped_sources] == [("mkqa", "alignment"),
                                                                        ("tatoeba-laser", "alignment")]
    s = MultiSourceSampler(ds, 8, seed=1, sampler="xy", per_pair=True, world_size=1)
    assert {x.name: [k.name for k in x.sampler.kinds] for x in s.sources} == {
        "xlinghealth": ["xy-per-pair"], "mkqa": ["xy-per-pair"], "tatoeba-laser": ["xy-per-pair"]}
    assert isinstance(s.sources[1].sampler, XYSampler)
    with pytest.raises(UsageError, match="no source can make 'xx' batches"):
        MultiSourceSampler(ds, 8, sampler="xx", weights=[0, 1, 1], world_size=1)


def test_a_monolingual_source_gets_x_x_batches_only(sets) -> None:
    mono = PairSet("native", {f"n{i}": {lang: TrainItem(f"{lang} question {i}?", f"{lang} passage number {i}.")}
                              for i in range(40) for lang in [("sw", "fi")[i % 2]]})
    d = pair_dataset([sets[0], mono])
    s = MultiSourceSampler(d, 8, seed=2, sampler="hybrid", alpha=0.5, weights=[1, 1], world_size=1,
                           num_batches=300)
    assert {x.name: x.pairing for x in s.sources} == {"xlinghealth": "passages", "native": "monolingual"}
    native = [s.plan(g) for g in range(300) if s.plan(g).source == "native"]
    assert len(native) > 100 and {(p.kind, p.qlang == p.plang) for p in native} == {("xx", True)}


def test_more_than_eleven_languages(shared_data: Path) -> None:
    """MKQA has 12 languages (XQuAD-R 11): the index's (language, language) codes must not wrap around."""
    mkqa = load_pairs("mkqa", shared_data)
    small = PairSet("mkqa", dict(list(mkqa.items.items())[:40]), mkqa.checksum)
    d = pair_dataset([small, only(load_pairs("tatoeba-laser", shared_data), {"en", "de", "el", "ro", "th", "vi"})])
    s = MultiSourceSampler(d, 8, seed=0, weights=[1, 1], world_size=1, num_batches=50)
    assert len(s.index.languages) == 17
    plans = [s.plan(g) for g in range(50)]
    ql, pl = np.asarray(d["query_lang"]), np.asarray(d["passage_lang"])
    assert all(set(ql[p.rows]) == {p.qlang} and set(pl[p.rows]) == {p.plang} and p.qlang != p.plang for p in plans)


def test_world_size_groups_and_determinism(ds) -> None:
    a = MultiSourceSampler(ds, 4, seed=9, weights=[1, 1, 1], world_size=2, num_batches=200)
    b = MultiSourceSampler(ds, 4, seed=9, weights=[1, 1, 1], world_size=2, num_batches=200)
    batches = list(a)
    assert batches == list(b) and len(batches) == 200
    src = np.asarray(ds["source"])
    for i in range(0, 200, 2):  # the two ranks of one step train on one source
        assert len(set(src[batches[i]]) | set(src[batches[i + 1]])) == 1
    a.set_epoch(1)
    assert list(a) != batches


def test_weights_are_checked(ds) -> None:
    with pytest.raises(UsageError, match="2 weights for 3 sources"):
        MultiSourceSampler(ds, 8, weights=[1, 2], world_size=1)
    with pytest.raises(UsageError, match="weights name unknown sources"):
        MultiSourceSampler(ds, 8, weights={"mkqa": 1, "nope": 2}, world_size=1)
    with pytest.raises(UsageError, match="finite, >= 0 and not all 0"):
        MultiSourceSampler(ds, 8, weights=[1, -1, 1], world_size=1)


def test_train_config_names_sources_with_weights(ds) -> None:
    cfg = TrainConfig(data=["xlinghealth", "mkqa", "tatoeba-laser"], data_weights=[2.0, 1.0, 1.0])
    cfg.validate()
    s = sampler_factory(cfg, 1)(ds, batch_size=8, drop_last=True, seed=3)
    assert isinstance(s, MultiSourceSampler) and s.config()["base_sampler"] == "hybrid"
    assert [round(x["share"], 3) for x in s.config()["sources"]] == [0.5, 0.25, 0.25]
    with pytest.raises(UsageError, match="data weights must be one number >= 0 per data source"):
        TrainConfig(data=["xlinghealth", "mkqa"], data_weights=[1.0]).validate()


def test_weighted_group_sampler_for_a_dataset_dict(sets) -> None:
    dd = DatasetDict({"health": pair_dataset(sets[0]), "tatoeba": pair_dataset(sets[2])})
    subs = [XYSampler(d, 4, seed=0, world_size=2) for d in dd.values()]
    multi = WeightedGroupSampler(ConcatDataset(list(dd.values())), batch_samplers=subs, seed=4, weights=[3, 1])
    batches = list(multi)
    assert len(batches) == len(multi) == sum(len(s) for s in subs)
    first = len(dd["health"])
    is_health = [all(r < first for r in b) for b in batches]
    assert all(all(r < first for r in b) or all(r >= first for r in b) for b in batches)
    assert all(is_health[i] == is_health[i + 1] for i in range(0, len(batches), 2))
    n, p = len(batches) // 2, 0.75
    assert abs(sum(is_health[::2]) - n * p) <= 4 * math.sqrt(n * p * (1 - p))
    assert functools.partial(WeightedGroupSampler, weights=[3, 1])  # how a user passes it to the trainer


@pytest.mark.slow
def test_a_run_on_three_disjoint_sources_records_the_source_of_each_batch(tiny_model: Path, shared_data: Path,
                                                                           tmp_path: Path) -> None:
    """End to end (tiny model): `train` on XLingHealth + MKQA + Tatoeba with weights; every logged batch names one
    source, alignment sources only X-Y, and train.json holds the sources' shares and pairings."""
    import json

    from hybridbatch.training.trainer import train_model as train

    cfg = TrainConfig(model=str(tiny_model), data=["xlinghealth", "mkqa", "tatoeba-laser"], data_dir=str(shared_data),
                      data_weights=[2.0, 1.0, 1.0], out=str(tmp_path / "run"), batch_size=4, max_steps=12,
                      select="loss", eval_steps=6, eval_batches=1, progress=False, seed=1, max_seq_length=32)
    out = train(cfg)
    log = [json.loads(x) for x in (out / "batches.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(log) == 12 and {e["source"] for e in log} <= {"xlinghealth", "mkqa", "tatoeba-laser"}
    assert all(e["kind"] == "xy" for e in log if e["source"] != "xlinghealth")
    info = json.loads((out / "train.json").read_text(encoding="utf-8"))
    assert [(s["name"], s["pairing"], s["share"]) for s in info["sampler"]["sources"]] == [
        ("xlinghealth", "passages", 0.5), ("mkqa", "alignment", 0.25), ("tatoeba-laser", "alignment", 0.25)]
    assert sum(info["mix"]["sources"].values()) == 12
