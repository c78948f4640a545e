"""What produced a result file: git commit, versions, data checksums, wall time; and atomic writes so that a killed
process never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
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
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hybridbatch.errors import UsageError

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


def check_out_dir(path: Path | str, flag: str = "--out", *, lock: bool = True) -> Path:
    """Fail before the work, not after it: `path` must be a folder or creatable as one (see `check_writable_dir`).
    `lock=False` is for a root that several lanes share (a grid's or a pilot's `--out`, each lane with its own
    cells): each run inside takes its own folder's lock when it starts, so two lanes never train the same cell."""
    return check_writable_dir(path, flag, lock=lock)


def check_writable_dir(path: Path | str, flag: str = "--out", *, lock: bool = True) -> Path:
    """Fail before the work, not after it: `path` must be a writable folder or creatable as one. Checked by trying:
    no file in the way, no name longer than the filesystem allows, and a probe folder made and removed at once in
    the nearest existing folder (permission bits say nothing for root, and /proc or a read-only mount refuse only
    when tried). Raises UsageError naming `flag` and the path; creates nothing."""
    path = Path(path)
    absolute = path.absolute()
    parent = next(p for p in (absolute, *absolute.parents) if _exists(p))
    limit = _name_max(parent if parent.is_dir() else parent.parent)
    for part in absolute.relative_to(parent).parts:
        if len(os.fsencode(part)) > limit:
            raise UsageError(f"{flag} {path}: the name {part[:20]}... is {len(os.fsencode(part))} bytes long; this "
                             f"filesystem allows at most {limit}")
    if parent == absolute and not parent.is_dir():
        what = "a broken symbolic link" if not parent.exists() else "a file"
        raise UsageError(f"{flag} {path} is {what}; give a folder (it is created if missing)")
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: {parent} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".hybridbatch-probe-", dir=parent))
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot create a folder in {parent} ({e.strerror or e})") from None
    if flag == "--out" and lock:
        lock_out_dir(path, flag)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# An output folder holds one command's files.


@dataclass(frozen=True)
class OutFolder:
    """What one command writes into its --out, declared next to its writer, so that `check_out_folder` tells a
    re-run into its own earlier output (fine) from an --out that holds something else (a dataset's or a model's
    folder), among whose files the command would mix its own (an eval.json among `<lang>.json` files breaks
    `data check`).

    `entries`: fnmatch patterns of the names the command writes at the top level (a trailing '/' matches a folder
    only). `records`: patterns of JSON files it names after the user's choice (`sweep --name N` writes N.json), which
    a dataset's `<lang>.json` would match too; such a file is the command's only when it is a result file (see
    `result_kind`) of one of `kinds`. The message says `{command} writes {writes}`, and "not {what}'s"."""

    command: str
    what: str
    writes: str
    entries: tuple[str, ...]
    records: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()

    def owns(self, entry: Path) -> bool:
        """Whether `entry` (a top-level entry of an --out) is something this command writes there."""
        name, is_dir = entry.name, entry.is_dir()
        for pattern in self.entries:
            if pattern.endswith("/") and not is_dir:
                continue
            if fnmatch.fnmatchcase(name, pattern.rstrip("/")):
                return True
        return (not is_dir and any(fnmatch.fnmatchcase(name, p) for p in self.records)
                and result_kind(entry) in self.kinds)


_KIND_RE = re.compile(rb'\A\s*\{\s*"kind"\s*:\s*"([^"\\]{1,100})"')


def result_kind(path: Path) -> str | None:
    """The kind of a result file of this project (every result JSON starts with `{"kind": "<kind>"`: eval.json
    'lareqa', grid.json 'grid', ...), or None for any other file (a dataset's `<lang>.json`, a model's config.json,
    an unreadable file). Reads the first 256 bytes only."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    m = _KIND_RE.match(head)
    return m[1].decode("utf-8", "replace") if m else None


def holds_results(folder: Path) -> bool:
    """Whether `folder` holds another command's output: a result file (`result_kind`) at its top level. Results nest
    (`compare --out` a folder of evaluations, an evaluation inside a grid's folder: results/zero-shot/lsar), so such
    a folder is never foreign."""
    try:
        return any(result_kind(p) is not None for p in folder.glob("*.json") if p.is_file())
    except OSError:
        return False


def check_out_folder(path: Path | str, spec: OutFolder, flag: str = "--out", *, lock: bool = True) -> Path:
    """`check_out_dir`, and `path` must be new, empty, or hold only what `spec`'s command writes there (a previous
    run of it), hidden files (temps, locks) and subfolders holding other commands' results (`holds_results`).
    Anything else (a dataset's `<lang>.json`, a model's config.json or model.safetensors) is refused before any
    work, as `train` refuses a non-empty folder: UsageError naming the folder, up to three foreign entries and what
    the command writes. Reads names and the first bytes of a few JSON files; creates nothing but the lock."""
    out = check_writable_dir(path, flag, lock=lock)
    if not out.is_dir():
        return out
    try:
        foreign = sorted(p.name for p in out.iterdir()
                         if not (p.name.startswith(".") or spec.owns(p) or (p.is_dir() and holds_results(p))))
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot list the folder ({e.strerror or e})") from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UsageError(f"{out}: holds files that are not {spec.what}'s ({shown}); {spec.command} writes "
                         f"{spec.writes} into {flag}: choose a new or empty folder, or one holding {spec.what}")
    return out


# ---------------------------------------------------------------------------------------------------------------------
# One writer per output folder.

_OUT_LOCKS: contextvars.ContextVar[list[_OutLock] | None] = contextvars.ContextVar("hybridbatch_out_locks",
                                                                                  default=None)


@dataclass
class _OutLock:
    """An flock held on `.<folder>.lock` beside an output folder, and the folders made to hold it."""

    file: Path
    fd: int
    made: list[Path] = field(default_factory=list)

    def release(self) -> None:
        with contextlib.suppress(OSError):
            if os.stat(self.file).st_ino == os.fstat(self.fd).st_ino:
                self.file.unlink()  # while still holding the lock, so no one locks a file about to vanish
        os.close(self.fd)
        for d in reversed(self.made):
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty


@contextlib.contextmanager
def out_locks() -> Iterator[None]:
    """The scope in which every output folder checked by `check_out_dir` / `check_writable_dir(flag="--out")` gets
    one writer: a lock (`fcntl.flock` on `.<name>.lock` beside the folder, recording the holder's pid and command)
    taken before any work and released when the scope ends; the kernel releases it when a process dies, so a crash
    leaves a stale file that the next run takes over. The CLI runs every command in this scope."""
    held: list[_OutLock] = []
    token = _OUT_LOCKS.set(held)
    try:
        yield
    finally:
        _OUT_LOCKS.reset(token)
        for lock in reversed(held):
            lock.release()


def lock_out_dir(path: Path | str, flag: str = "--out") -> None:
    """Take the lock of output folder `path` for the current `out_locks` scope (nothing outside one, or on a
    distributed rank other than 0, whose rank 0 holds it). Another live holder: UsageError naming the folder and
    the holder's process."""
    held = _OUT_LOCKS.get()
    if held is None or os.environ.get("RANK", "0") != "0":
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return
    target = Path(os.path.realpath(Path(path).absolute()))
    file = target.parent / f".{target.name}.lock"
    if any(lock.file == file for lock in held):
        return
    made = [d for d in reversed(target.parents) if not _exists(d)]
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            for d in reversed(made):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise UsageError(f"{flag} {path}: another process is writing into this folder ({_holder(file)}); wait "
                             f"for it to finish, or choose another {flag}") from None
        with contextlib.suppress(OSError):
            if os.stat(file).st_ino == os.fstat(fd).st_ino:  # not unlinked by a releasing holder meanwhile
                break
        os.close(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:500],
            "since": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode("utf-8"))
    held.append(_OutLock(file, fd, made))


def _holder(file: Path) -> str:
    """Who holds a lock, from what it wrote into the lock file (it may not have written yet)."""
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']}, started {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return f"its lock is {file}"


def _exists(path: Path) -> bool:
    """Whether there is an entry (a broken symbolic link is one) at `path`; False also for a name too long, where
    Path.exists() raises."""
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _name_max(folder: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    return 255


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
