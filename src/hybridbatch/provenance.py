"""What produced a result file: git commit, versions, data checksums, wall time; and atomic writes so that a killed
process never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import platform
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

_log = logging.getLogger(__name__)

# The library's progress callback, (stage, done, total): how a caller (the CLI's bars) follows long work; the
# library itself draws nothing.
Progress = Callable[[str, int, int], None]


def git_commit(start: Path | None = None) -> str:
    """The commit of the checkout the code runs from ('+dirty' when it has changes), or 'unknown' outside git."""
    here = Path(start or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.cache
def process_commit() -> str:
    """The commit of the code this process runs: read once (the CLI reads it at start-up), so a sweep that lasts
    hours records the commit it started from, not wherever HEAD has moved since."""
    return git_commit()


def sha256_file(path: Path | str) -> str:
    """Checksum of one file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_files(paths: Iterable[Path]) -> str:
    """One checksum over several files, independent of the order given (sorted by name)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def environment() -> dict[str, str]:
    """Library versions that change numbers when they change."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("hybridbatch", "torch", "sentence-transformers", "transformers", "numpy", "faiss-cpu"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def provenance(**extra: Any) -> dict[str, Any]:
    """The block every result file carries; callers add model, data checksum, seed, settings, wall time."""
    return {
        "git_commit": process_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": environment(),
        **extra,
    }


def jsonable(o: Any) -> Any:
    """JSON-safe copy: NaN / inf -> None (JSON has no NaN; an undefined measure is null), numpy -> Python, keys -> str."""
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in (o.tolist() if isinstance(o, np.ndarray) else o)]
    if isinstance(o, (float, np.floating)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    return o


def _default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def _tmp_path(path: Path) -> Path:
    """`.<name>.<host>-<pid>-<random>.tmp` beside `path`: says who wrote it, so `sweep_temps` can tell a dead
    writer's leftovers from a live writer's file."""
    return path.with_name(f".{path.name}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


@contextlib.contextmanager
def atomic_file(path: Path | str) -> Iterator[BinaryIO]:
    """Write `path` all or nothing: the data go to `.<name>.<host>-<pid>-<random>.tmp` beside it, are flushed and
    fsync'ed, then renamed over `path` (atomic on POSIX). An exception removes the temp; a SIGKILL or power loss
    leaves it behind, and because its name says which process on which host wrote it, `sweep_temps` removes it
    once that process is gone. Nothing ever reads a temp."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "xb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: exists, owned by someone else
        return True
    with contextlib.suppress(OSError, IndexError):  # a killed but not yet reaped process is a zombie: gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def sweep_temps(folder: Path | str, names: Iterable[str] | None = None) -> int:
    """Delete the temp files in `folder` that `atomic_file` writers on this host left when they died (their process
    no longer exists); `names` limits it to temps of those file names. Returns how many were removed. Temps of live
    processes (a concurrent writer), of other hosts and of this process are kept."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    host, me, wanted = _host_tag(), os.getpid(), set(names) if names is not None else None
    removed = 0
    for p in folder.glob(".*.tmp"):
        m = _TMP_RE.match(p.name)
        if m is None or m["host"] != host or (wanted is not None and m["name"] not in wanted):
            continue
        pid = int(m["pid"])
        if pid == me or _process_alive(pid):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed += 1
    if removed:
        _log.info("removed %d temp file(s) left in %s by interrupted writers", removed, folder)
    return removed


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """`atomic_file` for writers that want a path (numpy, shutil, HTTP downloads): yield the temp path, rename it
    over `path` on success; an exception deletes it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_json(path: Path | str, obj: Any) -> Path:
    """Write JSON atomically (numpy scalars and arrays allowed)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=_default) + "\n", encoding="utf-8")
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


class Timer:
    """Named wall-clock sections: `with timer("encode"): ...`; `timer.seconds` is a dict for result files."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
