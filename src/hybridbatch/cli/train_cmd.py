"""`hybridbatch train`: one training run, with a rich progress bar (the library reports through callbacks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from transformers import TrainerCallback

from hybridbatch.cli.base import DataDir, Device, PassagePrefix, Precision, QueryPrefix, app, console, out
from hybridbatch.errors import UsageError
from hybridbatch.experiments.training import train
from hybridbatch.sampling.samplers import DEFAULT_SAMPLER, SAMPLERS
from hybridbatch.training.config import TrainConfig


class TrainBar(TrainerCallback):
    """A rich progress bar with the latest train loss and validation value (rank 0 only)."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None
        self.desc = ""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        self.progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.description}", markup=False), console=console)
        self.progress.start()
        self.task = self.progress.add_task("", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:  # the flow callback has decided: a validation follows this step
            phase = "validating (held-out ids)..." if getattr(control, "should_evaluate", False) else ""
            self.progress.update(self.task, completed=state.global_step,
                                 description="  ".join(p for p in (self.desc, phase) if p))
            self.progress.refresh()

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
        if self.progress is None or not logs:
            return
        parts = [self.desc] if self.desc else []
        if "loss" in logs:
            parts = [f"loss {logs['loss']:.4f}"] + [p for p in parts if p.startswith("val")]
        val = [(k, v) for k, v in logs.items() if k == "eval_loss" or k.endswith("_multi_map")]
        if val:
            k, v = val[0]
            parts = [p for p in parts if not p.startswith("val")] + [
                f"val {'loss' if k == 'eval_loss' else 'mAP'} {v:.4f}"]
        self.desc = "  ".join(parts)
        self.progress.update(self.task, description=self.desc)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _settings(config: Path | None, out_dir: Path | None, data: list[str] | None, **flags: Any) -> TrainConfig:
    """The config file's settings (or the defaults) with the flags given on top: every other flag is the TrainConfig
    field of its name, and an unset flag (None; False for the on-only switches) keeps the file's value."""
    cfg = TrainConfig.from_file(config) if config else TrainConfig()
    switches = {k: flags.pop(k) or None for k in ("resume", "overwrite", "allow_missing_weights")}
    flags["data_weights"] = _weights(flags["data_weights"])
    given = {"out": out_dir, "data": data or None, **switches, **flags}
    merged = cfg.replace(_source="command line", **given)
    if config:
        _name_the_file(config, merged, TrainConfig().replace(_source="command line", **given))
    return merged


def _name_the_file(config: Path, merged: TrainConfig, without_file: TrainConfig) -> None:
    """A range error that comes from a value of the config file names the file (`c.yaml: learning rate must be
    positive and finite, got inf`): the settings are refused with the file, and not without it."""
    try:
        merged.validate()
    except UsageError as e:
        try:
            without_file.validate()
        except UsageError as e2:
            if str(e2) == str(e):
                raise
        raise UsageError(f"{config}: {e}") from None


def _weights(text: str | None) -> list[float] | None:
    """--data-weights 2,1 -> [2.0, 1.0]; one message naming the flag for anything else."""
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise UsageError(f"--data-weights: expected numbers separated by commas (e.g. 2,1), got {text!r}") from None


Data = Annotated[Optional[list[str]], typer.Option("--data", "-d", help="Training data, repeat for several sources: "
                 "xquad-r (train split, default), mlqa-r, xlinghealth, mkqa (question <-> question: X-Y batches "
                 "only), mkqa:answers (question -> answer), tatoeba-laser (bitext: X-Y only), tydiqa-goldp, mmarco, "
                 "miracl, a folder of one of them, or a JSONL pairs file. A batch comes from one source, drawn in "
                 "proportion to its size or by --data-weights.")]
DataWeights = Annotated[Optional[str], typer.Option("--data-weights", help="One weight per --data source, in their "
                        "order, e.g. 2,1: each source's share of the batches (default: in proportion to its (id, "
                        "language) items).")]
# options of the samplers, the loss and the adversary, at module level so that train_cmd stays short
Patience = Annotated[Optional[int], typer.Option(help="Early stop after N validations without improvement "
                     "(default 3; 0 never); --max-steps stays the cap. train.json records why it stopped.")]
MinImprovement = Annotated[Optional[float], typer.Option(help="A held-out gain of at most this much does not count "
                           "as an improvement for --patience (default 0).")]
Alpha = Annotated[Optional[float], typer.Option(help="hybrid / translations (and the other samplers that mix "
                  "kinds): share of X-X batches (default 0.5).")]
K = Annotated[Optional[int], typer.Option("--k", help="translations: rows per answer in a batch, i.e. k "
              "translations of one answer side by side (default 2; the batch size a multiple of k).")]
Queries = Annotated[Optional[str], typer.Option(help="translations: 'one' (default): one query language X per "
                    "batch, each slot X -> k passage languages; 'parallel': each slot k X-X rows in k languages "
                    "(the queries are translations too).")]
Own = Annotated[Optional[bool], typer.Option("--own/--no-own", help="translations, --queries one: each slot "
                "holds the query's own-language answer and k-1 translations (default), or only translations "
                "(X-Y).")]
Loss = Annotated[Optional[str], typer.Option("--loss", help="'infonce' (default; InfoNCE with in-batch "
                 "negatives), 'multi-positive': every translation of a query's answer in the batch is a "
                 "positive, not a false negative (needs --sampler translations), or 'consistency': "
                 "multi-positive plus a divergence between the score distributions of a question's "
                 "translations (--consistency-*).")]
ConsistencyWeight = Annotated[Optional[float], typer.Option("--consistency-weight", help="--loss consistency: "
                              "weight of the consistency term (default 1).")]
ConsistencyTemperature = Annotated[Optional[float], typer.Option("--consistency-temperature", help="--loss "
                                   "consistency: temperature of the score distributions (default 0.05).")]
ConsistencyDivergence = Annotated[Optional[str], typer.Option("--consistency-divergence", help="--loss "
                                  "consistency: 'js' (Jensen-Shannon, default) or 'kl' (symmetric KL).")]
ConsistencySides = Annotated[Optional[str], typer.Option("--consistency-sides", help="--loss consistency: "
                             "'query' (default: a question's translations rank the passages alike; needs "
                             "--queries parallel to act), 'passage' (an answer's translations rank the queries "
                             "alike) or 'both'.")]
MultiPositiveForm = Annotated[Optional[str], typer.Option("--multi-positive-form", help="'mean' (default): "
                              "each translation's log-probability raised on its own, all copies pulled to one "
                              "score; 'sum': the translations together take the softmax mass.")]
AdversarialWeight = Annotated[Optional[float], typer.Option("--adversarial-weight", help="Weight of a "
                              "language classifier on the embeddings behind gradient reversal: the encoder "
                              "learns embeddings whose language cannot be told (default 0: off; e.g. 0.1). The "
                              "saved model has no classifier.")]
AdversarialHidden = Annotated[Optional[int], typer.Option("--adversarial-hidden", help="The classifier's "
                              "hidden layer (default 256; 0: linear).")]
AdversarialLr = Annotated[Optional[float], typer.Option("--adversarial-lr", help="The classifier's own "
                          "learning rate (default: the encoder's --lr). A fresh head at a fine-tuning rate such as "
                          "3e-5 can stay at chance, and then the reversal does nothing; e.g. 1e-2.")]
AdversarialMemory = Annotated[Optional[int], typer.Option("--adversarial-memory", help="Embeddings of earlier "
                              "batches the classifier also learns from (default 0: none). X-X and X-Y batches "
                              "hold one or two languages, so without it the classifier learns only the latest "
                              "batch's language; e.g. 4096.")]

# checkpoint-selection options, at module level for the same reason
ValFraction = Annotated[Optional[float], typer.Option(help="Share of train ids held out to choose the checkpoint "
                        "(default 0.05; 0 disables: the last step is kept).")]
Select = Annotated[Optional[str], typer.Option("--select", help="Checkpoint rule, the same for every sampler: "
                   "'lareqa' (Multi mAP of the held-out ids, default) or 'loss' (loss on fixed validation "
                   "batches of the random sampler).")]
HardNegativeLang = Annotated[Optional[str], typer.Option("--hard-negative-lang", help="passage (default): the "
                             "hard negative in the passage's language; query: in the query's own language, so "
                             "X-Y pairs must rank the foreign answer above a wrong sentence in X.")]
EvalBatches = Annotated[Optional[int], typer.Option(help="--select loss: validation batch groups (default 4).")]


@app.command("train")
def train_cmd(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="'embedded' (default), a sentence-"
                     "transformers folder or a hub id.")] = None,
    data: Data = None,
    data_weights: DataWeights = None,
    data_dir: DataDir = None,
    sampler: Annotated[Optional[str], typer.Option(help=" | ".join(dict.fromkeys([DEFAULT_SAMPLER, *SAMPLERS])))
                       ] = None,
    alpha: Alpha = None,
    per_pair: Annotated[Optional[bool], typer.Option("--per-pair/--per-batch", help="xy / hybrid: draw (X, Y) "
                        "per pair instead of per batch.")] = None,
    k: K = None,
    queries: Queries = None,
    own: Own = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Pairs per batch and process (default 32).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps (default: --epochs passes).")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the (qid, lang) items (default 1).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="AdamW learning rate (default 3e-5).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Default 0.01.")] = None,
    max_seq_length: Annotated[Optional[int], typer.Option(help="Token limit (default 64).")] = None,
    context: Annotated[Optional[bool], typer.Option("--context/--no-context", help="Encode passages as sentence "
                       "+ paragraph.")] = None,
    hard_negatives: Annotated[Optional[bool], typer.Option("--hard-negatives/--no-hard-negatives", help="Add "
                              "another sentence of the same paragraph as a hard negative.")] = None,
    hard_negative_lang: HardNegativeLang = None,
    symmetric: Annotated[Optional[bool], typer.Option("--symmetric/--no-symmetric", help="Also passage -> query "
                         "InfoNCE.")] = None,
    scale: Annotated[Optional[float], typer.Option(help="Loss scale = 1 / temperature (default 20).")] = None,
    cached_loss: Annotated[Optional[bool], typer.Option("--cached-loss/--no-cached-loss", help="GradCache loss: "
                           "memory of --mini-batch-size, whatever the batch size.")] = None,
    mini_batch_size: Annotated[Optional[int], typer.Option(help="GradCache mini-batch (default 32).")] = None,
    loss: Loss = None,
    multi_positive_form: MultiPositiveForm = None,
    consistency_weight: ConsistencyWeight = None,
    consistency_temperature: ConsistencyTemperature = None,
    consistency_divergence: ConsistencyDivergence = None,
    consistency_sides: ConsistencySides = None,
    adversarial_weight: AdversarialWeight = None,
    adversarial_hidden: AdversarialHidden = None,
    adversarial_lr: AdversarialLr = None,
    adversarial_memory: AdversarialMemory = None,
    freeze_embeddings: Annotated[Optional[bool], typer.Option("--freeze-embeddings/--train-embeddings",
                                 help="Freeze word embeddings (faster on CPU).")] = None,
    grad_accum: Annotated[Optional[int], typer.Option(help="Gradient accumulation steps.")] = None,
    val_fraction: ValFraction = None,
    select: Select = None,
    eval_steps: Annotated[Optional[int], typer.Option(help="Validate every N steps (default max_steps/10).")] = None,
    eval_batches: EvalBatches = None,
    patience: Patience = None,
    min_improvement: MinImprovement = None,
    save_steps: Annotated[Optional[int], typer.Option(help="Checkpoint every N steps (default: eval steps).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (default 42).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default runs/train).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML or YAML file of settings; flags "
                      "override it.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last "
                      "checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a previous run in --out.")] = False,
    keep_checkpoints: Annotated[Optional[bool], typer.Option("--keep-checkpoints/--drop-checkpoints")] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress")] = None,
    device: Device = None,  # None: the config file's, else auto
    precision: Precision = None,
    query_prefix: QueryPrefix = None,
    passage_prefix: PassagePrefix = None,
    allow_missing_weights: Annotated[bool, typer.Option("--allow-missing-weights", help="Train a model whose "
                                     "weights lack tensors its config asks for (initialised at random).")] = False,
) -> None:
    """Train a dual encoder with hybrid (X-X + X-Y) batches; writes a sentence-transformers folder + train.json.

    Aimed at the language bias: --sampler translations with --loss multi-positive (k translations of an answer in a
    batch, all positives) or --loss consistency (their score distributions made to agree too); --adversarial-weight
    (a language classifier behind gradient reversal, any sampler). A thin layer over the library path
    (docs/LIBRARY.md): the data become a pair dataset, the sampler is passed to SentenceTransformerTrainer as
    batch_sampler=functools.partial(<Sampler>, ...), and checkpoints are chosen by one rule for every sampler."""
    cfg = _settings(**locals())
    path = train(cfg, callbacks=[TrainBar()] if cfg.progress else [])
    if os.environ.get("RANK", "0") == "0":
        out.print(f"model written to {path}", highlight=False)
