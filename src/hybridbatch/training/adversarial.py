"""Language-adversarial training: a language classifier on the pooled embedding behind a gradient-reversal layer.

    loss = base_loss + weight * CE( classifier( GRL_reversal(e) ), language(e) )

over the embeddings e of the batch's columns (anchor: query language, positive and negative: passage language by
default). GRL (Ganin & Lempitsky 2015, arXiv 1409.7495) is the identity forward and multiplies the gradient by
-reversal backward: the classifier descends the cross-entropy (it learns to tell the language) while the encoder
ascends it (it learns embeddings the classifier cannot tell apart), in one backward pass. `weight` scales both;
`reversal` only the encoder's side.

The classifier is a submodule of the *loss*, not of the model: `SentenceTransformerTrainer` puts loss parameters in
the optimizer (as for SoftmaxLoss), and `model.save(...)` writes a plain sentence-transformers folder without it.
Checkpoints hold the model only: a resumed run starts a fresh classifier (and memory) unless the trainer saves
`head_state_dict()` beside the checkpoint and restores it with `load_head_state_dict`.

In eval mode (the model not training, e.g. the trainer's validation loss) only the base loss is returned, so that
loss-based model selection compares the same quantity across methods.

Why `memory`: the samplers' batches hold one language (X-X) or two (X-Y), so a classifier trained on the latest batch
alone learns that batch's language as a prior and forgets the rest; at the next batch, in another language, it is
worse than chance (measured: results/adv-classifier.json). With `memory` > 0 the classifier descends its
cross-entropy over the batch and the last `memory` embeddings of earlier batches together (those detached: no
gradient reaches the encoder from them), so it is trained on every language at every step, while the encoder's
gradient stays the memory-less one: the reversal pushes the current batch away from a classifier that knows every
language. The memory goes into `head_state_dict` beside the classifier, so a resumed run continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from sentence_transformers.base.losses.merged_forward import embed_columns
from torch import Tensor, nn

from hybridbatch.sampling.translations import PASSAGE_LANG_LABEL, QUERY_LANG_LABEL


MEMORY_KEYS = ("memory.embeddings", "memory.languages")  # the memory's entries in `head_state_dict`


class GradientReversal(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by -coeff."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, coeff: float) -> Tensor:
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.coeff * grad, None


def reverse_gradient(x: Tensor, coeff: float = 1.0) -> Tensor:
    """x in the forward pass, -coeff * gradient in the backward pass."""
    return GradientReversal.apply(x, coeff)


def _scores(name: str, logits: Tensor, y: Tensor) -> dict[str, float]:
    """`<name>_ce` and `<name>_acc` of a classification, for the training log."""
    with torch.no_grad():
        return {f"{name}_ce": float(F.cross_entropy(logits, y)),
                f"{name}_acc": float((logits.argmax(dim=1) == y).float().mean())}


def language_classifier(dim: int, n_languages: int, hidden: int = 256, dropout: float = 0.1) -> nn.Module:
    """A small classifier: linear when `hidden` is 0, else one ReLU hidden layer (dropout on its input)."""
    if hidden <= 0:
        return nn.Linear(dim, n_languages)
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, n_languages))


class LanguageAdversarialLoss(nn.Module):
    """Wraps any sentence-transformers loss: `base` + `weight` x the gradient-reversed language cross-entropy.

    `languages`: the vocabulary of `with_row_labels` (or its size); `label_columns[c]`: the column of `labels` that
    holds the language of embedding column c (default: anchor -> query language, positive and negative -> passage
    language; pass (1, 2, 1) for hard negatives in the query's language). Columns past its length are not
    classified. The labels go to the base loss unchanged (MultipleNegativesRankingLoss ignores them,
    MultiPositiveRankingLoss reads the group column). A base loss with `compute_loss_from_embeddings` shares one
    forward pass; any other is called as is and the columns are embedded a second time for the classifier."""

    def __init__(self, model: Any, loss: nn.Module, languages: Sequence[str] | int, weight: float = 0.1,
                 reversal: float = 1.0, hidden: int = 256, dropout: float = 0.1, memory: int = 0,
                 label_columns: tuple[int, ...] = (QUERY_LANG_LABEL, PASSAGE_LANG_LABEL, PASSAGE_LANG_LABEL)) -> None:
        super().__init__()
        if weight < 0 or reversal < 0 or memory < 0:
            raise ValueError(f"weight, reversal and memory must be non-negative, got {weight}, {reversal}, {memory}")
        self.languages = list(languages) if not isinstance(languages, int) else [str(i) for i in range(languages)]
        if len(self.languages) < 2:
            raise ValueError(f"a language classifier needs at least 2 languages, got {self.languages}")
        self.model = model
        self.loss = loss
        self.weight, self.reversal = float(weight), float(reversal)
        self.hidden, self.dropout = int(hidden), float(dropout)
        self.label_columns = tuple(int(c) for c in label_columns)
        self.classifier = language_classifier(model.get_embedding_dimension(), len(self.languages), self.hidden,
                                              self.dropout)
        self.memory = int(memory)
        self._memory: tuple[Tensor, Tensor] | None = None  # (embeddings, languages) of earlier batches, detached
        self.last: dict[str, float] = {}  # the latest training batch: language cross-entropy and accuracy

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        features = list(sentence_features)
        if labels is None or labels.dim() != 2:
            raise ValueError("LanguageAdversarialLoss needs (batch, 3) labels with each row's languages: add the "
                             "label column with hybridbatch.sampling.translations.with_row_labels(dataset)")
        if hasattr(self.loss, "compute_loss_from_embeddings"):
            embeddings = embed_columns(self.model, features)
            base = self.loss.compute_loss_from_embeddings(embeddings, labels)
            if not self.model.training:
                return base
        else:
            base = self.loss(features, labels)
            if not self.model.training:
                return base
            embeddings = embed_columns(self.model, features)
        return base + self.adversarial_term(embeddings, labels)

    def adversarial_term(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """weight x the cross-entropy of the classifier on the gradient-reversed embeddings of the classified
        columns (its gradient reaches the encoder with the opposite sign, scaled by `reversal`)."""
        cols = list(zip(embeddings, self.label_columns, strict=False))
        x = torch.cat([e for e, _ in cols])
        y = torch.cat([labels[:, c] for _, c in cols]).to(x.device).long()
        # every row, batch and memory, weighs the same in the classifier's cross-entropy (so the latest batch's
        # languages do not dominate); the reversal is scaled by (batch + memory) / batch so that the encoder's
        # gradient is exactly the memory-less one. Without a memory this is the plain term.
        mem_x, mem_y = self._memory if self.memory and self._memory is not None else (x[:0].detach(), y[:0])
        n = len(x)
        logits = self.classifier(torch.cat([reverse_gradient(x, self.reversal * ((n + len(mem_x)) / n)), mem_x]))
        ce = F.cross_entropy(logits, torch.cat([y, mem_y]))
        self.last = _scores("language", logits[:n], y)
        if len(mem_x):
            self.last.update(_scores("memory", logits[n:], mem_y))
        if self.memory:
            self._remember(x.detach(), y)
        return self.weight * ce

    def _remember(self, x: Tensor, y: Tensor) -> None:
        """Keep the last `memory` embeddings and their languages (oldest dropped first)."""
        if self._memory is not None:
            x, y = torch.cat([self._memory[0], x]), torch.cat([self._memory[1], y])
        self._memory = (x[-self.memory:], y[-self.memory:])

    def head_state_dict(self) -> dict[str, Tensor]:
        """The classifier's weights and the memory (what a checkpoint needs beyond the model to resume exactly)."""
        state = dict(self.classifier.state_dict())
        if self._memory is not None:
            state[MEMORY_KEYS[0]], state[MEMORY_KEYS[1]] = self._memory
        return state

    def load_head_state_dict(self, state: dict[str, Tensor]) -> None:
        state = dict(state)
        memory = [state.pop(k, None) for k in MEMORY_KEYS]
        self.classifier.load_state_dict(state)
        device = next(self.classifier.parameters()).device
        self._memory = None if memory[0] is None else (memory[0].to(device), memory[1].to(device))

    def get_config_dict(self) -> dict[str, Any]:
        base = self.loss.get_config_dict() if hasattr(self.loss, "get_config_dict") else {}
        return {"loss": type(self.loss).__name__, "loss_config": base, "languages": self.languages,
                "weight": self.weight, "reversal": self.reversal, "hidden": self.hidden, "dropout": self.dropout,
                "memory": self.memory, "label_columns": self.label_columns}

    @property
    def citation(self) -> str:
        return """
@inproceedings{ganin2015unsupervised,
    title={Unsupervised Domain Adaptation by Backpropagation},
    author={Ganin, Yaroslav and Lempitsky, Victor},
    booktitle={Proceedings of the 32nd International Conference on Machine Learning},
    year={2015},
    eprint={1409.7495},
    archivePrefix={arXiv},
}
"""
