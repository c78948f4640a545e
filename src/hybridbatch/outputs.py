"""Output folders: writable before the work starts, holding only the command's own files, and one writer at a time
(a lock beside the folder). Every command that writes an `--out` goes through here."""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import json
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hybridbatch.errors import UsageError


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
