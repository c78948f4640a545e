"""Where and in what precision to run: `--device auto|cpu|cuda|mps` and `--precision auto|fp32|bf16|fp16`.

One place turns the user's words into what torch / accelerate / the transformers Trainer need, so that training and
evaluation agree, CPU runs keep exactly the arguments they always had (bit-identical results per seed), and a GPU
user gets CUDA, NCCL and bf16 without flags. `torchrun` and `accelerate launch` both set RANK / LOCAL_RANK /
WORLD_SIZE; `accelerate launch --cpu` and `--mixed_precision` are honoured through their environment variables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from hybridbatch.errors import UsageError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def check_device(device: str | None) -> str:
    """The device word, lower-cased and validated ('cuda:1' is accepted as a CUDA device)."""
    d = (device or "auto").strip().lower()
    if d.split(":", 1)[0] not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), not {device!r}")
    return d


def check_precision(precision: str | None) -> str:
    p = (precision or "auto").strip().lower()
    if p not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return p


def resolve_device(device: str | None = "auto") -> str:
    """'cpu', 'cuda' (or 'cuda:N') or 'mps'. `auto`: CPU when `accelerate launch --cpu` asked for it, else CUDA, then
    Apple MPS, else CPU. An explicit device that is not there is a UsageError (no silent fallback to the CPU)."""
    d = check_device(device)
    if d == "cpu":
        return "cpu"
    import torch

    has_cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if d == "auto":
        if _env_true("ACCELERATE_USE_CPU"):
            return "cpu"
        return "cuda" if has_cuda else "mps" if has_mps else "cpu"
    if d.startswith("cuda"):
        if not has_cuda:
            raise UsageError(f"--device {d}: no CUDA GPU is visible to torch {torch.__version__} (a CPU-only build, "
                             "no driver, or CUDA_VISIBLE_DEVICES hides it); use --device cpu or auto")
        return d
    if not has_mps:
        raise UsageError("--device mps: Apple MPS is not available here; use --device cpu or auto")
    return "mps"


def process_device(device: str) -> str:
    """The device of this process: under torchrun / accelerate launch each rank takes cuda:LOCAL_RANK."""
    if device == "cuda" and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return device


def bf16_supported(device: str) -> bool:
    if not device.startswith("cuda"):
        return False
    import torch

    return bool(torch.cuda.is_bf16_supported())


def resolve_precision(precision: str | None, device: str) -> str:
    """'fp32', 'bf16' or 'fp16' for a resolved device. `auto`: what `accelerate launch --mixed_precision` asked for,
    else bf16 on a GPU that supports it, fp16 on an older GPU, fp32 on CPU and MPS (so CPU results do not change)."""
    p = check_precision(precision)
    if p == "auto":
        asked = os.environ.get("ACCELERATE_MIXED_PRECISION", "").strip().lower()
        if asked in ("bf16", "fp16"):
            p = asked
        elif asked == "no":
            p = "fp32"
        elif device.startswith("cuda"):
            p = "bf16" if bf16_supported(device) else "fp16"
        else:
            p = "fp32"
    if p == "fp16" and device == "cpu":
        raise UsageError("--precision fp16 needs a GPU; on the CPU use bf16 (where the CPU supports it) or fp32")
    if p == "bf16" and device.startswith("cuda") and not bf16_supported(device):
        raise UsageError("--precision bf16: this GPU does not support bfloat16; use fp16 or fp32")
    return p


@dataclass(frozen=True)
class Placement:
    """A resolved (device, precision) pair and what the transformers Trainer needs to honour it."""

    device: str  # cpu | cuda | cuda:N | mps
    precision: str  # fp32 | bf16 | fp16

    @property
    def kind(self) -> str:
        return self.device.split(":", 1)[0]

    def training_kwargs(self, world_size: int = 1) -> dict[str, Any]:
        """Keyword arguments for `SentenceTransformerTrainingArguments`. The CPU gets exactly what it always got
        (use_cpu and gloo), which keeps CPU runs bit-identical; CUDA gets NCCL; mixed precision is autocast."""
        multi = world_size > 1
        if multi and self.kind == "mps":
            raise UsageError("several processes on MPS are not supported; run one process, or use cpu / cuda")
        kw: dict[str, Any] = {
            "use_cpu": self.kind == "cpu",
            "ddp_backend": ("nccl" if self.kind == "cuda" else "gloo") if multi else None,
        }
        if self.precision == "bf16":
            kw["bf16"] = True
        elif self.precision == "fp16":
            kw["fp16"] = True
        return kw

    def to_dict(self) -> dict[str, str]:
        return {"device": self.device, "precision": self.precision}


def placement(device: str | None = "auto", precision: str | None = "auto") -> Placement:
    """Resolve both words at once (the device first: the precision depends on it)."""
    d = process_device(resolve_device(device))
    return Placement(d, resolve_precision(precision, d))
