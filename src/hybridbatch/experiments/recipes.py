"""Grid recipes as data: each recipe name -> the `TrainConfig` settings it changes from plain InfoNCE. The cells read
this table (`recipe_settings`); nothing else switches on a recipe's name.

plain InfoNCE; symmetric (+ passage -> query); one hard negative in the passage's language (hardneg) or in the
query's own language (hardneg-q: the X-Y pairs meet a wrong answer in X, the comparison behind language bias).
The bias-targeted methods (issue 21): multipos, every translation of the answer in the batch a positive
(MultiPositiveRankingLoss; with the translations sampler, MULTIPOS_K translations per slot); adv, plain InfoNCE plus
a language classifier behind gradient reversal at ADVERSARIAL_WEIGHT (LanguageAdversarialLoss; any sampler), its
classifier on the encoder's learning rate; adv-head, the same with the classifier on ADVERSARIAL_HEAD_LR; adv-mem,
adv-head whose classifier also learns from the last ADVERSARIAL_MEMORY embeddings of earlier batches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from hybridbatch.errors import UsageError

MULTIPOS_K = 4  # XLingHealth has 4 languages: a slot holds every one of them
ADVERSARIAL_WEIGHT = 0.5  # one untuned value (the GRL term against InfoNCE at scale 20); see docs/RESULTS.md
# At the encoder's 3e-5 the classifier stays at chance for all 100 steps (results/adv-classifier.json): the adv cells
# trained against no adversary. On the base model's frozen embeddings a fresh head needs ~1e-2 to learn the language
# within 100 linearly decayed steps (examples/adv_head_probe.py -> results/adv-head-probe.json).
ADVERSARIAL_HEAD_LR = 1e-2
# In training the adv-head classifier still sat at chance: each batch holds one (X-X) or two (X-Y) languages, so it
# learned the latest batch's language and missed the next (results/adv-classifier.json). A memory of ~40 batches
# (96 embeddings each) holds every training language.
ADVERSARIAL_MEMORY = 4096

# What every recipe starts from: plain InfoNCE, one positive per pair, no adversary (TrainConfig field -> value).
PLAIN: Mapping[str, Any] = MappingProxyType({
    "loss": "infonce", "k": 2, "symmetric": False, "hard_negatives": False, "hard_negative_lang": "passage",
    "adversarial_weight": 0.0, "adversarial_lr": None, "adversarial_memory": 0,
})


@dataclass(frozen=True)
class Recipe:
    """The settings a recipe changes from `PLAIN`; `adversarial`: it trains against the language adversary, whose
    reversal weight is a grid axis (`Cell.adv_weight`, default ADVERSARIAL_WEIGHT); `help`: what `sweep --help`
    says of it."""

    changes: Mapping[str, Any] = field(default_factory=dict)
    adversarial: bool = False
    help: str = ""


RECIPES: dict[str, Recipe] = {
    "plain": Recipe(),
    "symmetric": Recipe({"symmetric": True}),
    "hardneg": Recipe({"hard_negatives": True}, help="one hard negative in the passage language"),
    "hardneg-q": Recipe({"hard_negatives": True, "hard_negative_lang": "query"}, help="in the query language"),
    "multipos": Recipe({"loss": "multi-positive", "k": MULTIPOS_K},
                       help="every translation of the answer in the batch is a positive; with --samplers translations"),
    "adv": Recipe(adversarial=True, help="plain + a language classifier behind gradient reversal"),
    "adv-head": Recipe({"adversarial_lr": ADVERSARIAL_HEAD_LR}, adversarial=True,
                       help=f"its classifier at lr {ADVERSARIAL_HEAD_LR:.0e}".replace("e-0", "e-")),
    "adv-mem": Recipe({"adversarial_lr": ADVERSARIAL_HEAD_LR, "adversarial_memory": ADVERSARIAL_MEMORY},
                      adversarial=True, help="adv-head + a memory of earlier batches"),
}


def recipe(name: str) -> Recipe:
    """The recipe of that name; an unknown one is a UsageError naming them all."""
    if name not in RECIPES:
        raise UsageError(f"unknown loss variant {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def recipes_help() -> str:
    """The recipes as `sweep --help` lists them: each name, with what it does where that is not the name."""
    return ", ".join(f"{name} ({r.help})" if r.help else name for name, r in RECIPES.items())


def recipe_settings(name: str, adv_weight: float | None = None) -> dict[str, Any]:
    """The `TrainConfig` settings of recipe `name` (every field a recipe may change, so none is left to a default
    elsewhere); `adv_weight` (None: ADVERSARIAL_WEIGHT) for the adversarial ones."""
    r = recipe(name)
    settings = {**PLAIN, **r.changes}
    if r.adversarial:
        settings["adversarial_weight"] = ADVERSARIAL_WEIGHT if adv_weight is None else adv_weight
    return settings
