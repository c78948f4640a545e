"""Encoding runtimes for evaluation, behind one small interface (`EncoderRuntime`) and chosen by name from one
registry (`RUNTIMES`): plain PyTorch (`TorchRuntime`: any device, fp32 / fp16 / bf16, several GPUs) or the model's
transformer exported to ONNX Runtime / OpenVINO (`exported.OnnxRuntime`, `exported.OpenVinoRuntime`), fp32 or int8.
Adding a runtime is one class and one registry row; every caller checks names with `check_encoder`.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hybridbatch.errors import UsageError
from hybridbatch.evaluation.exported import (  # noqa: F401  (re-exported: the runtimes' shared helpers)
    OnnxRuntime,
    OpenVinoRuntime,
    drop_exports,
    export_root,
    length_batches,
)

ENCODE_PRECISIONS = ("fp32", "fp16", "bf16")
# The evaluation default where it is measured to pay: on CPUs with native bf16 (AMX / AVX512-BF16), with OpenVINO
# installed, and for models on the CPU; elsewhere torch. See `default_encoder` and benchmarks/results/encode.json.
# openvino-bf16 met it: 4.1x ST fp32 on the sample, max |delta mAP| 0.0005 on full XQuAD-R (results/encode.json)
FAST_DEFAULT = "openvino-bf16"
DEFAULT_ENCODER = "torch"  # the library's one default (EvalOptions, the evaluator, training); the CLI asks for auto
AUTO = "auto"  # resolved per model by `resolve_encoder`


class EncoderRuntime(Protocol):
    """What every runtime offers. `key`: its name in cache keys and result files; `needs_calibration`: `prepare` must
    see a spread of the texts to come (static int8); `encode` returns `(len(texts), dim)` float32, not normalised."""

    key: str
    needs_calibration: bool

    def prepare(self, calibration: Sequence[str]) -> None: ...

    def encode(self, texts: Sequence[str], prompt: str | None, batch_size: int) -> np.ndarray: ...


class TorchRuntime:
    """`SentenceTransformer.encode` in fp32, fp16 or bf16; on several devices (`devices=['cuda:0', 'cuda:1']`) through
    sentence-transformers' multi-process encoding. Texts are length-sorted globally before ST's own batching."""

    needs_calibration = False

    def __init__(self, model: Any, precision: str = "fp32", devices: Sequence[str] | None = None):
        check_encode_precision(precision)
        self.precision = precision
        self.devices = list(devices) if devices else None
        self.model = model if precision == "fp32" else _cast_copy(model, precision)

    @classmethod
    def build(cls, model: Any, *, name: str, identity: dict[str, Any] | None, cache_dir: Path | str | None,
              precision: str, devices: Sequence[str] | None) -> TorchRuntime:
        return cls(model, precision=precision, devices=devices)

    @property
    def key(self) -> str:
        return "torch" if self.precision == "fp32" else f"torch-{self.precision}"

    def prepare(self, calibration: Sequence[str]) -> None:
        """Nothing to build for PyTorch."""

    def encode(self, texts: Sequence[str], prompt: str | None, batch_size: int) -> np.ndarray:
        kw: dict[str, Any] = {}
        if self.devices and len(self.devices) > 1:
            kw["device"] = self.devices  # sentence-transformers starts one process per device
        emb = self.model.encode(list(texts), prompt=prompt, batch_size=batch_size, convert_to_numpy=True,
                                normalize_embeddings=False, show_progress_bar=False, **kw)
        return np.asarray(emb, dtype=np.float32)


def _cast_copy(model: Any, precision: str) -> Any:
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return copy.deepcopy(model).to(dtype)


# name -> (runtime class, its options): the one list of runtimes
RUNTIMES: dict[str, tuple[type, dict[str, Any]]] = {
    "torch": (TorchRuntime, {}),
    "onnx": (OnnxRuntime, {}),
    "onnx-int8": (OnnxRuntime, {"int8": True}),
    "openvino": (OpenVinoRuntime, {"inference_precision": "f32"}),
    "openvino-bf16": (OpenVinoRuntime, {"inference_precision": "bf16"}),
    "openvino-int8": (OpenVinoRuntime, {"inference_precision": "f32", "int8": True}),
}
ENCODERS = tuple(RUNTIMES)


def check_encoder(encoder: str, *, allow_auto: bool = True) -> str:
    """The one check of a runtime name (`auto` too unless `allow_auto` is false); returns it."""
    if encoder in RUNTIMES or (allow_auto and encoder == AUTO):
        return encoder
    names = ", ".join(((AUTO,) if allow_auto else ()) + ENCODERS)
    raise UsageError(f"--encoder must be one of {names}, not {encoder!r}")


def check_encode_precision(precision: str) -> str:
    """The one check of a torch encoding precision; returns it."""
    if precision not in ENCODE_PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(ENCODE_PRECISIONS)}, not {precision!r}")
    return precision


def default_encoder(model: Any = None) -> str:
    """`FAST_DEFAULT` when it can run here and was measured to be both faster and as accurate, else torch."""
    if FAST_DEFAULT is None or importlib.util.find_spec("openvino") is None:
        return DEFAULT_ENCODER
    device = getattr(model, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        return DEFAULT_ENCODER
    if FAST_DEFAULT.endswith("bf16"):
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return DEFAULT_ENCODER
        if "avx512_bf16" not in flags and "amx_bf16" not in flags:
            return DEFAULT_ENCODER
    return FAST_DEFAULT


def resolve_encoder(encoder: str, model: Any = None) -> str:
    """`encoder` with "auto" replaced by `default_encoder(model)`: callers record the runtime that actually ran."""
    return default_encoder(model) if check_encoder(encoder) == AUTO else encoder


def make_encoder(model: Any, encoder: str = DEFAULT_ENCODER, *, identity: dict[str, Any] | None = None,
                 cache_dir: Path | str | None = None, precision: str = "fp32",
                 devices: Sequence[str] | None = None) -> EncoderRuntime:
    """The runtime named `encoder` (`auto`: `default_encoder(model)`); exported runtimes export once per weights,
    then find the export in the cache."""
    name = resolve_encoder(encoder, model)
    cls, options = RUNTIMES[name]
    return cls.build(model, name=name, identity=identity, cache_dir=cache_dir, precision=precision, devices=devices,
                     **options)
