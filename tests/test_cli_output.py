"""The CLI in scripts and CI logs: `data check` off a terminal prints one problem per line (`file: where: problem`,
never wrapped), `--json` for `data check` and `eval`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, stdout=subprocess.PIPE, cwd: Path | None = None, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": str(columns)}  # 80: a narrow log, as CI gives
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "hybridbatch.cli", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.fixture
def bad_es(shared_data: Path, tmp_path: Path) -> Path:
    """The real XQuAD-R es.json with four problems, in a folder with a long name (a wrapped table split it)."""
    folder = tmp_path / "a-rather-long-folder-name-like-ci-workspaces-have" / "xquad-r-copy"
    folder.mkdir(parents=True)
    doc = json.loads((shared_data / "xquad-r" / "es.json").read_text(encoding="utf-8"))
    para = doc["data"][0]["paragraphs"][0]
    para["qas"][0]["answers"][0]["answer_start"] = "7"
    para["qas"][1]["id"] = para["qas"][0]["id"]
    para["sentence_breaks"].pop()
    doc["data"][2]["paragraphs"][1]["qas"][0]["question"] = 5
    (folder / "es.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (folder / "en.json").write_bytes((shared_data / "xquad-r" / "en.json").read_bytes())
    return folder


def test_data_check_redirected_log_has_one_greppable_line_per_problem(bad_es: Path, tmp_path: Path) -> None:
    log = tmp_path / "log"
    with open(log, "w", encoding="utf-8") as fh:
        r = _cli("data", "check", str(bad_es), stdout=fh)
    assert r.returncode == 2, r.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    problem_lines = [x for x in lines if "es.json" in x]  # what `grep es.json log` prints
    # the same problems as --json reports, each whole on one line naming its file
    j = json.loads(_cli("data", "check", "--json", str(bad_es)).stdout)
    errors = [e for e in j["errors"] if e["file"].endswith("es.json")]
    assert len(errors) >= 4 and not j["ok"]
    assert len(problem_lines) == len(errors) + sum(w["file"].endswith("es.json") for w in j["warnings"])
    for e in errors:
        assert f"{e['file']}: {e['where']}: {e['message']}" in problem_lines
    assert str(bad_es / "es.json") in problem_lines[0]  # the full path, unbroken
    assert not any("\x1b[" in x or "│" in x for x in lines)  # no colour codes, no table borders
    assert lines[-1].startswith(f"{len(j['errors'])} errors")
    assert any("answer_start" in x for x in problem_lines) and any("duplicate question id" in x for x in problem_lines)


def test_data_check_json_on_good_data_is_ok_and_exit_0(shared_data: Path) -> None:
    r = _cli("data", "check", "--json", str(shared_data / "xquad-r" / "de.json"))
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["ok"] is True and j["errors"] == [] and j["paths"] == [str(shared_data / "xquad-r" / "de.json")]
    assert "ok: no errors" in r.stderr  # the human summary goes to stderr, stdout stays pure JSON


def test_eval_json_prints_eval_json_and_files(tiny_model: Path, shared_data: Path, tmp_path: Path) -> None:
    """`eval --json` prints what eval.json holds (plus the written files) and nothing else on stdout."""
    small = tmp_path / "two-langs"
    small.mkdir()
    for lang in ("en", "de"):
        (small / f"{lang}.json").write_bytes((shared_data / "xquad-r" / f"{lang}.json").read_bytes())
    out = tmp_path / "ev"
    r = _cli("eval", "--model", str(tiny_model), "--data", str(small), "--split", "all", "--out", str(out),
             "--no-progress", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    body = json.loads(r.stdout)
    on_disk = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in body.items() if k != "files"} == on_disk
    assert body["files"]["per_query"] == str(out / "per_query.npz")
    assert body["settings"]["device"] == "cpu" and body["languages"] == ["de", "en"]
    assert 0.0 <= body["summary"]["multi"]["map"] <= 1.0


def test_sweep_help_names_every_loss_and_sampler() -> None:
    """`--help` is where users learn the grid's vocabulary: a loss added to the presets but missing from the help
    (multipos and adv were) cannot be found without reading the source."""
    from hybridbatch.experiments.recipes import RECIPES
    from hybridbatch.sampling.samplers import SAMPLERS

    done = _cli("sweep", "--help", columns=400)  # one line an option: no name is split by the wrap
    assert done.returncode == 0, done.stderr
    losses_line = next(line for line in done.stdout.splitlines() if "--losses" in line)
    samplers_line = next(line for line in done.stdout.splitlines() if "--samplers" in line)
    assert [loss for loss in RECIPES if loss not in losses_line] == []
    assert [name for name in SAMPLERS if name not in samplers_line] == []
