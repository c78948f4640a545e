"""A run's output folder: fresh / resume / overwrite decided before anything is written, the checkpoint to resume,
the batch log, and the final model moved into place. Several processes share it: rank 0 writes, the others wait
at `barrier()`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, TextIO

from hybridbatch.errors import UsageError
from hybridbatch.outputs import check_out_dir as check_writable
from hybridbatch.provenance import write_json
from hybridbatch.training.config import TrainConfig

OWN_MARKERS = ("train_config.json", "train.json")  # the files that make a folder a hybridbatch training run


def rank() -> int:
    """This process's rank (torchrun / accelerate set RANK), 0 when alone."""
    return int(os.environ.get("RANK", "0"))


def barrier() -> None:
    """Wait for every process (a no-op without torch.distributed)."""
    with contextlib.suppress(Exception):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.barrier()


def _check_resume(config: TrainConfig, out: Path) -> None:
    if not (out / "train_config.json").exists():
        raise UsageError(f"{out}: nothing to resume (no train_config.json); use a new --out folder")
    saved = json.loads((out / "train_config.json").read_text(encoding="utf-8"))
    now = config.trained_settings()
    diff = sorted(k for k in now if k in saved and saved[k] != now[k])
    if diff:
        changes = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in diff)
        raise UsageError(f"{out}: --resume with different settings ({changes}); an exact resume needs the same "
                         "settings")
    if (out / "train.json").exists():
        raise UsageError(f"{out}: this run already finished (train.json exists); nothing to resume")


def out_dir_mode(config: TrainConfig) -> str:
    """Decide what to do with the output folder before anything is written: 'fresh', 'resume' or 'overwrite'.
    A non-empty folder needs --resume or --overwrite, and --overwrite only deletes folders this command made."""
    out = check_writable(config.out)
    non_empty = out.exists() and any(out.iterdir())
    if config.resume:
        if not non_empty:
            logging.getLogger(__name__).warning(
                "%s: --resume, but there is no run to resume (the folder is missing or empty): starting afresh", out)
            return "fresh"
        _check_resume(config, out)
        return "resume"
    if non_empty:
        if not config.overwrite:
            raise UsageError(f"{out}: output folder exists and is not empty; pass --resume to continue that run or "
                             "--overwrite to replace it, or choose another --out")
        if not any((out / m).exists() for m in OWN_MARKERS):
            raise UsageError(f"{out}: not a hybridbatch training folder (no train_config.json / train.json); "
                             "refusing to delete it with --overwrite")
        return "overwrite"
    return "fresh"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (the staging folder never counts)."""
    best: tuple[int, Path] | None = None
    if not run_dir.is_dir():
        return None
    for p in run_dir.iterdir():
        if p.is_dir() and p.name.startswith("checkpoint-") and p.name[11:].isdigit():
            if (p / "trainer_state.json").exists() and (best is None or int(p.name[11:]) > best[0]):
                best = (int(p.name[11:]), p)
    return best[1] if best else None


def prepare_out_dir(config: TrainConfig, mode: str, rank: int) -> tuple[Path, Path | None, int]:
    """After distributed init: rank 0 clears / creates the folder; returns (out, checkpoint to resume, its step)."""
    out = Path(config.out)
    if rank == 0:
        if mode == "overwrite":
            for p in out.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        out.mkdir(parents=True, exist_ok=True)
        if mode != "resume":
            write_json(out / "train_config.json", config.trained_settings())
    barrier()
    ckpt = latest_checkpoint(out / "checkpoints") if mode == "resume" else None
    step = json.loads((ckpt / "trainer_state.json").read_text())["global_step"] if ckpt else 0
    return out, ckpt, step


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The entries of a JSON-lines log; a line cut by a kill is dropped (its step is redone after the resume)."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def batch_log_path(out: Path, rank: int) -> Path:
    return out / ("batches.jsonl" if rank == 0 else f"batches.rank{rank}.jsonl")


def open_batch_log(config: TrainConfig, out: Path, rank: int, resumed_step: int) -> TextIO | None:
    """The batch log, keeping what the steps before a resumed checkpoint trained (those after it are redone)."""
    if not config.batch_log:
        return None
    path = batch_log_path(out, rank)
    kept = [e for e in read_jsonl(path) if e.get("step", 0) < resumed_step] if resumed_step else []
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(e, ensure_ascii=False) + "\n" for e in kept)
    return open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by train()


def finalise_model(trainer: Any, out: Path) -> None:
    """Save the final model into a temp folder beside `out`'s files, then move each entry into place."""
    tmp = out / ".final"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.model.save(str(tmp))
    for p in tmp.iterdir():
        dest = out / p.name
        if dest.is_dir():
            shutil.rmtree(dest)
        os.replace(p, dest)
    tmp.rmdir()
