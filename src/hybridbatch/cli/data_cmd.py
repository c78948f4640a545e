"""`hybridbatch data ...`: download, check and describe datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from hybridbatch.cli.base import DataDir, data_app, out


@data_app.command("download")
def data_download(
    name: Annotated[str, typer.Argument(help="xquad-r, tydiqa-goldp, tatoeba-laser or xlinghealth (mlqa-r, mkqa: see "
                                                 "docs/DATA.md).")],
    data_dir: DataDir = None,
    mirror: Annotated[Optional[str], typer.Option(
        "--mirror", help="Base URL replacing https://raw.githubusercontent.com (same <owner>/<repo>/<commit>/<path> "
        "layout; file:// works). Default $HYBRIDBATCH_MIRROR.")] = None,
) -> None:
    """Download a dataset from its pinned upstream commit into DATA_DIR/NAME, checking every file's sha256.
    Files already present and correct are skipped, so re-running resumes an interrupted download."""
    from hybridbatch.data.download import download

    folder = download(name, data_dir, mirror=mirror)
    out.print(f"{name}: ready in {folder}", highlight=False)


@data_app.command("check")
def data_check(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: <lang>.json (LAReQA or SQuAD), *.jsonl "
                                                "pairs, mkqa*.jsonl (MKQA), *.xlsx (XLingHealth), a Tatoeba folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print {ok, errors, warnings} as JSON (each problem: "
                                          "file, where, message) for scripts; exit status as without it.")] = False,
) -> None:
    """Report EVERY problem in a file set (file, JSON path or line, problem), then warnings. Exit 2 on any error.

    On a terminal: tables. Piped or redirected: one problem per line, `file: where: problem` (warnings:
    `file: where: warning: problem`), never wrapped, so `hybridbatch data check DIR | grep es.json` finds them."""
    from hybridbatch.data.checks import check_paths

    problems, warnings = check_paths(paths)
    names = ", ".join(str(p) for p in paths)
    summary = f"{len(problems)} errors, {len(warnings)} warnings in {names}" if problems else (
        f"ok: no errors, {len(warnings)} warnings in {names}")
    if as_json:
        import dataclasses
        import json

        typer.echo(json.dumps({"ok": not problems, "paths": [str(p) for p in paths],
                               "errors": [dataclasses.asdict(p) for p in problems],
                               "warnings": [dataclasses.asdict(p) for p in warnings]}, ensure_ascii=False))
        typer.echo(summary, err=True)
    elif out.is_terminal:
        _check_tables(problems, warnings)
        out.print(summary, style="red" if problems else "green", highlight=False)
    else:  # scripts and CI logs: plain lines, no markup, no wrapping
        for p in problems:
            typer.echo(str(p))
        for p in warnings:
            typer.echo(f"{p.file}: {p.where}: warning: {p.message}" if p.where else f"{p.file}: warning: {p.message}")
        typer.echo(summary)
    if problems:
        raise typer.Exit(2)


def _check_tables(problems: list, warnings: list) -> None:
    from rich.table import Table

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


@data_app.command("stats")
def data_stats(
    spec: Annotated[str, typer.Argument(help="A dataset name (xquad-r, tydiqa-goldp, xlinghealth, mkqa, "
                                        "tatoeba-laser, ...) or a file / folder.")],
    data_dir: DataDir = None,
    split: Annotated[Optional[str], typer.Option(help="train/test (article split) or dev/train (TyDi).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Per-language counts (questions, paragraphs, candidates, ids shared with other languages) and how many ids
    exist in k languages."""
    import json

    from rich.table import Table

    from hybridbatch.data.checks import dataset_stats

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
