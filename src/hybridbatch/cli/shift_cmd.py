"""`hybridbatch shift`: out-of-domain evaluations that discriminate (TyDi GoldP and Tatoeba in multilingual pools)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hybridbatch.cli.base import DataDir, app, console, progress_bars
from hybridbatch.evaluation.retrieval import check_backend
from hybridbatch.evaluation.runtimes import check_encoder
from hybridbatch.evaluation.shift import SHIFT_OUT, run_shift
from hybridbatch.evaluation.shift_tasks import TASKS
from hybridbatch.models.embedded import cache_root
from hybridbatch.outputs import check_out_folder
from hybridbatch.report.shift import shift_documents


@app.command("shift")
def shift_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="`embedded`, a sentence-transformers folder or a hub "
                                       "id.")] = "embedded",
    data_dir: DataDir = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for shift.json, shift.md, shift.png and "
                                          "per_query_<task>.npz.")] = Path("shift-out"),
    task: Annotated[Optional[list[str]], typer.Option(
        "--task", "-t", help="tydi (TyDi GoldP dev, all 9 languages' paragraphs in one pool) or tatoeba (11 "
        "languages + their English sides in one pool); repeatable. Default: both.")] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", "-n", min=1, help="Quick look: the first N questions per TyDi language (and only their "
        "paragraphs) and the first N lines per Tatoeba file. Not for reported numbers.")] = None,
    max_seq_length: Annotated[int, typer.Option("--max-seq-length", min=1, help="Truncate inputs to N tokens "
                                                "(TyDi paragraphs are long; the sweep uses 128).")] = 128,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Encoding batch size.")] = 64,
    backend: Annotated[str, typer.Option("--backend", help="auto (= numpy), numpy or faiss; identical ranks.")]
    = "auto",
    cache_dir: Annotated[Optional[Path], typer.Option(
        "--cache-dir", help="Embedding cache (default: the hybridbatch user cache, embeddings/). A killed run "
        "resumes from the last encoded segment.")] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Use the embedding cache.")] = True,
    encoder: Annotated[str, typer.Option("--encoder", help="Encoding runtime: auto (the measured fastest runtime "
                                         "within 0.003 mAP of torch fp32 where this CPU can run it, else torch), "
                                         "torch, onnx, onnx-int8, openvino, openvino-bf16, openvino-int8.")]
    = "auto",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show encoding progress.")] = True,
) -> None:
    """Domain shift that can show a difference: retrieval in multilingual pools.

    TyDi GoldP dev: every question against the paragraphs of all 9 languages (its own paragraph is relevant), plus
    the per-language pools from the same pass. Tatoeba: each sentence of 11 languages against all 11 languages and
    all English sides (its own file's English line is relevant; the pairwise X -> en pool is that file's English
    side). Reports mAP (= MRR), nDCG@10, R@k, and where the misses land: wrong top-1 in the query's language or
    another one, and the rank gap (multilingual pool minus own pool). Definitions: docs/EVALUATION.md.

    Example: hybridbatch shift --model embedded --data-dir ../shared/data --out results/shift-zero-shot
    """
    check_out_folder(out_dir, SHIFT_OUT)
    check_encoder(encoder)
    check_backend(backend)
    cdir = (cache_dir or cache_root() / "embeddings") if cache else None
    with progress_bars(progress) as tick:
        results, paths = run_shift(model, data_dir=data_dir, out_dir=out_dir, tasks=task or TASKS, limit=limit,
                                   batch_size=batch_size, max_seq_length=max_seq_length, cache_dir=cdir,
                                   backend=backend, progress=tick, encoder=encoder, documents=shift_documents)
    for name, r in results.items():
        s = r.summary
        typer.echo(f"{name}\tmulti_map={s['multi']['map']:.4f}\tmulti_ndcg10={s['multi']['ndcg10']:.4f}\t"
                  f"multi_r1={s['multi']['r1']:.4f}\town_map={s['own']['map']:.4f}\town_r1={s['own']['r1']:.4f}\t"
                  f"miss1_query_lang={s['bias']['miss1_query_lang']:.4f}\tgap_mean={s['bias']['gap_mean']:.2f}")
    console.print(f"wrote {paths['json']}, {paths['md']}, {paths['png']}", highlight=False)
