"""Alignment against alpha (analysis/alignment_vs_alpha.py): Spearman and its bootstrap against scipy and known cases,
the sweep layout read from the committed alpha sweep, and (slow) a tiny sweep made with the tiny model, end to end:
train, evaluate (with the domain-shift pools), measure alignment per cell, correlate, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from hybridbatch.analysis import alignment_vs_alpha as A
from hybridbatch.errors import ResultsError, UsageError
from hybridbatch.experiments.alignment import alignment_vs_alpha

ROOT = Path(__file__).resolve().parents[1]
ALPHA_SWEEP = ROOT / "results" / "alpha-small"


def test_spearman_equals_scipy_with_and_without_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(3, 30))
        x = rng.integers(0, 5, n).astype(float)  # many ties
        y = x + rng.normal(size=n)
        if np.ptp(x) == 0:
            continue
        assert A.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
        z = rng.normal(size=n)
        assert A.spearman(z, y) == pytest.approx(spearmanr(z, y).statistic, abs=1e-12)


def test_spearman_known_values():
    assert A.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert A.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert A.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(1 - 6 * 2 / (4 * 15))  # 1 - 6 sum d^2 / n(n^2-1)
    assert np.isnan(A.spearman([1, 1, 1], [1, 2, 3]))
    assert np.isnan(A.spearman([1, 2], [1, 2]))


def test_bootstrap_interval():
    lo, hi, kept = A.bootstrap_spearman(np.arange(12.0), np.arange(12.0) ** 2, n_boot=500)
    assert (lo, hi) == (pytest.approx(1.0), pytest.approx(1.0)) and kept > 450  # monotone in every resample
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=40), rng.normal(size=40)
    lo, hi, kept = A.bootstrap_spearman(x, y, n_boot=2000, seed=3)
    rho = A.spearman(x, y)
    assert lo < rho < hi and hi - lo > 0.2 and kept == 2000
    # the same seed gives the same interval; another seed a slightly different one
    assert A.bootstrap_spearman(x, y, n_boot=2000, seed=3)[:2] == (lo, hi)
    assert A.bootstrap_spearman(x, y, n_boot=2000, seed=4)[:2] != (lo, hi)


def test_within_alpha_separates_following_alpha_from_predicting_beyond_it():
    """Two alphas, three seeds each: x and y both rise with alpha (rho over all cells > 0.5), but within each alpha
    they run opposite ways, so the within-alpha rho is -1; a lone cell of a third alpha carries no within-alpha
    information and is dropped."""
    x = [1.0, 2.0, 3.0, 11.0, 12.0, 13.0, 50.0]
    y = [3.0, 2.0, 1.0, 13.0, 12.0, 11.0, 0.0]
    g = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.5]
    assert A.spearman(x[:6], y[:6]) > 0.5
    assert A.within_groups(x, y, g) == pytest.approx(-1.0)
    lo, hi = A.bootstrap_within(x, y, g, n_boot=300)
    assert lo <= -0.99 and hi <= -0.49  # resamples with a repeated cell tie some ranks, never reverse the order
    rng = np.random.default_rng(2)  # independent within alpha: the interval covers 0
    g = np.repeat([0.0, 0.25, 0.5, 0.75, 1.0], 3)
    x, y = g + 0.01 * rng.normal(size=15), g + 0.01 * rng.normal(size=15)
    lo, hi = A.bootstrap_within(x, y, g, n_boot=500)
    assert A.spearman(x, y) > 0.8 and lo < 0 < hi


def test_correlations_skip_missing_values_and_cross_check_scipy():
    rows = [{"a": float(i), "t": float(i % 4) + 0.1 * i, "u": None} for i in range(10)]
    rows[3]["a"] = float("nan")
    (c, d) = A.correlations(rows, ["a"], ["t", "u"], n_boot=300)
    assert c["n_cells"] == 9 and c["rho"] == pytest.approx(c["rho_scipy"])
    assert d["n_cells"] == 0 and np.isnan(d["rho"])


def test_sweep_cells_read_the_committed_alpha_sweep():
    cells = A.sweep_cells(ALPHA_SWEEP)
    grid = json.loads((ALPHA_SWEEP / "grid.json").read_text())
    assert len(cells) == len(grid["cells"]) == 15
    assert len({c.folder for c in cells}) == 15
    by_folder = {c.folder: c for c in cells}
    assert by_folder["xx-plain-seed1"].alpha == 1.0 and by_folder["xy-plain-seed2"].alpha == 0.0
    assert sorted({c.alpha for c in cells}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    for folder, c in by_folder.items():
        rec = json.loads((ALPHA_SWEEP / "cells" / folder / "cell.json").read_text())
        assert c.multi_map == rec["xquad-r"]["multi"]["map"] and c.multi_bias == rec["xquad-r"]["multi"]["bias"]
        assert c.seed == rec["cell"]["seed"]


def test_missing_models_and_bad_folders_are_named(tmp_path: Path):
    with pytest.raises(ResultsError, match="no trained model in 15 of 15 cells"):
        alignment_vs_alpha(ALPHA_SWEEP, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="no such folder"):
        A.sweep_cells(tmp_path / "nope")
    with pytest.raises(ResultsError, match="no grid.json"):
        A.sweep_cells(tmp_path)
    (tmp_path / "grid.json").write_text(json.dumps({"kind": "train"}))
    with pytest.raises(ResultsError, match="not a sweep's table"):
        A.sweep_cells(tmp_path)
    with pytest.raises(ResultsError, match="not a sweep's table"):
        A.sweep_cells(tmp_path / "grid.json")  # a table may be named directly


@pytest.mark.slow
@pytest.mark.heavy  # a whole sweep + alignment-vs-alpha on a tiny model; the parts are tested apart above
def test_tiny_sweep_end_to_end(tmp_path: Path, tiny_model: Path, shared_data: Path):
    from hybridbatch.analysis.alignment_run import align
    from hybridbatch.experiments.grid import run_grid
    from hybridbatch.experiments.presets import Preset, expand_grid
    from hybridbatch.models.loading import load_model

    preset = Preset("test", model=str(tiny_model), max_steps=2, batch_size=8, max_seq_length=32, tydi=False,
                    seeds=(0, 1), eval_batch_size=256, shift=True, shift_limit=4)
    cells = expand_grid(["hybrid"], [0.0, 0.5, 1.0], ["plain"], [20.0], [0, 1])
    sweep = tmp_path / "sweep"
    body = run_grid(cells, preset, sweep, str(shared_data), title="t", log=lambda m: None)
    rec = json.loads((sweep / "cells" / "xx-plain-seed0" / "cell.json").read_text())
    assert set(rec["shift"]) >= {"tydi_multi_map", "tatoeba_multi_r1", "tatoeba_miss1_query_lang"}
    assert (sweep / "cells" / "xx-plain-seed0" / "shift" / "shift.json").exists()
    assert "Tatoeba multi-pool P@1" in (sweep / "grid.md").read_text()
    assert body["rows"][0]["shift_tatoeba_multi_r1_std"] >= 0

    out = tmp_path / "avsa"
    kw = dict(data_dir=shared_data, sources=("xquad-r-questions", "tatoeba"), limit=8, n_boot=200,
              log=lambda m: None)
    res = alignment_vs_alpha(sweep, out, **kw)
    assert len(res["rows"]) == 6 and sorted({r["alpha"] for r in res["rows"]}) == [0.0, 0.5, 1.0]
    # one cell measured directly with analysis.alignment gives the same numbers
    row = next(r for r in res["rows"] if r["folder"] == "hybrid-a0.5-plain-seed1")
    direct = align(load_model(str(sweep / "cells" / "hybrid-a0.5-plain-seed1" / "model")), data_dir=shared_data,
                   sources=["xquad-r-questions", "tatoeba"], limit=8, split="test")
    for src in ("xquad-r-questions", "tatoeba"):
        for m in A.ALIGN_MEASURES:
            assert row[f"{src}:{m}"] == pytest.approx(direct.macro(src)[m], rel=1e-5, abs=1e-6)
    assert len(res["correlations"]) == 2 * 3 * 2
    for c in res["correlations"]:
        assert c["n_cells"] == 6
        x = [r[c["measure"]] for r in res["rows"]]
        y = [r[c["target"]] for r in res["rows"]]
        assert c["rho"] == pytest.approx(spearmanr(x, y).statistic)
        assert -1 <= c["ci_low"] <= c["ci_high"] <= 1
    assert (out / "alignment_vs_alpha.png").stat().st_size > 5000
    md = (out / "alignment_vs_alpha.md").read_text()
    assert "Spearman" in md and "hybrid-a1-plain-seed0" in md
    assert json.loads((out / "alignment_vs_alpha.json").read_text())["provenance"]["git_commit"]
    # resumes: the per-cell alignment files are reused, not recomputed
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/alignment.json")}
    assert len(stamps) == 6
    again = alignment_vs_alpha(sweep, out, **kw)
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/*/alignment.json")} == stamps
    assert again["correlations"] == res["correlations"]
    # a second sweep into the same folder under its own name leaves grid.json alone; naming its table measures
    # only its cells
    grid_before = (sweep / "grid.json").read_bytes()
    run_grid(cells[2:4], preset, sweep, str(shared_data), title="half", log=lambda m: None, name="half")
    assert (sweep / "grid.json").read_bytes() == grid_before and (sweep / "half.md").exists()
    half = alignment_vs_alpha(sweep / "half.json", out, **kw)
    assert sorted(r["folder"] for r in half["rows"]) == ["xx-plain-seed0", "xy-plain-seed1"]  # alpha 1 / 0 runs
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/*/alignment.json")} == stamps
