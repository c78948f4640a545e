"""Ranking consistency: the translations of one question should rank the batch's candidates alike.

The rank distance is made by the worst-ranked copy of an answer, and a loss that only pulls each query towards its
positives (InfoNCE, the multi-positive form) leaves each language's query free to order the *other* copies as it
likes. Here rows that are translations of one question (one answer group, as the translations sampler places k of
them per slot; `labels[:, GROUP_LABEL]`) must also agree on their whole score distribution over the batch's
candidates. For query row i with candidates d_1..d_n (the batch's passages, then any hard negatives) and temperature
T:

    p_i = softmax_j( sim(q_i, d_j) / T )
    D(p, r) = JS(p, r) = KL(p || m)/2 + KL(r || m)/2,  m = (p + r)/2         (divergence="js", bounded by log 2)
           or (KL(p || r) + KL(r || p)) / 2                                  (divergence="kl", symmetric KL)
    C = mean over pairs {i, j}, i != j, group(i) = group(j), of D(p_i, p_j)   (0 when a batch has no such pair)
    loss = multi-positive InfoNCE (training/multi_positive_loss.py) + weight * C

With `sides=("query", "passage")` the same term is added for the passages: the k passages of one group (the k
translations of its answer) should rank the batch's queries alike (p_j = softmax_i(sim(q_i, d_j) / T)), the passage
-> query direction, averaged with the query term. The query term is 0 when the k rows of a slot share their query
(queries="one": the same text), so it acts with queries="parallel", where the queries are translations; the passage
term acts with either.

Following: Hong et al. 2026 (arXiv 2604.05684, "Improving Semantic Proximity in Information Retrieval through
Cross-Lingual Alignment"): Jensen-Shannon divergence between the distributions of parallel inputs added to InfoNCE;
and LaKDA (arXiv 2509.06195): a KL divergence between the rankings of parallel queries. We read only their abstracts
and summaries: the formulas above (which distributions, the symmetric KL, the pairing within a batch) are ours.
The term is a function of the embeddings only, so the saved model is a plain sentence-transformers folder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from hybridbatch.training.multi_positive_loss import MultiPositiveRankingLoss, group_ids

DIVERGENCES = ("js", "kl")
SIDES = ("query", "passage")


def pair_divergence(log_p: Tensor, groups: Tensor, divergence: str = "js") -> Tensor:
    """Mean divergence (the module docstring's D) over the unordered pairs of rows of `log_p` (rows x candidates,
    log-probabilities) with equal `groups`; 0 (with a gradient path) when no two rows share a group."""
    same = groups[:, None] == groups[None, :]
    pairs = torch.triu(same, diagonal=1).nonzero(as_tuple=True)
    if len(pairs[0]) == 0:
        return log_p.sum() * 0.0
    a, b = log_p[pairs[0]], log_p[pairs[1]]
    pa, pb = a.exp(), b.exp()
    if divergence == "kl":
        return ((pa * (a - b)).sum(dim=1) + (pb * (b - a)).sum(dim=1)).mean() / 2
    log_m = torch.logsumexp(torch.stack([a, b]), dim=0) - torch.log(torch.tensor(2.0, device=a.device))
    return ((pa * (a - log_m)).sum(dim=1) + (pb * (b - log_m)).sum(dim=1)).mean() / 2


class ConsistencyRankingLoss(MultiPositiveRankingLoss):
    """Multi-positive InfoNCE + `weight` x the ranking-consistency term C of the module docstring, for
    (anchor, positive[, negative ...]) columns with answer-group labels. `temperature` is C's (the InfoNCE keeps
    `scale`); `divergence` 'js' or 'kl' (symmetric); `sides` 'query' and / or 'passage'."""

    def __init__(self, model: Any, scale: float = 20.0, weight: float = 1.0, temperature: float = 0.05,
                 divergence: str = "js", sides: tuple[str, ...] = ("query",), **kwargs: Any) -> None:
        super().__init__(model, scale=scale, **kwargs)
        if not weight >= 0:
            raise ValueError(f"weight must be >= 0, got {weight}")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence must be one of {DIVERGENCES}, got {divergence!r}")
        if not sides or not set(sides) <= set(SIDES):
            raise ValueError(f"sides must be among {SIDES}, got {sides}")
        self.weight = float(weight)
        self.consistency_temperature = float(temperature)
        self.divergence = divergence
        self.sides = tuple(sides)

    def consistency(self, queries: Tensor, docs: list[Tensor], groups: Tensor) -> Tensor:
        """C of the module docstring for this process's rows (their queries against their batch's candidates)."""
        scores = self.similarity_fct(queries, torch.cat(docs, dim=0)) / self.consistency_temperature
        terms = []
        if "query" in self.sides:
            terms.append(pair_divergence(torch.log_softmax(scores, dim=1), groups, self.divergence))
        if "passage" in self.sides:  # positives' columns only: the hard negatives have no group of their own
            back = scores[:, : queries.size(0)].T
            terms.append(pair_divergence(torch.log_softmax(back, dim=1), groups, self.divergence))
        return torch.stack(terms).mean()

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        loss = super().compute_loss_from_embeddings(embeddings, labels)
        if self.weight == 0:
            return loss
        groups = group_ids(labels, self.label_index).to(embeddings[0].device)
        return loss + self.weight * self.consistency(embeddings[0], list(embeddings[1:]), groups)

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "weight": self.weight,
                "consistency_temperature": self.consistency_temperature, "divergence": self.divergence,
                "sides": self.sides}

    @property
    def citation(self) -> str:
        return """
@article{hong2026semantic,
    title={Improving Semantic Proximity in Information Retrieval through Cross-Lingual Alignment},
    author={Hong, Seongtae and Jang, Youngjoon and Lee, Jungseob and Moon, Hyeonseok and Lim, Heuiseok},
    journal={arXiv preprint arXiv:2604.05684},
    year={2026},
}
@article{lakda2025,
    title={LaKDA},
    journal={arXiv preprint arXiv:2509.06195},
    year={2025},
    note={KL divergence between the rankings of parallel queries; cited by its arXiv identifier, not read},
}
""" + super().citation
