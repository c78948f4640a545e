"""Significance between two evaluation runs on the same queries: a paired bootstrap CI and a paired randomisation
test, both over *question ids*.

Why over ids: the 11 parallel copies of one question (and their 12 pool rows) are strongly correlated; resampling
rows would pretend 13090 independent queries exist where there are 1190. Resampling ids moves every copy and every
pool row of a question together, and the macro averages (Mono: mean over languages, Cross: over ordered pairs, Multi:
over query languages) are recomputed on each resample exactly as the evaluation computes them.

Data layout: per metric, `a` and `b` are `(cells, ids)` arrays (a cell = one (query language, pool) setting), NaN
where that id was not evaluated in that cell. The macro of a setting = mean over its cells of the per-cell mean.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridbatch.errors import ResultsError
from hybridbatch.evaluation.lareqa import summarise
from hybridbatch.evaluation.preference import PREFERENCE_METRICS
from hybridbatch.evaluation.results import COMPARE_OUT, load_per_query
from hybridbatch.evaluation.worst_rank import WORST_METRICS
from hybridbatch.provenance import provenance, sha256_files, write_json
from hybridbatch.outputs import check_out_folder

# (row name, setting, per-query metric)
COMPARE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("Mono mAP", "mono", "ap"),
    ("Cross mAP", "cross", "ap"),
    ("Multi mAP", "multi", "ap"),
    ("Mono mAP@20", "mono", "ap20"),
    ("Cross mAP@20", "cross", "ap20"),
    ("Multi mAP@20", "multi", "ap20"),
    ("Mono R@1", "mono", "r1"),
    ("Cross R@1", "cross", "r1"),
    ("Multi R@10", "multi", "r10"),
    ("Multi nDCG@10", "multi", "ndcg10"),
    ("Bias", "multi", "rank_distance"),
    # language preference in the Multi pool (evaluation.preference); rows skipped for runs evaluated before them
    ("Own-lang top-10 share", "multi", "own_top10"),
    ("Own copy first", "multi", "own_first"),
    ("Own-lang nDCG gap", "multi", "own_gap"),
    # the worst-ranked copy in the Multi pool (evaluation.worst_rank); skipped for runs evaluated before them
    ("Multi Max@R", "multi", "max_rank"),
    ("Multi Complete@10", "multi", "complete10"),
)
# lower is better: the rank distance, and every lean towards the query's own language
LOWER_IS_BETTER = ("rank_distance", "max_rank", *PREFERENCE_METRICS)


def _cell_means(vals: np.ndarray, mask: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted per-cell means for a batch of id weights `w` (B, ids) -> (B, cells); NaN for empty cells."""
    filled = np.where(mask, vals, 0.0)
    sums = w @ filled.T
    cnt = w @ mask.T.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, sums / np.where(cnt > 0, cnt, 1.0), np.nan)


def macro(vals: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | float:
    """Mean over cells of the per-cell mean over ids (NaN = not evaluated); `weights (B, ids)` for resamples."""
    vals = np.asarray(vals, dtype=np.float64)
    mask = ~np.isnan(vals)
    w = np.ones((1, vals.shape[1])) if weights is None else np.asarray(weights, dtype=np.float64)
    cm = _cell_means(vals, mask, w)
    with np.errstate(invalid="ignore"):
        out = np.nanmean(np.where(np.isnan(cm), np.nan, cm), axis=1) if cm.shape[1] else np.full(len(w), np.nan)
    return float(out[0]) if weights is None else out


def _id_draws(n: int, n_boot: int, seed: int, block: int) -> Iterator[np.ndarray]:
    """Bootstrap weights over `n` question ids, `block` resamples at a time: (k, n) counts of each id. Shared by
    both bootstraps, so the same seed gives the same question draws in each."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, block):
        k = min(block, n_boot - start)
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=k).astype(np.float64)


def _percentile_ci(d: np.ndarray, confidence: float) -> tuple[float, float, np.ndarray]:
    """(low, high, the resampled differences without NaN): the percentile interval."""
    d = d[~np.isnan(d)]
    alpha = 1.0 - confidence
    lo, hi = (np.quantile(d, [alpha / 2, 1 - alpha / 2]) if len(d) else (np.nan, np.nan))
    return float(lo), float(hi), d


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0,
                     block: int = 250) -> tuple[float, float, float, np.ndarray]:
    """(B - A, CI low, CI high, resampled differences): ids are drawn with replacement and the same draw is applied
    to both runs (paired); percentile interval."""
    a, b = _paired(a, b)
    diffs = [macro(b, w) - macro(a, w) for w in _id_draws(a.shape[1], n_boot, seed, block)]
    lo, hi, d = _percentile_ci(np.concatenate(diffs) if diffs else np.zeros(0), confidence)
    return macro(b) - macro(a), lo, hi, d


def seed_bootstrap(a_seeds: list[np.ndarray], b_seeds: list[np.ndarray], *, n_boot: int = 2000,
                   confidence: float = 0.95, seed: int = 0, block: int = 250) -> tuple[float, float, float]:
    """(B - A, CI low, CI high) when each side is several training runs (seeds) on the same questions: a two-level
    bootstrap. Each resample draws question ids as `paired_bootstrap` does (the same draw for every run), then, per
    side, seeds with replacement; the statistic is the mean over the drawn seeds of each seed's macro. So the interval
    carries seed-to-seed training variance as well as question sampling, which a test on seed-averaged scores does
    not. With few seeds the seed level is coarse (3 seeds: 10 distinct multisets) and, like any percentile
    bootstrap, narrow by a factor of about sqrt((S-1)/S); read it as a floor on the uncertainty, not a ceiling."""
    runs = [np.asarray(r, dtype=np.float64) for r in (*a_seeds, *b_seeds)]
    if not a_seeds or not b_seeds or len({r.shape for r in runs}) != 1:
        raise ResultsError(f"seed runs are not paired: shapes {[r.shape for r in runs]}")
    missing = np.any([np.isnan(r) for r in runs], axis=0)  # a cell/id counts only where every run has it
    runs = [np.where(missing, np.nan, r) for r in runs]
    a_seeds, b_seeds = runs[: len(a_seeds)], runs[len(a_seeds):]
    seed_rng = np.random.default_rng([seed, 0x5EED])
    diffs = []
    for w in _id_draws(a_seeds[0].shape[1], n_boot, seed, block):  # paired_bootstrap(seed=seed)'s question draws
        k = len(w)
        side = []
        for side_runs in (a_seeds, b_seeds):
            m = np.stack([macro(r, w) for r in side_runs])  # (S, k): each seed's macro under each question draw
            pick = seed_rng.integers(0, len(side_runs), size=(k, len(side_runs)))
            side.append(m[pick, np.arange(k)[:, None]].mean(axis=1))
        diffs.append(side[1] - side[0])
    lo, hi, _ = _percentile_ci(np.concatenate(diffs), confidence)
    diff = float(np.mean([macro(b) for b in b_seeds]) - np.mean([macro(a) for a in a_seeds]))
    return diff, lo, hi


def paired_permutation(a: np.ndarray, b: np.ndarray, *, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of a paired randomisation test: for each id, A and B are swapped with probability 1/2 (all
    of its cells together). The macro difference is linear in the swap signs, so each permutation is one dot
    product. p = (1 + #{|perm| >= |observed|}) / (1 + n_perm)."""
    a, b = _paired(a, b)
    mask = ~np.isnan(a) & ~np.isnan(b)
    d = np.where(mask, b - a, 0.0)
    n_cell = mask.sum(axis=1)
    used = n_cell > 0
    if not used.any():
        return float("nan")
    coef = np.zeros(len(n_cell))
    coef[used] = 1.0 / (n_cell[used] * used.sum())
    contrib = (coef[:, None] * d).sum(axis=0)  # each id's share of the macro difference
    observed = contrib.sum()
    rng = np.random.default_rng(seed)
    tol = 1e-12 * max(1.0, float(np.abs(contrib).sum()))
    hits = 0
    for start in range(0, n_perm, 1000):
        k = min(1000, n_perm - start)
        signs = rng.integers(0, 2, size=(k, len(contrib)), dtype=np.int8) * 2 - 1
        hits += int((np.abs(signs @ contrib) >= abs(observed) - tol).sum())
    return (1 + hits) / (1 + n_perm)


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Same shape; a cell/id counts only where both runs have a value."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ResultsError(f"runs are not paired: shapes {a.shape} and {b.shape} differ")
    both = ~np.isnan(a) & ~np.isnan(b)
    return np.where(both, a, np.nan), np.where(both, b, np.nan)


# ---- runs -------------------------------------------------------------------------------------------------------------


@dataclass
class Run:
    path: Path
    body: dict[str, Any]
    per_query: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.path.name


def load_run(spec: Path | str) -> Run:
    """An eval output folder or its eval.json, with its per_query.npz (needed for paired statistics)."""
    p = Path(spec)
    js = p / "eval.json" if p.is_dir() else p
    if not js.exists():
        raise ResultsError(f"{spec}: no eval.json here (give an `hybridbatch eval --out` folder or its eval.json)")
    try:
        body = json.loads(js.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{js}: not a readable eval.json ({e})") from None
    if not isinstance(body, dict) or body.get("kind") != "lareqa" or "summary" not in body:
        raise ResultsError(f"{js}: not a LAReQA eval.json (kind={body.get('kind') if isinstance(body, dict) else '?'})")
    pq = js.parent / body.get("per_query_file", "per_query.npz")
    if not pq.exists():
        raise ResultsError(f"{pq}: per-query scores missing; re-run `hybridbatch eval` to write them")
    want = body.get("per_query_sha256")
    if want and sha256_files([pq]) != want:
        raise ResultsError(f"{pq}: does not match the checksum in {js.name} (changed or from another run); "
                               "re-run `hybridbatch eval` into this folder")
    try:
        per_query = load_per_query(pq)
    except (OSError, ValueError, KeyError, IndexError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise ResultsError(f"{pq}: corrupt per-query file ({type(e).__name__}: {e})") from None
    check_summary(js, body, per_query)
    return Run(js.parent if p.is_file() else p, body, per_query)


def check_summary(js: Path, body: dict[str, Any], per_query: dict[str, np.ndarray], tol: float = 1e-6) -> None:
    """The summary of eval.json must be what its per-query scores give (`compare` works on the per-query scores, so
    a hand-edited summary, or an eval.json and a per_query.npz from two runs, would show other figures than the
    comparison without a word): recomputed with the evaluator's own `summarise`, compared to `tol`."""
    try:
        summary = summarise(per_query, [str(x) for x in per_query["langs"]])[0]
    except (KeyError, IndexError, ValueError, TypeError) as e:
        raise ResultsError(f"{js.parent / 'per_query.npz'}: corrupt per-query file ({type(e).__name__}: {e})") from None
    stated = body.get("summary")
    for setting, values in summary.items():
        for key, value in values.items():
            got = (stated.get(setting) or {}).get(key) if isinstance(stated, dict) else None
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                continue
            if not (abs(got - value) <= tol or (math.isnan(got) and math.isnan(value))):
                raise ResultsError(
                    f"{js}: its summary disagrees with its per-query scores: {setting} {key} is {got:.6f} there, "
                    f"{value:.6f} from {body.get('per_query_file', 'per_query.npz')} (hand-edited, or files of two "
                    "runs); re-run `hybridbatch eval` into this folder")


def _keys(run: Run) -> tuple[np.ndarray, list[str], list[str]]:
    pq = run.per_query
    return pq["qid_names"], list(pq["langs"]), [*pq["langs"], "multi"]


def aligned(run_a: Run, run_b: Run, metric: str, setting: str) -> tuple[np.ndarray, np.ndarray]:
    """`(cells, ids)` arrays of `metric` for `setting` in both runs, ids in one shared order."""
    ids, langs, _ = _keys(run_a)
    n_l = len(langs)
    out = []
    for run in (run_a, run_b):
        pq = run.per_query
        # map this run's id numbering onto run A's
        names = pq["qid_names"]
        order = {q: i for i, q in enumerate(ids)}
        remap = np.array([order[q] for q in names], dtype=np.int64)
        qlang, pool, qid = pq["qlang"].astype(np.int64), pq["pool"].astype(np.int64), remap[pq["qid"]]
        if setting == "mono":
            sel, cell = pool == qlang, qlang
        elif setting == "cross":
            sel = (pool != qlang) & (pool < n_l)
            cell = qlang * n_l + pool
        else:
            sel, cell = pool == n_l, qlang
        n_cells = n_l * n_l if setting == "cross" else n_l
        m = np.full((n_cells, len(ids)), np.nan)
        m[cell[sel], qid[sel]] = pq[metric][sel]
        out.append(m)
    a, b = out
    if setting == "cross":  # keep only off-diagonal cells
        off = ~np.eye(n_l, dtype=bool).ravel()
        a, b = a[off], b[off]
    return a, b


def check_same(run_a: Run, run_b: Run) -> None:
    """Same dataset (checksum), the same tie rule and the same evaluated (query, pool) rows, else ResultsError."""
    ba, bb = run_a.body, run_b.body
    if ba.get("checksum") != bb.get("checksum") or ba.get("dataset") != bb.get("dataset"):
        raise ResultsError(
            f"runs are on different datasets: {run_a.path} has {ba.get('dataset')} (checksum "
            f"{str(ba.get('checksum'))[:12]}), {run_b.path} has {bb.get('dataset')} (checksum "
            f"{str(bb.get('checksum'))[:12]}); compare needs both runs evaluated on the same data")
    if ba.get("tie_rule") != bb.get("tie_rule"):
        raise ResultsError(
            f"runs use different tie rules: {run_a.path} has {str(ba.get('tie_rule')).split(':')[0]!r}, {run_b.path} "
            f"has {str(bb.get('tie_rule')).split(':')[0]!r}; compare needs both runs evaluated with the same --ties")
    if list(run_a.per_query["langs"]) != list(run_b.per_query["langs"]):
        raise ResultsError("runs cover different languages; compare needs the same queries")
    ka = _row_keys(run_a)
    kb = _row_keys(run_b)
    if ka != kb:
        raise ResultsError(
            f"runs evaluated different queries ({len(ka)} vs {len(kb)} (query, pool) rows, "
            f"{len(ka ^ kb)} differ); compare needs the same queries and settings")


def _row_keys(run: Run) -> set[tuple[str, int, int]]:
    pq = run.per_query
    names = pq["qid_names"][pq["qid"]] if len(pq["qid"]) else []
    return set(zip(map(str, names), pq["qlang"].tolist(), pq["pool"].tolist()))


def compare(run_a: Run | Path | str, run_b: Run | Path | str, *, n_boot: int = 2000, n_perm: int = 10000,
            seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """B - A per setting with a paired bootstrap CI and randomisation p-value (see the module docstring)."""
    ra = run_a if isinstance(run_a, Run) else load_run(run_a)
    rb = run_b if isinstance(run_b, Run) else load_run(run_b)
    check_same(ra, rb)
    rows = []
    for name, setting, metric in COMPARE_ROWS:
        if metric not in ra.per_query or metric not in rb.per_query:
            continue
        a, b = aligned(ra, rb, metric, setting)
        diff, lo, hi, _ = paired_bootstrap(a, b, n_boot=n_boot, confidence=confidence, seed=seed)
        p = paired_permutation(a, b, n_perm=n_perm, seed=seed)
        rows.append({"name": name, "setting": setting, "metric": metric, "a": macro(a), "b": macro(b), "diff": diff,
                     "ci_low": lo, "ci_high": hi, "p_value": p,
                     "lower_is_better": metric in LOWER_IS_BETTER})
    return {
        "kind": "compare", "run_a": str(ra.path), "run_b": str(rb.path), "dataset": ra.body.get("dataset"),
        "checksum": ra.body.get("checksum"), "n_question_ids": int(len(ra.per_query["qid_names"])),
        "n_boot": n_boot, "n_perm": n_perm, "seed": seed, "confidence": confidence,
        "method": "paired bootstrap over question ids (percentile CI, macro averages recomputed per resample); "
                  "paired randomisation test swapping A/B per question id, two-sided",
        "rows": rows,
    }


def write_compare(cmp: dict[str, Any], out_dir: Path | str) -> dict[str, Path]:
    """compare.json (the comparison and its provenance); `report.compare.write_compare_markdown` writes compare.md.
    `out_dir` must be new, empty or hold an evaluation (`results.COMPARE_OUT`): never a dataset's or model's folder."""
    out = check_out_folder(out_dir, COMPARE_OUT)
    return {"json": write_json(out / "compare.json", {**cmp, "provenance": provenance()})}


# ---- several seeds per side ---------------------------------------------------------------------------------------

# the rows that get the seed-aware CI: the paper's table (mAP and bias) and the language-preference rows
SEED_CI_METRICS = ("ap", "rank_distance", *PREFERENCE_METRICS, *WORST_METRICS)
PER_QUERY_METRICS = ("ap", "ap20", "r1", "r10", "ndcg10", "rank_distance", *PREFERENCE_METRICS, *WORST_METRICS)


def seed_averaged_run(runs: Sequence[Run]) -> Run:
    """One Run whose per-query scores are the mean over seeds: the comparison then asks whether the sampler, not one
    lucky seed, makes the difference (the bootstrap still resamples question ids)."""
    first = runs[0]
    pq = dict(first.per_query)
    for metric in PER_QUERY_METRICS:
        if metric in pq:
            pq[metric] = np.mean(np.stack([r.per_query[metric] for r in runs]), axis=0)
    cell_dir = first.path.parent  # cells/<key>/<dataset> -> cells/<key>+seeds
    return dataclasses.replace(first, per_query=pq, path=cell_dir.with_name(f"{cell_dir.name}+seeds"))


def compare_seeded(runs_a: Sequence[Run], runs_b: Sequence[Run], *, n_boot: int = 2000, n_perm: int = 10000,
                   seed: int = 0) -> dict[str, Any]:
    """B vs A when a side is several training runs (one per seed): `compare` on the seed-averaged per-query scores
    (a side of one run is taken as it is), plus, when a side has several runs, the two-level (seeds + questions) CI
    of `seed_bootstrap` for mAP and bias. Both sides with several runs: the same seeds, in order (paired run by
    run); one side with one run (a deterministic model, e.g. a debiased one): it is paired with every run of the
    other."""
    if not runs_a or not runs_b:
        raise ResultsError("compare_seeded needs at least one run on each side")
    if len(runs_a) > 1 and len(runs_b) > 1 and len(runs_a) != len(runs_b):
        raise ResultsError(f"seed runs are not paired: {len(runs_a)} runs against {len(runs_b)}")
    a = seed_averaged_run(runs_a) if len(runs_a) > 1 else runs_a[0]
    b = seed_averaged_run(runs_b) if len(runs_b) > 1 else runs_b[0]
    cmp = compare(a, b, n_boot=n_boot, n_perm=n_perm, seed=seed)
    if len(runs_a) == len(runs_b) == 1:
        return cmp
    n = max(len(runs_a), len(runs_b))
    pairs = list(zip(runs_a if len(runs_a) > 1 else [*runs_a] * n, runs_b if len(runs_b) > 1 else [*runs_b] * n))
    for row in cmp["rows"]:
        if row["metric"] in SEED_CI_METRICS:
            per_seed = [aligned(x, y, row["metric"], row["setting"]) for x, y in pairs]
            a_side = [p[0] for p in per_seed] if len(runs_a) > 1 else [per_seed[0][0]]
            b_side = [p[1] for p in per_seed] if len(runs_b) > 1 else [per_seed[0][1]]
            _, row["seed_ci_low"], row["seed_ci_high"] = seed_bootstrap(a_side, b_side, n_boot=n_boot, seed=seed)
    return cmp
