"""Issue 22, faults (docs/RELIABILITY.md, "Second round"): SIGKILL *while a checkpoint is being staged* (not only after
a finished one), then --resume, for a hard-negative and a curriculum run; and two gloo CPU ranks under torchrun that
end with identical weights, and resume under DDP after a SIGKILL to the same weights and batches as an uninterrupted
two-process run. All on the tiny random model and the real XQuAD-R train split; each compared with an uninterrupted
run of the same command (the independent reference). Slow: each case trains three times.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
       "PYTHONPATH": str(ROOT / "src")}


def train_args(tiny_model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    """12 steps, a checkpoint (and a validation) every 4: checkpoints 4, 8, 12."""
    return ["train", "--model", str(tiny_model), "--data", str(data / "xquad-r"), "--out", str(out), "--batch-size",
            "8", "--max-steps", "12", "--eval-steps", "4", "--save-steps", "4", "--seed", "5", "--no-progress",
            "--device", "cpu", *extra]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hybridbatch.cli", *args]


def run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc (torchrun starts its workers in sessions of their own, so killing
    its process group would leave them training)."""
    parent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    tree, frontier = [pid], [pid]
    while frontier:
        frontier = [c for c, p in parent.items() if p in frontier]
        tree += frontier
    return tree


def kill_when(proc: subprocess.Popen, ready: Path, poll: float = 0.002, timeout: float = 600) -> None:
    """SIGKILL `proc` and every process it started the moment `ready` exists (polled every `poll` s)."""
    deadline = time.monotonic() + timeout
    while not ready.exists():
        assert proc.poll() is None, f"the run ended before {ready} appeared"
        assert time.monotonic() < deadline, f"{ready} never appeared"
        time.sleep(poll)
    os.kill(proc.pid, signal.SIGSTOP)  # frozen at once (a staging write stops here), its process tree kept
    tree = process_tree(proc.pid)
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    for pid in tree[1:]:  # the workers, reaped by init once their parent is gone: wait until they are
        while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
            time.sleep(0.01)


def _state(pid: int) -> str:
    try:
        return next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines() if ln.startswith("State:"))
    except (OSError, StopIteration):
        return "zombie"


def batches(path: Path) -> list[tuple[int, str]]:
    return [(e["step"], e["hash"]) for e in map(json.loads, path.read_text().splitlines())]


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol), k


def assert_resumed_like_reference(full: Path, cut: Path, resumed_from: int, logs=("batches.jsonl",)) -> None:
    a = json.loads((full / "train.json").read_text())
    b = json.loads((cut / "train.json").read_text())
    assert b["resumed_from_step"] == resumed_from and a["steps"] == b["steps"] == 12
    for log in logs:
        assert batches(full / log) == batches(cut / log), log
    assert_same_weights(weights(full / "model.safetensors"), weights(cut / "model.safetensors"))
    assert a["mix"] == b["mix"]
    assert not (cut / "checkpoints").exists()  # finished: checkpoints and the staging folder are gone


# ---- SIGKILL while checkpoint-8 is being staged ----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("extra", [
    pytest.param(["--hard-negatives"], marks=pytest.mark.heavy),  # CI runs the multi-source drill (all three
    pytest.param(["--sampler", "curriculum"], marks=pytest.mark.heavy),  # share one code path); test-all these
    ["--data", "xlinghealth", "--data", "mkqa", "--data-dir", "{data}"]], ids=["hardneg", "curriculum", "multi-source"])
def test_sigkill_during_checkpoint_staging_then_resume(tiny_model, shared_data, tmp_path, extra):
    extra = [a.replace("{data}", str(shared_data)) for a in extra]  # multi-source: xquad-r + XLingHealth + MKQA
    full, cut = tmp_path / "full", tmp_path / "cut"
    run(cli(*train_args(tiny_model, shared_data, full, *extra)))
    proc = subprocess.Popen(cli(*train_args(tiny_model, shared_data, cut, *extra)), env=ENV, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = cut / "checkpoints" / ".staging" / "checkpoint-8"
    kill_when(proc, staging)
    # killed mid-write: checkpoint-8 is only in staging (half written), checkpoint-4 is complete, no result yet
    assert staging.is_dir() and not (cut / "checkpoints" / "checkpoint-8").exists()
    assert (cut / "checkpoints" / "checkpoint-4" / "trainer_state.json").is_file()
    assert not (cut / "train.json").exists()
    run(cli(*train_args(tiny_model, shared_data, cut, *extra, "--resume")))
    assert_resumed_like_reference(full, cut, resumed_from=4)
    sources = json.loads((cut / "train.json").read_text())["mix"]["sources"]
    assert len(sources) == 1 + extra.count("--data"), sources  # the multi-source run drew from every source


# ---- two processes (gloo on the CPU) ---------------------------------------------------------------------------------


def torchrun(port: int, dump: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
            str(ROOT / "tests" / "ddp_dump_weights.py"), str(dump), *args]


@pytest.mark.slow
def test_ddp_ranks_identical_weights_and_resume(tiny_model, shared_data, tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    extra = ["--val-fraction", "0"]  # no checkpoint choice: the weights compared are those of step 12
    run(torchrun(29581, tmp_path / "dump-full", train_args(tiny_model, shared_data, full, *extra)))
    r0, r1 = (torch.load(tmp_path / "dump-full" / f"rank{r}.pt") for r in (0, 1))
    assert r0.keys() == r1.keys() and len(r0) > 10
    for k in r0:  # bit-identical on both ranks: DDP all-reduces the gradients, every rank steps the same optimizer
        assert torch.equal(r0[k], r1[k]), k
    saved = weights(full / "model.safetensors")
    for k, v in saved.items():  # and rank 0's copy is what was written ('0.model.<k>' in the full state dict)
        (ours,) = [key for key in r0 if key.endswith(f".{k}")]
        assert torch.equal(v, r0[ours]), k
    before = weights(tiny_model / "model.safetensors")
    assert any(not torch.equal(before[k], saved[k]) for k in saved)  # it trained

    proc = subprocess.Popen(torchrun(29583, tmp_path / "dump-cut", train_args(tiny_model, shared_data, cut, *extra)),
                            env=ENV, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_when(proc, cut / "checkpoints" / "checkpoint-8", poll=0.02)
    assert not (cut / "train.json").exists() and not (tmp_path / "dump-cut").exists()
    run(torchrun(29585, tmp_path / "dump-cut", train_args(tiny_model, shared_data, cut, *extra, "--resume")))
    assert_resumed_like_reference(full, cut, resumed_from=8, logs=("batches.jsonl", "batches.rank1.jsonl"))
    c0, c1 = (torch.load(tmp_path / "dump-cut" / f"rank{r}.pt") for r in (0, 1))
    for k in r0:
        assert torch.equal(c0[k], c1[k]), k
        assert torch.allclose(c0[k], r0[k], atol=1e-6), k
