"""The model's transformer exported to ONNX Runtime or OpenVINO, fp32 or int8: one class per runtime
(`OnnxRuntime`, `OpenVinoRuntime`) over a shared base that tokenises, pools and normalises around the exported graph.

Why not `SentenceTransformer(backend="onnx")`: that route needs optimum-onnx / optimum-intel, whose releases pin
transformers < 4.58 / < 5.6 (this project runs transformers 5.x), so it cannot be installed beside it. The export
is therefore done here with the same libraries optimum drives: `torch.onnx.export` of the Hugging Face module,
`onnxruntime.quantization.quantize_dynamic` (int8 weights, dynamic int8 activations: what
`export_dynamic_quantized_onnx_model` asks optimum for) and OpenVINO's own converter (`openvino.convert_model`; int8 by
`nncf.quantize`, the post-training quantisation behind `export_static_quantized_openvino_model`, calibrated on the
texts it is prepared with). Pooling and normalisation are the model's own modules' maths (mean or CLS pooling, L2),
run on the runtime's output; an export is checked against PyTorch on probe texts before it is used.

Exports are cached under `<cache>/exported/<weights sha256[:16]>-<runtime>-L<max length>/` (next to the embedding
cache; `models.embedded.cache_root()` without one), keyed by the model's weights, so a checkpoint is exported once.
Every runtime encodes each distinct text once, in batches of texts of similar token length, each padded only to its
own longest input (`length_batches`).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.errors import ModelError, UsageError
from hybridbatch.evaluation.model_info import embedding_dim, model_identity
from hybridbatch.models.embedded import cache_root

_log = logging.getLogger(__name__)

CALIBRATION_TEXTS = 128  # openvino-int8: texts (a spread of those passed to `prepare`) that calibrate activations
EXPORT_CHECK_TOL = 1e-3  # max |cos difference| allowed between an fp32 export and PyTorch on the probe texts
PROBE_TEXTS = ("query: How many people live in Berlin?", "passage: Die Stadt hat 3,7 Millionen Einwohner.",
               "passage: Το νησί βρίσκεται στο νότιο Αιγαίο και έχει πολλές παραλίες.", "query: ما هي عاصمة مصر؟")

Forward = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (input_ids, attention_mask) -> last hidden state


def length_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length (longest first, so memory peaks at once), each batch padded
    only to its own longest member by the caller."""
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def export_root(cache_dir: Path | str | None) -> Path:
    return (Path(cache_dir) if cache_dir else cache_root()) / "exported"


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


class ExportedRuntime:
    """Tokenisation, the exported graph, pooling: what ONNX Runtime and OpenVINO share. A subclass names its
    folder (`stored`) and builds its runner from the fp32 ONNX export (`_build`)."""

    key = "exported"
    stored = "exported"  # folder name part: runtimes sharing one graph (openvino / openvino-bf16) share it
    needs_calibration = False  # True: `prepare` must see a spread of the texts to come (static int8)

    def __init__(self, model: Any, *, weights_sha256: str, cache_dir: Path | str | None = None,
                 threads: int | None = None):
        self.tokenizer, self.max_length, self.pooling, self.normalize = _pipeline(model)
        self.threads = threads or len(os.sched_getaffinity(0))
        self.dir = export_root(cache_dir) / f"{weights_sha256[:16]}-{self.stored}-L{self.max_length}"
        self.input_names = ["input_ids", "attention_mask"]
        self._model = model
        self._run: Forward | None = None  # built lazily: int8 OpenVINO calibrates on the texts it is prepared with

    @classmethod
    def build(cls, model: Any, *, name: str, identity: dict[str, Any] | None, cache_dir: Path | str | None,
              precision: str, devices: Sequence[str] | None, **options: Any) -> ExportedRuntime:
        """The runtime `name` for `make_encoder`: exports run fp32 or int8 on the CPU, once per weights."""
        if precision != "fp32":
            raise UsageError(f"--precision {precision} applies to --encoder torch; {name} runs fp32 or int8")
        require("onnxruntime", "onnxruntime")
        require("onnx", "onnx")
        sha = (identity or model_identity(model))["weights_sha256"]
        return cls(model, weights_sha256=sha, cache_dir=cache_dir, **options)

    def prepare(self, calibration: Sequence[str]) -> None:
        """Export / quantise / compile now; `calibration` (prompted texts) calibrates static int8 when it has to be
        built (the caller passes a spread of the texts it will encode, not just the first batch)."""
        if self._run is None:
            self._run = self._build(self._export_onnx(), list(calibration))

    def encode(self, texts: Sequence[str], prompt: str | None, batch_size: int) -> np.ndarray:
        full = [f"{prompt}{t}" if prompt else t for t in texts]
        self.prepare(full)
        enc = self.tokenizer(full, truncation=True, max_length=self.max_length, padding=False)
        ids = enc["input_ids"]
        out = np.zeros((len(full), embedding_dim(self._model)), dtype=np.float32)
        for idx in length_batches([len(x) for x in ids], batch_size):
            width = max(len(ids[i]) for i in idx)
            input_ids = np.full((len(idx), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for r, i in enumerate(idx):
                input_ids[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            out[idx] = self._pool(self._run(input_ids, mask), mask)
        return out

    def _build(self, onnx_fp32: Path, calibration: Sequence[str]) -> Forward:
        raise NotImplementedError

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        h = hidden.astype(np.float32)
        if self.pooling == "cls":
            return h[:, 0]
        m = mask[..., None].astype(np.float32)
        return (h * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)

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
        tmp = _temp_dir(base)
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(open(os.devnull, "w")), torch.no_grad():  # noqa: SIM115 - tracer warnings
            torch.onnx.export(
                Body(hf).float(), (enc["input_ids"], enc["attention_mask"]), str(tmp / "model.onnx"),
                input_names=self.input_names, output_names=["last_hidden_state"], opset_version=17, dynamo=False,
                dynamic_axes={k: {0: "batch", 1: "seq"} for k in [*self.input_names, "last_hidden_state"]})
        self._check_export(_ort_runner(tmp / "model.onnx", self.threads), tmp)
        _publish(tmp, base)
        _log.info("exported %s to ONNX in %.1fs (%s)", type(hf).__name__, time.perf_counter() - t0, base)
        return path

    def _check_export(self, run: Forward, where: Path) -> None:
        """An export must reproduce PyTorch (fp32) on the probe texts, padded batch included."""
        enc = self.tokenizer(list(PROBE_TEXTS), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="np")
        got = self._pool(run(enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)),
                         enc["attention_mask"])
        want = np.asarray(self._model.encode(list(PROBE_TEXTS), normalize_embeddings=False, convert_to_numpy=True),
                          dtype=np.float32)
        # a broken model (NaN / zero outputs) is not the export's fault: embedding_checks reports it
        ok = np.isfinite(want).all(axis=1) & (np.abs(want).sum(axis=1) > 0)
        cos = np.einsum("ij,ij->i", _unit(got[ok]), _unit(want[ok]))
        if not np.all(np.abs(1 - cos) < EXPORT_CHECK_TOL):
            shutil.rmtree(where, ignore_errors=True)
            raise ModelError(f"the ONNX export of this model does not reproduce PyTorch (cosine {cos.min():.4f} on "
                             f"probe texts); use --encoder torch")


class OnnxRuntime(ExportedRuntime):
    """ONNX Runtime on the CPU: the fp32 export, or its dynamic int8 quantisation (`int8=True`)."""

    def __init__(self, model: Any, *, int8: bool = False, **kw: Any):
        self.key = self.stored = "onnx-int8" if int8 else "onnx"
        self.int8 = int8
        super().__init__(model, **kw)

    def _build(self, onnx_fp32: Path, calibration: Sequence[str]) -> Forward:
        return _ort_runner(self._quantize(onnx_fp32) if self.int8 else onnx_fp32, self.threads)

    def _quantize(self, onnx_fp32: Path) -> Path:
        path = self.dir / "model_int8.onnx"
        if path.exists():
            return path
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = _temp_dir(self.dir)
        quantize_dynamic(str(onnx_fp32), str(tmp / "model_int8.onnx"), weight_type=QuantType.QInt8,
                         per_channel=True)
        _publish(tmp, self.dir)
        return path


class OpenVinoRuntime(ExportedRuntime):
    """OpenVINO on the CPU: the converted graph in f32 or bf16 inference precision (set explicitly: the CPU plugin
    would silently run bf16 on CPUs with AMX / AVX512-BF16), or static int8 (`int8=True`, nncf, calibrated)."""

    def __init__(self, model: Any, *, inference_precision: str = "f32", int8: bool = False, **kw: Any):
        self.key = "openvino-int8" if int8 else ("openvino-bf16" if inference_precision == "bf16" else "openvino")
        self.stored = "openvino-int8" if int8 else "openvino"  # bf16 is the same graph, another runtime precision
        self.inference_precision, self.int8, self.needs_calibration = inference_precision, int8, int8
        super().__init__(model, **kw)

    def _build(self, onnx_fp32: Path, calibration: Sequence[str]) -> Forward:
        return _ov_runner(self._convert(onnx_fp32, calibration), self.threads, self.inference_precision)

    def _convert(self, onnx_fp32: Path, calibration: Sequence[str]) -> Path:
        path = self.dir / "model.xml"
        if path.exists():
            return path
        ov = require("openvino", "openvino")
        model = ov.convert_model(str(onnx_fp32))
        if self.int8:  # static int8 (SmoothQuant + per-tensor activations), nncf's defaults
            nncf = require("nncf", "nncf")
            step = max(1, len(calibration) // CALIBRATION_TEXTS)  # an even spread of what was passed
            enc = self.tokenizer(list(calibration[::step][:CALIBRATION_TEXTS]), truncation=True,
                                 max_length=self.max_length)
            samples = [{"input_ids": np.array([i], dtype=np.int64), "attention_mask": np.ones((1, len(i)), np.int64)}
                       for i in enc["input_ids"]]
            model = nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(samples))
        tmp = _temp_dir(self.dir)
        ov.save_model(model, str(tmp / "model.xml"))
        _publish(tmp, self.dir)
        return path


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _temp_dir(final: Path) -> Path:
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def _publish(tmp: Path, final: Path) -> None:
    """Move a finished export into place in one rename (a concurrent exporter that won the race is kept)."""
    try:
        tmp.rename(final)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.exists():
            raise


def require(module: str, package: str) -> Any:
    """Import an optional runtime package, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UsageError(f"this encoder needs the {package!r} package: pip install 'hybridbatch[fast]' "
                         f"(or pip install {package}), or use --encoder torch") from e


def _ort_runner(path: Path, threads: int) -> Forward:
    ort = require("onnxruntime", "onnxruntime")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return sess.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]

    return run


def _ov_runner(path: Path, threads: int, precision: str = "f32") -> Forward:
    ov = require("openvino", "openvino")
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
