"""Paired bootstrap and randomisation test over question ids: coverage of a known effect, small p for a real effect,
calibrated p under no effect, a run against itself, and run loading / mismatch checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybridbatch.analysis import significance as stats
from hybridbatch.errors import ResultsError
from hybridbatch.report.compare import write_compare_markdown


def synthetic(rng, n_cells=6, n_ids=150, delta=0.0, missing=0.1):
    """Per (cell, id) scores: an id effect shared by all cells (parallel copies are correlated), cell offsets,
    noise; B = A + delta + noise. Some (cell, id) missing, as with partial parallelism."""
    ids = rng.normal(0, 0.15, n_ids)
    cells = rng.normal(0, 0.05, n_cells)[:, None]
    a = 0.5 + cells + ids[None, :] + rng.normal(0, 0.05, (n_cells, n_ids))
    b = a + delta + rng.normal(0, 0.05, (n_cells, n_ids))
    holes = rng.random((n_cells, n_ids)) < missing
    a[holes] = np.nan
    b[holes] = np.nan
    return a, b


def test_macro_is_mean_of_cell_means():
    a = np.array([[1.0, 0.0, np.nan], [0.5, 0.5, 0.5]])
    assert stats.macro(a) == pytest.approx((0.5 + 0.5) / 2)
    w = np.array([[2.0, 0.0, 1.0]])  # id 0 twice, id 1 never, id 2 once
    assert stats.macro(a, w)[0] == pytest.approx((1.0 + 0.5) / 2)


def test_bootstrap_ci_covers_known_effect():
    rng = np.random.default_rng(0)
    covered = 0
    trials = 40
    for t in range(trials):
        a, b = synthetic(rng, delta=0.03)
        diff, lo, hi, _ = stats.paired_bootstrap(a, b, n_boot=400, seed=t)
        covered += lo <= 0.03 <= hi
        assert lo <= diff <= hi
    assert covered >= 0.85 * trials  # nominal 95%


def test_permutation_p_small_for_real_effect_and_calibrated_without():
    rng = np.random.default_rng(1)
    a, b = synthetic(rng, delta=0.03)
    assert stats.paired_permutation(a, b, n_perm=2000, seed=0) < 0.01
    from scipy.stats import kstest

    ps = []
    for t in range(60):
        a, b = synthetic(rng, delta=0.0)
        ps.append(stats.paired_permutation(a, b, n_perm=500, seed=t))
    ps = np.array(ps)
    assert kstest(ps, "uniform").pvalue > 0.01  # roughly uniform under the null
    assert 0.3 < ps.mean() < 0.7 and (ps < 0.05).mean() < 0.15


def _seed_bootstrap_by_hand(a_seeds, b_seeds, n_boot, seed):
    """The definition, one resample at a time: the same question draws as paired_bootstrap, then seeds per side."""
    rng, seed_rng = np.random.default_rng(seed), np.random.default_rng([seed, 0x5EED])
    n = a_seeds[0].shape[1]
    out = []
    for _ in range(n_boot):
        w = rng.multinomial(n, np.full(n, 1.0 / n))[None, :].astype(float)
        side = []
        for runs in (a_seeds, b_seeds):
            picks = seed_rng.integers(0, len(runs), size=len(runs))
            side.append(np.mean([stats.macro(runs[i], w)[0] for i in picks]))
        out.append(side[1] - side[0])
    return np.quantile(out, [0.025, 0.975])


def test_seed_bootstrap_matches_its_definition_and_reduces_to_the_paired_one():
    rng = np.random.default_rng(5)
    a, b = synthetic(rng, n_ids=60, delta=0.02, missing=0.0)
    a_seeds = [a + rng.normal(0, 0.01, a.shape) for _ in range(3)]
    b_seeds = [b + rng.normal(0, 0.01, b.shape) for _ in range(3)]
    _, lo, hi = stats.seed_bootstrap(a_seeds, b_seeds, n_boot=40, seed=3, block=1)
    assert (lo, hi) == pytest.approx(tuple(_seed_bootstrap_by_hand(a_seeds, b_seeds, 40, 3)), abs=1e-12)
    # identical seeds: the seed level has nothing to resample, and the interval is paired_bootstrap's exactly
    d1, lo1, hi1 = stats.seed_bootstrap([a] * 3, [b] * 3, n_boot=500, seed=7)
    d2, lo2, hi2, _ = stats.paired_bootstrap(a, b, n_boot=500, seed=7)
    assert (d1, lo1, hi1) == pytest.approx((d2, lo2, hi2), abs=1e-12)


def test_seed_bootstrap_widens_with_seed_to_seed_variance():
    rng = np.random.default_rng(6)
    a, b = synthetic(rng, delta=0.03)
    _, lo_q, hi_q, _ = stats.paired_bootstrap(a, b, n_boot=1000, seed=0)
    # B's three seeds sit 0.05 apart: a difference of 0.03 is then within seed noise
    diff, lo, hi = stats.seed_bootstrap([a] * 3, [b - 0.05, b, b + 0.05], n_boot=1000, seed=0)
    assert diff == pytest.approx(stats.macro(b) - stats.macro(a))
    assert hi - lo > (hi_q - lo_q) + 0.05 and lo < 0 < hi and lo_q > 0
    with pytest.raises(ResultsError, match="not paired"):
        stats.seed_bootstrap([a], [b[:, :10]])


def test_run_against_itself_is_zero():
    rng = np.random.default_rng(2)
    a, _ = synthetic(rng)
    diff, lo, hi, d = stats.paired_bootstrap(a, a.copy(), n_boot=300)
    assert diff == 0.0 and lo == 0.0 and hi == 0.0 and np.all(d == 0)
    assert stats.paired_permutation(a, a.copy(), n_perm=300) == 1.0


def test_resampling_moves_parallel_copies_together():
    """A difference that lives in a few question ids (all their copies): the bootstrap over ids is wider than a
    bootstrap that (wrongly) treated the cells x ids rows as independent would be."""
    rng = np.random.default_rng(3)
    n_cells, n_ids = 11, 100
    a = np.full((n_cells, n_ids), 0.5)
    b = a.copy()
    b[:, rng.choice(n_ids, 10, replace=False)] += 0.3  # 10 ids improve in every language
    _, lo, hi, _ = stats.paired_bootstrap(a, b, n_boot=1000, seed=0)
    flat_a, flat_b = a.reshape(1, -1), b.reshape(1, -1)
    _, flo, fhi, _ = stats.paired_bootstrap(flat_a, flat_b, n_boot=1000, seed=0)
    assert (hi - lo) > 2.0 * (fhi - flo)
    assert lo <= 0.03 <= hi


def _write_run(tmp_path, name, corpus, q, c):
    from hybridbatch.evaluation.lareqa import evaluate_lareqa_embeddings
    from hybridbatch.report.evaluation import write_eval

    out = tmp_path / name
    write_eval(evaluate_lareqa_embeddings(corpus, q, c, backend="numpy"), out)
    return out


def test_compare_runs_and_mismatches(xquad, tmp_path, monkeypatch):
    sub = xquad.subset(xquad.articles[:3])
    rng = np.random.default_rng(0)

    def emb(n, d=16):
        x = rng.standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    c = {lang: emb(len(sub.candidates[lang])) for lang in sub.languages}
    q = {lang: emb(len(sub.questions[lang])) for lang in sub.languages}
    # B: queries pulled towards their own answer sentence, so B is better than A everywhere
    by = {lang: {x.qid: x for x in sub.questions[lang]} for lang in sub.languages}
    q_b = {lang: q[lang] + 0.8 * c[lang][[by[lang][x.qid].answer for x in sub.questions[lang]]]
           for lang in sub.languages}
    q_b = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in q_b.items()}
    ra = _write_run(tmp_path, "a", sub, q, c)
    rb = _write_run(tmp_path, "b", sub, q_b, c)
    cmp = stats.compare(ra, rb / "eval.json", n_boot=300, n_perm=500)
    rows = {r["name"]: r for r in cmp["rows"]}
    assert rows["Mono mAP"]["diff"] > 0 and rows["Mono mAP"]["p_value"] < 0.01 and rows["Mono mAP"]["ci_low"] > 0
    a_body = json.loads((ra / "eval.json").read_text())
    assert rows["Mono mAP"]["a"] == pytest.approx(a_body["summary"]["mono"]["map"])
    assert rows["Cross mAP"]["b"] == pytest.approx(json.loads((rb / "eval.json").read_text())["summary"]["cross"]["map"])
    assert rows["Bias"]["a"] == pytest.approx(a_body["summary"]["multi"]["bias"])
    assert rows["Multi Max@R"]["a"] == pytest.approx(a_body["summary"]["multi"]["max_rank"])
    assert rows["Multi Max@R"]["lower_is_better"] and rows["Multi Max@R"]["diff"] < 0  # B ranks every copy higher
    complete = rows["Multi Complete@10"]
    assert complete["ci_low"] <= complete["diff"] <= complete["ci_high"] and not complete["lower_is_better"]
    same = stats.compare(ra, ra, n_boot=200, n_perm=200)
    assert all(r["ci_low"] == 0 == r["ci_high"] and r["diff"] == 0 for r in same["rows"])
    paths = stats.write_compare(cmp, tmp_path / "cmp")
    assert json.loads(paths["json"].read_text())["rows"] == json.loads(json.dumps(cmp["rows"]))
    assert "Mono mAP" in write_compare_markdown(cmp, tmp_path / "cmp").read_text()
    _check_compare_report(cmp, rb, tmp_path / "cmp", monkeypatch)
    # different queries (another subset) on the same data: refused
    sub2 = xquad.subset(xquad.articles[:2])
    rc = _write_run(tmp_path, "c", sub2, {k: v[: len(sub2.questions[k])] for k, v in q.items()},
                    {k: v[: len(sub2.candidates[k])] for k, v in c.items()})
    with pytest.raises(ResultsError, match="different queries"):
        stats.compare(ra, rc)
    with pytest.raises(ResultsError, match="no eval.json"):
        stats.load_run(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "eval.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not a readable"):
        stats.load_run(tmp_path / "bad")


def _figures(monkeypatch, module) -> list:
    """Every figure `module` saves (still drawn, then closed by the real save)."""
    seen = []
    real = module.save_figure

    def keep(fig, path):
        fig.canvas.draw()
        seen.append(fig)
        return real(fig, path)

    monkeypatch.setattr(module, "save_figure", keep)
    return seen


def _check_compare_report(cmp, run_b, out, monkeypatch) -> None:
    """compare writes a plot (B - A with its interval per metric) and marks lower-is-better rows; pairs.png names
    the model and data, has the Multi column, one fixed colour scale and cell labels legible on every colour."""
    import json

    from hybridbatch.report import compare as compare_module
    from hybridbatch.report import evaluation
    from hybridbatch.report.compare import write_compare_report

    figs = _figures(monkeypatch, compare_module)
    report = write_compare_report(cmp, out)
    assert report["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [t.get_text() for ax in figs[0].axes for t in ax.get_yticklabels()]
    assert "Bias (lower is better)" in labels and "Mono mAP" in labels
    assert sum(len(ax.lines) for ax in figs[0].axes) >= len(cmp["rows"])  # a point and an interval per metric
    assert "Bias (lower is better)" in report["md"].read_text()

    figs = _figures(monkeypatch, evaluation)
    body = json.loads((run_b / "eval.json").read_text())
    body["model"] = {"name": "my-model"}
    evaluation.eval_documents(body, out / "b-again")
    ax = figs[0].axes[0]
    assert "my-model" in ax.get_title() and body["dataset"] in ax.get_title()
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == "Multi"
    assert ax.images[0].get_clim() == (0.0, 1.0)
    colours = {t.get_color() for t in ax.texts}
    assert colours <= {"white", "black"}
    for t in ax.texts:  # black on bright cells, white on dark ones
        v = float(t.get_text())
        assert t.get_color() == ("white" if v < 0.45 else "black") or 0.45 <= v <= 0.65, (v, t.get_color())
