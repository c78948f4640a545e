"""MultiPositiveRankingLoss: exact values on hand-computed score matrices (both forms, both directions, hard
negatives), equality with sentence-transformers' MultipleNegativesRankingLoss when every group has one member
(an independent implementation), and gradients that pull translations together instead of apart."""

from __future__ import annotations

import math

import pytest
import torch
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
from sentence_transformers.util import dot_score

from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss, multi_positive_nll


def lse(*v: float) -> float:
    return math.log(sum(math.exp(x) for x in v))


# q_i . d_j = S[i][j] with queries = the unit vectors and passage j = column j of S; rows 0 and 1 are one answer
S = [[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 3.0]]
GROUPS = torch.tensor([0, 0, 1])


def embeddings(scores: list[list[float]]) -> list[torch.Tensor]:
    q = torch.eye(len(scores))
    d = torch.tensor(scores).T.contiguous()
    return [q, d]


def plain(form: str = "mean", **kw) -> MultiPositiveRankingLoss:
    return MultiPositiveRankingLoss(None, scale=1.0, similarity_fct=dot_score, form=form, **kw)


def test_hand_computed_3x3_both_forms():
    # row 0: positives d0, d1 (its translation); row 1: the same; row 2: only d2
    z0, z1, z2 = lse(2, 1, 0), lse(0, 1, 0), lse(1, 0, 3)
    mean = (-((2 - z0) + (1 - z0)) / 2 - ((0 - z1) + (1 - z1)) / 2 - (3 - z2)) / 3
    summ = (-(lse(2, 1) - z0) - (lse(0, 1) - z1) - (3 - z2)) / 3
    assert mean == pytest.approx(0.7096322326442389, abs=1e-12)
    assert summ == pytest.approx(0.16745777429875708, abs=1e-12)
    assert plain("mean").compute_loss_from_embeddings(embeddings(S), GROUPS).item() == pytest.approx(mean, abs=1e-6)
    assert plain("sum").compute_loss_from_embeddings(embeddings(S), GROUPS).item() == pytest.approx(summ, abs=1e-6)


def test_hand_computed_symmetric_direction():
    # passage j against the queries: column j of S; its positives are the queries of its group
    y0, y1, y2 = lse(2, 0, 1), lse(1, 1, 0), lse(0, 0, 3)
    back = (-((2 - y0) + (0 - y0)) / 2 - ((1 - y1) + (1 - y1)) / 2 - (3 - y2)) / 3
    expected = (0.7096322326442389 + back) / 2
    assert expected == pytest.approx(0.7489034038093848, abs=1e-12)
    loss = plain(directions=("query_to_doc", "doc_to_query"))
    assert loss.compute_loss_from_embeddings(embeddings(S), GROUPS).item() == pytest.approx(expected, abs=1e-6)


def test_hand_computed_2x4_with_hard_negatives():
    # 2 queries of one answer group; columns: positive 0, positive 1, negative 0, negative 1 (never positives)
    H = [[1.5, 0.5, 1.0, 0.0], [0.5, 2.0, 0.0, 1.0]]
    z = [lse(*r) for r in H]
    mean = (-((1.5 - z[0]) + (0.5 - z[0])) / 2 - ((0.5 - z[1]) + (2.0 - z[1])) / 2) / 2
    summ = (-(lse(1.5, 0.5) - z[0]) - (lse(0.5, 2.0) - z[1])) / 2
    q = torch.eye(4)[:2]
    cols = torch.tensor(H).T  # passage j = column j of H, in the 4-d space of the queries' unit vectors
    emb = [q, torch.nn.functional.pad(cols[:2], (0, 2)), torch.nn.functional.pad(cols[2:], (0, 2))]
    groups = torch.tensor([[7, 0, 1], [7, 1, 0]])  # (batch, 3) labels: the group is column 0
    assert plain("mean").compute_loss_from_embeddings(emb, groups).item() == pytest.approx(mean, abs=1e-6)
    assert plain("sum").compute_loss_from_embeddings(emb, groups).item() == pytest.approx(summ, abs=1e-6)
    assert mean == pytest.approx(1.2916725308194508, abs=1e-12)


@pytest.mark.parametrize("form", ["mean", "sum"])
@pytest.mark.parametrize("negatives", [0, 1, 2])
def test_one_member_per_group_is_mnrl(form, negatives):
    torch.manual_seed(0)
    emb = [torch.nn.functional.normalize(torch.randn(6, 16), dim=1) for _ in range(2 + negatives)]
    groups = torch.tensor([5, 3, 9, 0, 1, 2])
    ours = MultiPositiveRankingLoss(None, scale=20.0, form=form).compute_loss_from_embeddings(emb, groups)
    ref = MultipleNegativesRankingLoss(None, scale=20.0).compute_loss_from_embeddings(emb, None)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    sym = MultiPositiveRankingLoss(None, scale=20.0, form=form, directions=("query_to_doc", "doc_to_query"))
    ref_sym = MultipleNegativesRankingLoss(None, scale=20.0, directions=("query_to_doc", "doc_to_query"),
                                           partition_mode="per_direction")
    assert sym.compute_loss_from_embeddings(emb, groups).item() == pytest.approx(
        ref_sym.compute_loss_from_embeddings(emb, None).item(), rel=1e-6)


def test_gradient_pulls_a_translation_up_where_mnrl_pushes_it_down():
    """The gradient on the score of query 0 and passage 1 (a translation of its answer, below its own-language
    copy): descent raises it under the multi-positive loss (d loss / d s_01 = scale (p_01 - 1/2) / batch < 0 in the
    mean form, p = row 0's softmax) and lowers it under MNRL (a false negative there: scale p_01 / batch > 0).
    Gradients reach every row."""
    groups = torch.tensor([0, 0, 1, 2])
    base = torch.tensor([[0.5, 0.1, 0.2, 0.0], [0.1, 0.6, 0.0, 0.2], [0.0, 0.3, 0.7, 0.1], [0.2, 0.0, 0.1, 0.4]])

    def grad_on_translation(loss_fn) -> float:
        scores = base.clone().requires_grad_(True)
        q, d = torch.eye(4), scores.T  # q_i . d_j = scores[i, j]
        loss_fn([q, d]).backward()
        assert scores.grad is not None and torch.isfinite(scores.grad).all()
        assert (scores.grad.abs().sum(dim=1) > 0).all()
        return scores.grad[0, 1].item()

    ours = MultiPositiveRankingLoss(None, scale=20.0, similarity_fct=dot_score)
    mnrl = MultipleNegativesRankingLoss(None, scale=20.0, similarity_fct=dot_score)
    p01 = torch.softmax(20.0 * base[0], dim=0)[1].item()
    assert grad_on_translation(lambda e: ours.compute_loss_from_embeddings(e, groups)) == pytest.approx(
        20.0 * (p01 - 0.5) / 4, rel=1e-5)
    assert grad_on_translation(lambda e: mnrl.compute_loss_from_embeddings(e, None)) == pytest.approx(
        20.0 * p01 / 4, rel=1e-5)
    assert p01 < 0.5


def test_mean_form_optimum_is_all_copies_at_one_score():
    """With negatives far below, "mean" still pays for an unequal pair of positives and "sum" does not."""
    positive = torch.tensor([[True, True, False]])
    equal, unequal = torch.tensor([[5.0, 5.0, -50.0]]), torch.tensor([[9.0, 1.0, -50.0]])
    assert multi_positive_nll(equal, positive, "mean").item() == pytest.approx(math.log(2), abs=1e-6)
    assert multi_positive_nll(unequal, positive, "mean").item() > 3.0
    assert multi_positive_nll(unequal, positive, "sum").item() == pytest.approx(0.0, abs=1e-6)


def test_forward_through_a_model_and_the_config(tiny_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    loss = MultiPositiveRankingLoss(model, scale=20.0)
    texts = (["query: a cat", "query: die Katze", "query: a dog"], ["passage: cat", "passage: Katze", "passage: dog"])
    features = [model.preprocess(list(t)) for t in texts]
    value = loss(features, torch.tensor([[0, 0, 0], [0, 1, 1], [1, 0, 0]]))
    value.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert value.item() > 0 and any(g is not None and g.abs().sum() > 0 for g in grads)
    assert loss.get_config_dict() == {"scale": 20.0, "similarity_fct": "cos_sim", "form": "mean",
                                      "directions": ("query_to_doc",), "gather_across_devices": False,
                                      "label_index": 0}
    with pytest.raises(ValueError, match="with_row_labels"):
        loss(features, None)
    with pytest.raises(ValueError, match="form"):
        MultiPositiveRankingLoss(model, form="max")
