"""What a grid is made of: its cells (sampler, alpha, loss, scale, seed) and the preset settings every cell shares.

Choices about samplers (which take alpha, which cell is another's run) are asked of the sampler registry
(`sampling.samplers`), never made here by name."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from hybridbatch.errors import UsageError
from hybridbatch.evaluation.runtimes import DEFAULT_ENCODER
from hybridbatch.experiments.recipes import ADVERSARIAL_WEIGHT, recipe
from hybridbatch.sampling.base import check_alpha
from hybridbatch.sampling.samplers import same_run, sampler_class, takes_alpha
from hybridbatch.device import check_device, check_precision

BASE = "base"  # the zero-shot cell: no training


@dataclass(frozen=True)
class Cell:
    """One point of a grid. `alpha` matters only for samplers that mix batch types (hybrid and our own)."""

    sampler: str
    alpha: float | None = None
    loss: str = "plain"
    scale: float = 20.0
    seed: int = 0
    adv_weight: float | None = None  # the adversary's reversal weight (adv losses); None is ADVERSARIAL_WEIGHT

    @property
    def key(self) -> str:
        if self.sampler == BASE:
            return BASE
        a = "" if self.alpha is None else f"-a{self.alpha:g}"
        s = "" if self.scale == 20.0 else f"-t{self.scale:g}"
        w = "" if self.adv_weight is None else f"-w{self.adv_weight:g}"
        return f"{self.sampler}{a}-{self.loss}{s}{w}-seed{self.seed}"

    @property
    def group(self) -> str:
        """The cell's name without the seed: what error bars are taken over."""
        return self.key.rsplit("-seed", 1)[0]

    def canonical(self) -> Cell:
        """The cell whose run this one is. At alpha 1 the mixing samplers draw exactly the xx batches, and hybrid at
        alpha 0 exactly the xy ones (no coin is tossed then; tested), so a sweep reuses those runs: the sampler
        registry says where (`sampling.samplers.same_run`)."""
        other = same_run(self.sampler, self.alpha) if self.sampler != BASE else None
        return dataclasses.replace(self, sampler=other, alpha=None) if other else self


@dataclass(frozen=True)
class Preset:
    """Training and evaluation settings shared by every cell of a grid."""

    name: str
    model: str = "embedded"
    max_steps: int = 200
    batch_size: int = 32
    max_seq_length: int = 64
    lr: float = 3e-5
    freeze_embeddings: bool = True
    eval_steps: int | None = None  # held-out checks (checkpoint rule, early stopping); each costs ~10 steps on CPU
    patience: int = 3  # held-out checks without improvement before training stops (max_steps stays the cap)
    min_improvement: float = 0.0  # what counts as an improvement of the held-out metric for the patience count
    warmup_ratio: float = 0.1  # of max_steps (the linear schedule spans the cap, early stopping or not)
    snapshot_steps: tuple[int, ...] = ()  # first-seed cells keep these steps' weights (test-set learning curves)
    context: bool = False
    eval_batch_size: int = 128
    tydi: bool = True
    tydi_limit: int | None = None  # questions per language (their paragraphs form the pool); None: all of dev
    tydi_max_seq_length: int = 128  # paragraphs are long: a longer limit than the training one
    seeds: tuple[int, ...] = (0, 1, 2)
    note: str = ""
    shift: bool = False  # also the domain-shift evaluations (evaluation.shift: TyDi + Tatoeba pools), every seed
    shift_limit: int | None = None  # their --limit (None: all of TyDi dev and Tatoeba)
    device: str = "auto"  # hybridbatch.device: auto | cpu | cuda | mps (training and evaluation)
    precision: str = "auto"  # training precision: auto | fp32 | bf16 | fp16
    encoder: str = DEFAULT_ENCODER  # evaluation runtime (evaluation.runtimes): auto = the measured fastest one here
    # What the cells train on and which XQuAD-R articles they are tested on. In domain (the default): XQuAD-R's
    # first 36 articles -> its last 12 (`QACorpus.split`). Zero-shot, the paper's protocol: sources disjoint from
    # XQuAD-R -> all 48 articles (test_split None), so nothing of the test set is ever trained on.
    train_data: tuple[str, ...] = ("xquad-r",)
    train_weights: tuple[float, ...] | None = None  # one per train_data entry (None: in proportion to their size)
    test_split: str | None = "test"


PRESETS: dict[str, Preset] = {
    "demo": Preset("demo", max_steps=60, batch_size=32, max_seq_length=48, eval_steps=20, tydi=False, seeds=(0,),
                   note="README demo: one short hybrid run; shows the pipeline, not the paper's effect sizes."),
    "small": Preset("small", max_steps=100, batch_size=32, max_seq_length=48, eval_steps=25, tydi=True,
                    tydi_limit=100, encoder="auto",
                    seeds=(0, 1, 2),
                    note="2-core CPU preset: short sequences, frozen word embeddings, 100 steps of batch 32; "
                         "TyDi GoldP on 100 dev questions per language, first seed only."),
    "zero-shot": Preset("zero-shot", max_steps=100, batch_size=32, max_seq_length=48, eval_steps=25, tydi=True,
                        tydi_limit=100, encoder="auto", seeds=(0, 1, 2), shift=True,
                        train_data=("xlinghealth", "mkqa:answers"), test_split=None,
                        note="the paper's protocol on CPU: the small preset's budget, trained on XLingHealth (medical "
                             "QA, en es zh hi, hard negatives) + MKQA (question -> answer string, 12 languages), "
                             "both disjoint from XQuAD-R; tested on all 48 XQuAD-R articles and the shift pools."),
    # Issue 30: each cell trains until its held-out metric stops improving (lr / batch / cadence fixed by the pilot,
    # `hybridbatch experiment pilot`, from the held-out metric only; docs/RESULTS.md "Convergence"). The cap sets the
    # linear schedule's length; warmup is its first 50 steps. lr 3e-5 is the pilot's choice (results/converged/pilot.md:
    # held-out Multi mAP 0.3691 at step 450, against 0.3665 at step 900 for 1e-4).
    "converged": Preset("converged", lr=3e-5, max_steps=2000, batch_size=32, max_seq_length=48, eval_steps=50,
                        patience=4,
                        min_improvement=0.001, warmup_ratio=0.025, snapshot_steps=(100, 200, 400, 800, 1600),
                        tydi=True, tydi_limit=100, encoder="auto",
                        seeds=(0, 1, 2), shift=True, train_data=("xlinghealth", "mkqa:answers"), test_split=None,
                        note="zero-shot at convergence: the zero-shot preset's data and evaluation, trained until the "
                             "held-out Multi mAP has not improved by 0.001 for 4 checks 50 steps apart (cap 2000)."),
    "full": Preset("full", max_steps=2000, batch_size=100, max_seq_length=128, freeze_embeddings=False,
                   eval_batch_size=256, tydi=True, seeds=(0, 1, 2),
                   note="GPU preset: the paper's batch 100, full sequences, all weights trained."),
}

# The preset fields that change a cell's numbers: a finished cell made with other values must not be reused.
RESULT_FIELDS = ("model", "max_steps", "batch_size", "max_seq_length", "lr", "freeze_embeddings", "eval_steps",
                 "patience", "min_improvement", "warmup_ratio", "context", "tydi_limit", "tydi_max_seq_length", "precision", "encoder", "train_data", "train_weights",
                 "test_split")


def make_preset(name: str, *, model: str | None = None, max_steps: int | None = None,
                seeds: Sequence[int] | None = None, device: str | None = None, precision: str | None = None,
                shift: bool = False) -> Preset:
    """A named preset with the given settings in place of its own (None keeps the preset's), each checked."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    over: dict = {}
    if model:
        over["model"] = model
    if max_steps is not None:
        if max_steps < 1:
            raise UsageError(f"--steps must be at least 1, got {max_steps}")
        over["max_steps"] = max_steps
    if seeds is not None:
        if not seeds or any(s != int(s) or s < 0 for s in seeds):
            raise UsageError(f"seeds must be non-negative integers, got {list(seeds)}")
        over["seeds"] = tuple(int(s) for s in seeds)
    over["device"], over["precision"] = check_device(device), check_precision(precision)
    if shift:
        over["shift"] = True
    return dataclasses.replace(PRESETS[name], **over)


def expand_grid(samplers: Sequence[str], alphas: Sequence[float], losses: Sequence[str], scales: Sequence[float],
                seeds: Sequence[int], include_base: bool = False,
                adv_weights: Sequence[float | None] = (None,)) -> list[Cell]:
    """Every combination; alpha varies only for samplers that mix batch types and the adversary's weight only for
    the adv losses, the others get one cell."""
    for sampler in samplers:
        sampler_class(sampler)  # an unknown name is a UsageError naming the registered ones
    if not samplers or not seeds or not losses or not scales:
        raise UsageError("the grid is empty: give at least one sampler, seed, loss and scale")
    for scale in scales:
        if not scale > 0:
            raise UsageError(f"loss scale must be positive, got {scale}")
    if not adv_weights or any(w is not None and not w > 0 for w in adv_weights):
        raise UsageError(f"adversary weights must be positive, got {list(adv_weights)}")
    for loss in losses:
        recipe(loss)  # an unknown name is a UsageError naming the recipes
    for a in alphas:
        check_alpha(a)
    cells = [Cell(BASE)] if include_base else []
    for sampler, loss, scale, seed in itertools.product(samplers, losses, scales, seeds):
        for alpha in (alphas if takes_alpha(sampler) else [None]):
            for w in (adv_weights if recipe(loss).adversarial else [None]):
                w = None if w == ADVERSARIAL_WEIGHT else w  # the default keeps its name: the same run
                cells.append(Cell(sampler, alpha, loss, scale, seed, w))
    return list(dict.fromkeys(cells))


def check_stem(name: str) -> None:
    """A results file stem (OUT/<name>.json, OUT/<name>.md): a plain name, no folder in it."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UsageError(f"--name must be a plain file stem, got {name!r}")
