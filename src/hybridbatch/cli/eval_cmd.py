"""`hybridbatch eval` and `compare`: the LAReQA protocol and significance between runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from hybridbatch.analysis.significance import compare, load_run, write_compare
from hybridbatch.cli.base import DataDir, Device, PassagePrefix, QueryPrefix, app, console, out, progress_bars
from hybridbatch.data.lookup import load_corpus
from hybridbatch.data.records import QACorpus
from hybridbatch.errors import UsageError
from hybridbatch.evaluation.beir import evaluate_beir
from hybridbatch.evaluation.lareqa import evaluate_lareqa
from hybridbatch.evaluation.options import EvalOptions
from hybridbatch.evaluation.results import BeirResult, EvalResult, check_eval_folder, check_eval_out
from hybridbatch.evaluation.runtimes import AUTO
from hybridbatch.models.loading import load_model
from hybridbatch.report.compare import write_compare_markdown
from hybridbatch.report.evaluation import lareqa_row, write_eval

SPLITS = ("test", "train", "all")
PROTOCOLS = ("auto", "lareqa", "beir")


def _eval_summary_table(body: dict[str, Any]) -> Table:
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


def _eval_corpus(data: str, data_dir: Optional[Path], split: str) -> tuple[QACorpus, bool]:
    """The corpus `--data` / `--split` name (TyDi: test = dev), and whether it is TyDi GoldP."""
    if split not in SPLITS:
        raise UsageError(f"--split must be test, train or all, not {split!r}")
    tydi = "tydi" in data.lower()
    corpus = load_corpus(data, data_dir, split=None if split == "all" else ("dev" if tydi and split == "test" else
                                                                             split))
    if not corpus.languages or not any(corpus.questions.values()):
        raise UsageError(f"{data}: no questions found")
    return corpus, tydi


def _eval_health_warning(result: EvalResult | BeirResult) -> None:
    """A near-collapsed model (scores barely vary) gets a warning next to its figures."""
    h = getattr(result, "health", None) or {}
    if h.get("near_collapse"):
        console.print(f"warning: near-collapsed model: median per-query score spread {h['score_spread']:.2e} < "
                      f"{h['collapse_threshold']:.0e}; the figures are close to chance level", highlight=False)


def _eval_print(result: EvalResult | BeirResult, paths: dict[str, Path], out_dir: Path, as_json: bool) -> None:
    """The summary table and timings, or (`--json`) eval.json as written with the files beside it."""
    _eval_health_warning(result)
    if as_json:  # eval.json as written (provenance included), the other files beside it; messages go to stderr
        body = json.loads(Path(out_dir, "eval.json").read_text(encoding="utf-8"))
        typer.echo(json.dumps(body | {"files": {k: str(v) for k, v in paths.items()}}, ensure_ascii=False))
        return
    t, s = result.timings, result.settings
    out.print(_eval_summary_table(result.to_json() | {"kind": result.kind}))
    out.print(f"encode {t.get('encode_s', 0):.1f}s ({s['encoder']}) · ties {s['ties']} · score "
              f"{t.get('score_s', 0):.1f}s · metrics {t.get('metric_s', 0):.1f}s; "
              f"wrote {', '.join(str(p) for p in paths.values())}", highlight=False)


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
    device: Device = "auto",
    query_prefix: QueryPrefix = None,
    passage_prefix: PassagePrefix = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print eval.json (plus the written files) as JSON on "
                                          "stdout instead of the table, for scripts.")] = False,
    ties: Annotated[str, typer.Option("--ties", help="How equal scores rank: expected (exact mean over random "
                                      "orders of each tie; a collapsed model scores chance), optimistic (relevant "
                                      "first) or pessimistic (relevant last). Identical without ties.")] = "expected",
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="Encoding runtime: torch, onnx, onnx-int8, "
                                                   "openvino, openvino-bf16, openvino-int8 (exported once per "
                                                   "checkpoint, cached next to the embeddings; speed and accuracy "
                                                   "in docs/EVALUATION.md). Default: the measured fastest runtime "
                                                   "within 0.003 mAP of torch fp32 where this CPU and install "
                                                   "can run it, else torch.")] = None,
    precision: Annotated[str, typer.Option("--precision", help="torch encoder only: fp32, fp16 or bf16 (fp16/bf16 "
                                           "for GPUs).")] = "fp32",
    encode_devices: Annotated[Optional[str], typer.Option("--encode-devices", help="torch encoder only: "
                                                          "comma-separated devices to encode on in parallel, e.g. "
                                                          "cuda:0,cuda:1 (sentence-transformers multi-process).")]
    = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace another model's or dataset's evaluation "
                                            "in --out (and the compare files made from it).")] = False,
    allow_missing_weights: Annotated[bool, typer.Option("--allow-missing-weights", help="Evaluate a model whose "
                                     "weights lack tensors its config asks for (initialised at random).")] = False,
) -> None:
    """Evaluate a model: LAReQA Mono / Cross / Multi mAP, recall, nDCG, language bias.

    For TyDi GoldP: single-language nDCG@10 / Recall@100 / MRR@10. Writes eval.json, eval.md, pairs.png and
    per_query.npz (per-query scores, for `hybridbatch compare`).
    """
    check_eval_folder(out_dir)
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be auto, lareqa or beir, not {protocol!r}")
    options = EvalOptions(context=context, batch_size=batch_size, cache_dir=cache_dir, backend=backend, ties=ties,
                          encoder=encoder or AUTO, precision=precision, devices=encode_devices)
    corpus, tydi = _eval_corpus(data, data_dir, split)
    check_eval_out(out_dir, model=model, dataset=corpus.name, checksum=corpus.checksum, overwrite=overwrite)
    st_model = load_model(model, max_seq_length=max_seq_length, device=device, query_prefix=query_prefix,
                          passage_prefix=passage_prefix, allow_missing_weights=allow_missing_weights)
    evaluate = evaluate_beir if protocol == "beir" or (protocol == "auto" and tydi) else evaluate_lareqa
    with progress_bars(progress) as tick:
        result = evaluate(st_model, corpus, options, model_name=model, progress=tick)
    result.settings.update({"data": data, "split": split, "device": str(st_model.device)})
    _eval_print(result, write_eval(result, out_dir), out_dir, as_json)


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
    randomisation-test p-value. Both runs must be on the same data and queries, with the same tie rule."""
    if out_dir is not None:
        check_eval_folder(out_dir, "compare")
    ra, rb = load_run(run_a), load_run(run_b)
    folder = check_eval_folder(out_dir or rb.path, "compare")
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
    paths = write_compare(cmp, folder)
    md = write_compare_markdown(cmp, folder)
    out.print(f"wrote {paths['json']} and {md}", highlight=False)
