"""Every `hybridbatch` command under bad arguments (issue "Reliability", part 2; docs/RELIABILITY.md).

Property, for each case in CASES: exit status 2, one readable message (an `error: ...` line from `cli.main`, typer's
usage-error panel, or `data check`'s error table), no 'Traceback', and no output left behind: the working folder
(cwd, every input and every --out) is byte-for-byte the same before and after, so no half-written file or empty
folder remains. Bad inputs cover missing paths, unreadable paths that stay unreadable for root (a folder where a
file is expected, a dangling symlink), wrong types and ranges (`--alpha abc`, `--batch-size -3`), and a results file
from another command (a train.json given to `compare`, a data JSON given as a model or a config).

Commands run in-process through `cli.main` (the real entry point, which turns HybridBatchError into exit 2) inside
a CliRunner isolation; `test_real_process_exit_path` runs a few cases through `python -m hybridbatch.cli`. Nothing
loads a real model or trains: model paths are checked before anything is loaded, and caches point at empty temp
folders with the Hugging Face Hub offline.

To extend: add `Case(...)`s to CASES (arguments may use the `{name}` paths of the `paths` fixture).
`test_every_command_has_cases` fails when a command has no case, and `test_unknown_option` /
`test_missing_required` cover every command found in the app automatically.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from corpus_helpers import valid_doc, write
from typer.testing import CliRunner

from hybridbatch.cli import base as cli


@dataclass
class Case:
    """One bad invocation: `args` (with `{name}` placeholders from the `paths` fixture) and a phrase the message
    must contain (case-insensitive)."""

    id: str
    args: list[str]
    expect: str
    marks: list[Any] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The (sub)command path, e.g. 'data check'."""
        words = []
        for a in self.args:
            if a.startswith("-") or "{" in a:
                break
            words.append(a)
            if a not in GROUPS:
                break
        return " ".join(words)


GROUPS = {"data", "model", "experiment"}


CASES: list[Case] = [
    # ---- data download / check / stats (corpus)
    Case("download unknown name", ["data", "download", "nosuch"], "unknown dataset 'nosuch'"),
    Case("download mlqa-r", ["data", "download", "mlqa-r"], "MLQA-R cannot be downloaded"),
    Case("download into a data dir that is a file", ["data", "download", "tatoeba-laser", "--data-dir", "{a_file}"],
         "cannot create the dataset folder"),
    Case("check missing path", ["data", "check", "{missing}"], "no such file or folder"),
    Case("check dangling symlink", ["data", "check", "{dangling}"], "broken symbolic link"),
    Case("check a results file", ["data", "check", "{train_json}"], "unknown language code 'train'"),
    Case("check a folder named like a data file", ["data", "check", "{folder_with_dir_json}"],
         "a folder, not a file"),
    Case("stats missing path", ["data", "stats", "{missing}"], "no such file or folder"),
    Case("stats dataset not downloaded", ["data", "stats", "xquad-r"], "dataset 'xquad-r' not found"),
    Case("stats bad split", ["data", "stats", "{lareqa}", "--split", "bogus"], "split must be 'train' or 'test'"),
    Case("stats article split of a tiny set", ["data", "stats", "{lareqa}", "--split", "test"],
         "split asks for 36 train + 12 test articles"),
    Case("stats a results file", ["data", "stats", "{train_json}"], "unknown language code 'train'"),
    Case("stats a dangling symlink", ["data", "stats", "{dangling_json}"], "no such file or folder"),
    # ---- model build / info (models)
    Case("build into a cache dir that is a file", ["model", "build", "--cache-dir", "{a_file}"],
         "cannot write the model cache"),
    Case("info missing folder", ["model", "info", "./missing-model"], "no such model folder"),
    Case("info a data JSON as model", ["model", "info", "{en_json}"], "is not a model folder"),
    Case("info a data folder as model", ["model", "info", "{lareqa}"], "neither modules.json"),
    Case("info dangling symlink", ["model", "info", "{dangling}"], "no such model folder"),
    Case("info empty name", ["model", "info", " "], "empty model name"),
    # ---- train (training)
    Case("train --alpha abc", ["train", "--alpha", "abc"], "Invalid value for '--alpha'"),
    Case("train --batch-size -3", ["train", "--batch-size", "-3", "--out", "{out}"], "batch size must be at least 2"),
    Case("train --batch-size abc", ["train", "--batch-size", "abc"], "Invalid value for '--batch-size'"),
    Case("train --alpha 1.5", ["train", "--alpha", "1.5", "--out", "{out}"], "alpha must be in [0, 1]"),
    Case("train --alpha nan", ["train", "--alpha", "nan", "--out", "{out}"], "alpha must be in [0, 1]"),
    Case("train --sampler bogus", ["train", "--sampler", "bogus", "--out", "{out}"], "unknown sampler 'bogus'"),
    Case("train --lr -1", ["train", "--lr", "-1", "--out", "{out}"], "learning rate must be positive"),
    Case("train --max-steps 0", ["train", "--max-steps", "0", "--out", "{out}"], "max steps must be at least 1"),
    Case("train --resume --overwrite", ["train", "--resume", "--overwrite", "--out", "{out}"],
         "exclude each other"),
    Case("train config missing", ["train", "--config", "{missing}"], "cannot read config"),
    Case("train config is a folder", ["train", "--config", "{folder_toml}"], "cannot read config"),
    Case("train config dangling symlink", ["train", "--config", "{dangling}"], "cannot read config"),
    Case("train config is an eval.json", ["train", "--config", "{eval_no_npz}/eval.json"], "not a valid TOML config"),
    Case("train config unknown keys", ["train", "--config", "{bad_toml}"], "unknown setting(s) nonsense"),
    Case("train data missing", ["train", "--data", "{missing}", "--out", "{out}"], "no such file or folder"),
    Case("train data is a results file", ["train", "--data", "{train_json}", "--out", "{out}"],
         "unknown language code 'train'"),
    Case("train data not downloaded", ["train", "--out", "{out}"], "dataset 'xquad-r' not found"),
    Case("train --out is a file", ["train", "--data", "{pairs}", "--out", "{a_file}"], "is a file; give a folder"),
    Case("train --out is someone else's folder", ["train", "--data", "{pairs}", "--out", "{foreign}"],
         "output folder exists and is not empty"),
    Case("train --overwrite someone else's folder", ["train", "--data", "{pairs}", "--out", "{foreign}",
                                                     "--overwrite"], "refusing to delete it"),
    Case("train a data JSON as model", ["train", "--data", "{pairs}", "--model", "{en_json}", "--out", "{out}"],
         "is not a model folder"),
    Case("train missing model folder", ["train", "--data", "{pairs}", "--model", "./missing-model", "--out", "{out}"],
         "no such model folder"),
    # ---- eval (evaluation)
    Case("eval --batch-size -3", ["eval", "--batch-size", "-3"], "Invalid value for '--batch-size'"),
    Case("eval --max-seq-length 0", ["eval", "--max-seq-length", "0"], "Invalid value for '--max-seq-length'"),
    Case("eval --split bogus", ["eval", "--split", "bogus", "--out", "{out}"], "--split must be test, train or all"),
    Case("eval --backend bogus", ["eval", "--backend", "bogus", "--out", "{out}"], "--backend must be"),
    Case("eval --protocol bogus", ["eval", "--protocol", "bogus", "--out", "{out}"], "--protocol must be"),
    Case("eval data missing", ["eval", "--data", "{missing}", "--out", "{out}"], "no such file or folder"),
    Case("eval data not downloaded", ["eval", "--out", "{out}"], "dataset 'xquad-r' not found"),
    Case("eval data is a results file", ["eval", "--data", "{train_json}", "--split", "all", "--out", "{out}"],
         "unknown language code 'train'"),
    Case("eval article split of a tiny set", ["eval", "--data", "{lareqa}", "--out", "{out}"],
         "split asks for 36 train + 12 test articles"),
    Case("eval a data JSON as model", ["eval", "--model", "{en_json}", "--data", "{lareqa}", "--split", "all",
                                       "--out", "{out}"], "is not a model folder"),
    Case("eval missing model folder", ["eval", "--model", "./missing-model", "--data", "{lareqa}", "--split", "all",
                                       "--out", "{out}"], "no such model folder"),
    # ---- compare (stats)
    Case("compare train.json", ["compare", "{train_json}", "{train_json}"], "not a LAReQA eval.json (kind=train)"),
    Case("compare train run folder", ["compare", "{train_run}", "{train_run}"], "no eval.json here"),
    Case("compare grid.json", ["compare", "{grid_json}", "{grid_json}"], "not a LAReQA eval.json (kind=grid)"),
    Case("compare data JSON", ["compare", "{en_json}", "{en_json}"], "not a LAReQA eval.json"),
    Case("compare missing", ["compare", "{missing}", "{missing}"], "no eval.json here"),
    Case("compare eval.json is a folder", ["compare", "{eval_dir_json}", "{eval_dir_json}"],
         "not a readable eval.json"),
    Case("compare truncated eval.json", ["compare", "{eval_truncated}", "{eval_truncated}"],
         "not a readable eval.json"),
    Case("compare without per_query.npz", ["compare", "{eval_no_npz}", "{eval_no_npz}"], "per-query scores missing"),
    Case("compare --n-boot 5", ["compare", "--n-boot", "5", "{missing}", "{missing}"], "Invalid value for '--n-boot'"),
    Case("compare --seed abc", ["compare", "--seed", "abc", "{missing}", "{missing}"], "Invalid value for '--seed'"),
    Case("compare corrupt per_query.npz (not a zip)", ["compare", "{eval_badzip}", "{eval_badzip}"],
         "corrupt per-query file"),
    Case("compare per_query.npz with bad indices", ["compare", "{eval_badindex}", "{eval_badindex}"],
         "corrupt per-query file"),
    Case("shift --task bogus", ["shift", "--task", "bogus", "--data-dir", "{empty}", "--out", "{out}"],
         "unknown shift task(s) bogus"),
    Case("shift data not downloaded", ["shift", "--out", "{out}"], "dataset 'tydiqa-goldp' not found"),
    Case("shift tatoeba not downloaded", ["shift", "--task", "tatoeba", "--out", "{out}"],
         "dataset 'tatoeba-laser' not found"),
    Case("shift --limit 0", ["shift", "--limit", "0"], "Invalid value for '--limit'"),
    Case("shift --backend bogus", ["shift", "--backend", "bogus", "--out", "{out}"], "--backend must be"),
    Case("shift --out is a file", ["shift", "--out", "{a_file}"], "is a file; give a folder"),
    # ---- align (alignment)
    Case("align --limit 2", ["align", "--limit", "2"], "--limit must be at least 4"),
    Case("align data dir missing", ["align", "--data-dir", "{missing}"], "does not exist"),
    Case("align unknown source", ["align", "--source", "bogus", "--data-dir", "{empty}"],
         "unknown alignment source 'bogus'"),
    Case("align three models", ["align", "-m", "a", "-m", "b", "-m", "c"], "pass one or two --model options"),
    Case("align --batch-size abc", ["align", "--batch-size", "abc"], "Invalid value for '--batch-size'"),
    Case("align --batch-size -3", ["align", "--batch-size", "-3", "--data-dir", "{missing}"],
         "--batch-size must be at least 1"),
    # ---- debias (post-hoc language debiasing)
    Case("debias without --rank or --ranks", ["debias", "--out", "{out}"], "give --rank R"),
    Case("debias --rank and --ranks", ["debias", "--rank", "1", "--ranks", "0,1", "--out", "{out}"], "not both"),
    Case("debias --rank abc", ["debias", "--rank", "abc"], "Invalid value for '--rank'"),
    Case("debias --ranks abc", ["debias", "--ranks", "1,abc", "--out", "{out}"], "comma-separated whole numbers"),
    Case("debias --lir-ranks without --ranks", ["debias", "--rank", "1", "--lir-ranks", "1", "--out", "{out}"],
         "give --ranks too"),
    Case("debias --encode-as bogus", ["debias", "--rank", "1", "--encode-as", "bogus", "--out", "{out}"],
         "--encode-as must be passage or query"),
    Case("debias --out is a file", ["debias", "--rank", "1", "--out", "{a_file}"], "is a file; give a folder"),
    Case("debias data not downloaded", ["debias", "--rank", "1", "--out", "{out}"], "dataset 'xquad-r' not found"),
    Case("debias rank >= languages", ["debias", "--rank", "2", "--texts", "{de_txt}", "--texts", "{en_txt}",
                                      "--out", "{out}"], "rank 2 is too large"),
    Case("debias sweep rank >= languages", ["debias", "--ranks", "0,1,2", "--texts", "{de_txt}", "--texts",
                                            "{en_txt}", "--out", "{out}"], "rank 2 is too large"),
    Case("debias one language of texts", ["debias", "--rank", "1", "--texts", "{de_txt}", "--out", "{out}"],
         "at least 2 languages"),
    Case("debias empty text file", ["debias", "--rank", "1", "--texts", "{de_txt}", "--texts", "{empty_txt}",
                                    "--out", "{out}"], "no sentences for language 'en'"),
    Case("debias text file named like no language", ["debias", "--rank", "1", "--texts", "{de_txt}", "--texts",
                                                     "{a_file}", "--out", "{out}"], "unknown language code"),
    Case("debias missing text file", ["debias", "--rank", "1", "--texts", "{de_txt}", "--texts", "{empty}/fr.txt",
                                      "--out", "{out}"], "fr.txt: no such file"),
    Case("debias missing model folder", ["debias", "--model", "./missing-model", "--rank", "1", "--texts",
                                         "{de_txt}", "--texts", "{en_txt}", "--out", "{out}"],
         "no such model folder"),
    Case("debias --out is someone else's folder", ["debias", "--rank", "1", "--texts", "{de_txt}", "--texts",
                                                   "{en_txt}", "--out", "{foreign}"], "not a debiased model"),
    # ---- sweep / experiment paper / demo (experiments)
    Case("sweep without --out", ["sweep"], "Missing option '--out'"),
    Case("sweep --alphas abc", ["sweep", "--out", "{out}", "--alphas", "abc"], "--alphas: expected comma-separated"),
    Case("sweep --alphas 2", ["sweep", "--out", "{out}", "--alphas", "2"], "alpha must be in [0, 1]"),
    Case("sweep --losses bogus", ["sweep", "--out", "{out}", "--losses", "bogus"], "unknown loss variant 'bogus'"),
    Case("sweep --preset bogus", ["sweep", "--out", "{out}", "--preset", "bogus"], "unknown preset 'bogus'"),
    Case("sweep --seeds x", ["sweep", "--out", "{out}", "--seeds", "x"], "--seeds: expected comma-separated"),
    Case("sweep --steps abc", ["sweep", "--out", "{out}", "--steps", "abc"], "Invalid value for '--steps'"),
    Case("sweep --samplers bogus", ["sweep", "--out", "{out}", "--samplers", "bogus", "--alphas", "0.5"],
         "unknown sampler 'bogus'"),
    Case("sweep --steps -3", ["sweep", "--out", "{out}", "--steps", "-3", "--alphas", "0.5"],
         "--steps must be at least 1"),
    Case("sweep --steps 0", ["sweep", "--out", "{out}", "--steps", "0", "--alphas", "0.5"],
         "--steps must be at least 1"),
    Case("sweep --seeds 1.5", ["sweep", "--out", "{out}", "--seeds", "1.5"], "non-negative integers"),
    Case("sweep data not downloaded", ["sweep", "--out", "{out}", "--alphas", "0.5"], "dataset 'xquad-r' not found"),
    Case("sweep bad sampler after a good one", ["sweep", "--out", "{out}", "--samplers", "hybrid,bogus", "--alphas",
                                                "0.5", "--model", "./missing-model"], "unknown sampler 'bogus'"),
    Case("paper without --out", ["experiment", "paper"], "Missing option '--out'"),
    Case("paper --preset bogus", ["experiment", "paper", "--out", "{out}", "--preset", "bogus"],
         "unknown preset 'bogus'"),
    Case("paper --seeds x", ["experiment", "paper", "--out", "{out}", "--seeds", "x"],
         "--seeds: expected comma-separated"),
    Case("paper --samplers bogus", ["experiment", "paper", "--out", "{out}", "--samplers", "bogus", "--model",
                                    "./missing-model"], "unknown sampler 'bogus'"),
    Case("pilot without --out", ["experiment", "pilot"], "Missing option '--out'"),
    Case("pilot --lrs abc", ["experiment", "pilot", "--out", "{out}", "--lrs", "abc"], "--lrs: expected comma-separated"),
    Case("pilot --lrs inf", ["experiment", "pilot", "--out", "{out}", "--lrs", "inf"],
         "learning rates must be positive and finite"),
    Case("pilot --batch-sizes 1", ["experiment", "pilot", "--out", "{out}", "--batch-sizes", "1"],
         "a batch needs at least 2 pairs"),
    Case("pilot --preset bogus", ["experiment", "pilot", "--out", "{out}", "--preset", "bogus"],
         "unknown preset 'bogus'"),
    Case("curves without --out", ["experiment", "curves"], "Missing option '--out'"),
    Case("curves on a folder without the cells", ["experiment", "curves", "--out", "{out}"], "unfinished cells"),
    Case("alignment-vs-alpha without --sweep", ["experiment", "alignment-vs-alpha", "--out", "{out}"],
         "Missing option '--sweep'"),
    Case("alignment-vs-alpha missing sweep", ["experiment", "alignment-vs-alpha", "--sweep", "{missing}", "--out",
                                              "{out}"], "no such folder"),
    Case("alignment-vs-alpha not a sweep", ["experiment", "alignment-vs-alpha", "--sweep", "{train_run}", "--out",
                                            "{out}"], "no grid.json"),
    Case("alignment-vs-alpha --n-boot 5", ["experiment", "alignment-vs-alpha", "--sweep", "{missing}", "--out",
                                           "{out}", "--n-boot", "5"], "Invalid value for '--n-boot'"),
    Case("report without --out", ["experiment", "report"], "Missing option '--out'"),
    Case("report missing folder", ["experiment", "report", "--out", "{out}"], "no finished cells"),
    Case("report not a grid", ["experiment", "report", "--out", "{train_run}"],
         "holds files that are not a grid's (train.json); experiment report writes <name>.json, <name>.md into --out"),
    Case("report --n-boot 5", ["experiment", "report", "--out", "{out}", "--n-boot", "5"],
         "Invalid value for '--n-boot'"),
    Case("report --name a path", ["experiment", "report", "--out", "{out}", "--name", "../x"], "plain file stem"),
    Case("debias-cells missing folder", ["experiment", "debias-cells", "--out", "{out}"], "no finished cells"),
    Case("debias-cells --ranks x", ["experiment", "debias-cells", "--out", "{out}", "--ranks", "x"],
         "ranks must be comma-separated"),
    Case("debias-cells --max-per-language 0", ["experiment", "debias-cells", "--out", "{out}",
                                               "--max-per-language", "0"], "Invalid value for '--max-per-language'"),
    Case("demo --out without value", ["demo", "--out"], "Option '--out' requires an argument"),
    Case("demo unknown option", ["demo", "--steps", "3"], "No such option: --steps"),
]


# ---- running the CLI --------------------------------------------------------------------------------------------------


def run_cli(args: list[str]) -> tuple[int, str]:
    """`hybridbatch ARGS` through `cli.main` in this process: (exit status, stdout + stderr). An exception that
    escapes `main` is what a user would see as a traceback, so it comes back as one (exit 1)."""
    runner = CliRunner()
    with runner.isolation() as (_, _, both):
        argv = sys.argv
        sys.argv = ["hybridbatch", *args]
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:  # noqa: BLE001 - reported as the traceback a user would see
            sys.stderr.write(traceback.format_exc())
            code = 1
        finally:
            sys.argv = argv
        sys.stdout.flush()
        sys.stderr.flush()
        text = both.getvalue().decode("utf-8", "replace")
    return code, text


MESSAGE_MARKERS = re.compile(r"(?m)^\s*error: |─ Error ─|^\d+ errors, \d+ warnings in ")


def assert_one_readable_error(code: int, text: str, expect: str) -> None:
    assert "Traceback" not in text, text
    assert code == 2, f"exit {code}:\n{text}"
    assert len(MESSAGE_MARKERS.findall(text)) == 1, f"expected exactly one error message:\n{text}"
    flat = re.sub(r"[\s│]+", " ", text).lower()  # typer's panel wraps long messages
    assert re.sub(r"\s+", " ", expect).lower() in flat, f"{expect!r} not in:\n{text}"


def snapshot(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry under `root` with its kind, size and mtime: equal snapshots mean nothing was written, created,
    deleted or left half-written."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        kind = "link" if p.is_symlink() else "dir" if p.is_dir() else "file"
        out[str(p.relative_to(root))] = (kind, st.st_size if kind == "file" else 0, st.st_mtime_ns if kind == "file"
                                         else 0)
    return out


# ---- inputs ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder (cwd) and empty caches: no dataset is found unless given, no model is cached, the Hub is
    offline, so a case that got past its validation would fail fast instead of downloading or building."""
    home = tmp_path / "home"
    home.mkdir()
    for var in ("HYBRIDBATCH_DATA", "HYBRIDBATCH_MIRROR", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("HYBRIDBATCH_CACHE", str(home / "hybridbatch-cache"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HYBRIDBATCH_MIRROR", "file:///nonexistent-mirror")  # never the network
    monkeypatch.setattr(cli.out, "width", 400)
    monkeypatch.setattr(cli.console, "width", 400)
    w = tmp_path / "work"
    w.mkdir()
    monkeypatch.chdir(w)
    return w


@pytest.fixture
def paths(work: Path) -> dict[str, str]:
    """Named inputs for the cases' `{name}` placeholders (built before the snapshot)."""
    p: dict[str, Path] = {"out": work / "out", "missing": work / "missing"}
    p["lareqa"] = work / "lareqa"
    p["en_json"] = write(p["lareqa"] / "en.json", valid_doc("en"))
    write(p["lareqa"] / "de.json", valid_doc("de"))
    rows = [{"id": f"q{i}", "lang": lang, "query": f"{lang} question {i}?", "positive": f"{lang} answer {i}."}
            for i in range(12) for lang in ("en", "de")]
    p["pairs"] = work / "pairs.jsonl"
    p["pairs"].write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    p["train_run"] = work / "train-run"
    p["train_json"] = write(p["train_run"] / "train.json", {
        "kind": "train", "model": "embedded", "data": [{"name": "xquad-r", "checksum": "0" * 64}], "seed": 42,
        "settings": {"sampler": "hybrid", "alpha": 0.5}, "steps": 10, "provenance": {"git_commit": "unknown"}})
    p["grid_json"] = write(work / "grid" / "grid.json", {"kind": "grid", "title": "sweep", "rows": []})
    p["eval_no_npz"] = work / "eval-no-npz"
    write(p["eval_no_npz"] / "eval.json", {"kind": "lareqa", "summary": {}, "per_query_file": "per_query.npz"})
    p["eval_dir_json"] = work / "eval-dir-json"
    (p["eval_dir_json"] / "eval.json").mkdir(parents=True)
    p["eval_truncated"] = work / "eval-truncated"
    p["eval_truncated"].mkdir()
    (p["eval_truncated"] / "eval.json").write_text('{"kind": "lareqa", "summ', encoding="utf-8")
    p["eval_badzip"] = work / "eval-badzip"
    write(p["eval_badzip"] / "eval.json", {"kind": "lareqa", "summary": {}})
    (p["eval_badzip"] / "per_query.npz").write_bytes(b"PK\x03\x04" + b"garbage" * 10)
    p["eval_badindex"] = work / "eval-badindex"
    write(p["eval_badindex"] / "eval.json", {"kind": "lareqa", "summary": {}})
    with open(p["eval_badindex"] / "per_query.npz", "wb") as f:
        np.savez(f, langs=np.array(["en"]), qid=np.array([5]), qid_names=np.array(["a"]), qlang=np.array([0]),
                 pool=np.array([0]))
    p["dangling"] = work / "dangling.toml"
    p["dangling"].symlink_to(work / "nowhere")
    p["dangling_json"] = work / "links" / "en.json"
    p["dangling_json"].parent.mkdir()
    p["dangling_json"].symlink_to(work / "nowhere.json")
    p["folder_toml"] = work / "config.toml"
    p["folder_toml"].mkdir()
    p["folder_with_dir_json"] = work / "folder-as-file"
    (p["folder_with_dir_json"] / "en.json").mkdir(parents=True)
    p["a_file"] = work / "a-file.txt"
    p["a_file"].write_text("not a folder\n", encoding="utf-8")
    p["foreign"] = work / "foreign"
    p["foreign"].mkdir()
    (p["foreign"] / "keep.txt").write_text("someone's work\n", encoding="utf-8")
    p["bad_toml"] = work / "bad.toml"
    p["bad_toml"].write_text("nonsense = 1\nalpha = 0.5\n", encoding="utf-8")
    p["empty"] = work / "empty"
    p["empty"].mkdir()
    p["de_txt"] = work / "texts" / "de.txt"
    p["de_txt"].parent.mkdir()
    p["de_txt"].write_text("Ein Satz.\nNoch ein Satz.\n", encoding="utf-8")
    p["en_txt"] = work / "texts" / "en.txt"
    p["en_txt"].write_text("A sentence.\nAnother one.\n", encoding="utf-8")
    p["empty_txt"] = work / "empty-texts" / "en.txt"
    p["empty_txt"].parent.mkdir()
    p["empty_txt"].write_text("\n\n", encoding="utf-8")
    return {k: str(v) for k, v in p.items()}


def _resolve(args: list[str], paths: dict[str, str]) -> list[str]:
    return [a.format(**paths) for a in args]


# ---- the property, case by case -------------------------------------------------------------------------------------


def _command_paths() -> list[str]:
    """Every leaf command of the app, e.g. 'train', 'data check' (read from the app, so new commands appear)."""

    def walk(cmd: Any, prefix: list[str]) -> list[str]:  # typer may vendor click: duck-type its groups
        if hasattr(cmd, "commands"):
            return [c for name, sub in sorted(cmd.commands.items()) for c in walk(sub, [*prefix, name])]
        return [" ".join(prefix)]

    return walk(typer.main.get_command(cli.app), [])


COMMANDS = _command_paths()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_arguments(case: Case, work: Path, paths: dict[str, str]) -> None:
    if case.command not in COMMANDS:
        pytest.skip(f"command {case.command!r} is not in this build")
    before = snapshot(work)
    code, text = run_cli(_resolve(case.args, paths))
    assert_one_readable_error(code, text, case.expect)
    assert snapshot(work) == before, "the command left files behind or changed its inputs"
    assert not Path(paths["out"]).exists()


def test_every_command_has_cases() -> None:
    """A command without a bad-argument case here is a command nobody has tried to break: add Cases for it."""
    covered = {c.command for c in CASES}
    assert not [c for c in COMMANDS if c not in covered], f"commands without cases: " \
        f"{[c for c in COMMANDS if c not in covered]}"


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option(command: str, work: Path) -> None:
    before = snapshot(work)
    code, text = run_cli([*command.split(), "--no-such-option"])
    assert_one_readable_error(code, text, "No such option: --no-such-option")
    assert snapshot(work) == before


def _required(command: str) -> list[str]:
    cmd: Any = typer.main.get_command(cli.app)
    for word in command.split():
        cmd = cmd.commands[word]
    return [p.name for p in cmd.params if getattr(p, "required", False)]


@pytest.mark.parametrize("command", [c for c in COMMANDS if _required(c)])
def test_missing_required(command: str, work: Path) -> None:
    before = snapshot(work)
    code, text = run_cli(command.split())
    assert_one_readable_error(code, text, "Missing")
    assert snapshot(work) == before


# ---- the real exit path ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", ["train --alpha abc", "compare train.json", "check missing path",
                                     "train config is a folder"])
def test_real_process_exit_path(case_id: str, work: Path, paths: dict[str, str]) -> None:
    """The same property through `python -m hybridbatch.cli` (cli.main, sys.exit, real stdout / stderr)."""
    case = next(c for c in CASES if c.id == case_id)
    before = snapshot(work)
    p = subprocess.run([sys.executable, "-m", "hybridbatch.cli", *_resolve(case.args, paths)], cwd=work,
                       env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)
    assert_one_readable_error(p.returncode, p.stdout + p.stderr, case.expect)
    assert snapshot(work) == before


# ---- --out that cannot be written, found only after the work (needs a model: the tiny random one) -------------------

OUT_IS_A_FILE = {
    # command: (arguments, owner module) -- {model} is the tiny random test model, {a_file} an existing file
    "train": (["train", "--model", "{model}", "--data", "{pairs}", "--batch-size", "4", "--max-steps", "1",
               "--no-progress", "--out", "{a_file}/run"], "training"),
    "eval": (["eval", "--model", "{model}", "--data", "{lareqa}", "--split", "all", "--no-progress", "--out",
              "{a_file}"], "evaluation"),
    "compare": (["compare", "{eval_run}", "{eval_run}", "--n-boot", "100", "--n-perm", "100", "--out", "{a_file}"],
                "stats"),
    "align": (["align", "--model", "{model}", "--data-dir", "{shared_data}", "--source", "tatoeba", "--limit", "4",
               "--no-progress", "--out", "{a_file}"], "alignment"),
    "debias": (["debias", "--model", "{model}", "--rank", "1", "--data-dir", "{shared_data}", "--no-progress",
                "--out", "{a_file}"], "debias"),
}


@pytest.mark.slow
@pytest.mark.parametrize("command", list(OUT_IS_A_FILE))
def test_out_that_is_a_file(command: str, work: Path, paths: dict[str, str], tiny_model: Path,
                            shared_data: Path) -> None:
    """An --out that is an existing file (or lies under one) must be refused up front with exit 2, not after
    loading the model and computing everything."""
    if command not in COMMANDS:
        pytest.skip(f"command {command!r} is not in this build")
    paths = {**paths, "model": str(tiny_model), "shared_data": str(shared_data), "eval_run": str(work / "eval-run")}
    if command == "compare":  # a real eval run to compare
        code, text = run_cli(_resolve(OUT_IS_A_FILE["eval"][0], {**paths, "a_file": paths["eval_run"]}))
        assert code == 0, text
    before = snapshot(work)
    code, text = run_cli(_resolve(OUT_IS_A_FILE[command][0], paths))
    assert_one_readable_error(code, text, "a-file.txt")
    assert snapshot(work) == before
