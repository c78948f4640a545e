"""Encoding runtimes for evaluation: plain PyTorch (any device, fp32 / fp16 / bf16, several GPUs) or the model's
transformer exported to ONNX Runtime / OpenVINO, fp32 or int8.

Why not `SentenceTransformer(backend="onnx")`: that route needs optimum-onnx / optimum-intel, whose releases pin
transformers < 4.58 / < 5.6 (this project runs transformers 5.x), so it cannot be installed beside it. The export
is therefore done here with the same libraries optimum drives: `torch.onnx.export` of the Hugging Face module,
`onnxruntime.quantization.quantize_dynamic` (int8 weights, dynamic int8 activations: what
`export_dynamic_quantized_onnx_model` asks optimum for) and OpenVINO's own converter (`openvino.convert_model`; int8 by
`nncf.quantize`, the post-training quantisation behind `export_static_quantized_openvino_model`, calibrated on the
first texts it encodes). Pooling and normalisation are the model's own modules' maths (mean or CLS pooling, L2), run on
the runtime's output; an export is checked against PyTorch on probe texts before it is used.

Exports are cached under `<cache>/exported/<weights sha256[:16]>-<encoder>-L<max length>/` (next to the embedding
cache; `models.embedded.cache_root()` without one), keyed by the model's weights, so a checkpoint is exported once.
Every runtime encodes each distinct text once, in batches of texts of similar token length, each padded only to its
own longest input (`length_batches`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.errors import ModelError, UsageError

log = logging.getLogger(__name__)

ENCODERS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-bf16", "openvino-int8")
# OpenVINO's CPU plugin would silently run bf16 on CPUs with AMX / AVX512-BF16: the precision is always set explicitly
OV_PRECISION = {"openvino": "f32", "openvino-bf16": "bf16", "openvino-int8": "f32"}
PRECISIONS = ("fp32", "fp16", "bf16")
# The evaluation default where it is measured to pay: on CPUs with native bf16 (AMX / AVX512-BF16), with OpenVINO
# installed, and for models on the CPU; elsewhere torch. See `default_encoder` and benchmarks/results/encode.json.
# openvino-bf16 met it: 4.1x ST fp32 on the sample, max |delta mAP| 0.0005 on full XQuAD-R (results/encode.json)
FAST_DEFAULT = "openvino-bf16"
DEFAULT_ENCODER = "torch"
CALIBRATION_TEXTS = 128  # openvino-int8: texts (the first ones encoded) that calibrate the activation ranges
EXPORT_CHECK_TOL = 1e-3  # max |cos difference| allowed between an fp32 export and PyTorch on the probe texts
PROBE_TEXTS = ("query: How many people live in Berlin?", "passage: Die Stadt hat 3,7 Millionen Einwohner.",
               "passage: Το νησί βρίσκεται στο νότιο Αιγαίο και έχει πολλές παραλίες.", "query: ما هي عاصمة مصر؟")


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first, so memory peaks at once), each batch padded
    only to its own longest member by the caller."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def export_root(cache_dir: Path | str | None) -> Path:
    if cache_dir:
        return Path(cache_dir) / "exported"
    from hybridbatch.models.embedded import cache_root

    return cache_root() / "exported"


def drop_exports(weights_sha256: str, cache_dir: Path | str | None = None) -> int:
    """Delete every cached export of one set of weights (all runtimes and lengths); returns the folders removed. A
    grid calls it once a trained cell is evaluated: ~1.3 GB per e5-small checkpoint that nothing will read again."""
    root = export_root(cache_dir)
    n = 0
    for d in root.glob(f"{weights_sha256[:16]}-*") if root.is_dir() else ():
        if d.is_dir():
            shutil.rmtree(d, ignore_errors=True)
            n += 1
    return n


class TorchEncoder:
    """`SentenceTransformer.encode` in fp32, fp16 or bf16; on several devices (`devices=['cuda:0', 'cuda:1']`) through
    sentence-transformers' multi-process encoding. Texts are length-sorted globally before ST's own batching."""

    name = "torch"

    def __init__(self, model: Any, precision: str = "fp32", devices: Sequence[str] | None = None):
        if precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self.precision = precision
        self.devices = list(devices) if devices else None
        self.model = model if precision == "fp32" else _cast_copy(model, precision)

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
    import copy

    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    return copy.deepcopy(model).to(dtype)


class ExportedEncoder:
    """The model's transformer in ONNX Runtime or OpenVINO; tokenisation, pooling and normalisation around it."""

    def __init__(self, model: Any, encoder: str, *, weights_sha256: str, cache_dir: Path | str | None = None,
                 threads: int | None = None):
        if encoder not in ENCODERS or encoder == "torch":
            raise UsageError(f"encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
        self.name = self.key = encoder
        self.tokenizer, self.max_length, self.pooling, self.normalize = _pipeline(model)
        self.threads = threads or len(os.sched_getaffinity(0))
        stored = "openvino" if encoder == "openvino-bf16" else encoder  # same graph, other runtime precision
        self.dir = export_root(cache_dir) / f"{weights_sha256[:16]}-{stored}-L{self.max_length}"
        self.input_names = ["input_ids", "attention_mask"]
        self._model = model
        self._run = None  # built lazily: int8 OpenVINO calibrates on the first texts it encodes

    # -- public ---------------------------------------------------------------------------------------------------

    def prepare(self, calibration: Sequence[str]) -> None:
        """Export / quantise / compile now; `calibration` (prompted texts) calibrates openvino-int8 when it has to be
        built (the caller passes a spread of the texts it will encode, not just the first batch)."""
        if self._run is None:
            self._run = self._load(list(calibration))

    def encode(self, texts: Sequence[str], prompt: str | None, batch_size: int) -> np.ndarray:
        full = [f"{prompt}{t}" if prompt else t for t in texts]
        if self._run is None:
            self._run = self._load(full)
        enc = self.tokenizer(full, truncation=True, max_length=self.max_length, padding=False)
        ids = enc["input_ids"]
        out = np.zeros((len(full), self._dim()), dtype=np.float32)
        for idx in length_batches([len(x) for x in ids], batch_size):
            width = max(len(ids[i]) for i in idx)
            input_ids = np.full((len(idx), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, i in enumerate(idx):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            hidden = self._run(input_ids, mask)
            out[idx] = self._pool(hidden, mask)
        return out

    # -- internals ------------------------------------------------------------------------------------------------

    def _dim(self) -> int:
        from hybridbatch.evaluation.encoding import embedding_dim

        return embedding_dim(self._model)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h = hidden.astype(np.float32)
        if self.pooling == "cls":
            return h[:, 0]
        m = mask[..., None].astype(np.float32)
        return (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)

    def _load(self, calibration: Sequence[str]):
        onnx_fp32 = self._export_onnx()
        if self.name == "onnx":
            return _ort_runner(onnx_fp32, self.threads)
        if self.name == "onnx-int8":
            return _ort_runner(self._quantize_onnx(onnx_fp32), self.threads)
        return _ov_runner(self._openvino(onnx_fp32, calibration), self.threads, OV_PRECISION[self.name])

    def _export_onnx(self) -> Path:
        base = self.dir.parent / f"{self.dir.name.split('-', 1)[0]}-onnx-L{self.max_length}"
        path = base / "model.onnx"
        if path.exists():
            return path
        import torch

        hf = self._model[0].auto_model.eval()

        class Body(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, input_ids, attention_mask):
                return self.m(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        enc = self.tokenizer(list(PROBE_TEXTS), padding=True, return_tensors="pt")
        tmp = base.with_name(base.name + f".tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(open(os.devnull, "w")), torch.no_grad():  # noqa: SIM115 - tracer warnings
            torch.onnx.export(
                Body(hf).float(), (enc["input_ids"], enc["attention_mask"]), str(tmp / "model.onnx"),
                input_names=self.input_names, output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*self.input_names, "last_hidden_state"]})
        self._check_export(_ort_runner(tmp / "model.onnx", self.threads), tmp)
        _publish(tmp, base)
        log.info("exported %s to ONNX in %.1fs (%s)", type(hf).__name__, time.perf_counter() - t0, base)
        return path

    def _check_export(self, run, where: Path) -> None:
        """An export must reproduce PyTorch (fp32) on the probe texts, padded batch included."""
        enc = self.tokenizer(list(PROBE_TEXTS), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="np")
        got = self._pool(run(enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)),
                         enc["attention_mask"])
        want = np.asarray(self._model.encode(list(PROBE_TEXTS), normalize_embeddings=False, convert_to_numpy=True),
                          dtype=np.float32)
        # a broken model (NaN / zero outputs) is not the export's fault: sanity.check_embeddings reports it
        ok = np.isfinite(want).all(axis=1) & (np.abs(want).sum(axis=1) > 0)
        cos = np.einsum("ij,ij->i", _unit(got[ok]), _unit(want[ok]))
        if not np.all(np.abs(1 - cos) < EXPORT_CHECK_TOL):
            shutil.rmtree(where, ignore_errors=True)
            raise ModelError(f"the ONNX export of this model does not reproduce PyTorch (cosine {cos.min():.4f} on "
                             f"probe texts); use --encoder torch")

    def _quantize_onnx(self, onnx_fp32: Path) -> Path:
        path = self.dir / "model_int8.onnx"
        if path.exists():
            return path
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = self.dir.with_name(self.dir.name + f".tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(str(onnx_fp32), str(tmp / "model_int8.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True)
        _publish(tmp, self.dir)
        return path

    def _openvino(self, onnx_fp32: Path, calibration: Sequence[str]) -> Path:
        path = self.dir / "model.xml"
        if path.exists():
            return path
        ov = _require("openvino", "openvino")
        model = ov.convert_model(str(onnx_fp32))
        if self.name == "openvino-int8":  # static int8 (SmoothQuant + per-tensor activations), nncf's defaults
            nncf = _require("nncf", "nncf")
            step = max(1, len(calibration) // CALIBRATION_TEXTS)  # an even spread of what was passed
            enc = self.tokenizer(list(calibration[::step][:CALIBRATION_TEXTS]), truncation=True,
                                 max_length=self.max_length)
            samples = [{"input_ids": np.array([i], dtype=np.int64), "attention_mask": np.ones((1, len(i)), np.int64)}
                       for i in enc["input_ids"]]
            model = nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(samples))
        tmp = self.dir.with_name(self.dir.name + f".tmp-{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        ov.save_model(model, str(tmp / "model.xml"))
        _publish(tmp, self.dir)
        return path


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished export into place in one rename (a concurrent exporter that won the race is kept)."""
    try:
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UsageError(f"this encoder needs the {package!r} package: pip install 'hybridbatch[fast]' "
                         f"(or pip install {package}), or use --encoder torch") from e


def _ort_runner(path: Path, threads: int):
    ort = _require("onnxruntime", "onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return sess.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]

    return run


def _ov_runner(path: Path, threads: int, precision: str = "f32"):
    ov = _require("openvino", "openvino")
    core = ov.Core()
    compiled = core.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                     "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()

    def run(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        res = request.infer({"input_ids": input_ids, "attention_mask": mask})
        return np.asarray(next(iter(res.values())))

    return run


def _pipeline(model: Any) -> tuple[Any, int, str, bool]:
    """(tokenizer, max length, pooling 'mean' | 'cls', normalises) of a Transformer + Pooling [+ Normalize] model;
    anything else cannot be run outside PyTorch here."""
    mods = list(model)
    names = [type(m).__name__ for m in mods]
    if len(mods) < 2 or names[0] != "Transformer" or names[1] != "Pooling" or any(
            n not in ("Normalize",) for n in names[2:]):
        raise UsageError(f"exported encoders support Transformer + Pooling [+ Normalize] models, not "
                         f"{' + '.join(names)}; use --encoder torch")
    pool = mods[1]
    mode = getattr(pool, "pooling_mode", None) or ("cls" if getattr(pool, "pooling_mode_cls_token", False) else
                                                  "mean" if getattr(pool, "pooling_mode_mean_tokens", False) else None)
    mode = {"mean": "mean", "cls": "cls"}.get(str(mode)) if mode else None
    include_prompt = getattr(pool, "include_prompt", True)
    if mode is None or not include_prompt:
        raise UsageError("exported encoders support mean or CLS pooling over the whole input (prompt included); "
                         "use --encoder torch")
    return model.tokenizer, int(model.max_seq_length), mode, "Normalize" in names


def default_encoder(model: Any = None) -> str:
    """`FAST_DEFAULT` when it can run here and was measured to be both faster and as accurate, else torch."""
    import importlib.util

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
    return default_encoder(model) if encoder == "auto" else encoder


def make_encoder(model: Any, encoder: str = "torch", *, identity: dict[str, Any] | None = None,
                 cache_dir: Path | str | None = None, precision: str = "fp32",
                 devices: Sequence[str] | None = None):
    """The runtime for `--encoder`: TorchEncoder or ExportedEncoder (exported once per weights, then cached)."""
    if encoder not in ENCODERS:
        raise UsageError(f"encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
    if encoder == "torch":
        return TorchEncoder(model, precision=precision, devices=devices)
    if precision != "fp32":
        raise UsageError(f"--precision {precision} applies to --encoder torch; {encoder} runs fp32 or int8")
    if identity is None:
        from hybridbatch.evaluation.encoding import model_identity

        identity = model_identity(model)
    _require("onnxruntime", "onnxruntime")
    _require("onnx", "onnx")
    return ExportedEncoder(model, encoder, weights_sha256=identity["weights_sha256"], cache_dir=cache_dir)
