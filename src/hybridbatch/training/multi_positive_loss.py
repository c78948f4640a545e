"""Multi-positive InfoNCE: every translation of a query's answer in the batch is a positive, not a false negative.

For query i with scaled scores s_ij = scale * sim(q_i, d_j) over the batch's passages (positives, then any hard
negatives) and P(i) = the passages of the batch whose answer group equals i's (its own positive and every
translation of it, from `labels[:, GROUP_LABEL]`; hard negatives are never positives):

    form="mean" (default; SupCon's L_out, Khosla et al. 2020, arXiv 2004.11362):
        loss_i = -(1/|P(i)|) sum_{p in P(i)} log( exp(s_ip) / sum_j exp(s_ij) )
    form="sum" (multi-positive InfoNCE / SupCon's L_in):
        loss_i = -log( sum_{p in P(i)} exp(s_ip) / sum_j exp(s_ij) )

and the loss is the mean over the batch's queries. With every group of one member both are
MultipleNegativesRankingLoss exactly.

Why "mean" is the default: "sum" is minimised as soon as the positives *together* take the softmax mass, so a model
may keep its own-language copy far above the translations (the language bias LAReQA's rank distance measures) at no
cost; "mean" pulls each positive's log-probability up on its own, and since the positives share one denominator its
optimum is all copies at one score (loss log |P(i)| once negatives vanish): every translation ranked above every
wrong answer, and next to each other. Khosla et al. also report L_out training better than L_in.

`directions=("query_to_doc", "doc_to_query")` adds the passage -> query term (the positives of passage j: the
queries of its group), each direction its own softmax, averaged, as MNRL's partition_mode="per_direction".
Labels come from the dataset's `label` column (sampling.translations.with_row_labels): the collator passes it on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.merged_forward import embed_columns
from sentence_transformers.util import all_gather, all_gather_with_grad, cos_sim, get_rank, similarity_fct_name
from torch import Tensor, nn

from hybridbatch.sampling.translations import GROUP_LABEL

FORMS = ("mean", "sum")
DIRECTIONS = ("query_to_doc", "doc_to_query")


def group_ids(labels: Tensor | None, index: int = GROUP_LABEL) -> Tensor:
    """The answer-group id of each row: `labels` itself when 1-D, else its column `index`."""
    if labels is None:
        raise ValueError("MultiPositiveRankingLoss needs each row's answer group as labels: add the label column with "
                         "hybridbatch.sampling.translations.with_row_labels(dataset) (the collator passes it on)")
    return labels if labels.dim() == 1 else labels[:, index]


def multi_positive_nll(scores: Tensor, positive: Tensor, form: str = "mean") -> Tensor:
    """Per-row loss from scaled scores (rows x candidates) and a boolean mask of each row's positives (every row
    has at least one): the formulas of the module docstring."""
    log_prob = scores - torch.logsumexp(scores, dim=1, keepdim=True)
    if form == "sum":
        return -torch.logsumexp(log_prob.masked_fill(~positive, float("-inf")), dim=1)
    return -(log_prob * positive).sum(dim=1) / positive.sum(dim=1)


class MultiPositiveRankingLoss(nn.Module):
    """A sentence-transformers loss for (anchor, positive[, negative ...]) columns with answer-group labels: the
    multi-positive InfoNCE of the module docstring. `scale` = 1 / temperature (20 = 0.05, as MNRL)."""

    def __init__(self, model: Any, scale: float = 20.0, similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
                 form: str = "mean", directions: tuple[str, ...] = ("query_to_doc",),
                 gather_across_devices: bool = False, label_index: int = GROUP_LABEL) -> None:
        super().__init__()
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if "query_to_doc" not in directions or not set(directions) <= set(DIRECTIONS):
            raise ValueError(f"directions must include 'query_to_doc' and be among {DIRECTIONS}, got {directions}")
        self.model = model
        self.scale = float(scale)
        self.similarity_fct = similarity_fct
        self.form = form
        self.directions = tuple(directions)
        self.gather_across_devices = bool(gather_across_devices)
        self.label_index = int(label_index)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        if len(embeddings) < 2:
            raise ValueError(f"expected at least 2 embedding columns (anchor, positive), got {len(embeddings)}")
        groups = group_ids(labels, self.label_index).to(embeddings[0].device)
        queries, docs = embeddings[0], embeddings[1:]
        batch = queries.size(0)
        offset = 0
        if self.gather_across_devices:  # as MNRL: this rank's queries against every rank's passages
            queries = all_gather_with_grad(queries)
            docs = [all_gather_with_grad(d) for d in docs]
            groups = all_gather(groups)
            offset = get_rank() * batch
        local = torch.arange(offset, offset + batch, device=queries.device)
        n = queries.size(0)
        same = groups[local][:, None] == groups[None, :]  # (batch, n): passages of the row's group
        positive = torch.cat([same, same.new_zeros(batch, n * (len(docs) - 1))], dim=1)
        scores = self.similarity_fct(queries[local], torch.cat(docs, dim=0)) * self.scale
        loss = multi_positive_nll(scores, positive, self.form).mean()
        if "doc_to_query" in self.directions:
            back = self.similarity_fct(docs[0][local], queries) * self.scale  # passage i against every query
            loss = (loss + multi_positive_nll(back, same, self.form).mean()) / 2
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "similarity_fct": similarity_fct_name(self.similarity_fct), "form": self.form,
                "directions": self.directions, "gather_across_devices": self.gather_across_devices,
                "label_index": self.label_index}

    @property
    def temperature(self) -> float:
        return 1.0 / self.scale

    @property
    def citation(self) -> str:
        return """
@inproceedings{khosla2020supervised,
    title={Supervised Contrastive Learning},
    author={Khosla, Prannay and Teterwak, Piotr and Wang, Chen and Sarna, Aaron and Tian, Yonglong and Isola, Phillip
            and Maschinot, Aaron and Liu, Ce and Krishnan, Dilip},
    booktitle={Advances in Neural Information Processing Systems},
    year={2020},
    eprint={2004.11362},
    archivePrefix={arXiv},
}
"""
