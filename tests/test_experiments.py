"""Grids, the paper preset and resumability, on the tiny random model (real data, real training and evaluation)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from hybridbatch.analysis.grid_stats import aggregate
from hybridbatch.analysis.significance import SEED_CI_METRICS
from hybridbatch.errors import UsageError
from hybridbatch.experiments.cells import run_cell
from hybridbatch.experiments.grid import paper, run_grid
from hybridbatch.experiments.presets import BASE, PRESETS, Cell, Preset, expand_grid
from hybridbatch.report.grid import grid_markdown


def test_expand_grid_varies_alpha_only_for_mixing_samplers():
    cells = expand_grid(["xx", "hybrid", "hybrid-multi"], [0.0, 0.5], ["plain", "symmetric"], [20.0], [0, 1],
                        include_base=True)
    keys = [c.key for c in cells]
    assert keys[0] == BASE and len(keys) == len(set(keys))
    # xx: 2 losses x 2 seeds; each hybrid sampler: 2 alphas x 2 losses x 2 seeds
    assert len(cells) == 1 + 4 + 8 + 8
    assert all(c.alpha is None for c in cells if c.sampler == "xx")
    assert {c.alpha for c in cells if c.sampler == "hybrid"} == {0.0, 0.5}
    assert Cell("hybrid", 0.5, "plain", 20.0, 3).group == "hybrid-a0.5-plain"


@pytest.mark.parametrize("kwargs, message", [
    ({"samplers": ["bogus"]}, "unknown sampler 'bogus'"),
    ({"alphas": [1.5]}, "alpha must be in [0, 1]"),
    ({"losses": ["focal"]}, "unknown loss variant"),
    ({"seeds": []}, "the grid is empty"),
    ({"scales": [0.0]}, "loss scale must be positive"),
    ({"losses": ["adv-mem"], "adv_weights": [0.25, -1.0]}, "adversary weights must be positive"),
])
def test_expand_grid_rejects_bad_settings(kwargs, message):
    args = {"samplers": ["hybrid"], "alphas": [0.5], "losses": ["plain"], "scales": [20.0], "seeds": [0]} | kwargs
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        expand_grid(**args)


def _record(group: str, seed: int, mono: float, **cell) -> dict:
    return {"group": group, "cell": {"sampler": "hybrid", "alpha": 0.5, "loss": "plain", "scale": 20.0, "seed": seed,
                                     **cell},
            "xquad-r": {"mono": {"map": mono}, "cross": {"map": mono / 2}, "multi": {"map": mono / 3,
                                                                               "bias": 10 * seed}}}


def test_cell_canonical_maps_the_end_points_onto_xx_and_xy():
    assert Cell("hybrid", 1.0, seed=2).canonical() == Cell("xx", None, seed=2)
    assert Cell("hybrid-multi", 1.0, "symmetric").canonical() == Cell("xx", None, "symmetric")
    assert Cell("hybrid", 0.0, scale=10.0).canonical() == Cell("xy", None, scale=10.0)
    for kept in (Cell("hybrid", 0.5), Cell("hybrid-multi", 0.0), Cell("xx"), Cell(BASE)):
        assert kept.canonical() == kept


def test_loss_variants_reach_the_training_config(tmp_path: Path):
    from hybridbatch.experiments.cells import train_config

    p = PRESETS["small"]
    cfgs = {loss: train_config(Cell("hybrid", 0.5, loss), p, None, tmp_path / loss) for loss in
            ("plain", "symmetric", "hardneg", "hardneg-q")}
    assert [(c.hard_negatives, c.hard_negative_lang, c.symmetric) for c in cfgs.values()] == [
        (False, "passage", False), (False, "passage", True), (True, "passage", False), (True, "query", False)]
    assert Cell("hybrid", 0.5, "hardneg-q").key == "hybrid-a0.5-hardneg-q-seed0"
    for c in cfgs.values():
        c.validate()


def test_a_finished_cell_made_with_other_settings_is_not_reused(tmp_path: Path):
    preset = PRESETS["small"]
    cell = Cell("hybrid", 0.5, seed=0)
    d = tmp_path / "cells" / cell.key
    d.mkdir(parents=True)
    record = {"key": cell.key, "preset": {**dataclasses.asdict(preset), "seeds": [0]}}
    (d / "cell.json").write_text(json.dumps(record))
    record = json.loads(json.dumps(record))  # tuples (train_data) read back as lists
    assert run_cell(cell, preset, tmp_path, None, log=lambda m: None) == record  # seeds do not matter
    (d / "cell.json").write_text(json.dumps({**record, "preset": {**record["preset"], "max_steps": 50}}))
    with pytest.raises(UsageError, match=r"cell.json was made with other settings \(max_steps = 50 there, 100 now"):
        run_cell(cell, preset, tmp_path, None, log=lambda m: None)


def test_aggregate_takes_mean_and_sample_std_over_seeds():
    rows = aggregate([_record("g", 0, 0.5), _record("g", 1, 0.7), _record("h", 0, 0.1)])
    g = next(r for r in rows if r["group"] == "g")
    assert g["seeds"] == [0, 1]
    assert g["mono_map"] == pytest.approx(0.6)
    assert g["mono_map_std"] == pytest.approx(math.sqrt(0.02))  # ddof=1: ((0.1^2)*2)/1
    assert g["multi_bias"] == pytest.approx(5.0)
    h = next(r for r in rows if r["group"] == "h")
    assert h["mono_map_std"] == 0.0
    md = grid_markdown(rows, "t")
    assert "0.600 ± 0.141" in md and "| h | 1 | 0.100 |" in md


def test_alpha_plot_adds_the_out_of_domain_panel_only_when_every_alpha_ran_the_shift_pools(tmp_path: Path):
    import matplotlib.image

    from hybridbatch.report import plot_alpha

    def rec(alpha: float, seed: int, shift: bool) -> dict:
        r = _record(f"hybrid-a{alpha:g}-plain", seed, 0.7 + alpha / 10, alpha=alpha)
        if shift:
            r["shift"] = {"tydi_multi_map": 0.85 + alpha / 100, "tatoeba_multi_r1": 0.66 - alpha / 50}
        return r

    widths = {}
    for shift_on_last in (True, False):
        records = [rec(a, s, shift=a < 1 or shift_on_last) for a in (0.0, 0.5, 1.0) for s in (0, 1)]
        out = plot_alpha(aggregate(records), tmp_path / f"alpha-{shift_on_last}.png")
        widths[shift_on_last] = matplotlib.image.imread(out).shape[1]
    assert widths[True] / widths[False] == pytest.approx(16 / 11, rel=0.02)  # three panels vs two


@pytest.fixture(scope="module")
def tiny_preset(tiny_model: Path) -> Preset:
    return Preset("test", model=str(tiny_model), max_steps=3, batch_size=8, max_seq_length=32, tydi=False,
                  seeds=(0, 1), eval_batch_size=256)


@pytest.mark.slow
def test_grid_runs_resumes_and_plots(tmp_path: Path, tiny_preset: Preset, shared_data: Path):
    cells = expand_grid(["hybrid"], [0.0, 1.0], ["plain"], [20.0], [0, 1], include_base=True)
    body = run_grid(cells, tiny_preset, tmp_path, str(shared_data), title="t", log=lambda m: None)
    rows = {r["group"]: r for r in body["rows"]}
    assert set(rows) == {"base", "hybrid-a0-plain", "hybrid-a1-plain"}
    assert rows["hybrid-a0-plain"]["seeds"] == [0, 1]
    for r in rows.values():
        for k in ("mono_map", "cross_map", "multi_map"):
            assert 0.0 <= r[k] <= 1.0
    assert (tmp_path / "grid.md").exists() and (tmp_path / "alpha.png").stat().st_size > 1000
    cell = json.loads((tmp_path / "cells" / "xx-plain-seed0" / "cell.json").read_text())
    assert cell["provenance"]["git_commit"] and cell["provenance"]["seed"] == 0
    mix = json.loads((tmp_path / "cells" / "xx-plain-seed0" / "model" / "train.json").read_text())["mix"]
    assert set(mix["kinds"]) == {"xx"}  # alpha 1 ran as the xx cell: monolingual batches only
    assert body["same_run_as"]["hybrid-a1-plain-seed0"] == "xx-plain-seed0"
    assert "hybrid-a0-plain-seed1 is the xy-plain-seed1 run" in (tmp_path / "grid.md").read_text()
    # A finished cell is never recomputed: a re-run reads cell.json and gives the same table.
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("cells/*/cell.json")}
    again = run_grid(cells, tiny_preset, tmp_path, str(shared_data), title="t", log=lambda m: None)
    assert again["rows"] == body["rows"]
    assert {p: p.stat().st_mtime_ns for p in tmp_path.glob("cells/*/cell.json")} == stamps


@pytest.mark.slow
@pytest.mark.heavy  # the grid driver is in CI through test_grid_runs_resumes_and_plots
def test_paper_preset_reports_significance(tmp_path: Path, tiny_preset: Preset, shared_data: Path):
    body = paper(tiny_preset, tmp_path, str(shared_data), samplers=("xx", "hybrid", "hybrid-multi"),
                 log=lambda m: None)
    cmps = {c["run_a"]: c for c in body["significance"]}
    assert set(cmps) == {"xx", "hybrid-multi", BASE}
    # our own sampler gets its own table against every other sampler
    own = {c["run_a"]: c for c in body["significance-hybrid-multi"]}
    assert set(own) == {"xx", "hybrid", BASE} and {c["run_b"] for c in own.values()} == {"hybrid-multi"}
    assert "hybrid-multi vs hybrid" in (tmp_path / "significance-hybrid-multi.md").read_text()
    # the same pair both ways: B - A flips sign
    mono = lambda c: next(r for r in c["rows"] if r["name"] == "Mono mAP")["diff"]  # noqa: E731
    assert mono(own["hybrid"]) == pytest.approx(-mono(cmps["hybrid-multi"]))
    for c in cmps.values():
        assert c["run_b"] == "hybrid" and c["seeds"] == [0, 1]
        names = {r["name"] for r in c["rows"]}
        assert {"Mono mAP", "Cross mAP", "Multi mAP"} <= names
        for r in c["rows"]:
            assert r["ci_low"] <= r["diff"] <= r["ci_high"] and 0 < r["p_value"] <= 1
            # two seeds per sampler: mAP and bias rows also get the interval that carries seed variance
            assert ("seed_ci_low" in r) == (r["metric"] in SEED_CI_METRICS)
            if "seed_ci_low" in r:
                assert r["seed_ci_low"] <= r["diff"] <= r["seed_ci_high"]
    md = (tmp_path / "significance.md").read_text()
    assert "hybrid vs xx" in md and "95% CI (seeds + questions)" in md


@pytest.mark.slow
@pytest.mark.heavy  # ~10 CPU-min: nine tiny cells, shift pools and the debias sweep
def test_report_compares_finished_cells_on_common_seeds_and_on_the_shift_pools(tmp_path: Path, tiny_preset: Preset,
                                                                              shared_data: Path):
    """The report reads only finished cells: hybrid has seed 0, xx seeds 0 and 1, so hybrid vs xx uses seed 0. Its
    shift differences must equal the differences of the shift summaries the evaluation wrote (another code path),
    and the table of what moved the differences of two grids' rows."""
    from hybridbatch.experiments.grid_report import report

    preset = dataclasses.replace(tiny_preset, shift=True, shift_limit=15)
    cells = [Cell(BASE), Cell("xx", None, "plain", 20.0, 0), Cell("xx", None, "plain", 20.0, 1),
             Cell("hybrid", 0.5, "plain", 20.0, 0)]
    run_grid(cells, preset, tmp_path / "new", str(shared_data), title="new", log=lambda m: None)
    old = run_grid(cells[:2], dataclasses.replace(preset, max_steps=1), tmp_path / "old", str(shared_data),
                   title="old", log=lambda m: None)
    body = report(tmp_path / "new", ["hybrid-a0.5-plain"], old=tmp_path / "old", n_boot=300)
    assert body["seeds"] == {"base": [0], "hybrid-a0.5-plain": [0], "xx-plain": [0, 1]}
    cmp = body["comparisons"]["hybrid-a0.5-plain"]
    assert {c["run_a"]: c["seeds"] for c in cmp["xquad-r"]} == {"base": [0], "xx-plain": [0]}
    cell = lambda key: json.loads((tmp_path / "new" / "cells" / key / "cell.json").read_text())  # noqa: E731
    h, x = cell("hybrid-a0.5-plain-seed0")["shift"], cell("xx-plain-seed0")["shift"]
    sh = {c["run_a"]: {r["name"]: r for r in c["rows"]} for c in cmp["shift"]}
    for name, key in (("TyDi multi-pool mAP", "tydi_multi_map"), ("Tatoeba multi-pool P@1", "tatoeba_multi_r1"),
                      ("Tatoeba gap (bias)", "tatoeba_gap_mean")):
        r = sh["xx-plain"][name]
        assert r["diff"] == pytest.approx(h[key] - x[key], abs=1e-9)
        assert r["ci_low"] - 1e-9 <= r["diff"] <= r["ci_high"] + 1e-9
    olds = {r["group"]: r for r in old["rows"]}
    news = {r["group"]: r for r in body["rows"]}
    mv = {r["group"]: r for r in body["moved"]}
    assert set(mv) == {"base", "xx-plain"}
    assert mv["xx-plain"]["multi_map"]["change"] == pytest.approx(news["xx-plain"]["multi_map"]
                                                                  - olds["xx-plain"]["multi_map"])
    assert mv["base"]["multi_map"]["change"] == 0.0  # the base model is not trained: the same numbers
    md = (tmp_path / "new" / "report.md").read_text()
    assert "hybrid-a0.5-plain vs xx-plain" in md and "TyDi multi-pool mAP" in md and "What moved" in md
    with pytest.raises(UsageError, match="no finished cell of 'bilingual-a0.5-plain'"):
        report(tmp_path / "new", ["bilingual-a0.5-plain"])
    # a group run without the shift pools (as the loss variants are) joins the XQuAD-R comparisons only; the
    # others keep theirs
    run_grid([Cell("curriculum", 0.5, "plain", 20.0, 0)], tiny_preset, tmp_path / "new", str(shared_data),
             title="new", log=lambda m: None)
    again = report(tmp_path / "new", ["hybrid-a0.5-plain", "curriculum-a0.5-plain"], n_boot=300,
                   name="samplers")["comparisons"]
    assert {c["run_a"] for c in again["hybrid-a0.5-plain"]["xquad-r"]} == {"base", "xx-plain", "curriculum-a0.5-plain"}
    assert {c["run_a"] for c in again["hybrid-a0.5-plain"]["shift"]} == {"base", "xx-plain"}
    assert again["curriculum-a0.5-plain"]["shift"] == [] and again["curriculum-a0.5-plain"]["xquad-r"]
    compact = (tmp_path / "new" / "samplers.md").read_text()  # one line per pair: the same diff, seed-aware CI
    multi = next(r for c in again["hybrid-a0.5-plain"]["xquad-r"] if c["run_a"] == "xx-plain" for r in c["rows"]
                 if r["name"] == "Multi mAP")
    assert "| hybrid-a0.5-plain vs xx-plain | 0 | " in compact and f"{multi['diff']:+.3f}" in compact

    # post-hoc debiasing of the same cells: the sweep's undebiased folder reproduces the grid's own evaluation (same
    # encoder), and "X + LSAR vs X" is the difference of the two evaluations, seed-averaged
    from hybridbatch.experiments.debias_cells import debias_report, run_debias_cells

    groups = ["base", "xx-plain"]
    swept = run_debias_cells(tmp_path / "new", groups, ranks=[2], lir_ranks=[1], data_dir=str(shared_data),
                             max_seq_length=32, max_per_language=20, log=lambda m: None)
    assert sorted(swept) == ["base", "xx-plain-seed0", "xx-plain-seed1"]
    assert run_debias_cells(tmp_path / "new", groups, ranks=[2], data_dir=str(shared_data), log=lambda m: None) == []
    for key in ("base", "xx-plain-seed1"):
        undebiased = json.loads((tmp_path / "new" / "cells" / key / "debias" / "base" / "eval.json").read_text())
        assert undebiased["summary"]["multi"]["map"] == pytest.approx(cell(key)["xquad-r"]["multi"]["map"], abs=1e-9)
    dr = debias_report(tmp_path / "new", groups, n_boot=300)
    assert dr["methods"] == ["lsar-r2", "lir-r1"]
    by = {(r["group"], r["debias"]): r for r in dr["rows"]}
    c = next(c for c in dr["comparisons"] if (c["run_a"], c["run_b"]) == ("xx-plain", "xx-plain+lsar-r2"))
    multi = next(r for r in c["rows"] if r["name"] == "Multi mAP")
    assert multi["diff"] == pytest.approx(by[("xx-plain", "lsar-r2")]["multi_map"] - by[("xx-plain", "none")]["multi_map"])
    assert multi["seed_ci_low"] <= multi["diff"] <= multi["seed_ci_high"]
    assert {(c["run_a"], c["run_b"]) for c in dr["comparisons"]} >= {("base+lir-r1", "xx-plain"),
                                                                      ("base+lir-r1", "xx-plain+lir-r1")}
    assert "xx-plain+lsar-r2 vs xx-plain" in (tmp_path / "new" / "debias-report.md").read_text()


def test_zero_shot_preset_trains_on_disjoint_sources_only():
    """The paper's protocol: the zero-shot cells' training config names only sources disjoint from XQuAD-R, and
    their test split is every article (None), while the in-domain presets keep the 36 / 12 article split."""
    from hybridbatch.experiments.cells import train_config

    zs = PRESETS["zero-shot"]
    assert zs.test_split is None and "xquad-r" not in zs.train_data and zs.shift
    cfg = train_config(Cell("hybrid", 0.5, "hardneg-q"), zs, None, Path("unused"))
    assert cfg.data == ["xlinghealth", "mkqa:answers"] and cfg.data_weights is None and cfg.hard_negatives
    cfg.validate()
    assert [PRESETS[p].test_split for p in ("demo", "small", "full")] == ["test"] * 3
    assert train_config(Cell("hybrid", 0.5), PRESETS["small"], None, Path("unused")).data == ["xquad-r"]


def test_the_bias_targeted_cells_reach_the_training_config():
    """Issue 21's cells: multipos = the multi-positive loss over translation slots of MULTIPOS_K languages (the
    translations sampler's option), adv = InfoNCE plus the language adversary at ADVERSARIAL_WEIGHT (adv-head: its
    classifier on ADVERSARIAL_HEAD_LR; adv-mem: also a memory of earlier batches); the other variants keep InfoNCE
    without an adversary. A multipos cell over a sampler without translation slots is refused by the training
    config, as the CLI refuses it."""
    from hybridbatch.experiments.cells import train_config
    from hybridbatch.experiments.recipes import ADVERSARIAL_HEAD_LR, ADVERSARIAL_MEMORY, ADVERSARIAL_WEIGHT, MULTIPOS_K

    zs = PRESETS["zero-shot"]
    mp = train_config(Cell("translations", 0.5, "multipos"), zs, None, Path("unused"))
    assert (mp.sampler, mp.loss, mp.k, mp.adversarial_weight) == ("translations", "multi-positive", MULTIPOS_K, 0.0)
    mp.validate()
    adv = train_config(Cell("xy", None, "adv"), zs, None, Path("unused"))
    assert (adv.loss, adv.adversarial_weight, adv.adversarial_lr) == ("infonce", ADVERSARIAL_WEIGHT, None)
    assert ADVERSARIAL_WEIGHT > 0
    adv.validate()
    head = train_config(Cell("hybrid", 0.5, "adv-head"), zs, None, Path("unused"))
    assert (head.adversarial_weight, head.adversarial_lr) == (ADVERSARIAL_WEIGHT, ADVERSARIAL_HEAD_LR)
    assert ADVERSARIAL_HEAD_LR > zs.lr  # the point of the variant: the classifier learns faster than the encoder
    assert head.adversarial_memory == 0 == adv.adversarial_memory
    head.validate()
    mem = train_config(Cell("xy", None, "adv-mem"), zs, None, Path("unused"))
    assert (mem.adversarial_weight, mem.adversarial_lr, mem.adversarial_memory) == (
        ADVERSARIAL_WEIGHT, ADVERSARIAL_HEAD_LR, ADVERSARIAL_MEMORY) and ADVERSARIAL_MEMORY > 0
    mem.validate()
    plain = train_config(Cell("hybrid", 0.5, "hardneg-q"), zs, None, Path("unused"))
    assert (plain.loss, plain.adversarial_weight) == ("infonce", 0.0)
    with pytest.raises(UsageError, match="multi-positive"):
        train_config(Cell("hybrid", 0.5, "multipos"), zs, None, Path("unused")).validate()
    assert [c.key for c in expand_grid(["translations"], [0.0, 0.5], ["multipos"], [20.0], [1])] == [
        "translations-a0-multipos-seed1", "translations-a0.5-multipos-seed1"]


def test_an_adversary_weight_sweep_names_its_cells_and_reaches_the_config():
    """--adv-weights varies the reversal weight of the adv losses only; the default weight keeps the old names, so
    a weight sweep joins the cells already run instead of redoing them."""
    from hybridbatch.experiments.cells import train_config
    from hybridbatch.experiments.recipes import ADVERSARIAL_WEIGHT

    cells = expand_grid(["xy"], [0.5], ["plain", "adv-mem"], [20.0], [0], adv_weights=[None, 0.1, 0.25, ADVERSARIAL_WEIGHT])
    assert [c.key for c in cells] == ["xy-plain-seed0", "xy-adv-mem-seed0", "xy-adv-mem-w0.1-seed0",
                                      "xy-adv-mem-w0.25-seed0"]
    assert cells[2].group == "xy-adv-mem-w0.1"
    zs = PRESETS["zero-shot"]
    weights = [train_config(c, zs, None, Path("unused")).adversarial_weight for c in cells]
    assert weights == [0.0, ADVERSARIAL_WEIGHT, 0.1, 0.25]


@pytest.mark.slow
def test_a_zero_shot_cell_trains_on_xlinghealth_and_mkqa_and_tests_on_all_articles(
        tmp_path: Path, tiny_preset: Preset, shared_data: Path):
    import dataclasses

    preset = dataclasses.replace(tiny_preset, train_data=("xlinghealth", "mkqa:answers"), test_split=None)
    record = run_cell(Cell("hybrid", 0.5, "hardneg-q"), preset, tmp_path, str(shared_data), log=lambda m: None)
    cell = tmp_path / "cells" / "hybrid-a0.5-hardneg-q-seed0"
    train = json.loads((cell / "model" / "train.json").read_text())
    assert set(train["mix"]["sources"]) <= {"xlinghealth", "mkqa:answers"}, train["mix"]
    ev = json.loads((cell / "xquad-r" / "eval.json").read_text())
    # all 48 articles: nothing of XQuAD-R was trained on
    assert (ev["counts"]["n_question_ids"], ev["counts"]["n_candidates"]) == (1190, 13014)
    assert record["provenance"]["data"]["train"] == ["xlinghealth", "mkqa:answers"]
    assert record["provenance"]["data"]["split"] is None
    assert "own_top10" in record["xquad-r"]["multi"]  # the language-preference metrics reach cell.json
    # the bias-targeted methods train on the same sources: translation slots of 4 languages, the adversary
    preset = dataclasses.replace(preset, test_split="test")  # the training path is the point: a smaller test pool
    run_cell(Cell("translations", 0.0, "multipos"), preset, tmp_path, str(shared_data), log=lambda m: None)
    mix = json.loads((tmp_path / "cells" / "translations-a0-multipos-seed0" / "model" / "train.json").read_text())
    assert mix["loss"]["type"] == "MultiPositiveRankingLoss" and set(mix["mix"]["kinds"]) == {"translations"}, mix
    run_cell(Cell("xy", None, "adv"), preset, tmp_path, str(shared_data), log=lambda m: None)
    adv = json.loads((tmp_path / "cells" / "xy-adv-seed0" / "model" / "train.json").read_text())
    assert "language" in adv["loss_curve"], adv["loss_curve"].keys()


def _name_switches(names: set[str], skip: tuple[str, ...]) -> list[str]:
    """Where the package's source compares a value with one of `names` (==, in, a tuple of them) or asks
    `.startswith` of a prefix of one, outside the files in `skip`."""
    import ast

    src = Path(__file__).resolve().parents[1] / "src" / "hybridbatch"
    found = []
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        if rel.startswith(skip):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):
                parts = [node.left, *node.comparators]
                consts = [c for x in parts for c in ([x] if isinstance(x, ast.Constant) else getattr(x, "elts", []))]
                hits = [c.value for c in consts if isinstance(c, ast.Constant) and c.value in names]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "startswith":
                consts = [c for a in node.args for c in ([a] if isinstance(a, ast.Constant) else getattr(a, "elts", []))]
                hits = [c.value for c in consts if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value
                        and any(n.startswith(c.value) for n in names)]
            else:
                continue
            found += [f"{rel}:{node.lineno} {hits}"] if hits else []
    return found


def test_recipes_and_samplers_are_switched_on_only_where_they_are_defined():
    """Grid recipes are data: the cells read `experiments.recipes.RECIPES`, and no other code decides anything by a
    recipe's name; nothing outside sampling/ decides by a sampler's name (the registry says what each takes)."""
    from hybridbatch.experiments.recipes import RECIPES
    from hybridbatch.sampling.samplers import SAMPLERS

    assert _name_switches(set(RECIPES), ("experiments/recipes.py",)) == []
    assert _name_switches(set(SAMPLERS), ("sampling/",)) == []


def test_every_recipe_sets_training_fields_and_unknown_ones_are_refused():
    """Each recipe's settings are `TrainConfig` fields (a typo would be a TypeError in the middle of a grid), every
    recipe sets the same fields (none is left to another recipe's value), and an unknown name names the recipes."""
    from hybridbatch.experiments.recipes import RECIPES, recipe_settings
    from hybridbatch.training.config import TrainConfig

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    keys = {name: set(recipe_settings(name)) for name in RECIPES}
    assert all(k <= fields for k in keys.values()), keys
    assert len({frozenset(k) for k in keys.values()}) == 1
    assert [name for name, r in RECIPES.items() if r.adversarial] == [
        name for name in RECIPES if recipe_settings(name)["adversarial_weight"] > 0]
    with pytest.raises(UsageError, match="plain, symmetric"):
        recipe_settings("nope")


def test_the_demo_is_short_by_default_and_long_on_request():
    """`make demo` fits 5 minutes on 2 cores (30 steps of batch 16, one validation); `--long` is the demo preset."""
    from typer.testing import CliRunner

    from hybridbatch.cli import app
    from hybridbatch.experiments.grid import demo_preset
    from hybridbatch.experiments.presets import PRESETS

    short, long = demo_preset(), demo_preset(long=True)
    assert (short.max_steps, short.batch_size, short.eval_steps) == (30, 16, 30)
    assert long == PRESETS["demo"] and long.max_steps * long.batch_size == 4 * short.max_steps * short.batch_size
    assert short.test_split == long.test_split == "test" and short.model == long.model  # still base vs trained
    text = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "300", "TERM": "dumb"}).output
    assert "--long" in text and "about 7 min" in text
    assert "hybridbatch demo --long" in (Path(__file__).resolve().parents[1] / "Makefile").read_text()
