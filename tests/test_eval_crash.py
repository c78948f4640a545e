"""Crash safety of `hybridbatch eval`: SIGKILL the command while it encodes and writes its embedding cache (and
while it writes its outputs), run the same command again, and require metrics identical to an uninterrupted run in
a fresh folder, with no temp file left and no half-written cache entry trusted.

Kill points (each its own cache + output folder; what each leaves behind is asserted, then the re-run):
- deterministic fault injection in a forked copy of the CLI (a "zygote" process imports hybridbatch.cli and
  sentence-transformers once, then forks one child per command, so a run costs the command, not the ~10 s CPU of
  importing torch): SIGKILL inside the 2nd `encode` call; half-way through writing the 3rd cache array; with the 3rd
  array's temp complete but not renamed; right after it is renamed (array without sidecar); with its sidecar's temp
  complete but not renamed; half-way through writing per_query.npz over the outputs of an earlier run;
- a real `python -m hybridbatch.cli eval` subprocess killed from outside as soon as its first cache entry is committed;
- forked CLI children killed from outside after random delays (seed $HYBRIDBATCH_CRASH_SEED, default 22, so a failure
  replays; printed on failure; $HYBRIDBATCH_CRASH_REPEATS kills, default 2) drawn over the reference run's
  encode-and-cache phase, counted from the first file in the cache folder;
- a torn cache (one array truncated, one sidecar checksum wrong: what a crash on a filesystem without atomic rename
  could leave): both entries are rejected and recomputed.
Set $HYBRIDBATCH_CRASH_RECORD to a file to get the record of every kill point (state at the kill, re-run counters).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("eval-crash")]

LANGS = ("de", "en", "ru", "zh")
N_ARTICLES = 2
ENV = {
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
}
SEED = int(os.environ.get("HYBRIDBATCH_CRASH_SEED", "22"))  # the kill delays: fixed, so a failure replays
COMPARED = ("summary", "pairs", "per_language", "counts", "languages", "checksum", "dataset", "tie_rule")

ZYGOTE = r'''
import io, json, os, signal, sys, traceback
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot
import sentence_transformers
import hybridbatch.cli
import hybridbatch.evaluation.lareqa, hybridbatch.report.evaluation, hybridbatch.data, hybridbatch.models  # preload only: no torch op runs before fork


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def half_then_die(orig, f, *a, **kw):
    buf = io.BytesIO()
    orig(buf, *a, **kw)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    os.fsync(f.fileno())
    die()


def install(fault):
    kind, at, n = fault.get("kind"), fault.get("at", 1), [0]
    if kind == "encode":  # SIGKILL inside the at-th SentenceTransformer.encode call
        orig_enc = sentence_transformers.SentenceTransformer.encode

        def encode(self, *a, **kw):
            n[0] += 1
            if n[0] == at:
                die()
            return orig_enc(self, *a, **kw)
        sentence_transformers.SentenceTransformer.encode = encode
    elif kind in ("npy_partial", "npz_partial"):  # the at-th np.save / np.savez_compressed writes half, then SIGKILL
        name = "save" if kind == "npy_partial" else "savez_compressed"
        orig = getattr(np, name)

        def save(f, *a, **kw):
            n[0] += 1
            if n[0] == at:
                half_then_die(orig, f, *a, **kw)
            return orig(f, *a, **kw)
        setattr(np, name, save)
    elif kind in ("rename_before", "rename_after"):  # around the at-th os.replace onto a name ending in suffix
        orig_rep = os.replace

        def replace(src, dst, *a, **kw):
            if str(dst).endswith(fault["suffix"]):
                n[0] += 1
                if n[0] == at:
                    if kind == "rename_after":
                        orig_rep(src, dst, *a, **kw)
                    die()
            return orig_rep(src, dst, *a, **kw)
        os.replace = replace


def watch_and_kill(pid, spec):
    """Parent side: once a file matching spec["pattern"] is in spec["dir"], wait spec["delay"] s, then SIGKILL the
    child, unless it has exited (it is not reaped before this returns, so its pid cannot be reused meanwhile)."""
    import glob, time
    pattern = os.path.join(spec["dir"], spec.get("pattern", "*"))
    while not glob.glob(pattern):
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return "exited before the watched file appeared"
        time.sleep(0.001)
    end = time.monotonic() + spec["delay"]
    while time.monotonic() < end:
        time.sleep(min(0.005, max(0.0, end - time.monotonic())))
    os.kill(pid, signal.SIGKILL)  # harmless on a finished, not yet reaped child
    return None


print(json.dumps({"ready": os.getpid()}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            install(req.get("fault") or {})
            sys.argv = ["hybridbatch", *req["argv"]]
            try:
                hybridbatch.cli.main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    note, status = None, None
    if req.get("kill"):
        note = watch_and_kill(pid, req["kill"])
    try:
        _, st = os.waitpid(pid, 0)
        status = os.waitstatus_to_exitcode(st)
    except ChildProcessError:  # reaped by the WNOHANG poll above
        status = "reaped"
    print(json.dumps({"status": status, "note": note}), flush=True)
'''


class Zygote:
    """One Python process with the CLI imported; `start(argv)` forks a child running `hybridbatch <argv>`."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=open(workdir / "zygote.err", "wb"), text=True, env={**os.environ, **ENV})
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._get(300)  # ready

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put({"eof": True})

    def _get(self, timeout: float) -> dict:
        try:
            msg = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"zygote: no answer in {timeout} s; {(self.workdir / 'zygote.err').read_text()}")
        assert "eof" not in msg, (self.workdir / "zygote.err").read_text()
        return msg

    def run(self, argv: list[str], log: Path, fault: dict | None = None, kill: dict | None = None) -> int:
        """Run `hybridbatch <argv>` in a forked child (output to `log`); `fault`: a kill point inside it; `kill`:
        {dir, pattern, delay}: SIGKILL it from outside `delay` s after a file matching `pattern` appears in `dir`.
        Returns the exit status (-9 when killed)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log), "fault": fault or {}, "kill": kill}) + "\n")
        self.proc.stdin.flush()
        msg = self._get(600)
        assert msg["status"] != "reaped", msg
        return msg["status"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---- fixtures --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")  # session: survives other modules' tests on this worker
def crash_data(tmp_path_factory, shared_data) -> Path:
    """A real LAReQA cut: the first 2 articles of XQuAD-R in de, en, ru, zh."""
    out = tmp_path_factory.mktemp("crash-data")
    for lang in LANGS:
        obj = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        obj["data"] = obj["data"][:N_ARTICLES]
        (out / f"{lang}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return out


@pytest.fixture(scope="session")  # session: survives other modules' tests on this worker
def zygote(tmp_path_factory):
    z = Zygote(tmp_path_factory.mktemp("zygote"))
    yield z
    z.close()


@pytest.fixture(scope="session")  # session: survives other modules' tests on this worker
def eval_args(tiny_model, crash_data):
    def args(work: Path) -> list[str]:
        return ["eval", "--model", str(tiny_model), "--data", str(crash_data), "--split", "all", "--no-progress",
                "--batch-size", "8", "--encoder", "torch", "--cache-dir", str(work / "cache"), "--out",
                str(work / "out")]  # torch: the kill points sit in SentenceTransformer.encode
    return args


@pytest.fixture(scope="session")  # session: survives other modules' tests on this worker
def reference(zygote, eval_args, tmp_path_factory) -> dict:
    """The uninterrupted run in a fresh folder."""
    work = tmp_path_factory.mktemp("reference")
    assert zygote.run(eval_args(work), work / "log.txt") == 0, (work / "log.txt").read_text()
    return {**load_run_files(work), "work": work}


@pytest.fixture(scope="session")  # session: survives other modules' tests on this worker
def record():
    rec: list[dict] = []
    yield rec
    dest = os.environ.get("HYBRIDBATCH_CRASH_RECORD")
    if dest:
        Path(dest).write_text(json.dumps(rec, indent=2) + "\n")


# ---- checks ----------------------------------------------------------------------------------------------------------


def load_run_files(work: Path) -> dict:
    body = json.loads((work / "out" / "eval.json").read_text())
    with np.load(work / "out" / "per_query.npz", allow_pickle=False) as z:
        pq = {k: z[k] for k in z.files}
    cache = {p.name: p.read_bytes() for p in sorted((work / "cache").iterdir())}
    return {"body": body, "per_query": pq, "cache": cache}


def temps(*folders: Path) -> list[str]:
    return sorted(p.name for f in folders if f.exists() for p in f.iterdir() if p.name.endswith(".tmp"))


def cache_state(cache: Path) -> dict:
    """What a kill left: committed entries (sidecar present), arrays without sidecar, temp files; and whether every
    committed entry's array matches its checksum (a committed entry must never be corrupt)."""
    if not cache.exists():
        return {"committed": 0, "committed_valid": 0, "orphan_arrays": 0, "temps": []}
    sides = [p for p in cache.glob("*.json")]
    valid = 0
    for side in sides:
        info = json.loads(side.read_text())
        npy = side.with_suffix(".npy")
        if npy.exists():
            arr = np.load(npy, allow_pickle=False)
            valid += hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest() == info["sha256"]
    arrays = {p.stem for p in cache.glob("*.npy")}
    return {"committed": len(sides), "committed_valid": valid, "orphan_arrays": len(arrays - {p.stem for p in sides}),
            "temps": temps(cache)}


def assert_same_as_reference(work: Path, ref: dict, what: str) -> dict:
    got = load_run_files(work)
    for key in COMPARED:
        assert got["body"][key] == ref["body"][key], f"{what}: eval.json {key} differs from the uninterrupted run"
    assert set(got["per_query"]) == set(ref["per_query"])
    for k, v in ref["per_query"].items():
        assert np.array_equal(got["per_query"][k], v, equal_nan=v.dtype.kind == "f"), f"{what}: per_query[{k}] differs"
    # the re-built cache is byte-identical to the one the uninterrupted run wrote (same keys, same arrays)
    assert {k: v for k, v in got["cache"].items() if k.endswith(".npy")} == {
        k: v for k, v in ref["cache"].items() if k.endswith(".npy")}, f"{what}: cache arrays differ"
    assert temps(work / "cache", work / "out") == [], f"{what}: temp files left behind"
    from hybridbatch.analysis.significance import load_run

    load_run(work / "out")  # per_query.npz matches the checksum recorded in eval.json
    return got["body"]["settings"]


def kill_and_resume(zygote, eval_args, reference, record, tmp_path, name: str, fault: dict, expect: dict,
                    prepare=None) -> None:
    work = tmp_path / name
    work.mkdir()
    if prepare:
        prepare(work)
    status = zygote.run(eval_args(work), work / "killed.log", fault)
    assert status == -signal.SIGKILL, f"{name}: the fault did not fire (exit {status}): " + (
        work / "killed.log").read_text()[-3000:]
    state = cache_state(work / "cache")
    state["out_temps"], state["out_eval_json"] = temps(work / "out"), (work / "out" / "eval.json").exists()
    assert state["committed_valid"] == state["committed"], f"{name}: a committed cache entry is corrupt: {state}"
    for k, v in expect.get("state", {}).items():
        assert state[k] == v, f"{name}: after the kill {k} = {state[k]!r}, expected {v!r} ({state})"
    assert zygote.run(eval_args(work), work / "rerun.log") == 0, (work / "rerun.log").read_text()[-3000:]
    settings = assert_same_as_reference(work, reference, name)
    counters = {k: settings[k] for k in ("cache_hits", "cache_misses", "cache_rejected", "cache_temps_removed")}
    for k, v in expect.get("rerun", {}).items():
        assert counters[k] == v, f"{name}: re-run {k} = {counters[k]}, expected {v} ({counters})"
    record.append({"kill_point": name, "how": fault, "state_at_kill": state, "rerun": counters, "identical": True})


# ---- tests -----------------------------------------------------------------------------------------------------------

N_ENTRIES = 2 * len(LANGS)  # passages + queries per language

INJECTED = {
    # name: (fault, expected state after the kill, expected re-run counters)
    "in-encode-2": ({"kind": "encode", "at": 2},
                    {"committed": 1, "orphan_arrays": 0, "temps": []},
                    {"cache_hits": 1, "cache_misses": N_ENTRIES - 1, "cache_rejected": 0, "cache_temps_removed": 0}),
    "half-written-array-3": ({"kind": "npy_partial", "at": 3},
                             {"committed": 2, "orphan_arrays": 0},
                             {"cache_hits": 2, "cache_misses": N_ENTRIES - 2, "cache_rejected": 0,
                              "cache_temps_removed": 1}),
    "array-temp-not-renamed-3": ({"kind": "rename_before", "suffix": ".npy", "at": 3},
                                 {"committed": 2, "orphan_arrays": 0},
                                 {"cache_hits": 2, "cache_temps_removed": 1}),
    "array-without-sidecar-3": ({"kind": "rename_after", "suffix": ".npy", "at": 3},
                                {"committed": 2, "orphan_arrays": 1, "temps": []},
                                {"cache_hits": 2, "cache_misses": N_ENTRIES - 2, "cache_rejected": 1,
                                 "cache_temps_removed": 0}),
    "sidecar-temp-not-renamed-3": ({"kind": "rename_before", "suffix": ".json", "at": 3},
                                   {"committed": 2, "orphan_arrays": 1},
                                   {"cache_hits": 2, "cache_rejected": 1, "cache_temps_removed": 1}),
}


@pytest.mark.parametrize("name", list(INJECTED))
def test_kill_during_encoding_then_resume(name, zygote, eval_args, reference, record, tmp_path):
    fault, state, rerun = INJECTED[name]
    kill_and_resume(zygote, eval_args, reference, record, tmp_path, name, fault, {"state": state, "rerun": rerun})


def test_kill_while_writing_outputs_over_an_earlier_run(zygote, eval_args, reference, record, tmp_path):
    """Killed half-way through per_query.npz while an earlier run's outputs are in --out: the old eval.json (the
    commit record) is gone, so nothing pairs old and new files; the re-run uses the full cache and cleans up."""
    def prepare(work: Path) -> None:
        (work / "out").mkdir()
        for f in ("eval.json", "per_query.npz", "eval.md"):
            shutil.copy(reference["work"] / "out" / f, work / "out" / f)
    kill_and_resume(zygote, eval_args, reference, record, tmp_path, "half-written-per_query.npz",
                    {"kind": "npz_partial", "at": 1},
                    {"state": {"committed": N_ENTRIES, "out_eval_json": False},
                     "rerun": {"cache_hits": N_ENTRIES, "cache_misses": 0}}, prepare)
    assert record[-1]["state_at_kill"]["out_temps"], "the kill should have left a temp of per_query.npz"


def test_torn_cache_entries_are_rejected(zygote, eval_args, reference, record, tmp_path):
    """No kill can produce these with atomic renames, but a filesystem that loses data might: a truncated array and
    a sidecar whose checksum does not match are both detected and recomputed."""
    work = tmp_path / "torn"
    (work / "cache").mkdir(parents=True)
    for name, data in reference["cache"].items():
        (work / "cache" / name).write_bytes(data)
    arrays = sorted((work / "cache").glob("*.npy"))
    arrays[0].write_bytes(arrays[0].read_bytes()[: arrays[0].stat().st_size // 2])
    side = arrays[1].with_suffix(".json")
    info = json.loads(side.read_text())
    info["sha256"] = "0" * 64
    side.write_text(json.dumps(info))
    assert zygote.run(eval_args(work), work / "rerun.log") == 0, (work / "rerun.log").read_text()[-3000:]
    settings = assert_same_as_reference(work, reference, "torn")
    assert (settings["cache_rejected"], settings["cache_misses"], settings["cache_hits"]) == (2, 2, N_ENTRIES - 2)
    record.append({"kill_point": "torn-cache (truncated array + wrong checksum)", "rerun": {
        k: settings[k] for k in ("cache_hits", "cache_misses", "cache_rejected")}, "identical": True})


def wait_for(cond, timeout: float, poll: float = 0.001) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll)
    return False


def test_real_cli_process_killed_from_outside(zygote, eval_args, reference, record, tmp_path):
    """`python -m hybridbatch.cli eval ...` SIGKILLed as soon as its first cache entry is committed; the same
    command (here through the zygote) finishes with the uninterrupted run's numbers and reuses that entry."""
    work = tmp_path / "real-process"
    work.mkdir()
    cache = work / "cache"
    with open(work / "killed.log", "wb") as log:
        p = subprocess.Popen([sys.executable, "-m", "hybridbatch.cli", *eval_args(work)], stdout=log, stderr=log,
                             env={**os.environ, **ENV})
        fired = wait_for(lambda: cache.exists() and any(cache.glob("*.json")) or p.poll() is not None, 600)
        p.send_signal(signal.SIGKILL)
        p.wait(60)
    assert fired and p.returncode == -signal.SIGKILL, (work / "killed.log").read_text()[-3000:]
    state = cache_state(cache)
    assert state["committed"] >= 1 and state["committed_valid"] == state["committed"], state
    assert zygote.run(eval_args(work), work / "rerun.log") == 0, (work / "rerun.log").read_text()[-3000:]
    settings = assert_same_as_reference(work, reference, "real-process")
    assert settings["cache_hits"] >= 1
    record.append({"kill_point": "real `python -m hybridbatch.cli eval`, SIGKILL at first committed entry",
                   "state_at_kill": state, "rerun": {k: settings[k] for k in ("cache_hits", "cache_misses",
                                                                             "cache_rejected", "cache_temps_removed")},
                   "identical": True})


@pytest.mark.parametrize("i", range(int(os.environ.get("HYBRIDBATCH_CRASH_REPEATS", "2"))))
def test_killed_after_random_delay(i, zygote, eval_args, reference, record, tmp_path):
    """SIGKILL from outside at a random moment of the encode-and-cache phase: the delay, counted from the first
    file in the cache folder, is uniform over the time the uninterrupted run took from its first array to its last
    committed entry."""
    ref_cache = reference["work"] / "cache"
    window = max(p.stat().st_mtime for p in ref_cache.glob("*.json")) - min(
        p.stat().st_mtime for p in ref_cache.glob("*.npy"))
    delay = float(np.random.default_rng([SEED, i]).uniform(0, max(window, 0.05)))
    seed, span = SEED, window
    work = tmp_path / f"random-{i}"
    work.mkdir()
    status = zygote.run(eval_args(work), work / "killed.log", kill={"dir": str(work / "cache"), "delay": delay})
    state = cache_state(work / "cache")
    state["out_temps"] = temps(work / "out")
    msg = f"seed {seed}, delay {delay:.3f} s of {span:.2f} s: {state}"
    assert state["committed_valid"] == state["committed"], msg
    assert zygote.run(eval_args(work), work / "rerun.log") == 0, msg + (work / "rerun.log").read_text()[-3000:]
    settings = assert_same_as_reference(work, reference, msg)
    record.append({"kill_point": f"external SIGKILL {delay:.3f} s after the first cache file (seed {seed}, i {i})",
                   "killed": status == -signal.SIGKILL, "state_at_kill": state,
                   "rerun": {k: settings[k] for k in ("cache_hits", "cache_misses", "cache_rejected",
                                                      "cache_temps_removed")}, "identical": True})
