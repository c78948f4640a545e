"""Embeddings on disk, keyed by everything that changes them.

Why: evaluating a sweep re-evaluates the same model/data/settings; encoding is the slow part on CPU, so embeddings are
keyed by everything that changes them (model weights, data, context on/off, prefix, max length, the texts themselves)
and re-used. Entries are written crash-safely (`atomic_file`: temp + fsync + rename; the sidecar that commits an entry
is written last) and verified on load (shape + checksum): a truncated, half-written or stale entry is detected and
recomputed, never trusted; temp files left by a killed writer are removed once it is gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.provenance import atomic_file, sweep_temps

_log = logging.getLogger(__name__)


class EmbeddingCache:
    """Embeddings on disk under `root`: `<key>.npy` plus `<key>.json` (the settings it was made with, shape, dtype,
    sha256 of the array bytes). `key` hashes the settings, so any change of model, data or setting is a miss.

    Crash safety: the array is written first and the sidecar last, each with `atomic_file`, so an entry exists only
    once its sidecar does; an array without sidecar (writer killed in between), a sidecar whose checksum does not
    match the array, or a truncated file is `rejected` (counted, logged) and recomputed. Opening the cache removes
    temps left by dead writers (`temps_removed`)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0
        self.rejected = 0  # entries found but not trusted (incomplete, corrupt or stale), then recomputed
        self.temps_removed = sweep_temps(self.root)

    @staticmethod
    def key(meta: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def paths(self, meta: dict[str, Any]) -> tuple[Path, Path]:
        k = self.key(meta)
        return self.root / f"{k}.npy", self.root / f"{k}.json"

    def load(self, meta: dict[str, Any]) -> np.ndarray | None:
        """The cached array, or None when missing, stale (settings differ) or corrupt (bad size/checksum)."""
        npy, side = self.paths(meta)
        if not npy.exists() and not side.exists():
            return None
        if not npy.exists() or not side.exists():
            self.rejected += 1
            _log.warning("embedding cache entry %s is incomplete (%s missing; interrupted write?); recomputing",
                        npy.stem, side.name if npy.exists() else npy.name)
            return None
        try:
            info = json.loads(side.read_text(encoding="utf-8"))
            if json.loads(json.dumps(meta, sort_keys=True, default=str)) != info.get("meta"):
                self.rejected += 1
                _log.warning("embedding cache %s is stale (settings differ); recomputing", npy.name)
                return None
            arr = np.load(npy, allow_pickle=False)
            if list(arr.shape) != info["shape"] or str(arr.dtype) != info["dtype"]:
                raise ValueError("shape/dtype mismatch")
            if hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest() != info["sha256"]:
                raise ValueError("checksum mismatch")
            return arr
        except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, json.JSONDecodeError) as e:
            self.rejected += 1
            _log.warning("embedding cache %s is corrupt (%s); recomputing", npy.name, e)
            return None

    def save(self, meta: dict[str, Any], arr: np.ndarray) -> None:
        """Array first, sidecar (the commit record, with the array's checksum) last; an old sidecar is removed
        before the array is replaced, so no moment exists where a sidecar vouches for a different array."""
        npy, side = self.paths(meta)
        arr = np.ascontiguousarray(arr)
        body = json.dumps({
            "meta": meta, "shape": list(arr.shape), "dtype": str(arr.dtype),
            "sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        }, indent=2, default=str) + "\n"
        with contextlib.suppress(FileNotFoundError):
            side.unlink()
        with atomic_file(npy) as f:
            np.save(f, arr, allow_pickle=False)
        with atomic_file(side) as f:
            f.write(body.encode("utf-8"))

    def get_or_compute(self, meta: dict[str, Any], compute: Callable[[], np.ndarray]) -> np.ndarray:
        arr = self.load(meta)
        if arr is not None:
            self.hits += 1
            return arr
        self.misses += 1
        arr = compute()
        self.save(meta, arr)
        return arr

