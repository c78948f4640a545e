"""`EvalOptions`: how an evaluation encodes and scores, checked once when it is made (as `training.TrainConfig`
is), so that every evaluation function, the CLI and the grid share one set of rules and messages."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hybridbatch.errors import UsageError
from hybridbatch.evaluation.metrics import check_ties
from hybridbatch.evaluation.retrieval import DEFAULT_BLOCK_MIB, DEFAULT_CHUNK, check_backend
from hybridbatch.evaluation.runtimes import (
    AUTO,
    DEFAULT_ENCODER,
    RUNTIMES,
    TorchRuntime,
    check_encode_precision,
    check_encoder,
)


@dataclass
class EvalOptions:
    """Every setting of an evaluation but the model and the data.

    `context`: candidates as sentence + paragraph; `batch_size`: encoding batch; `cache_dir`: embedding cache (and
    exported runtimes); `backend`: scoring (`retrieval`); `chunk_size` / `block_mib`: at most this many queries /
    MiB of scores per block; `ties`: the tie rule (`metrics.TIE_MODES`); `encoder`: the runtime (`runtimes`, or
    `auto`); `precision` / `devices`: torch only (a torch precision or device list without an encoder picks
    torch)."""

    context: bool = False
    batch_size: int = 64
    cache_dir: Path | str | None = None
    backend: str = "auto"
    chunk_size: int = DEFAULT_CHUNK
    block_mib: float = DEFAULT_BLOCK_MIB
    ties: str = "expected"
    encoder: str = DEFAULT_ENCODER
    precision: str = "fp32"
    devices: list[str] | None = None

    def __post_init__(self) -> None:
        check_ties(self.ties)
        check_backend(self.backend)
        check_encoder(self.encoder)
        check_encode_precision(self.precision)
        if isinstance(self.devices, str):
            self.devices = [d.strip() for d in self.devices.split(",") if d.strip()] or None
        torch_only = self.precision != "fp32" or bool(self.devices)
        if torch_only and self.encoder == AUTO:
            self.encoder = "torch"
        if torch_only and RUNTIMES[self.encoder][0] is not TorchRuntime:
            raise UsageError("--precision and --encode-devices apply to --encoder torch only")
        for name, value, low in (("batch size", self.batch_size, 1), ("chunk_size", self.chunk_size, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UsageError(f"{name} must be a whole number >= {low}, not {value!r}")
        if not self.block_mib > 0:
            raise UsageError(f"block_mib must be positive, not {self.block_mib!r}")

    @classmethod
    def of(cls, options: EvalOptions | None = None, **settings: Any) -> EvalOptions:
        """`options` with `settings` applied (checked again), or new options from `settings`."""
        if options is None:
            return cls(**settings)
        return dataclasses.replace(options, **settings) if settings else options

    def record(self) -> dict[str, Any]:
        """The settings a result file records of these options (besides the encoding's own)."""
        return {"encoder": self.encoder, "precision": self.precision, "devices": self.devices}
