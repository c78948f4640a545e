"""`hybridbatch sweep`, `experiment paper`, `demo`: experiment drivers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from hybridbatch.analysis.alignment_vs_alpha import DEFAULT_SOURCES
from hybridbatch.analysis.debias_ranks import parse_ranks
from hybridbatch.cli.base import DataDir, Device, Precision, app, console, progress_bars
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.runtimes import ENCODERS
from hybridbatch.experiments.alignment import alignment_vs_alpha
from hybridbatch.experiments.cells import check_cells
from hybridbatch.experiments.debias_cells import debias_report, run_debias_cells
from hybridbatch.experiments.grid import DEMO_OUT, PAPER_OUT, PAPER_SAMPLERS, SWEEP_OUT, demo_preset, paper, run_grid
from hybridbatch.experiments.grid import demo as run_demo
from hybridbatch.experiments.grid_report import report
from hybridbatch.experiments.grid_root import check_grid_root
from hybridbatch.experiments.presets import expand_grid, make_preset
from hybridbatch.experiments.recipes import recipes_help
from hybridbatch.sampling.samplers import DEFAULT_SAMPLER, SAMPLERS, takes_alpha

experiment_app = typer.Typer(help="Preset experiments (the paper's comparison).", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated numbers, got {text!r}") from None


def _seeds(text: str | None) -> list[int] | None:
    """--seeds '0,1,2' -> [0, 1, 2]; None keeps the preset's."""
    if text is None:
        return None
    vals = _floats(text, "--seeds")
    if not vals or any(v != int(v) or v < 0 for v in vals):
        raise UsageError(f"--seeds: expected comma-separated non-negative integers, got {text!r}")
    return [int(v) for v in vals]


def _names(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


@app.command()
def sweep(
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder; re-running skips finished cells.")],
    samplers: Annotated[str, typer.Option(help=f"Comma-separated samplers ({', '.join(SAMPLERS)}).")]
    = DEFAULT_SAMPLER,
    alphas: Annotated[str, typer.Option(help="Comma-separated alpha values (for hybrid samplers).")]
    = "0,0.25,0.5,0.75,1",
    losses: Annotated[str, typer.Option(help=f"Comma-separated loss variants: {recipes_help()}.")]
    = "plain",
    scales: Annotated[str, typer.Option(help="Comma-separated loss scales (1 / temperature).")] = "20",
    adv_weights: Annotated[Optional[str], typer.Option(help="Comma-separated weights of the language adversary's "
                                                       "reversed gradient, for the adv losses only (default 0.5); "
                                                       "a weight other than the default adds -w<weight> to the "
                                                       "cell's name.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds (default: the preset's).")] = None,
    preset: Annotated[str, typer.Option(help="Settings shared by all cells: demo, small (2-core CPU, in domain: XQuAD-R train -> test "
                                   "articles), zero-shot (small's budget on XLingHealth + MKQA -> all 48 XQuAD-R "
                                   "articles + shift pools: the paper's protocol), full (GPU).")]
    = "small",
    model: Annotated[Optional[str], typer.Option(help="Base model (default: the preset's, 'embedded').")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Training steps per cell (default: the preset's).")] = None,
    base: Annotated[bool, typer.Option("--base/--no-base", help="Also evaluate the zero-shot base model.")] = False,
    shift: Annotated[bool, typer.Option("--shift/--no-shift", help="Also run the domain-shift pools (`hybridbatch "
                                        "shift`: TyDi GoldP + Tatoeba) for every cell and seed; adds them to "
                                        "finished cells too.")] = False,
    data_dir: DataDir = None,
    device: Device = "auto",
    precision: Precision = "auto",
    name: Annotated[str, typer.Option(help="Table file stem: OUT/<name>.json, OUT/<name>.md (and <name>-alpha.png), "
                                      "so several sweeps can share one OUT and its cells.")] = "grid",
) -> None:
    """Train and evaluate a grid: samplers x alphas x losses x scales x seeds (XQuAD-R train / test articles).

    Each cell lands in OUT/cells/<key>/ (model, eval, cell.json); the table goes to OUT/grid.json and OUT/grid.md,
    and mAP / bias against alpha with error bars over seeds to OUT/alpha.png. Stop it any time: re-running the same
    command resumes.
    """
    p = make_preset(preset, model=model, max_steps=steps, seeds=_seeds(seeds), device=device, precision=precision,
                    shift=shift)
    cells = expand_grid(_names(samplers), _floats(alphas, "--alphas"), _names(losses), _floats(scales, "--scales"),
                        list(p.seeds), include_base=base,
                        adv_weights=_floats(adv_weights, "--adv-weights") if adv_weights else [None])
    check_cells(cells, p, str(data_dir) if data_dir else None)  # every axis value, before the plan is printed
    check_grid_root(out_dir, SWEEP_OUT)
    console.print(f"sweep: {len(cells)} cells, preset {p.name} ({p.note}) -> {out_dir}")
    body = run_grid(cells, p, out_dir, str(data_dir) if data_dir else None, title=f"sweep ({p.name})",
                    log=console.print, name=name)
    typer.echo((out_dir / f"{name}.md").read_text(encoding="utf-8"), nl=False)
    console.print(f"wrote {out_dir / f'{name}.json'}, {out_dir / f'{name}.md'} in {body['wall_time_s']:.0f} s",
                  highlight=False)


@experiment_app.command("paper")
def experiment_paper(
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder; re-running skips finished cells.")],
    preset: Annotated[str, typer.Option(help="small: 2-core CPU, < 90 min per seed set; full: meant for a GPU.")]
    = "small",
    model: Annotated[Optional[str], typer.Option(help="Base model (default 'embedded').")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Training steps per cell (default: the preset's).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds (default 0,1,2).")] = None,
    samplers: Annotated[str, typer.Option(help=f"Samplers compared with {DEFAULT_SAMPLER}.")]
    = ",".join(PAPER_SAMPLERS),
    data_dir: DataDir = None,
    device: Device = "auto",
    precision: Precision = "auto",
) -> None:
    """The paper's comparison: zero-shot base, en, xx, xy, hybrid (alpha 0.5) and our hybrid-multi, trained on XQuAD-R
    train articles, evaluated on XQuAD-R test articles and TyDi GoldP dev (domain shift), with hybrid vs each other
    sampler tested for significance (per-query scores averaged over seeds; paired bootstrap over question ids)."""
    p = make_preset(preset, model=model, max_steps=steps, seeds=_seeds(seeds), device=device, precision=precision)
    names = _names(samplers)
    if DEFAULT_SAMPLER not in names:
        names.append(DEFAULT_SAMPLER)
    check_grid_root(out_dir, PAPER_OUT)
    console.print(f"experiment paper: preset {p.name} ({p.note}) -> {out_dir}")
    paper(p, out_dir, str(data_dir) if data_dir else None, samplers=names, log=console.print)
    typer.echo((out_dir / "grid.md").read_text(encoding="utf-8"), nl=False)
    typer.echo((out_dir / "significance.md").read_text(encoding="utf-8"), nl=False)


@experiment_app.command("pilot")
def experiment_pilot(
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder (the grid's): runs go to OUT/pilot/<key>/, "
                                          "the report to OUT/pilot.{json,md,png}.")],
    preset: Annotated[str, typer.Option(help="The preset whose budget is being fixed (its data, cap, checks, "
                                        "patience).")] = "converged",
    lrs: Annotated[str, typer.Option(help="Comma-separated learning rates to try (the paper's: 3e-5).")] = "3e-5,1e-4",
    batch_sizes: Annotated[str, typer.Option(help="Comma-separated batch sizes to try (the paper's: 100).")] = "32",
    sampler: Annotated[str, typer.Option(help="The sampler the pilot trains (alpha 0.5 where it takes one).")]
    = DEFAULT_SAMPLER,
    seed: Annotated[Optional[int], typer.Option(help="The seed (default: the preset's first).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Base model (default: the preset's).")] = None,
    data_dir: DataDir = None,
    device: Device = "auto",
    precision: Precision = "auto",
) -> None:
    """Fix a preset's learning rate and batch size from the held-out metric alone (never the test set): train one
    seed of one sampler per candidate until its held-out metric stops improving, then choose the best (ties within
    0.002 go to the fewer steps). Resumable; run candidates side by side as separate processes (one --lrs each),
    then once more with all of them to write the report."""
    from hybridbatch.experiments.pilot import PILOT_OUT, candidates, run_pilot

    p = make_preset(preset, model=model, device=device, precision=precision)
    cands = candidates(_floats(lrs, "--lrs"), [int(b) for b in _floats(batch_sizes, "--batch-sizes")])
    check_grid_root(out_dir, PILOT_OUT)
    console.print(f"[bold]experiment pilot[/]: {sampler}, preset {p.name}, candidates "
                  f"{', '.join(c.key for c in cands)} -> {out_dir}/pilot", highlight=False)
    body = run_pilot(p, out_dir, str(data_dir) if data_dir else None, cands, sampler=sampler,
                     alpha=0.5 if takes_alpha(sampler) else None, seed=seed, log=console.print)
    typer.echo((out_dir / "pilot.md").read_text(encoding="utf-8"), nl=False)
    if body["chosen"]:
        console.print(f"chosen: {body['chosen']['key']}; plot: {out_dir / 'pilot.png'}", highlight=False)


@experiment_app.command("curves")
def experiment_curves(
    out_dir: Annotated[Path, typer.Option("--out", help="The grid's results folder; writes curves.{json,md,png}.")],
    preset: Annotated[str, typer.Option(help="The grid's preset (its evaluation settings).")] = "converged",
    groups: Annotated[str, typer.Option(help="Comma-separated cell groups.")] = "xx-plain,xy-plain,hybrid-a0.5-plain",
    seed: Annotated[int, typer.Option(help="The seed whose cells kept snapshots (the preset's first).")] = 0,
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Test-set learning curves: each cell's weight snapshots (kept at the preset's snapshot steps) evaluated on
    XQuAD-R like the cell's final model, one line per cell in a panel per metric. Never chooses anything."""
    from hybridbatch.experiments.convergence import test_curves

    p = make_preset(preset, device=device)
    test_curves(out_dir, p, str(data_dir) if data_dir else None, _names(groups), seed, log=console.print)
    typer.echo((out_dir / "curves.md").read_text(encoding="utf-8"), nl=False)
    console.print(f"plot: {out_dir / 'curves.png'}", highlight=False)


@app.command()
def demo(
    data_dir: DataDir = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo's models, results and plots go.")]
    = Path("runs/demo"),
    device: Device = "auto",
    precision: Precision = "auto",
    long: Annotated[bool, typer.Option("--long", help="The longer demo: 60 steps of batch 32 (15-20 min on 2 "
                                       "cores) instead of 30 steps of batch 16 (about 7 min).")] = False,
) -> None:
    """The main job in one command: base model vs a short hybrid run, with significance (about 7 min on 2 cores).

    Builds the embedded model, trains a short hybrid run on the XQuAD-R train articles, evaluates base and trained
    models on the test articles, prints the side-by-side table with the significance of the difference, and saves
    the plots. Re-running reuses finished steps.
    """
    p = demo_preset(long)
    check_grid_root(out_dir, DEMO_OUT)
    t0 = time.perf_counter()
    console.print(
        f"hybridbatch demo: expect about {'15-20' if long else '7'} minutes on 2 CPU cores (after the "
        f"install). Steps: build the embedded model "
        f"(first run only), evaluate it zero-shot on the XQuAD-R test articles (12 articles x 11 languages), train "
        f"{p.max_steps} hybrid steps (batch {p.batch_size}, alpha 0.5) on the 36 train articles, evaluate again, "
        f"compare. Output: {out_dir}/")
    run_demo(out_dir, str(data_dir) if data_dir else None, log=console.print, device=device or "auto",
             precision=precision or "auto", long=long)
    typer.echo((out_dir / "grid.md").read_text(encoding="utf-8"), nl=False)
    if (out_dir / "compare" / "compare.md").exists():
        typer.echo((out_dir / "compare" / "compare.md").read_text(encoding="utf-8"), nl=False)
    console.print(f"plots: {out_dir}/base_vs_hybrid.png, {out_dir}/compare/compare.png, "
                  f"{out_dir}/cells/*/xquad-r/pairs.png; "
                  f"done in {(time.perf_counter() - t0) / 60:.1f} min")


@experiment_app.command("report")
def experiment_report(
    out_dir: Annotated[Path, typer.Option("--out", help="A results folder of `sweep` / `experiment paper` (cells/*/"
                                          "cell.json); report.json and report.md are written there.")],
    reference: Annotated[str, typer.Option(help="Comma-separated cell groups to compare against every other "
                                           "finished group (B vs A), e.g. hybrid-a0.5-plain,bilingual-a0.5-plain.")]
    = "hybrid-a0.5-plain",
    against: Annotated[Optional[str], typer.Option(help="Comma-separated groups to compare with (default: all "
                                                   "finished groups).")] = None,
    old: Annotated[Optional[Path], typer.Option(help="An older results folder (its grid.json): a table of what "
                                                "moved, group by group.")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples.")] = 2000,
    name: Annotated[str, typer.Option(help="File stem: writes OUT/<name>.json and OUT/<name>.md (several reports, "
                                      "e.g. samplers and loss variants, can share one folder).")] = "report",
) -> None:
    """Tables and seed-aware significance from the finished cells only: never trains, so it can run while a grid is
    still filling. Each comparison uses the seeds both groups have; with the cells' domain-shift results (`--shift`)
    it also compares them on the TyDi and Tatoeba multilingual pools.

    Example: hybridbatch experiment report --out results/small-v2 --reference hybrid-a0.5-plain,bilingual-a0.5-plain
    --old results/paper-small
    """
    refs = _names(reference)
    others = _names(against) if against else None
    report(out_dir, refs, against=others, old=old, n_boot=n_boot, name=name)
    typer.echo((out_dir / f"{name}.md").read_text(encoding="utf-8"), nl=False)
    console.print(f"wrote {out_dir / f'{name}.json'}, {out_dir / f'{name}.md'}", highlight=False)


@experiment_app.command("debias-cells")
def experiment_debias_cells(
    out_dir: Annotated[Path, typer.Option("--out", help="A results folder of `sweep` / `experiment paper` whose "
                                          "cells keep their models; each cell gets cells/<key>/debias/, the folder "
                                          "debias-report.{json,md}.")],
    groups: Annotated[str, typer.Option(help="Comma-separated cell groups to debias, e.g. base,hybrid-a0.5-plain,"
                                        "xy-plain (base: the zero-shot model, for 'is training still needed?').")]
    = "base,hybrid-a0.5-plain,xy-plain",
    ranks: Annotated[str, typer.Option(help="LSAR ranks (0, the model as it is, is always included).")] = "10",
    lir_ranks: Annotated[str, typer.Option("--lir-ranks", help="LIR ranks (empty: none).")] = "1",
    centre: Annotated[bool, typer.Option("--centre/--no-centre", help="Also per-language centring (sweep rows "
                                         "'centre' and 'centre-id').")] = False,
    max_per_language: Annotated[int, typer.Option("--max-per-language", min=1, help="Subspace sentences per "
                                                  "language (training articles' candidates).")] = 300,
    max_seq_length: Annotated[Optional[int], typer.Option("--max-seq-length", min=1, help="Truncate inputs "
                                                          "(default: the model's).")] = None,
    encoder: Annotated[str, typer.Option("--encoder", help=f"auto (the measured fastest here) or one of "
                                         f"{', '.join(ENCODERS)} (evaluation.runtimes); every comparison is within "
                                         "this one encoding.")] = "auto",
    report_only: Annotated[bool, typer.Option("--report-only", help="Only (re)write the report from finished "
                                              "sweeps.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Is training still needed once post-hoc debiasing is applied, and does debiasing add to training? Runs the
    LSAR / LIR sweep (`hybridbatch debias --ranks`) on each finished cell of the groups, then compares X + debias
    with X seed by seed, and trained X with base + debias, with seed-aware intervals.

    Example: hybridbatch experiment debias-cells --out results/small-v2 --groups base,hybrid-a0.5-plain,xy-plain
    --max-seq-length 48
    """
    names = _names(groups)
    if not report_only:
        run_debias_cells(out_dir, names, ranks=parse_ranks(ranks), lir_ranks=parse_ranks(lir_ranks),
                         data_dir=str(data_dir) if data_dir else None, max_seq_length=max_seq_length,
                         max_per_language=max_per_language, encoder=encoder, centre=centre,
                         log=lambda m: console.print(m, highlight=False))
    debias_report(out_dir, names)
    typer.echo((out_dir / "debias-report.md").read_text(encoding="utf-8"), nl=False)
    console.print(f"wrote {out_dir / 'debias-report.json'}, {out_dir / 'debias-report.md'}", highlight=False)


@experiment_app.command("alignment-vs-alpha")
def experiment_alignment_vs_alpha(
    sweep_dir: Annotated[Path, typer.Option("--sweep", help="A folder written by `hybridbatch sweep` (grid.json, "
                                            "cells/<key>/model/), or one of its tables (OUT/<name>.json of "
                                            "`sweep --name`).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for alignment_vs_alpha.{json,md,png} and the "
                                          "per-cell alignment (resumable).")],
    data_dir: DataDir = None,
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="Held-out parallel data (repeatable): xquad-r-questions, xquad-r-answers (test "
        "articles), tatoeba. Default: all three.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", help="At most N items per language pair.")] = None,
    max_seq_length: Annotated[Optional[int], typer.Option("--max-seq-length", min=1, help="Truncate inputs to N "
                                                          "tokens (default: the model's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Encoding batch size.")] = 32,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples (over cells).")] = 10000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show encoding progress.")] = True,
) -> None:
    """Alignment against alpha: parallel cosine, CLSim and debiased CKA on held-out items (XQuAD-R test articles,
    Tatoeba) for every cell (alpha x seed) of a sweep, beside its Multi mAP and bias, and whether alignment predicts
    them (Spearman over cells, bootstrap 95% interval over cells). Needs the cells' trained models.

    Example: hybridbatch experiment alignment-vs-alpha --sweep results/alpha-small --out results/alignment-alpha
    """
    with progress_bars(progress) as tick:
        body = alignment_vs_alpha(sweep_dir, out_dir, data_dir=data_dir, sources=source or DEFAULT_SOURCES,
                                  limit=limit, batch_size=batch_size, max_seq_length=max_seq_length, n_boot=n_boot,
                                  seed=seed, progress=tick, log=lambda m: console.print(m, highlight=False))
    for c in body["correlations"]:
        typer.echo(f"{c['measure']}\t{c['target']}\trho={c['rho']:.3f}\tci=[{c['ci_low']:.3f},{c['ci_high']:.3f}]"
                   f"\twithin_alpha={c['rho_within_alpha']:.3f}\tci=[{c['within_ci_low']:.3f},"
                   f"{c['within_ci_high']:.3f}]\tcells={c['n_cells']}")
    console.print(f"wrote {', '.join(body['paths'].values())}", highlight=False)
