"""Issue 22, evaluation and compare (docs/RELIABILITY.md, "Second round (issue 22): evaluation and compare"): each
case through the CLI (`cli.main` in a CliRunner isolation, as tests/test_cli_errors.py) on a real model folder (the
tiny BERT of conftest.py, and a copy of it: another model by name) and real XQuAD-R files cut small, asserting the
exact message, exit 2 and an unchanged working folder.

Cases: `eval --out` holding another model's or dataset's evaluation (refused; `--overwrite` replaces it and leaves
no file of the old run, its compare files included); a re-run into the same folder (allowed; stale files removed);
an `--out` that cannot be created for eval, compare and shift (refused before any work); `compare` of two runs made
with different tie rules (refused, as different datasets are).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_cli_errors import assert_one_readable_error, run_cli, snapshot, work  # noqa: F401  (work: a fixture)

from hybridbatch.data.lookup import load_corpus


def xquad_cut(shared_data: Path, out: Path, langs: tuple[str, ...] = ("de", "en", "es"), paragraphs: int = 2) -> Path:
    """The first `paragraphs` paragraphs of the first article of the real XQuAD-R files of `langs`."""
    out.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        obj = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        art = obj["data"][0]
        obj["data"] = [{**art, "paragraphs": art["paragraphs"][:paragraphs]}]
        (out / f"{lang}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return out


def eval_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["eval", "--model", str(model), "--data", str(data), "--split", "all", "--no-progress", "--encoder",
            "torch", "--out", str(out), *extra]


def ok(args: list[str]) -> str:
    code, text = run_cli(args)
    assert code == 0, text
    return text


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ---- eval --out over another run -----------------------------------------------------------------------------------


def test_eval_refuses_another_models_results_and_overwrite_leaves_nothing_stale(work, tiny_model, shared_data):
    data = xquad_cut(shared_data, work / "data")
    other_model = shutil.copytree(tiny_model, work / "model-b")  # the same weights under another name
    a, b = work / "a", work / "b"
    ok(eval_args(tiny_model, data, a))
    ok(eval_args(other_model, data, b))
    ok(["compare", str(a), str(b), "--n-boot", "100", "--n-perm", "100"])  # compare.json / .md land in b
    assert files(b) == ["compare.json", "compare.md", "compare.png", "eval.json", "eval.md", "pairs.png",
                        "per_query.npz"]
    corpus = load_corpus(data, split=None)
    old = json.loads((b / "eval.json").read_text())
    assert (old["model"]["name"], old["dataset"], old["checksum"]) == (str(other_model), corpus.name, corpus.checksum)

    two = xquad_cut(shared_data, work / "data-2", langs=("de", "en"))  # another dataset: two of the languages
    other_data = load_corpus(two, split=None)
    before = snapshot(work)
    code, text = run_cli(eval_args(tiny_model, data, b))
    assert_one_readable_error(code, text, (
        f"{b}: holds the evaluation of model '{other_model}' on {corpus.name} (checksum {corpus.checksum[:12]}), not "
        f"of '{tiny_model}' on {corpus.name} (checksum {corpus.checksum[:12]}); pass --overwrite to replace it, or "
        "choose another --out"))
    code, text = run_cli(eval_args(other_model, two, b))
    assert_one_readable_error(code, text, (
        f"{b}: holds the evaluation of model '{other_model}' on {corpus.name} (checksum {corpus.checksum[:12]}), not "
        f"of '{other_model}' on {other_data.name} (checksum {other_data.checksum[:12]}); pass --overwrite to replace "
        "it, or choose another --out"))
    assert snapshot(work) == before  # b untouched by both refusals

    ok([*eval_args(tiny_model, data, b), "--overwrite"])
    assert files(b) == ["eval.json", "eval.md", "pairs.png", "per_query.npz"]  # no compare file of the old run
    new = json.loads((b / "eval.json").read_text())
    assert new["model"]["name"] == str(tiny_model)
    assert new["summary"] == json.loads((a / "eval.json").read_text())["summary"]  # the run of a, again


def test_a_rerun_of_the_same_evaluation_is_allowed_and_drops_stale_files(work, tiny_model, shared_data):
    """Same model and data: no --overwrite needed (the crash-recovery path re-runs into the same folder); what the new
    run does not write (pairs.png after a single-language run) and compare files made from the old run go."""
    data = xquad_cut(shared_data, work / "data")
    a, b = work / "a", work / "b"
    ok(eval_args(tiny_model, data, a))
    ok(eval_args(tiny_model, data, b, "--ties", "optimistic"))
    ok(["compare", str(a), str(a / "eval.json"), "--out", str(b), "--n-boot", "100", "--n-perm", "100"])
    assert files(b) == ["compare.json", "compare.md", "compare.png", "eval.json", "eval.md", "pairs.png",
                        "per_query.npz"]
    same_model = Path(os.path.relpath(tiny_model, work))  # the same folder, spelt relative to the working folder
    ok(eval_args(same_model, data, b, "--protocol", "beir"))
    assert files(b) == ["eval.json", "eval.md", "per_query.npz"]
    body = json.loads((b / "eval.json").read_text())
    assert body["kind"] == "beir" and body["tie_rule"].startswith("expected")


# ---- --out that cannot be created ------------------------------------------------------------------------------------


def test_eval_compare_shift_out_that_cannot_be_created(work):
    """Checked before any work: the model, the runs and the data named here do not exist, and the message is about
    --out (each command would fail on them only later)."""
    limit = os.pathconf(work, "PC_NAME_MAX")
    long_out = work / ("r" * 300)
    outs = [(str(long_out), f"--out {long_out}: the name {'r' * 20}... is 300 bytes long; this filesystem allows "
                            f"at most {limit}")]
    if Path("/proc/self").exists():
        outs.append(("/proc/x", "--out /proc/x: cannot create a folder in /proc (No such file or directory)"))
    missing = str(work / "missing")
    before = snapshot(work)
    for out, message in outs:
        for args in (["eval", "--model", missing, "--data", missing, "--out", out, "--no-progress"],
                     ["compare", missing, missing, "--out", out],
                     ["shift", "--model", missing, "--data-dir", missing, "--out", out, "--no-progress"]):
            code, text = run_cli(args)
            assert_one_readable_error(code, text, message)
    assert snapshot(work) == before


# ---- compare across tie rules ----------------------------------------------------------------------------------------


def test_compare_refuses_runs_with_different_tie_rules(work, tiny_model, shared_data):
    data = xquad_cut(shared_data, work / "data")
    a, b = work / "a", work / "b"
    ok(eval_args(tiny_model, data, a))
    ok(eval_args(tiny_model, data, b, "--ties", "optimistic"))
    before = snapshot(work)
    code, text = run_cli(["compare", str(a), str(b), "--n-boot", "100", "--n-perm", "100"])
    assert_one_readable_error(code, text, (
        f"runs use different tie rules: {a} has 'expected', {b} has 'strict (optimistic)'; compare needs both runs "
        "evaluated with the same --ties"))
    assert snapshot(work) == before
    ok(eval_args(tiny_model, data, b, "--ties", "expected"))
    ok(["compare", str(a), str(b), "--n-boot", "100", "--n-perm", "100"])
    assert json.loads((b / "compare.json").read_text())["rows"][0]["diff"] == pytest.approx(0.0, abs=0)
