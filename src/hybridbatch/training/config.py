"""Training settings: one dataclass, readable from TOML / YAML, validated before anything is loaded; `RUN_ONLY`
names what a resume may change (everything else must match the run being resumed)."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridbatch.device import check_device, check_precision
from hybridbatch.errors import UsageError, require
from hybridbatch.sampling.samplers import DEFAULT_SAMPLER, SAMPLERS, repeats_answers, sampler_options
from hybridbatch.training.multi_positive_loss import FORMS

LOSS_SCALE = 20.0  # temperature 0.05, the common choice (the paper does not report one)
# training/losses.py make_loss; "consistency": multi-positive + the ranking-consistency term (consistency_loss.py)
LOSSES = ("infonce", "multi-positive", "consistency")


@dataclass
class TrainConfig:
    """Every training setting. Defaults suit a 2-core CPU: short sequences (XQuAD-R sentences are short), batch 32,
    lr 3e-5 and weight decay 0.01 (the paper's). Load from TOML / YAML with `from_file`; CLI flags override."""

    model: str = "embedded"
    data: list[str] = field(default_factory=lambda: ["xquad-r"])
    data_weights: list[float] | None = None  # one per `data` entry: a source's share of batches (sampling.sources)
    data_dir: str | None = None
    out: str = "runs/train"
    sampler: str = DEFAULT_SAMPLER
    alpha: float = 0.5
    per_pair: bool = False  # xy / hybrid: draw (X, Y) per pair instead of per batch
    lang_weighting: str = "uniform"  # or "size": languages in proportion to the ids they have
    k: int = 2  # translations: rows of one answer per slot (k translations of it); batch size a multiple of k
    queries: str = "one"  # translations: "one" query language per batch, or "parallel" (k X-X rows per answer)
    own: bool = True  # translations, queries "one": a slot holds the query's own-language answer (else only others)
    batch_size: int = 32
    max_steps: int | None = None  # default: `epochs` passes over the (qid, lang) items
    epochs: float = 1.0
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    grad_accum: int = 1
    max_seq_length: int = 64
    context: bool = False
    hard_negatives: bool = False
    hard_negative_lang: str = "passage"  # the hard negative in the passage's language, or the query's ("query")
    symmetric: bool = False
    scale: float = LOSS_SCALE
    cached_loss: bool = False
    mini_batch_size: int = 32
    loss: str = "infonce"  # or "multi-positive": every translation of the answer in the batch is a positive
    multi_positive_form: str = "mean"  # "mean" (SupCon's L_out) or "sum" (L_in): training/multi_positive_loss.py
    adversarial_weight: float = 0.0  # > 0: a language classifier behind gradient reversal (training/adversarial.py)
    adversarial_hidden: int = 256  # the classifier's hidden layer (0: linear)
    # the classifier's own learning rate (None: the encoder's). At the encoder's 3e-5 a fresh head stayed at chance for
    # 100 steps, so the reversal carried no language signal (docs/RESULTS.md section 9, bias-targeted training)
    adversarial_lr: float | None = None
    # embeddings of earlier batches the classifier also learns from (0: none). X-X and X-Y batches hold one or two
    # languages, so without it the classifier only learns the latest batch's language (training/adversarial.py)
    adversarial_memory: int = 0
    freeze_embeddings: bool = False
    seed: int = 42
    val_fraction: float = 0.05
    eval_steps: int | None = None  # default: max_steps // 10
    eval_batches: int = 4  # the loss rule: fixed validation batch groups
    select: str = "lareqa"  # checkpoint rule: "lareqa" (validation-id mAP) or "loss" (fixed validation batches)
    patience: int = 3  # evaluations without improvement before stopping; 0: never stop early
    min_improvement: float = 0.0  # a held-out gain at most this large does not reset the patience count
    save_steps: int | None = None  # default: eval_steps (or max_steps // 4 without validation, the latest kept)
    save_total_limit: int = 2
    logging_steps: int = 10
    keep_checkpoints: bool = False
    snapshot_steps: list[int] | None = None  # steps whose weights are kept in out/snapshots/step-<n>/ (test-set curves)
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    batch_log: bool = True
    device: str = "auto"  # auto | cpu | cuda | mps (hybridbatch.device)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16; auto: bf16 on GPUs that have it, fp32 on CPU
    query_prefix: str | None = None  # None: the model's own "query" prompt, else none
    passage_prefix: str | None = None  # None: the model's own "passage"/"document" prompt, else none
    allow_missing_weights: bool = False  # train a model whose weights lack tensors its config asks for (random init)
    # loss "consistency" (training/consistency_loss.py): weight x the divergence between the score distributions of
    # a question's translations, at their own temperature; "query", "passage" or "both" sides
    consistency_weight: float = 1.0
    consistency_temperature: float = 0.05
    consistency_divergence: str = "js"  # "js" (Jensen-Shannon) or "kl" (symmetric KL)
    consistency_sides: str = "query"

    # Settings that do not change what is trained: a resume may change them.
    RUN_ONLY = ("out", "resume", "overwrite", "progress", "keep_checkpoints", "logging_steps", "data_dir", "device",
                "allow_missing_weights", "snapshot_steps")

    @classmethod
    def from_file(cls, path: Path | str) -> TrainConfig:
        """Read a TOML (.toml) or YAML (.yaml / .yml) file; keys are the field names, at top level or in a
        [train] table."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"{path}: cannot read config: {e.strerror or e}") from None
        yaml = require("yaml", f"{path}: reading a YAML config") if path.suffix.lower() in (".yaml", ".yml") else None
        try:
            if yaml is not None:
                obj = yaml.safe_load(text) or {}
            else:
                obj = tomllib.loads(text)
        except Exception as e:  # noqa: BLE001 - both parsers' errors become one readable message
            raise UsageError(f"{path}: not a valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'TOML'} "
                             f"config: {e}") from None
        if not isinstance(obj, dict):
            raise UsageError(f"{path}: expected a table of settings")
        if isinstance(obj.get("train"), dict):
            obj = obj["train"]
        return cls().replace(**obj, _source=str(path))

    def replace(self, _source: str = "override", **overrides: Any) -> TrainConfig:
        """A copy with `overrides` applied; None means 'not given' (so CLI flags left unset keep file values)."""
        names = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise UsageError(f"{_source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        for k, v in given.items():
            if (bad := _type_problem(names[k].type, v)) is not None:
                raise UsageError(f"{_source}: {k}: {bad}")
        if isinstance(given.get("data"), str):
            given["data"] = [given["data"]]
        for k in ("out", "data_dir", "model"):
            if k in given and isinstance(given[k], Path):
                given[k] = str(given[k])
        if "data" in given:
            given["data"] = [str(d) for d in given["data"]]
        return dataclasses.replace(self, **given)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Reject bad settings before anything is loaded or written: every field's type (a config built in code is
        checked like one read from a file), then the ranges; numbers must be finite (an `inf` learning rate trains
        into NaN and fails only at the end)."""
        for f in dataclasses.fields(self):
            if (bad := _type_problem(f.type, getattr(self, f.name), none_ok=True)) is not None:
                raise UsageError(f"setting {f.name}: {bad}")
        # the sampler's name, alpha and own options (k, queries, own), checked in sampling
        sampler_options(self.sampler, alpha=self.alpha, k=self.k, queries=self.queries, own=self.own)
        checks = [
            (self.batch_size >= 2, f"batch size must be at least 2 (in-batch negatives), got {self.batch_size}"),
            (self.max_steps is None or self.max_steps >= 1, f"max steps must be at least 1, got {self.max_steps}"),
            (_finite(self.epochs) and self.epochs > 0, f"epochs must be positive and finite, got {self.epochs}"),
            (_finite(self.lr) and self.lr > 0, f"learning rate must be positive and finite, got {self.lr}"),
            (_finite(self.weight_decay) and self.weight_decay >= 0,
             f"weight decay must be >= 0 and finite, got {self.weight_decay}"),
            (0 <= self.warmup_ratio < 1, f"warmup ratio must be in [0, 1), got {self.warmup_ratio}"),
            (_finite(self.max_grad_norm) and self.max_grad_norm >= 0,
             f"max grad norm must be >= 0 and finite (0: no clipping), got {self.max_grad_norm}"),
            (self.grad_accum >= 1, f"grad accumulation must be at least 1, got {self.grad_accum}"),
            (8 <= self.max_seq_length <= 8192, f"max sequence length must be in [8, 8192], got {self.max_seq_length}"),
            (_finite(self.scale) and self.scale > 0, f"loss scale must be positive and finite, got {self.scale}"),
            (self.mini_batch_size >= 1, f"mini batch size must be at least 1, got {self.mini_batch_size}"),
            (0 <= self.val_fraction < 0.5, f"val fraction must be in [0, 0.5), got {self.val_fraction}"),
            (self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            (_finite(self.min_improvement) and self.min_improvement >= 0,
             f"min improvement must be >= 0 and finite, got {self.min_improvement}"),
            (self.eval_steps is None or self.eval_steps >= 1, f"eval steps must be at least 1, got {self.eval_steps}"),
            (self.save_steps is None or self.save_steps >= 1, f"save steps must be at least 1, got {self.save_steps}"),
            (self.eval_batches >= 1, f"eval batches must be at least 1, got {self.eval_batches}"),
            (self.logging_steps >= 1, f"logging steps must be at least 1, got {self.logging_steps}"),
            (not self.snapshot_steps or min(self.snapshot_steps) >= 1,
             f"snapshot steps must be at least 1, got {self.snapshot_steps}"),
            (self.save_total_limit >= 1, f"save total limit must be at least 1, got {self.save_total_limit}"),
            (self.seed >= 0, f"seed must be >= 0 (numpy seeds are non-negative), got {self.seed}"),
            (self.lang_weighting in ("uniform", "size"),
             f"lang weighting must be 'uniform' or 'size', got {self.lang_weighting!r}"),
            (bool(self.data), "no training data given"),
            (self.data_weights is None or (len(self.data_weights) == len(self.data) and all(
                w >= 0 for w in self.data_weights) and any(w > 0 for w in self.data_weights)),
             f"data weights must be one number >= 0 per data source ({len(self.data)}), not all 0; got "
             f"{self.data_weights}"),
            (self.select in ("lareqa", "loss"), f"select must be 'lareqa' or 'loss', got {self.select!r}"),
            (self.hard_negative_lang in ("passage", "query"),
             f"hard negative lang must be 'passage' or 'query', got {self.hard_negative_lang!r}"),
            (not (self.resume and self.overwrite), "--resume and --overwrite exclude each other"),
            *self._loss_checks(),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)
        check_device(self.device)
        check_precision(self.precision)

    def _loss_checks(self) -> list[tuple[bool, str]]:
        """The loss settings, and which samplers they go with: a multi-positive loss over batches that never hold
        two rows of one answer is InfoNCE exactly, and InfoNCE over translation batches pushes translations apart."""
        repeating = [n for n in SAMPLERS if repeats_answers(n)]
        multi = self.loss in ("multi-positive", "consistency")
        return [
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}"),
            (self.multi_positive_form in FORMS,
             f"multi positive form must be one of {', '.join(FORMS)}, got {self.multi_positive_form!r}"),
            (not multi or repeats_answers(self.sampler),
             f"loss {self.loss!r} needs batches holding translations of one answer (sampler "
             f"{' or '.join(map(repr, repeating))}); sampler {self.sampler!r} puts each answer in a batch once, "
             "where it is InfoNCE exactly"),
            (multi or not repeats_answers(self.sampler) or self.loss not in LOSSES,
             f"sampler {self.sampler!r} puts k translations of one answer in a batch: InfoNCE would take them for "
             "negatives; use loss 'multi-positive'"),
            (_finite(self.adversarial_weight) and self.adversarial_weight >= 0,
             f"adversarial weight must be >= 0 and finite (0: off), got {self.adversarial_weight}"),
            (self.adversarial_hidden >= 0, f"adversarial hidden must be >= 0 (0: linear), got "
                                           f"{self.adversarial_hidden}"),
            (self.adversarial_lr is None or (_finite(self.adversarial_lr) and self.adversarial_lr > 0),
             f"adversarial lr must be > 0 and finite (unset: the encoder's), got {self.adversarial_lr}"),
            (self.adversarial_memory >= 0, f"adversarial memory must be >= 0 (0: off), got {self.adversarial_memory}"),
            (not self.cached_loss or (self.loss == "infonce" and not self.adversarial_weight),
             "cached loss (GradCache) is InfoNCE only: not with loss 'multi-positive' or an adversarial weight"),
            *self._consistency_checks(),
        ]

    def _consistency_checks(self) -> list[tuple[bool, str]]:
        """The settings of loss 'consistency' (training/consistency_loss.py)."""
        return [
            (_finite(self.consistency_weight) and self.consistency_weight >= 0,
             f"consistency weight must be >= 0 and finite, got {self.consistency_weight}"),
            (_finite(self.consistency_temperature) and self.consistency_temperature > 0,
             f"consistency temperature must be positive and finite, got {self.consistency_temperature}"),
            (self.consistency_divergence in ("js", "kl"),
             f"consistency divergence must be 'js' or 'kl', got {self.consistency_divergence!r}"),
            (self.consistency_sides in ("query", "passage", "both"),
             f"consistency sides must be 'query', 'passage' or 'both', got {self.consistency_sides!r}"),
        ]

    @property
    def row_labels(self) -> bool:
        """Whether the loss reads the rows' labels (answer group, languages): the pair datasets get them."""
        return self.loss in ("multi-positive", "consistency") or self.adversarial_weight > 0

    def trained_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self.RUN_ONLY}


def _finite(x: float) -> bool:
    return math.isfinite(x)


_SCALARS: dict[str, tuple[tuple[type, ...], str]] = {
    "bool": ((bool,), "true or false"),
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "str": ((str, Path), "a string"),
}


def _type_problem(annotation: Any, value: Any, none_ok: bool = False) -> str | None:
    """Why `value` is not of a field's type (the annotation as written: 'int', 'str | None', 'list[str]'), or None.
    Booleans are not numbers here, and numbers are not strings: a TOML `batch_size = "4"` or a YAML `alpha: "0.5"`
    is a mistake to name, not to convert."""
    text = str(annotation).replace(" ", "")
    optional = text.endswith("|None")
    text = text.removesuffix("|None")
    if value is None:
        return None if optional or none_ok else "expected a value, got null"
    if text.startswith("list[") and text.endswith("]"):  # a list of scalars; `data` may be one string
        item = text[5:-1]
        items = [value] if item == "str" and isinstance(value, (str, Path)) else value
        if isinstance(items, (list, tuple)) and all(_is(v, item) for v in items):
            return None
        words = _SCALARS.get(item, ((object,), "values"))[1].removeprefix("a ").removeprefix("an ")
        return (f"expected {'a string or ' if item == 'str' else ''}a list of {words}s, got {_show(value)}")
    if _is(value, text):
        return None
    return f"expected {_SCALARS.get(text, ((object,), 'a value'))[1]}, got {_show(value)}"


def _is(value: Any, type_name: str) -> bool:
    want = _SCALARS.get(type_name, ((object,), ""))[0]
    return isinstance(value, want) and not (isinstance(value, bool) and bool not in want)


def _show(value: Any) -> str:
    kind = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} ({text[:40]}{'...' if len(text) > 40 else ''})"


__all__ = ["LOSSES", "LOSS_SCALE", "TrainConfig"]
