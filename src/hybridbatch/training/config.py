"""Training settings: one dataclass, readable from TOML / YAML, validated before anything is loaded; `RUN_ONLY`
names what a resume may change (everything else must match the run being resumed)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridbatch.errors import UsageError

LOSS_SCALE = 20.0  # temperature 0.05, the common choice (the paper does not report one)


@dataclass
class TrainConfig:
    """Every training setting. Defaults suit a 2-core CPU: short sequences (XQuAD-R sentences are short), batch 32,
    lr 3e-5 and weight decay 0.01 (the paper's). Load from TOML / YAML with `from_file`; CLI flags override."""

    model: str = "embedded"
    data: list[str] = field(default_factory=lambda: ["xquad-r"])
    data_dir: str | None = None
    out: str = "runs/train"
    sampler: str = "hybrid"
    alpha: float = 0.5
    per_pair: bool = False  # xy / hybrid: draw (X, Y) per pair instead of per batch
    lang_weighting: str = "uniform"  # or "size": languages in proportion to the ids they have
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
    freeze_embeddings: bool = False
    seed: int = 42
    val_fraction: float = 0.05
    eval_steps: int | None = None  # default: max_steps // 10
    eval_batches: int = 4  # the loss rule: fixed validation batch groups
    select: str = "lareqa"  # checkpoint rule: "lareqa" (validation-id mAP) or "loss" (fixed validation batches)
    patience: int = 3  # evaluations without improvement before stopping; 0: never stop early
    save_steps: int | None = None  # default: eval_steps (or max_steps // 10 without validation)
    save_total_limit: int = 2
    logging_steps: int = 10
    keep_checkpoints: bool = False
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    batch_log: bool = True
    device: str = "auto"  # auto | cpu | cuda | mps (training.device)
    precision: str = "auto"  # auto | fp32 | bf16 | fp16; auto: bf16 on GPUs that have it, fp32 on CPU
    query_prefix: str | None = None  # None: the model's own "query" prompt, else none
    passage_prefix: str | None = None  # None: the model's own "passage"/"document" prompt, else none

    # Settings that do not change what is trained: a resume may change them.
    RUN_ONLY = ("out", "resume", "overwrite", "progress", "keep_checkpoints", "logging_steps", "data_dir", "device")

    @classmethod
    def from_file(cls, path: Path | str) -> TrainConfig:
        """Read a TOML (.toml) or YAML (.yaml / .yml) file; keys are the field names, at top level or in a
        [train] table."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise UsageError(f"{path}: cannot read config: {e.strerror or e}") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

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
        """Reject bad settings before anything is loaded or written."""
        from hybridbatch.sampling.samplers import SAMPLERS, check_alpha

        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        check_alpha(self.alpha)
        checks = [
            (self.batch_size >= 2, f"batch size must be at least 2 (in-batch negatives), got {self.batch_size}"),
            (self.max_steps is None or self.max_steps >= 1, f"max steps must be at least 1, got {self.max_steps}"),
            (self.epochs > 0, f"epochs must be positive, got {self.epochs}"),
            (self.lr > 0, f"learning rate must be positive, got {self.lr}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.warmup_ratio < 1, f"warmup ratio must be in [0, 1), got {self.warmup_ratio}"),
            (self.grad_accum >= 1, f"grad accumulation must be at least 1, got {self.grad_accum}"),
            (8 <= self.max_seq_length <= 8192, f"max sequence length must be in [8, 8192], got {self.max_seq_length}"),
            (self.scale > 0, f"loss scale must be positive, got {self.scale}"),
            (self.mini_batch_size >= 1, f"mini batch size must be at least 1, got {self.mini_batch_size}"),
            (0 <= self.val_fraction < 0.5, f"val fraction must be in [0, 0.5), got {self.val_fraction}"),
            (self.patience >= 0, f"patience must be >= 0, got {self.patience}"),
            (self.lang_weighting in ("uniform", "size"),
             f"lang weighting must be 'uniform' or 'size', got {self.lang_weighting!r}"),
            (bool(self.data), "no training data given"),
            (self.select in ("lareqa", "loss"), f"select must be 'lareqa' or 'loss', got {self.select!r}"),
            (self.hard_negative_lang in ("passage", "query"),
             f"hard negative lang must be 'passage' or 'query', got {self.hard_negative_lang!r}"),
            (not (self.resume and self.overwrite), "--resume and --overwrite exclude each other"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UsageError(msg)
        from hybridbatch.training.device import check_device, check_precision

        check_device(self.device)
        check_precision(self.precision)

    def trained_settings(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_dict().items() if k not in self.RUN_ONLY}


__all__ = ["LOSS_SCALE", "TrainConfig"]
