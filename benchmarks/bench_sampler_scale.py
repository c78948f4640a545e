"""The sampling path at the paper's scale: sampler index build, memory and per-batch cost at 1M, 10M and 100M rows.

Data: synthetic pair rows of 7 languages, every id in all 7 and every (query, passage) language pair (49 rows per
id, id-major as `pairs_from_long` writes them): rows_total = 49 x ids. Ids are scrambled integers (like mMARCO's
query ids), one id in ten shares its answer group with the next id (translated duplicates), and every (id, passage
language) has a hard negative of another id's group; so all of the samplers' key columns are read.

Modes (each size and mode in its own subprocess, so that its peak RSS, `ru_maxrss` of the child, is its own):
- numpy: the columns as numpy arrays (ids / groups int32, languages an Arrow DictionaryArray of int8 codes), given
  to the samplers as a mapping (`PairIndex.from_dataset` reads any mapping of arrays);
- arrow: the same rows written to an Arrow file and opened memory-mapped with `datasets.Dataset.from_file` (what a
  user's preprocessed dataset is); its touched file pages count in its RSS (reported apart as `rss_file_mib`);
- old (the baseline, 1M only): the index and samplers of commit --old (Python lists per row) on the same Arrow file,
  run from `git archive` of that commit;
- argsort (the floor): a stable numpy argsort of the rows' (id, language pair) keys, the least an index sorting
  the rows by id and languages costs.
Measured per mode: index build seconds (PairIndex.from_dataset), the index's array bytes per row, and for the xx,
xy and hybrid samplers (batch 32, one process) the sampler's construction, a warm-up (the first pass's shuffle of
each language's queue) and the milliseconds per batch over the next batches; then hybrid at 8 simulated ranks
(batch 32 x 8, accelerate's BatchSamplerShard): every rank's batches equal its share of the single-process plan,
no id twice in a step, one kind per step; separate rank processes (own index, own PYTHONHASHSEED) must reproduce
their rank's batches exactly. Plans of every mode are hashed: numpy, arrow and old must draw the same batches.
Targets (issue 20): 100M rows under 4 GiB peak RSS, index build under 60 s, under 1 ms per batch.

Usage: python benchmarks/bench_sampler_scale.py [--sizes 1000000,10000000,100000000] [--old 9ec9396]
       [--batches 1000] [--rank-procs 1000000:8,10000000:8] [--modes numpy,arrow,argsort]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LANGS = ["ar", "de", "en", "es", "hi", "vi", "zh"]
L = len(LANGS)
MIB = 2**20
KINDS = ("xx", "xy", "hybrid")
BATCH = 32
WORLD = 8
MIX = 2654435761  # an odd multiplier: id -> scrambled id is a bijection mod 2**31


def n_ids_for(rows: int) -> int:
    return -(-rows // (L * L))


def synthetic(n_ids: int, a: int, b: int) -> dict[str, np.ndarray]:
    """Rows a..b of the synthetic pair data: id, query/passage language codes, group and negative group values."""
    r = np.arange(a, b, dtype=np.int64)
    rid, pair = r // (L * L), r % (L * L)
    q, p = (pair // L).astype(np.int8), (pair % L).astype(np.int8)

    def value(i: np.ndarray) -> np.ndarray:
        return ((i * MIX + 12345) % 2**31).astype(np.int32)

    def group_of(i: np.ndarray) -> np.ndarray:
        return np.where((i % 10 == 0) & (i + 1 < n_ids), i + 1, i)  # id 10k shares its answer with id 10k+1

    off = (rid * 40503 + p.astype(np.int64) * 9973) % max(1, n_ids - 1) + 1
    nid = group_of((rid + off) % n_ids)
    nid = np.where(nid == group_of(rid), group_of((nid + 2) % n_ids), nid)  # never the row's own group
    return {"id": value(rid), "query_lang": q, "passage_lang": p, "group": value(group_of(rid)),
            "negative_group": value(nid)}


def synthetic_columns(n_ids: int, chunk: int = 1 << 21) -> dict[str, np.ndarray]:
    """All rows, generated a chunk at a time into the final arrays (the generator's int64 temporaries stay small)."""
    total = n_ids * L * L
    dtypes = {"id": np.int32, "query_lang": np.int8, "passage_lang": np.int8, "group": np.int32,
              "negative_group": np.int32}
    out = {k: np.empty(total, dt) for k, dt in dtypes.items()}
    for a in range(0, total, chunk):
        for k, v in synthetic(n_ids, a, min(total, a + chunk)).items():
            out[k][a:a + len(v)] = v
    return out


def write_arrow(path: Path, n_ids: int, chunk: int = 1 << 21) -> None:
    """The synthetic rows as an Arrow stream file (datasets' on-disk format), languages as strings."""
    import pyarrow as pa

    names = pa.array(LANGS)
    schema = pa.schema([("id", pa.int32()), ("query_lang", pa.string()), ("passage_lang", pa.string()),
                        ("group", pa.int32()), ("negative_group", pa.int32())])
    total = n_ids * L * L
    with pa.OSFile(str(path), "wb") as f, pa.ipc.new_stream(f, schema) as w:
        for a in range(0, total, chunk):
            c = synthetic(n_ids, a, min(total, a + chunk))
            cols = [pa.array(c["id"]), names.take(pa.array(c["query_lang"])), names.take(pa.array(c["passage_lang"])),
                    pa.array(c["group"]), pa.array(c["negative_group"])]
            w.write_table(pa.Table.from_arrays(cols, schema=schema), max_chunksize=1 << 16)


class AnonPeak:
    """The peak of RssAnon (process memory that is not file pages), sampled every 20 ms in a thread."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, status("RssAnon"))

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak, status("RssAnon"))


def status(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def max_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(args) -> tuple[object, int]:
    """The mode's dataset (a mapping of arrays or a memory-mapped datasets.Dataset) and its input bytes."""
    if args.mode in ("numpy", "argsort"):
        import pyarrow as pa

        c = synthetic_columns(args.n_ids)
        names = pa.array(LANGS)
        data = {"id": c["id"], "group": c["group"], "negative_group": c["negative_group"],
                "query_lang": pa.DictionaryArray.from_arrays(pa.array(c.pop("query_lang")), names),
                "passage_lang": pa.DictionaryArray.from_arrays(pa.array(c.pop("passage_lang")), names)}
        return data, sum(v.nbytes for v in data.values())
    from datasets import Dataset

    ds = Dataset.from_file(args.arrow)
    return ds, os.path.getsize(args.arrow)


def array_bytes(obj: object) -> int:
    """Bytes of an index's numpy arrays (the new index reports its own, the old one is a dataclass of arrays)."""
    if hasattr(obj, "nbytes") and callable(obj.nbytes):
        return int(obj.nbytes())
    total = 0
    for v in vars(obj).values():
        for a in (v if isinstance(v, list) else [v]):
            total += a.nbytes if isinstance(a, np.ndarray) else 0
    return total


def plan_hash(plans) -> str:
    h = hashlib.sha1()
    for p in plans:
        h.update(f"{p.kind}\t{p.source}\t{p.qlang}\t{p.plang}\n".encode())
        h.update(np.asarray(p.rows, np.int64).tobytes())
    return h.hexdigest()[:16]


def time_sampler(data, kind: str, batches: int, warmup: int) -> dict:
    from hybridbatch.sampling import make_sampler

    t0 = time.perf_counter()
    s = make_sampler(kind, data, BATCH, seed=1, alpha=0.5, world_size=1)
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    plans = [s.plan(g) for g in range(warmup)]
    warm_s = time.perf_counter() - t0
    times = []
    for g in range(warmup, warmup + batches):
        t0 = time.perf_counter()
        plans.append(s.plan(g))
        times.append(time.perf_counter() - t0)
    ms = 1000 * np.array(times)
    return {"init_s": init_s, "warmup_batches": warmup, "warmup_s": warm_s, "batches": batches,
            "ms_per_batch": float(ms.mean()), "ms_p50": float(np.median(ms)), "ms_p99": float(np.quantile(ms, 0.99)),
            "ms_max": float(ms.max()), "num_batches_epoch": len(s), "plan_sha": plan_hash(plans)}


def rank_batches(data, rank: int | None, steps: int):
    """Hybrid at WORLD ranks through accelerate's BatchSamplerShard: each rank's first `steps` batches (all ranks
    when rank is None) and the sampler."""
    from accelerate.data_loader import BatchSamplerShard

    from hybridbatch.sampling import make_sampler

    s = make_sampler("hybrid", data, BATCH, seed=3, alpha=0.5, world_size=WORLD)
    ranks = range(WORLD) if rank is None else [rank]
    return {r: list(islice(BatchSamplerShard(s, num_processes=WORLD, process_index=r, split_batches=False,
                                             even_batches=False), steps)) for r in ranks}, s


def batches_hash(batches: list[list[int]]) -> str:
    return hashlib.sha1(json.dumps(batches).encode()).hexdigest()[:16]


def ddp_check(data, steps: int) -> dict:
    """The 8 simulated ranks against the single-process plan: share, overlap, kind."""
    t0 = time.perf_counter()
    shards, s = rank_batches(data, None, steps)
    ix, share, overlap, kinds = s.index, True, 0, True
    for k in range(steps):
        plan = s.plan(k)
        share &= all(shards[r][k] == plan.rows[r * BATCH:(r + 1) * BATCH].tolist() for r in range(WORLD))
        rows = np.concatenate([shards[r][k] for r in range(WORLD)])
        overlap += len(rows) - len(np.unique(np.asarray(ix.keys[rows, 0])))
        ql = ix.row_qlang[rows]
        kinds &= len(set(ql.tolist())) == 1 and bool(((ix.row_plang[rows] == ql) == (plan.kind == "xx")).all())
    return {"world_size": WORLD, "batch_size": BATCH, "steps": steps, "ranks_equal_plan_share": bool(share),
            "ids_repeated_in_a_step": int(overlap), "one_kind_and_languages_per_step": bool(kinds),
            "kinds": {str(k): int(v) for k, v in zip(*np.unique([s.plan(k).kind for k in range(steps)],
                                                                 return_counts=True), strict=True)},
            "rank_sha": {r: batches_hash(shards[r]) for r in range(WORLD)}, "wall_s": time.perf_counter() - t0}


def worker(args) -> dict:
    anon = AnonPeak()
    t0 = time.perf_counter()
    data, input_bytes = load(args)
    out = {"mode": args.mode, "rows_total": args.n_ids * L * L, "ids": args.n_ids, "languages": L,
           "input_mib": input_bytes / MIB, "load_s": time.perf_counter() - t0, "rss_after_load_mib": max_rss()}
    if args.rank is not None:  # a separate rank process: its own sampler, its own hash seed
        shards, _ = rank_batches(data, args.rank, args.steps)
        return {**out, "rank": args.rank, "sha": batches_hash(shards[args.rank])}
    if args.mode == "argsort":
        ids = np.asarray(data["id"], np.int64)
        t0 = time.perf_counter()
        key = ids * (L * L) + np.asarray(data["query_lang"].indices) * L + np.asarray(data["passage_lang"].indices)
        order = np.argsort(key, kind="stable")
        out.update(index_build_s=time.perf_counter() - t0, index_mib=(key.nbytes + order.nbytes) / MIB)
    else:
        from hybridbatch.sampling import PairIndex

        gc.collect()
        t0 = time.perf_counter()
        ix = PairIndex.from_dataset(data)
        out["index_build_s"] = time.perf_counter() - t0
        out["index_mib"] = array_bytes(ix) / MIB
        out["rss_after_index_mib"] = max_rss()
        del ix
        gc.collect()
        out["samplers"] = {}
        for k in KINDS:  # one sampler at a time (each builds its own index)
            out["samplers"][k] = time_sampler(data, k, args.batches, args.warmup)
            gc.collect()
        if args.mode != "old":
            out["ddp"] = ddp_check(data, args.steps)
    out["index_bytes_per_row"] = out["index_mib"] * MIB / out["rows_total"]
    out["rss_file_mib"] = status("RssFile")
    out["peak_anon_mib"] = anon.stop()
    out["peak_rss_mib"] = max_rss()
    out["load_avg"] = os.getloadavg()
    return out


def run_worker(args, size: int, mode: str, arrow: Path, env_path: str | None, rank: int | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--n-ids", str(n_ids_for(size)), "--arrow",
           str(arrow), "--batches", str(args.batches), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    cmd += ["--rank", str(rank)] if rank is not None else []
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONHASHSEED": str(rank if rank is not None else 0)}
    if env_path:
        env["PYTHONPATH"] = env_path
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"worker {mode} {size} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def old_package(commit: str) -> str:
    """`git archive` of the baseline commit's src/ in a temp folder: its PYTHONPATH."""
    tmp = Path(tempfile.mkdtemp(prefix="hb-old-"))
    tar = subprocess.run(["git", "archive", commit, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=tar, check=True)
    return str(tmp / "src")


def add_ratios(rows: list[dict]) -> None:
    """Each row against the baseline (the old index at the smallest size) and the argsort floor of its size."""
    old = next((r for r in rows if r["mode"] == "old"), None)
    floor = {r["rows_total"]: r for r in rows if r["mode"] == "argsort"}
    for r in rows:
        f = floor.get(r["rows_total"])
        if f and r["mode"] != "argsort":
            r["build_vs_argsort"] = r["index_build_s"] / f["index_build_s"]
        if old and r["mode"] in ("numpy", "arrow") and r["rows_total"] == old["rows_total"]:
            r["vs_old"] = {"index_build_s": r["index_build_s"] / old["index_build_s"],
                           "peak_rss_mib": r["peak_rss_mib"] / old["peak_rss_mib"],
                           "index_mib": r["index_mib"] / old["index_mib"],
                           **{f"{k}_ms_per_batch": r["samplers"][k]["ms_per_batch"]
                              / old["samplers"][k]["ms_per_batch"] for k in KINDS},
                           **{f"{k}_same_plans": r["samplers"][k]["plan_sha"] == old["samplers"][k]["plan_sha"]
                              for k in KINDS}}


def table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Sampler index and per-batch cost (7 languages x 49 pairs per id, batch {BATCH})")
    for col in ("rows", "mode", "build s", "index B/row", "peak RSS MiB", "anon MiB", "xx ms", "xy ms", "hybrid ms",
                "hybrid init s", "8 ranks ok", "same plans"):
        t.add_column(col, justify="right")
    for r in rows:
        s = r.get("samplers", {})
        d = r.get("ddp")
        ok = d and d["ranks_equal_plan_share"] and not d["ids_repeated_in_a_step"] and \
            d["one_kind_and_languages_per_step"] and r.get("rank_procs_agree", True)
        t.add_row(f"{r['rows_total']:,}", r["mode"], f"{r['index_build_s']:.2f}", f"{r['index_bytes_per_row']:.1f}",
                  f"{r['peak_rss_mib']:.0f}", f"{r['peak_anon_mib']:.0f}",
                  *(f"{s[k]['ms_per_batch']:.3f}" if k in s else "-" for k in KINDS),
                  f"{s['hybrid']['init_s']:.1f}" if s else "-", "-" if d is None else ("yes" if ok else "NO"),
                  {True: "yes", False: "NO", None: "-"}[r.get("same_plans")])
    Console(width=170).print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,10000000,100000000")
    ap.add_argument("--modes", default="numpy,arrow,argsort")
    ap.add_argument("--old", default="9ec9396", help="baseline commit (its index, at the smallest size)")
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40, help="steps of the 8-rank check")
    ap.add_argument("--rank-procs", default="1000000:8,10000000:8", help="size:n separate rank processes")
    ap.add_argument("--tmp", default=None, help="folder for the Arrow files (default: a temp folder)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sampler_scale.json"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--mode", "--arrow"):
        ap.add_argument(hidden, help=argparse.SUPPRESS)
    ap.add_argument("--n-ids", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args), default=float))
        return
    from hybridbatch.provenance import provenance, write_json

    t_all = time.perf_counter()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    procs = dict((int(k), int(v)) for k, v in (x.split(":") for x in args.rank_procs.split(",") if x))
    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="hb-scale-"))
    rows = []
    for size in sizes:
        arrow = tmp / f"pairs-{size}.arrow"
        t0 = time.perf_counter()
        write_arrow(arrow, n_ids_for(size))
        print(f"{size:,} rows: Arrow file {arrow.stat().st_size / MIB:.0f} MiB in {time.perf_counter() - t0:.0f} s",
              flush=True)
        mine = []
        if size == sizes[0] and args.old:
            mine.append(run_worker(args, size, "old", arrow, old_package(args.old)))
        for mode in modes:
            mine.append(run_worker(args, size, mode, arrow, None))
            r = mine[-1]
            print(f"  {mode}: build {r['index_build_s']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)
        ranks = [run_worker(args, size, "numpy", arrow, None, rank=k % WORLD) for k in range(procs.get(size, 0))]
        shas = {m["mode"]: {k: v["plan_sha"] for k, v in m["samplers"].items()} for m in mine if "samplers" in m}
        for r in mine:
            if "samplers" in r:
                r["same_plans"] = len({json.dumps(v, sort_keys=True) for v in shas.values()}) == 1
            if "ddp" in r and ranks:
                r["rank_procs"] = [{"rank": x["rank"], "sha": x["sha"]} for x in ranks]
                r["rank_procs_agree"] = all(x["sha"] == r["ddp"]["rank_sha"][str(x["rank"])] for x in ranks)
        rows += mine
        arrow.unlink()
    add_ratios(rows)
    table(rows)
    targets = [r for r in rows if r["mode"] in ("numpy", "arrow") and r["rows_total"] >= 10**8]
    out = {
        "provenance": provenance(benchmark="bench_sampler_scale", cpus=os.cpu_count(), load_avg=os.getloadavg(),
                                 args={k: v for k, v in vars(args).items()
                                       if k not in ("worker", "mode", "arrow", "n_ids", "rank", "tmp")},
                                 total_s=time.perf_counter() - t_all),
        "data": f"synthetic: {L} languages, every id in all of them, all {L * L} (query, passage) language pairs per "
                "id; one id in ten shares its answer group with the next; one hard negative of another id's group "
                "per (id, passage language); ids, groups int32, languages strings (arrow) or int8 codes (numpy)",
        "baseline": f"old: the index and samplers of commit {args.old} (Python lists per row) at {sizes[0]:,} rows; "
                    "argsort: a stable numpy argsort of the rows' (id, language pair) keys at every size",
        "targets": {"peak_rss_mib": 4096, "index_build_s": 60, "ms_per_batch": 1.0},
        "rows": rows,
        "targets_met_at_100M": {r["mode"]: {"peak_rss": r["peak_rss_mib"] < 4096, "index_build": r["index_build_s"] < 60,
                                            "ms_per_batch": all(v["ms_per_batch"] < 1 for v in r["samplers"].values())}
                                for r in targets},
    }
    write_json(args.out, out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
