"""ConsistencyRankingLoss: the divergence between the score distributions of a question's translations by hand
(Jensen-Shannon and symmetric KL, query and passage sides), zero exactly when the translations' score rows are equal,
a gradient through a real model, the settings and flags, and a short real training run whose folder stays a plain
sentence-transformers model."""

from __future__ import annotations

import json
import math

import pytest
import torch
from sentence_transformers.util import dot_score

from hybridbatch.errors import UsageError
from hybridbatch.training.config import TrainConfig
from hybridbatch.training.consistency_loss import ConsistencyRankingLoss, pair_divergence
from hybridbatch.training.losses import loss_record, make_loss
from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss

PARALLEL = {"sampler": "translations", "queries": "parallel", "loss": "consistency"}


def softmax(v: list[float]) -> list[float]:
    z = sum(math.exp(x) for x in v)
    return [math.exp(x) / z for x in v]


def kl(p: list[float], r: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, r))


def js(p: list[float], r: list[float]) -> float:
    m = [(a + b) / 2 for a, b in zip(p, r)]
    return (kl(p, m) + kl(r, m)) / 2


def embeddings(scores: list[list[float]]) -> list[torch.Tensor]:
    """Queries = unit vectors, passage j = column j: q_i . d_j = scores[i][j]."""
    return [torch.eye(len(scores)), torch.tensor(scores).T.contiguous()]


def loss_of(**kw) -> ConsistencyRankingLoss:
    return ConsistencyRankingLoss(None, scale=1.0, similarity_fct=dot_score, temperature=1.0, **kw)


def test_divergences_by_hand():
    a, b = [2.0, 0.0, 1.0], [0.0, 1.0, 1.0]
    log_p = torch.log_softmax(torch.tensor([a, b, [5.0, 0.0, 0.0]]), dim=1)
    groups = torch.tensor([7, 7, 3])  # rows 0 and 1 are translations; row 2 has no partner
    pa, pb = softmax(a), softmax(b)
    assert pair_divergence(log_p, groups, "js").item() == pytest.approx(js(pa, pb), rel=1e-5)
    assert pair_divergence(log_p, groups, "kl").item() == pytest.approx((kl(pa, pb) + kl(pb, pa)) / 2, rel=1e-5)
    # three rows of one group: the mean over its three pairs
    three = torch.log_softmax(torch.tensor([a, b, [0.0, 0.0, 3.0]]), dim=1)
    pc = softmax([0.0, 0.0, 3.0])
    assert pair_divergence(three, torch.tensor([1, 1, 1]), "js").item() == pytest.approx(
        (js(pa, pb) + js(pa, pc) + js(pb, pc)) / 3, rel=1e-5)
    assert pair_divergence(log_p, torch.tensor([0, 1, 2]), "js").item() == 0.0  # no pair: no term


def test_zero_when_the_translations_rank_alike_positive_otherwise():
    labels = torch.tensor([0, 0, 1])
    same = [[2.0, 1.0, 0.0], [2.0, 1.0, 0.0], [1.0, 0.0, 3.0]]  # rows 0 and 1: identical score rows
    base = MultiPositiveRankingLoss(None, scale=1.0, similarity_fct=dot_score)
    for div in ("js", "kl"):
        loss = loss_of(weight=2.0, divergence=div)
        assert loss.compute_loss_from_embeddings(embeddings(same), labels).item() == pytest.approx(
            base.compute_loss_from_embeddings(embeddings(same), labels).item(), abs=1e-6)
    differ = [[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 3.0]]
    got = loss_of(weight=2.0).compute_loss_from_embeddings(embeddings(differ), labels).item()
    want = base.compute_loss_from_embeddings(embeddings(differ), labels).item() + 2.0 * js(
        softmax(differ[0]), softmax(differ[1]))
    assert got == pytest.approx(want, rel=1e-5) and got > base.compute_loss_from_embeddings(
        embeddings(differ), labels).item()
    # the temperature divides the scores before the softmax
    t = ConsistencyRankingLoss(None, scale=1.0, similarity_fct=dot_score, temperature=0.5, weight=1.0)
    c = t.consistency(*embeddings(differ)[:1], embeddings(differ)[1:], labels).item()
    assert c == pytest.approx(js(softmax([2 * x for x in differ[0]]), softmax([2 * x for x in differ[1]])), rel=1e-5)


def test_passage_side_by_hand():
    # passages 0 and 1 (one answer group) against the queries: columns 0 and 1 of the score matrix
    s = [[2.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 2.0, 3.0]]
    labels = torch.tensor([0, 0, 1])
    loss = loss_of(weight=1.0, sides=("passage",))
    col = [[row[j] for row in s] for j in range(3)]
    assert loss.consistency(*embeddings(s)[:1], embeddings(s)[1:], labels).item() == pytest.approx(
        js(softmax(col[0]), softmax(col[1])), rel=1e-5)
    both = loss_of(weight=1.0, sides=("query", "passage"))
    assert both.consistency(*embeddings(s)[:1], embeddings(s)[1:], labels).item() == pytest.approx(
        (js(softmax(s[0]), softmax(s[1])) + js(softmax(col[0]), softmax(col[1]))) / 2, rel=1e-5)


def test_gradient_flows_through_a_model(tiny_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    loss = ConsistencyRankingLoss(model, weight=1.0)
    # rows 0 and 1 are translations of one question (parallel queries), row 2 another question
    texts = (["query: where is the cat", "query: wo ist die Katze", "query: a dog barks"],
             ["passage: the cat is here", "passage: die Katze ist hier", "passage: the dog barks"])
    features = [model.preprocess(list(t)) for t in texts]
    labels = torch.tensor([[0, 0, 0], [0, 1, 1], [1, 0, 0]])
    emb = [model(f)["sentence_embedding"] for f in features]
    term = loss.consistency(emb[0], emb[1:], labels[:, 0])
    term.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert term.item() > 0 and any(g is not None and g.abs().sum() > 0 for g in grads)
    assert loss.get_config_dict() | {} == {
        "scale": 20.0, "similarity_fct": "cos_sim", "form": "mean", "directions": ("query_to_doc",),
        "gather_across_devices": False, "label_index": 0, "weight": 1.0, "consistency_temperature": 0.05,
        "divergence": "js", "sides": ("query",)}
    assert "2604.05684" in loss.citation and "2509.06195" in loss.citation
    for bad, msg in (({"weight": -1.0}, "weight"), ({"temperature": 0.0}, "temperature"),
                     ({"divergence": "tv"}, "divergence"), ({"sides": ("both",)}, "sides")):
        with pytest.raises(ValueError, match=msg):
            ConsistencyRankingLoss(model, **bad)


@pytest.mark.parametrize("kw,msg", [
    ({"loss": "consistency"}, "loss 'consistency' needs batches holding translations of one answer"),
    ({**PARALLEL, "consistency_weight": -0.5}, "consistency weight must be >= 0 and finite, got -0.5"),
    ({**PARALLEL, "consistency_temperature": 0.0}, "consistency temperature must be positive and finite"),
    ({**PARALLEL, "consistency_divergence": "tv"}, "consistency divergence must be 'js' or 'kl', got 'tv'"),
    ({**PARALLEL, "consistency_sides": "all"}, "consistency sides must be 'query', 'passage' or 'both'"),
])
def test_bad_settings_are_refused(kw, msg):
    with pytest.raises(UsageError, match=msg):
        TrainConfig(**kw).validate()


def test_make_loss_and_its_record(tiny_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    cfg = TrainConfig(**PARALLEL, consistency_weight=0.3, consistency_temperature=0.1, consistency_divergence="kl",
                      consistency_sides="both")
    cfg.validate()
    assert cfg.row_labels
    loss = make_loss(model, cfg)
    assert isinstance(loss, ConsistencyRankingLoss) and loss.sides == ("query", "passage")
    rec = json.loads(json.dumps(loss_record(loss, cfg)))
    assert rec["type"] == "ConsistencyRankingLoss" and rec["config"]["weight"] == 0.3
    assert rec["config"]["consistency_temperature"] == 0.1 and rec["config"]["divergence"] == "kl"


@pytest.mark.slow
def test_short_real_training_run(main_cli, embedded_model, shared_data, tmp_path):
    """The embedded multilingual model, parallel translation batches, the consistency loss through the CLI flags:
    train.json records it, the folder loads as a plain sentence-transformers model with the base model's tensors."""
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "run"
    code, err = main_cli("train", "--model", str(embedded_model), "--data", str(shared_data / "xquad-r"),
                         "--out", str(out), "--batch-size", "8", "--max-steps", "2", "--eval-steps", "2",
                         "--eval-batches", "1", "--select", "loss", "--seed", "1", "--sampler", "translations",
                         "--queries", "parallel", "--k", "2", "--alpha", "0", "--loss", "consistency",
                         "--consistency-weight", "0.5", "--consistency-sides", "both", "--max-seq-length", "32",
                         "--no-progress")
    assert code == 0, err
    j = json.loads((out / "train.json").read_text())
    assert j["steps"] == 2 and j["settings"]["loss"] == "consistency"
    assert j["loss"]["type"] == "ConsistencyRankingLoss" and j["loss"]["config"]["weight"] == 0.5
    assert all(math.isfinite(e["loss"]) for e in j["loss_curve"]["train"])
    model = SentenceTransformer(str(out), device="cpu")
    assert set(model.state_dict()) == set(SentenceTransformer(str(embedded_model), device="cpu").state_dict())
    assert model.encode(["query: hello"]).shape == (1, 384)
