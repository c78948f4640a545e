"""The trainer classes of a hybridbatch run: importable, at module level.

`HybridTrainer` is the plain `SentenceTransformerTrainer` plus three things: a batch log (what each rank trained at
each step, read from the rows' metadata that `PairCollator(keep_metadata=True)` passes along), an optional batch
sampler of its own for the eval dataset (the fixed validation batches of the loss rule, whatever the training
sampler), and atomic checkpoints. `ProgressCallback` turns its steps into the library's `progress(stage, done, total)`
calls; the bars themselves are the caller's (the CLI's).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from typing import Any

from sentence_transformers import SentenceTransformerTrainer
from transformers import TrainerCallback
from transformers.trainer_utils import rotate_checkpoints

from hybridbatch.sampling.collator import META
from hybridbatch.sampling.index import describe_batch


class HybridTrainer(SentenceTransformerTrainer):
    """SentenceTransformerTrainer with a batch log, a fixed eval batch sampler and atomic checkpoints."""

    def __init__(self, *args: Any, batch_log: Any = None, eval_batch_sampler: Any = None,
                 source_name: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_log = batch_log  # an open text file, or None
        self.eval_batch_sampler = eval_batch_sampler
        self.source_name = source_name
        self.train_batch_sampler: Any = None

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

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Write the checkpoint into `<run>/.staging` and rename it into place once complete (every rank has
        written its RNG state), so a kill never leaves a checkpoint that looks complete but is not."""
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
