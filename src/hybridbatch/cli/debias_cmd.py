"""`hybridbatch debias`: training-free language debiasing (LSAR, per-language centring) of any model, and its rank
sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hybridbatch.analysis.debias import METHODS, DebiasResult, debias_model
from hybridbatch.analysis.debias_ranks import DEBIAS_SWEEP_OUT, parse_ranks
from hybridbatch.cli.base import DataDir, app, console, out, progress_bars
from hybridbatch.errors import UsageError
from hybridbatch.experiments.debias_cells import debias_sweep
from hybridbatch.outputs import check_out_dir, check_out_folder


def _mode(rank: int | None, ranks: str | None, lir_ranks: str | None, method: str = "lsar",
          centre: bool = False) -> None:
    """--rank (write one debiased model) or --ranks (sweep), never both; --lir-ranks and --centre belong to the
    sweep; --method centre writes a centred model and takes no rank."""
    if method not in METHODS:
        raise UsageError(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if centre and ranks is None:
        raise UsageError("--centre adds rows to the sweep: give --ranks too (or --method centre to write a model)")
    if method == "centre":
        if rank is not None or ranks is not None:
            raise UsageError("--method centre writes a per-language centred model and takes no --rank / --ranks "
                             "(for a sweep row: --ranks 0 --centre)")
        return
    if ranks is None and rank is None:
        raise UsageError("give --rank R to write a debiased model, or --ranks 0,1,2,... to sweep ranks")
    if ranks is not None and rank is not None:
        raise UsageError("give either --rank (write one debiased model) or --ranks (sweep), not both")
    if lir_ranks is not None and ranks is None:
        raise UsageError("--lir-ranks is part of the sweep: give --ranks too")


Method = Annotated[str, typer.Option("--method", help="Model to write: lsar (default; needs --rank) or centre "
                   "(per-language centring: subtract each language's mean embedding; the input's language is its "
                   "nearest mean).")]
Centre = Annotated[bool, typer.Option("--centre/--no-centre", help="Sweep mode: also per-language centring, with "
                   "each text's known language (row 'centre') and with the nearest mean's (row 'centre-id', what a "
                   "--method centre folder does).")]


def _written(model: str, res: DebiasResult, method: str) -> str:
    """The line that says what `debias_model` wrote."""
    info = res.info
    if method == "centre":
        return (f"subtracted each language's mean embedding ({len(info['languages'])} languages; nearest-mean "
                f"language identification {info['language_id_accuracy']['all']:.1%} right on the estimation "
                f"sentences) from {model}; centred model written to {res.out_dir} (provenance in debias.json)")
    return (f"removed a rank-{res.rank} language subspace ({info['variance_share_removed']:.1%} of the spread of "
            f"the {len(info['languages'])} language means) from {model}; debiased model written to "
            f"{res.out_dir} (loads with SentenceTransformer(path); provenance in debias.json)")


@app.command("debias")
def debias_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Model to debias: `embedded`, any sentence-transformers "
                                       "folder (a trained one too) or a hub id.")] = "embedded",
    rank: Annotated[Optional[int], typer.Option("--rank", "-r", help="Directions to remove: 1 .. (number of "
                                                "languages - 1). 10 for XQuAD-R's 11 languages removes every "
                                                "direction the language means differ in (the best rank on "
                                                "e5-small: docs/RESULTS.md section 6).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write: the debiased model (with "
                                          "debias.json), or with --ranks one eval folder per rank + "
                                          "sweep.json / sweep.md.")] = Path("debias-out"),
    data_dir: DataDir = None,
    texts: Annotated[Optional[list[Path]], typer.Option("--texts", "-t", help="Unlabeled text, one file per "
                                                        "language, one sentence per line, language from the file "
                                                        "name (de.txt, deu.txt, german.txt). Repeat per file. "
                                                        "Default: the candidate sentences of XQuAD-R's 36 "
                                                        "training articles (never the 12 test articles).")] = None,
    ranks: Annotated[Optional[str], typer.Option("--ranks", help="Sweep mode: comma-separated ranks, e.g. "
                                                 "0,1,2,4,8,10 (0 = the base model). Evaluates each on the "
                                                 "held-out XQuAD-R test articles with the LAReQA protocol, "
                                                 "encoding once and projecting the embeddings.")] = None,
    lir_ranks: Annotated[Optional[str], typer.Option("--lir-ranks", help="Sweep mode: also LIR (per-language "
                                                     "principal components; needs each text's language, so it is "
                                                     "evaluated but never written as a model), e.g. 1,2,4.")] = None,
    max_per_language: Annotated[Optional[int], typer.Option("--max-per-language", min=1, help="Use only the first "
                                                            "N sentences of each language (faster).")] = None,
    encode_as: Annotated[str, typer.Option("--encode-as", help="Prefix the unlabeled sentences are encoded with: "
                                           "passage (they are candidate sentences) or query.")] = "passage",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Encoding batch size.")] = 64,
    max_seq_length: Annotated[Optional[int], typer.Option("--max-seq-length", min=1, help="Truncate inputs to N "
                                                          "tokens (kept in the debiased folder); default: the "
                                                          "model's own.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Embedding cache folder (shared with "
                                                      "`hybridbatch eval --cache-dir`).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show encoding progress.")] = True,
    method: Method = "lsar",
    centre: Centre = False,
) -> None:
    """Remove the language subspace from a model's embeddings, without training (LSAR, Xie et al. 2022).

    The subspace: the per-language mean embeddings of unlabeled sentences, centred, and their top-RANK singular
    directions U. The debiased model maps x -> (I - U U^T) x and re-normalises: the model folder gets a
    sentence-transformers Dense + Normalize module, so it loads with plain SentenceTransformer(path) and
    evaluates like any model (`hybridbatch eval --model DIR`). See docs/DEBIAS.md.

    Examples:

      hybridbatch debias -m embedded --rank 10 -o runs/e5-debiased --data-dir ../shared/data

      hybridbatch debias -m runs/hybrid/model --rank 4 -o runs/hybrid-debiased --texts de.txt --texts en.txt

      hybridbatch debias -m embedded --ranks 0,1,2,4,8,10 --lir-ranks 1,2,4 -o results/debias-base

      hybridbatch debias -m embedded --method centre -o runs/e5-centred --data-dir ../shared/data
    """
    if ranks is not None:  # a sweep's folder; a model's is checked by debias_model (empty, or a debiased model)
        check_out_folder(out_dir, DEBIAS_SWEEP_OUT)
    else:
        check_out_dir(out_dir)
    if encode_as not in ("passage", "query"):
        raise UsageError(f"--encode-as must be passage or query, not {encode_as!r}")
    _mode(rank, ranks, lir_ranks, method, centre)
    with progress_bars(progress) as tick:
        if ranks is not None:
            body = debias_sweep(model, parse_ranks(ranks), out_dir, lir_ranks=parse_ranks(lir_ranks), centre=centre,
                                texts=texts, data_dir=data_dir, max_per_language=max_per_language,
                                batch_size=batch_size, kind=encode_as, cache_dir=cache_dir,
                                max_seq_length=max_seq_length, progress=tick,
                                log=lambda m: console.print(m, highlight=False))
            out.print(f"best LSAR config by Multi mAP: {body['best_lsar_by_multi_map']}; wrote "
                      f"{Path(out_dir) / 'sweep.json'}, {Path(out_dir) / 'sweep.md'} and one eval folder per "
                      f"config (compare two with `hybridbatch compare A B`)", highlight=False)
            return
        res = debias_model(model, rank, out_dir, texts=texts, data_dir=data_dir,
                           max_per_language=max_per_language, batch_size=batch_size, kind=encode_as,
                           cache_dir=cache_dir, max_seq_length=max_seq_length, progress=tick, method=method)
    out.print(_written(model, res, method), highlight=False)
