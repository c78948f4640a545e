"""The trainer classes of a hybridbatch run: importable, at module level.

`HybridTrainer` is the plain `SentenceTransformerTrainer` plus four things: a batch log (what each rank trained at
each step, read from the rows' metadata that `PairCollator(keep_metadata=True)` passes along), an optional batch
sampler of its own for the eval dataset (the fixed validation batches of the loss rule, whatever the training
sampler), atomic checkpoints, and a loss with parameters of its own (the language-adversarial loss's classifier,
`head_state_dict`): saved beside each checkpoint (`adversary.pt`, written before the checkpoint is renamed into
place), restored on resume, its gradients averaged across processes (DDP averages the model's only), and its
latest batch's language cross-entropy / accuracy logged. `ProgressCallback` turns its steps into the library's
`progress(stage, done, total)` calls; the bars themselves are the caller's (the CLI's).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from typing import Any

from sentence_transformers import SentenceTransformerTrainer
from transformers import TrainerCallback
from transformers.trainer_utils import rotate_checkpoints

from hybridbatch.sampling.collator import META
from hybridbatch.sampling.index import describe_batch

HEAD_FILE = "adversary.pt"  # the loss's own weights in a checkpoint folder (never in the model folder)


class HybridTrainer(SentenceTransformerTrainer):
    """SentenceTransformerTrainer with a batch log, a fixed eval batch sampler and atomic checkpoints."""

    def __init__(self, *args: Any, batch_log: Any = None, eval_batch_sampler: Any = None,
                 source_name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_log = batch_log  # an open text file, or None
        self.eval_batch_sampler = eval_batch_sampler
        self.source_name = source_name
        self.train_batch_sampler: Any = None
        if hasattr(self.loss, "head_state_dict"):
            self.add_callback(HeadGradientSync(self.loss))

    def get_batch_sampler(self, dataset: Any, batch_size: int, drop_last: bool,
                          valid_label_columns: list[str] | None = None, generator: Any = None,
                          seed: int = 0) -> Any:
        kw = {"batch_size": batch_size, "drop_last": drop_last, "valid_label_columns": valid_label_columns,
              "generator": generator, "seed": seed}
        if self.eval_batch_sampler is not None and dataset is self.eval_dataset:
            return self.eval_batch_sampler(dataset, **kw)
        sampler = super().get_batch_sampler(dataset, **kw)
        if dataset is self.train_dataset:
            self.train_batch_sampler = sampler
        return sampler

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        meta = inputs.pop(META, None)
        if meta is not None and self.batch_log is not None and self.model.training:
            n = len(meta["id"])
            info = describe_batch(meta.get("source") or [self.source_name] * n, [str(x) for x in meta["id"]],
                                  meta["query_lang"], meta["passage_lang"])
            self.batch_log.write(json.dumps({"step": self.state.global_step, **info}, ensure_ascii=False) + "\n")
            self.batch_log.flush()
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        last = getattr(self.loss, "last", None)
        if last and "loss" in logs:  # a training log: the classifier's latest batch beside the loss
            logs = {**logs, **last}
        super().log(logs, *args, **kwargs)

    def _load_from_checkpoint(self, checkpoint_path: str, *args: Any) -> None:
        """The model's weights (sentence-transformers), then the loss's head from `adversary.pt` when it has one."""
        super()._load_from_checkpoint(checkpoint_path, *args)
        if not hasattr(self.loss, "load_head_state_dict"):
            return
        path = os.path.join(checkpoint_path, HEAD_FILE)
        if not os.path.exists(path):
            logging.getLogger(__name__).warning("%s: no %s; the language classifier starts afresh",
                                                checkpoint_path, HEAD_FILE)
            return
        import torch

        self.loss.load_head_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def _save_head(self, folder: str) -> None:
        if self.args.should_save and hasattr(self.loss, "head_state_dict"):
            import torch

            torch.save({k: v.detach().cpu() for k, v in self.loss.head_state_dict().items()},
                       os.path.join(folder, HEAD_FILE))

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Write the checkpoint (and the loss's head) into `<run>/.staging` and rename it into place once complete
        (every rank has written its RNG state), so a kill never leaves a checkpoint that looks complete but is
        not."""
        run_dir = self.args.output_dir
        staging = os.path.join(run_dir, ".staging")
        name = f"checkpoint-{self.state.global_step}"
        final = os.path.join(run_dir, name)
        if self.args.should_save:
            shutil.rmtree(os.path.join(staging, name), ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self.args.output_dir = staging
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.output_dir = run_dir
        self._save_head(os.path.join(staging, name))
        if self.state.best_model_checkpoint == os.path.join(staging, name):
            self.state.best_model_checkpoint = final
            if self.args.should_save:
                self.state.save_to_json(os.path.join(staging, name, "trainer_state.json"))
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            if os.path.exists(final):
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            rotate_checkpoints(output_dir=run_dir, save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint, use_mtime=False)
        self.accelerator.wait_for_everyone()


class HeadGradientSync(TrainerCallback):
    """Averages the gradients of a loss's own parameters (those not in its model) across processes before each
    optimizer step: DDP wraps the model only, so without this every rank's classifier would learn its own batches
    and the ranks' classifiers would drift apart."""

    def __init__(self, loss: Any) -> None:
        model = {id(p) for p in loss.model.parameters()} if hasattr(loss, "model") else set()
        self.params = [p for p in loss.parameters() if id(p) not in model]

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        for p in self.params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= dist.get_world_size()


class Snapshots(TrainerCallback):
    """Keeps the model weights of chosen steps in `<folder>/step-<n>/` (plain sentence-transformers folders, no
    optimizer state), so a run that stops early can still be evaluated along its way (learning curves on a test set
    the checkpoint rule never reads). Written atomically by rank 0; a snapshot already there (a resumed run) stays."""

    def __init__(self, folder: str | os.PathLike[str], steps: Sequence[int]) -> None:
        self.folder = os.fspath(folder)
        self.steps = set(steps)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if state.global_step not in self.steps or not state.is_world_process_zero or model is None:
            return
        final = os.path.join(self.folder, f"step-{state.global_step}")
        if os.path.exists(final):
            return
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(tmp)
        os.replace(tmp, final)


class ProgressCallback(TrainerCallback):
    """Reports training steps to the library's `progress(stage, done, total)` callback (rank 0 only): the way a
    caller that already holds one (the CLI's bars) follows a run; the library itself draws nothing."""

    def __init__(self, progress: Callable[[str, int, int], None], stage: str = "train") -> None:
        self.progress = progress
        self.stage = stage

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.progress(self.stage, state.global_step, state.max_steps)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.progress(self.stage, state.global_step, state.max_steps)
