"""Issue 33 (third round of bad input and faults) and issue 32 items 5 and 7 (docs/RELIABILITY.md, "Third round"):
each case through the CLI (`cli.main` in a CliRunner isolation, or a real `python -m hybridbatch.cli` process) or
the public API, on the real files in ../shared/data, the hub miniatures of tests/fixtures/hub and the tiny BERT
of conftest.py; each asserts the message, the exit status and what is (not) left behind.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_errors import assert_one_readable_error, run_cli, snapshot, work  # noqa: F401  (work: a fixture)

from hybridbatch.data.hub import mmarco_pairs, stream_tsv
from hybridbatch.errors import DataError, HybridBatchError, UsageError

ROOT = Path(__file__).resolve().parents[1]
HUB = Path(__file__).parent / "fixtures" / "hub"
TINY_TRAIN = ("--batch-size", "2", "--max-steps", "1", "--val-fraction", "0", "--no-progress", "--device", "cpu")


def cli_process(args: list[str], cwd: Path, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
    """`python -m hybridbatch.cli ARGS` in a real process (what a user sees: the exit path, stderr, no capture)."""
    full = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "COLUMNS": "400", **env}
    for var in ("HYBRIDBATCH_DATA", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        full.pop(var, None)
    return subprocess.run([sys.executable, "-m", "hybridbatch.cli", *args], cwd=cwd, env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def hub_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding local copies of the hub miniatures (mmarco/, miracl/, miracl-corpus/), the corpus gzipped
    to its on-hub names, as a user would lay out what `huggingface-cli download` fetched."""
    root = tmp_path_factory.mktemp("hub-root")
    shutil.copytree(HUB, root, dirs_exist_ok=True)
    for p in root.glob("miracl-corpus/*/docs-*.jsonl"):
        p.with_suffix(".jsonl.gz").write_bytes(gzip.compress(p.read_bytes()))
        p.unlink()
    return root


# ---- issue 32 item 5 / issue 33 item 9: messages keep their values through rich ------------------------------------


def test_a_message_with_brackets_and_a_nan_reaches_the_terminal_whole(tmp_path):
    """A config file with `data_weights = [nan]` (TOML's nan): the message quotes `[nan]`, which rich read as a
    markup tag and dropped ("got " and nothing)."""
    (tmp_path / "c.toml").write_text('data = ["xquad-r"]\ndata_weights = [nan]\n', encoding="utf-8")
    r = cli_process(["train", "--config", "c.toml", "--out", "run"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: c.toml: data weights must be one number >= 0 per data source (1), not all 0; got [nan]"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml"]


def test_markup_like_values_are_printed_as_they_are(work):
    """A data file named like a rich tag (`[embedded].json`, `[bold]x`): `data check` and the error line print the
    names whole."""
    (work / "[bold]x").mkdir()
    (work / "[bold]x" / "[embedded].json").write_text("{}", encoding="utf-8")
    code, text = run_cli(["data", "check", str(work / "[bold]x" / "[embedded].json")])
    assert code == 2 and "Traceback" not in text, text
    assert "[bold]x/[embedded].json" in text and "unknown language code '[embedded]'" in text, text


# ---- issue 32 item 7 / issue 33 item 5: mMARCO and MIRACL from `train --data`, offline, bad revisions ---------------


def hub_failure(url: str, reason: str) -> str:
    return (f"error: cannot read {url} from the Hugging Face hub ({reason}). mMARCO and MIRACL are streamed from the "
            "hub at pinned revisions; offline, download the files on a machine with network (`huggingface-cli "
            "download <repo> --repo-type dataset --revision <sha> --include <paths>`, docs/DATA.md) and use the local "
            "folder: base=FOLDER in the library, or on the command line put it at DIR/mmarco (DIR/miracl and "
            "DIR/miracl-corpus) and pass --data-dir DIR.")


MMARCO_TRIPLES = ("hf://datasets/unicamp-dl/mmarco@714e2341460cf550592cd5e5d8dc164f020fe445/data/"
                  "triples.train.ids.small.tsv")
MIRACL_TOPICS = ("hf://datasets/miracl/miracl@33075b837ae3ee130037274357829bcd0f0692de/miracl-v1.0-sw/topics/"
                 "topics.miracl-v1.0-sw-train.tsv")


@pytest.mark.parametrize(("source", "url", "how"), [("mmarco", MMARCO_TRIPLES, "unreachable"),
                                                     ("miracl", MIRACL_TOPICS, "offline")])
def test_train_on_a_hub_source_without_the_hub(tmp_path, tiny_model, source, url, how):
    """`train --data mmarco|miracl` with HF_HUB_OFFLINE=1, or with the hub unreachable (a proxy that refuses every
    connection): one line naming the hub and the local-folder alternative, exit 2, no httpx traceback, no --out."""
    env = {"HF_HUB_OFFLINE": "1"} if how == "offline" else {
        "HF_HUB_OFFLINE": "0", "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "", "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    r = cli_process(["train", "--model", str(tiny_model), "--data", source, "--out", "run", *TINY_TRAIN], tmp_path,
                    timeout=300, **env)
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    head, _, rest = lines[0].partition(" from the Hugging Face hub (")
    assert head == f"error: cannot read {url}", lines[0]
    reason = rest.split("). mMARCO and MIRACL", 1)[0]
    assert lines[0] == hub_failure(url, reason)
    assert ("OfflineMode" in reason) if how == "offline" else ("Connect" in reason or "Proxy" in reason), reason
    assert not (tmp_path / "run").exists()


def test_train_on_local_copies_of_the_hub_sources(tmp_path, tiny_model, hub_copy):
    """The local-folder alternative the message names: `--data-dir DIR` holding DIR/mmarco, DIR/miracl and
    DIR/miracl-corpus (no network: HF_HUB_OFFLINE=1), with the languages chosen after the name."""
    r = cli_process(["train", "--model", str(tiny_model), "--data", "mmarco:en,es,de", "--data", "miracl:sw,fi",
                     "--data-dir", str(hub_copy), "--out", "run", *TINY_TRAIN], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    body = json.loads((tmp_path / "run" / "train.json").read_text(encoding="utf-8"))
    assert body["steps"] == 1
    text = json.dumps(body)
    assert "mmarco" in text and "miracl:train" in text, text[:2000]


def test_a_revision_of_the_wrong_form_is_refused_before_any_download():
    for base in ("hf://datasets/unicamp-dl/mmarco@not a sha", "hf://datasets/unicamp-dl/mmarco@-x",
                 "hf://datasets/unicamp-dl/mmarco@a..b", "hf://datasets/mmarco@714e2341"):
        with pytest.raises(UsageError) as e:
            mmarco_pairs(("en",), base=base)
        assert str(e.value) == (
            f"{base}/data/triples.train.ids.small.tsv: not a hub address of the form hf://datasets/<owner>/<name>@"
            "<revision>/<path>, <revision> a commit sha (hex digits) or a branch or tag name; the pinned revisions "
            "are in docs/DATA.md")


def test_an_unknown_revision_of_the_right_form_is_the_hub_message():
    """`base=` at a revision of the right form that the hub cannot give (offline here): the documented message,
    a HybridBatchError (exit 2 on the CLI), not the client's exception."""
    old = os.environ.get("HF_HUB_OFFLINE")
    with pytest.raises(HybridBatchError) as e:
        mmarco_pairs(("en",), base="hf://datasets/unicamp-dl/mmarco@0123456789abcdef0123456789abcdef01234567")
    assert type(e.value) is HybridBatchError and e.value.exit_code == 2
    assert str(e.value).startswith("cannot read hf://datasets/unicamp-dl/mmarco@0123456789abcdef0123456789abcdef"
                                   "01234567/data/triples.train.ids.small.tsv from the Hugging Face hub (")
    assert "--data-dir DIR" in str(e.value) and "base=FOLDER" in str(e.value)
    assert os.environ.get("HF_HUB_OFFLINE") == old


def test_tsv_reader_checks_only_the_lines_it_keeps(hub_copy, tmp_path):
    """One malformed line in a collection, on a passage no chosen query needs: the load goes on; the same line on a
    kept passage is the located error."""
    folder = tmp_path / "mmarco"
    shutil.copytree(hub_copy / "mmarco", folder)
    coll = folder / "data" / "google" / "collections" / "english_collection.tsv"
    good = mmarco_pairs(("en",), limit=None, base=str(folder))
    coll.write_text(coll.read_text(encoding="utf-8") + "garbage line without a tab\n999999999\t\n", encoding="utf-8")
    assert mmarco_pairs(("en",), limit=None, base=str(folder)).items == good.items
    kept = sorted({json.dumps(v["en"].positive) for v in good.items.values()})
    assert kept  # the bad line below breaks a passage that a query needs
    lines = coll.read_text(encoding="utf-8").splitlines()
    pid = next(ln.split("\t")[0] for ln in lines if "\t" in ln and json.dumps(ln.split("\t", 1)[1]) in kept)
    n = next(i for i, ln in enumerate(lines, 1) if ln.startswith(pid + "\t"))
    lines[n - 1] = pid + "\t   "
    coll.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as e:
        mmarco_pairs(("en",), limit=None, base=str(folder))
    assert [(p.file, p.where) for p in e.value.problems] == [(str(coll), f"line {n}")]
    assert list(stream_tsv(str(coll), 2, keep={"no-such-id"})) == []


# ---- issue 33 item 4: one writer per output folder -------------------------------------------------------------------


def test_two_trains_into_one_out_folder(tmp_path, tiny_model, xquad_cut):
    """Two real `train` processes into one --out: the second is refused before any work, naming the folder and the
    first's process, and touches nothing; the first runs on. Killed (SIGKILL), the first leaves a stale lock file
    that the next run takes over."""
    import signal
    import socket
    import time

    args = ["train", "--model", str(tiny_model), "--data", str(xquad_cut), "--out", "run", *TINY_TRAIN]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    first = subprocess.Popen([sys.executable, "-m", "hybridbatch.cli", *args, "--seed", "1", "--max-steps",
                              "1000000"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "run" / "train_config.json").exists():
            assert first.poll() is None, first.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the first run did not start training"
            time.sleep(0.2)
        lock = tmp_path / ".run.lock"
        held = lock.read_bytes()
        second = cli_process([*args, "--seed", "2", "--max-steps", "1"], tmp_path)
        assert second.returncode == 2, second.stderr[-3000:]
        (line,) = second.stderr.strip().splitlines()
        info = json.loads(held)
        assert info["pid"] == first.pid and info["host"] == socket.gethostname()
        assert line == (f"error: --out run: another process is writing into this folder (pid {first.pid} on "
                        f"{info['host']}, started {info['since']}: {info['command']}); wait for it to finish, or "
                        "choose another --out")
        assert "--seed 1" in info["command"] and first.poll() is None
        assert lock.read_bytes() == held
        assert json.loads((tmp_path / "run" / "train_config.json").read_text())["seed"] == 1
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert lock.exists()  # a crash leaves the lock file, whose lock the kernel released
    again = cli_process([*args, "--seed", "2", "--max-steps", "1", "--overwrite"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["seed"] == 2
    assert json.loads((tmp_path / "run" / "train.json").read_text())["steps"] == 1
    assert not lock.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_the_lock_goes_with_the_command_and_leaves_nothing(work, tiny_model):
    """In-process: a refused command (here an unknown model) takes and releases the lock, and removes the folders it
    made to hold it; the library path (no `out_locks` scope) takes no lock."""
    from hybridbatch.outputs import check_out_dir, out_locks

    before = snapshot(work)
    code, text = run_cli(["eval", "--model", str(work / "no-model"), "--data", "xquad-r", "--out", "a/b/ev"])
    assert code == 2, text
    assert snapshot(work) == before
    check_out_dir(work / "x" / "run")
    assert snapshot(work) == before
    with out_locks():
        check_out_dir(work / "x" / "run")
        assert (work / "x" / ".run.lock").exists()
        check_out_dir(work / "x" / "run")  # the same process again: re-entrant
    assert snapshot(work) == before


def test_lanes_share_a_grid_root_but_never_a_cell(work):
    """Two lanes of one grid or pilot (`make -j2 converged-seed-0 converged-seed-1`) write into one --out: the root
    is checked unlocked (`lock=False`) and each cell's folder is locked by the run that trains it. Another process
    holding cells/a: this one may use the root and cells/b, and is refused cells/a naming the holder."""
    from hybridbatch.errors import UsageError
    from hybridbatch.outputs import check_out_dir, out_locks

    held = work / "root" / "cells" / "a"
    code = ("import sys, time; from hybridbatch.outputs import check_out_dir, out_locks\n"
            f"with out_locks():\n    check_out_dir({str(held)!r}); print('held', flush=True); time.sleep(60)")
    other = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                             stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        with out_locks():
            check_out_dir(work / "root", lock=False)
            check_out_dir(work / "root" / "cells" / "b")
            assert (work / "root" / "cells" / ".b.lock").exists() and not (work / ".root.lock").exists()
            with pytest.raises(UsageError, match=f"cells/a: another process is writing into this folder \\(pid "
                                                 f"{other.pid} "):
                check_out_dir(held)
    finally:
        other.kill()
        other.wait()
    with out_locks():  # its lock died with it
        check_out_dir(held)


# ---- issue 33 item 1: a duplicated XLingHealth workbook --------------------------------------------------------------


def test_a_second_copy_of_an_xlinghealth_workbook_is_refused(work, shared_data, tiny_model):
    """The real workbooks plus `LiveQA (1).xlsx` (a second download): `data stats`, `data check` and `train` refuse
    it naming both files (before: 1,177 English questions instead of 933, the 246 LiveQA questions twice)."""
    folder = work / "xlh"
    folder.mkdir()
    for name in ("LiveQA.xlsx", "MedicationQA.xlsx"):
        shutil.copy(shared_data / "xlinghealth" / name, folder / name)
    shutil.copy(shared_data / "xlinghealth" / "LiveQA.xlsx", folder / "LiveQA (1).xlsx")
    message = (f"{folder / 'LiveQA.xlsx'}: questions: 246 of its 246 questions are also questions of LiveQA (1).xlsx "
               "(the same text; first: LiveQA:0): are LiveQA.xlsx and LiveQA (1).xlsx copies of one workbook? Their "
               "questions would be read twice, under other ids, and meet their copies as false negatives; remove one "
               "of the two files")
    before = snapshot(work)
    code, text = run_cli(["data", "stats", str(folder)])
    assert_one_readable_error(code, text, message)
    code, text = run_cli(["train", "--model", str(tiny_model), "--data", str(folder), "--out", "run", *TINY_TRAIN])
    assert_one_readable_error(code, text, message)
    code, text = run_cli(["data", "check", str(folder)])
    assert code == 2 and message in text.splitlines(), text
    assert snapshot(work) == before
    (folder / "LiveQA (1).xlsx").unlink()
    code, text = run_cli(["data", "stats", str(folder)])
    assert code == 0 and "│ en       │       933 │" in text, text


# ---- issue 33 items 2 and 3: a copied language file where the data are used; --out at a dataset folder ------------


@pytest.fixture
def copied_de(tmp_path: Path, shared_data: Path) -> Path:
    """A real XQuAD-R cut (first article, 2 paragraphs, en / de / es) whose de.json is a copy of en.json."""
    folder = tmp_path / "xq"
    folder.mkdir()
    for lang in ("en", "es"):
        obj = json.loads((shared_data / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        obj["data"] = [{**obj["data"][0], "paragraphs": obj["data"][0]["paragraphs"][:2]}]
        (folder / f"{lang}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    shutil.copy(folder / "en.json", folder / "de.json")
    return folder


def copy_warning(folder: Path) -> str:
    n = sum(len(p["qas"]) for p in json.loads((folder / "en.json").read_text(encoding="utf-8"))["data"][0]
            ["paragraphs"])
    return (f"warning: {folder / 'de.json'}: questions: {n} of the {n} questions it shares with en.json have the very "
            "same text there: is one file a copy of the other language's?")


def test_eval_and_train_warn_on_a_copied_language_file(tmp_path, tiny_model, copied_de):
    """Before, only `data check` said it; `eval` scored Cross and Multi on it without a word."""
    warning = copy_warning(copied_de)
    r = cli_process(["eval", "--model", str(tiny_model), "--data", str(copied_de), "--split", "all", "--out", "ev",
                     "--no-progress", "--device", "cpu", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.splitlines()[0] == warning, r.stderr[-3000:]
    health = json.loads((tmp_path / "ev" / "eval.json").read_text(encoding="utf-8"))["health"]
    assert health["data_warnings"] == [warning.removeprefix("warning: ")]
    r = cli_process(["train", "--model", str(tiny_model), "--data", str(copied_de), "--out", "run", *TINY_TRAIN],
                    tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.splitlines()[0] == warning, r.stderr[-3000:]


def test_eval_and_compare_refuse_an_out_holding_other_files(work, tiny_model, copied_de):
    """`eval --out DATASET_FOLDER` wrote eval.json & co. among the language files (then `data check` failed on
    "unknown language code 'eval'"); now refused before any work, like `compare --out` there."""
    before = snapshot(work.parent)
    code, text = run_cli(["eval", "--model", str(tiny_model), "--data", str(copied_de), "--out", str(copied_de),
                          "--overwrite"])
    assert_one_readable_error(code, text, (
        f"{copied_de}: holds files that are not an evaluation's (de.json, en.json, es.json); eval writes "
        "per_query.npz, pairs.png, eval.md, eval.json into --out: choose a new or empty folder, or one holding an "
        "evaluation"))
    code, text = run_cli(["compare", str(copied_de), str(copied_de), "--out", str(copied_de)])
    assert_one_readable_error(code, text, (
        f"{copied_de}: holds files that are not an evaluation's (de.json, en.json, es.json); compare writes "
        "compare.json, compare.md, compare.png into --out"))
    assert snapshot(work.parent) == before


# Every other command that writes into an --out: (its arguments, with {out} the folder and {model} a model folder;
# what its output is; what it writes there), as its refusal names them.
WRITERS = {
    "shift": (["shift", "--model", "{model}", "--out", "{out}", "--no-progress"], "a shift evaluation",
              "shift.json, shift.md, shift.png, per_query_<task>.npz"),
    "align": (["align", "--model", "{model}", "--out", "{out}", "--no-progress"], "an alignment",
              "align.json, align.md, plots/"),
    "debias --ranks": (["debias", "--model", "{model}", "--ranks", "0,1", "--out", "{out}", "--no-progress"],
                       "a debias sweep", "sweep.json, sweep.md, debias_subspace.npz and one eval folder per "
                       "configuration (base/, lsar-r<k>/, lir-r<k>/, centre/, centre-id/)"),
    "sweep": (["sweep", "--model", "{model}", "--samplers", "hybrid", "--alphas", "0.5", "--seeds", "0", "--out",
               "{out}"], "a grid", "cells/, <name>.json, <name>.md, alpha.png / <name>-alpha.png"),
    "experiment paper": (["experiment", "paper", "--model", "{model}", "--seeds", "0", "--out", "{out}"], "a grid",
                         "cells/, grid.json, grid.md, significance*.json, significance*.md"),
    "demo": (["demo", "--out", "{out}"], "a grid", "cells/, compare/, grid.json, grid.md, base_vs_hybrid.png"),
    "experiment pilot": (["experiment", "pilot", "--model", "{model}", "--lrs", "3e-5", "--out", "{out}"], "a grid",
                         "pilot/, pilot.json, pilot.md, pilot.png"),
    "experiment curves": (["experiment", "curves", "--out", "{out}"], "a grid",
                          "cells/<key>/curve/, curves.json, curves.md, curves.png"),
    "experiment report": (["experiment", "report", "--out", "{out}"], "a grid", "<name>.json, <name>.md"),
    "experiment debias-cells": (["experiment", "debias-cells", "--out", "{out}"], "a grid",
                                "cells/<key>/debias/, debias-report.json, debias-report.md"),
    "experiment alignment-vs-alpha": (["experiment", "alignment-vs-alpha", "--sweep", str(ROOT / "results" /
                                       "alpha-small"), "--out", "{out}", "--no-progress"],
                                      "an alignment-vs-alpha study", "alignment_vs_alpha.json, alignment_vs_alpha.md, "
                                      "alignment_vs_alpha.png, cells/"),
}


def refusal(out: Path, command: str, foreign: str) -> str:
    _, what, writes = WRITERS[command]
    return (f"error: {out}: holds files that are not {what}'s ({foreign}); {command} writes {writes} into --out: "
            f"choose a new or empty folder, or one holding {what}")


@pytest.mark.parametrize("command", list(WRITERS))
def test_every_writer_refuses_an_out_holding_a_dataset_or_a_model(work, tiny_model, copied_de, command):
    """`--out` at a dataset folder (the real XQuAD-R cut) or at a model folder (the tiny BERT): refused before any
    work, one line naming the folder, three of its entries and what the command writes; nothing written, not even
    the lock. (Before: shift, align, debias --ranks, sweep & co. wrote their files among the language files or the
    model's.) A grid's commands accept the README.md of a model folder (reports are *.md), nothing else of it."""
    model = work.parent / "model"
    shutil.copytree(tiny_model, model)
    args = WRITERS[command][0]
    grid = WRITERS[command][1] == "a grid"
    before = snapshot(work.parent)
    for out, foreign in ((copied_de, "de.json, en.json, es.json"),
                         (model, "1_Pooling, 2_Normalize, config.json and 6 more" if grid else
                          "1_Pooling, 2_Normalize, README.md and 7 more")):
        code, text = run_cli([a.format(out=out, model=tiny_model) for a in args])
        assert code == 2, text
        assert text.strip().splitlines() == [refusal(out, command, foreign)], text
        assert snapshot(work.parent) == before


def test_debias_rank_refuses_an_out_holding_a_dataset(work, tiny_model, copied_de):
    """`debias --rank` writes a model folder: it refuses any non-empty folder but a debiased model's."""
    before = snapshot(work.parent)
    code, text = run_cli(["debias", "--model", str(tiny_model), "--rank", "1", "--out", str(copied_de),
                          "--no-progress"])
    assert code == 2, text
    assert text.strip().splitlines() == [
        f"error: --out {copied_de} is a non-empty folder that is not a debiased model; give a new folder"], text
    assert snapshot(work.parent) == before


def test_an_out_folder_may_hold_its_own_results_hidden_files_and_nested_results(tmp_path):
    """What `check_out_folder` lets through: the command's own files (a re-run), hidden files (temps, locks), a
    subfolder holding another command's results (results nest: `compare --out` a folder of evaluations); a grid's
    `<name>.json` only when it is a result of a grid's kind (a dataset's `de.json` is not, nor another kind)."""
    from hybridbatch.evaluation.results import COMPARE_OUT
    from hybridbatch.experiments.grid import SWEEP_OUT
    from hybridbatch.outputs import check_out_folder

    out = tmp_path / "out"
    (out / "run-a").mkdir(parents=True)
    (out / "run-a" / "eval.json").write_text('{\n  "kind": "lareqa"\n}\n', encoding="utf-8")
    for name in ("compare.json", "compare.md", ".compare.json.0123abcd-12-0123abcd.tmp", ".lock"):
        (out / name).write_text("{}", encoding="utf-8")
    assert check_out_folder(out, COMPARE_OUT) == out
    (out / "plain").mkdir()  # a folder with nothing of ours in it
    (out / "plain" / "notes.json").write_text('{"data": []}', encoding="utf-8")
    with pytest.raises(UsageError) as e:
        check_out_folder(out, COMPARE_OUT)
    assert str(e.value).startswith(f"{out}: holds files that are not an evaluation's (plain); compare writes ")
    root = tmp_path / "root"
    (root / "cells").mkdir(parents=True)
    (root / "seed0.json").write_text('{"kind": "grid", "rows": []}', encoding="utf-8")
    (root / "seed0.md").write_text("# grid\n", encoding="utf-8")
    assert check_out_folder(root, SWEEP_OUT, lock=False) == root
    (root / "de.json").write_text('{"version": "1.1", "data": []}', encoding="utf-8")
    (root / "shift.json").write_text('{"kind": "hybridbatch.shift"}', encoding="utf-8")
    with pytest.raises(UsageError, match=r"holds files that are not a grid's \(de.json, shift.json\); sweep writes"):
        check_out_folder(root, SWEEP_OUT, lock=False)


def committed_results() -> dict[str, object]:
    """Each committed results folder and the output declaration of the command that wrote it."""
    from hybridbatch.analysis.alignment_vs_alpha import ALIGNMENT_VS_ALPHA_OUT
    from hybridbatch.analysis.debias_ranks import DEBIAS_SWEEP_OUT
    from hybridbatch.evaluation.results import COMPARE_OUT, EVAL_OUT
    from hybridbatch.evaluation.shift import SHIFT_OUT
    from hybridbatch.experiments.alignment import ALIGN_OUT
    from hybridbatch.experiments.grid import SWEEP_OUT

    top = {"align-hybrid": ALIGN_OUT, "align-hybrid-test": ALIGN_OUT, "shift-zero-shot": SHIFT_OUT,
           "zero-shot-full": EVAL_OUT, "debias-base": DEBIAS_SWEEP_OUT, "debias-base-48": DEBIAS_SWEEP_OUT,
           **{g: SWEEP_OUT for g in ("alpha-small", "bias-in-domain", "converged", "demo", "paper-small", "small-v2",
                                     "zero-shot")}}
    nested = {"*/cells/*/xquad-r": EVAL_OUT, "*/cells/*/tydiqa-goldp": EVAL_OUT, "*/cells/*/shift": SHIFT_OUT,
              "*/cells/*/debias": DEBIAS_SWEEP_OUT, "*/cells/*/debias/*-r*": EVAL_OUT, "debias-base*/base": EVAL_OUT,
              "debias-base*/l*-r*": EVAL_OUT, "debias-base/compare-*": COMPARE_OUT, "demo/compare": COMPARE_OUT,
              "zero-shot/lsar": COMPARE_OUT, "zero-shot/lsar/base*": EVAL_OUT,
              "zero-shot/lsar/hybrid-vs-base-lsar": COMPARE_OUT,
              "small-v2/alignment-vs-alpha": ALIGNMENT_VS_ALPHA_OUT}
    folders = {name: spec for name, spec in top.items()}
    for pattern, spec in nested.items():
        folders |= {str(p.relative_to(ROOT / "results")): spec for p in (ROOT / "results").glob(pattern)
                    if p.is_dir()}
    return folders


def test_committed_results_folders_are_accepted_by_their_own_commands():
    """A re-run into any committed results folder (the Makefile's targets: `sweep --out results/zero-shot`, which
    also holds lsar/ of `eval` and `compare`; `compare --out results/zero-shot/lsar` beside its evaluations) is not
    refused; every top-level folder of results/ is listed."""
    from hybridbatch.outputs import check_out_folder

    folders = committed_results()
    assert sorted(p.name for p in (ROOT / "results").iterdir() if p.is_dir()) == sorted(
        f for f in folders if "/" not in f)
    assert len(folders) > 100  # the cells' eval, shift and debias folders too
    for folder, spec in folders.items():
        check_out_folder(ROOT / "results" / folder, spec, lock=False)


# ---- issue 33 item 8: a huge cell in a small xlsx -------------------------------------------------------------------


def with_first_string(src: Path, dst: Path, text: bytes) -> Path:
    """A copy of workbook `src` whose first shared string starts with `text` (compressed as the original)."""
    import re
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "xl/sharedStrings.xml":
                data = re.sub(rb"(<si><t[^>]*>)", lambda m: m.group(1) + text, data, count=1)
            zout.writestr(info, data)
    return dst


def test_a_huge_cell_in_a_small_workbook_is_refused_without_reading_it(work, shared_data):
    """A 300 MB cell in a <1 MB xlsx (before: read whole, 2.3 GB peak, "ok"): refused naming the file and the part,
    with the memory of the bound (32 MiB) rather than of the part; a 2 M-character cell in a part under the bound
    is refused naming the entry."""
    import tracemalloc

    from hybridbatch.data.xlinghealth import read_xlinghealth

    bomb = with_first_string(shared_data / "xlinghealth" / "LiveQA.xlsx", work / "LiveQA.xlsx", b"a" * 300_000_000)
    assert bomb.stat().st_size < 2_000_000
    code, text = run_cli(["data", "check", str(bomb)])
    size = 300_000_000 + 1_349_607
    assert code == 2 and "Traceback" not in text, text
    assert f"{bomb}: part xl/sharedStrings.xml: unpacks to {size:,} bytes or more; at most 33,554,432 are read (a " \
           "corrupt or hostile file?)" in text.splitlines(), text
    tracemalloc.start()
    with pytest.raises(DataError, match="unpacks to"):
        read_xlinghealth(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50 * 2**20, peak
    big = with_first_string(shared_data / "xlinghealth" / "LiveQA.xlsx", work / "big.xlsx", b"b" * 2_000_000)
    with pytest.raises(DataError) as e:
        read_xlinghealth(big)
    (p,) = e.value.problems
    import zipfile
    from xml.etree import ElementTree as ET

    with zipfile.ZipFile(shared_data / "xlinghealth" / "LiveQA.xlsx") as z:
        first = next(iter(ET.fromstring(z.read("xl/sharedStrings.xml")))).itertext()
    n = 2_000_000 + len("".join(first))
    assert (p.where, p.message) == ("part xl/sharedStrings.xml, entry 0",
                                    f"a text of {n:,} characters; a cell holds at most 1,000,000")


# ---- issue 33 item 6: an eval.json whose summary disagrees with its per_query.npz ----------------------------------


def test_compare_refuses_a_summary_that_disagrees_with_the_per_query_file(work, tiny_model, xquad_cut):
    """Hand-edited (Multi mAP raised) or mixed from two runs (another model's per_query.npz, with its checksum put
    into eval.json): compare refuses naming the file (before: silent, its table showed other figures than
    eval.json)."""
    from conftest import build_tiny_model

    other = build_tiny_model(work.parent / "other-model", seed=1)
    for model, out in ((tiny_model, "a"), (other, "b")):
        code, text = run_cli(["eval", "--model", str(model), "--data", str(xquad_cut), "--split", "all", "--out", out,
                              "--no-progress", "--device", "cpu"])
        assert code == 0, text
    code, text = run_cli(["compare", "a", "b", "--out", "cmp", "--n-boot", "200", "--n-perm", "200"])
    assert code == 0, text  # the control: two honest runs compare
    edited = work / "edited"
    shutil.copytree(work / "a", edited)
    body = json.loads((edited / "eval.json").read_text(encoding="utf-8"))
    real = body["summary"]["multi"]["map"]
    body["summary"]["multi"]["map"] = real + 0.05
    (edited / "eval.json").write_text(json.dumps(body), encoding="utf-8")
    code, text = run_cli(["compare", "a", str(edited), "--out", "cmp2"])
    assert_one_readable_error(code, text, (
        f"{edited / 'eval.json'}: its summary disagrees with its per-query scores: multi map is {real + 0.05:.6f} "
        f"there, {real:.6f} from per_query.npz (hand-edited, or files of two runs); re-run `hybridbatch eval` into "
        "this folder"))
    mixed = work / "mixed"
    shutil.copytree(work / "a", mixed)
    shutil.copy(work / "b" / "per_query.npz", mixed / "per_query.npz")
    body = json.loads((mixed / "eval.json").read_text(encoding="utf-8"))
    body["per_query_sha256"] = json.loads((work / "b" / "eval.json").read_text(encoding="utf-8"))["per_query_sha256"]
    (mixed / "eval.json").write_text(json.dumps(body), encoding="utf-8")
    before = snapshot(work)
    code, text = run_cli(["compare", "a", str(mixed), "--out", "cmp3"])
    assert "Traceback" not in text and code == 2, text
    assert text.startswith(f"error: {mixed / 'eval.json'}: its summary disagrees with its per-query scores: "), text
    assert snapshot(work) == before


# ---- issue 33 item 9: messages that lost values ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "flags", "message"), [
    ("lr: .inf\n", [], "c.yaml: learning rate must be positive and finite, got inf"),
    ("lr: .inf\n", ["--lr", "0"], "learning rate must be positive and finite, got 0.0"),  # the flag's value: no file
    ("lr: .inf\n", ["--lr", "1e-4"], None),  # the flag overrides the file's bad value: accepted (fails later: data)
])
def test_a_range_error_from_a_config_file_names_the_file(work, text, flags, message):
    (work / "c.yaml").write_text(text, encoding="utf-8")
    before = snapshot(work)
    code, out = run_cli(["train", "--config", "c.yaml", *flags, "--data", str(work / "missing"), "--out", "run"])
    if message is None:
        assert_one_readable_error(code, out, f"{work / 'missing'}: no such file or folder")
    else:
        assert_one_readable_error(code, out, message)
        assert out.strip() == f"error: {message}", out
    assert snapshot(work) == before


def test_sweep_checks_every_axis_value_before_its_plan(work):
    """`sweep --adv-weights inf` printed a 15-cell plan, then refused inside the first cell."""
    code, text = run_cli(["sweep", "--samplers", "hybrid", "--losses", "adv", "--adv-weights", "0.5,inf", "--out",
                          "sw"])
    assert_one_readable_error(code, text, "adversarial weight must be >= 0 and finite (0: off), got inf")
    assert text.strip().splitlines() == [text.strip()] and text.startswith("error: cell hybrid-"), text
    assert "-winf-" in text and not (work / "sw").exists()


def test_a_truncated_weights_file_is_named(work, tiny_model):
    folder = work / "model"
    shutil.copytree(tiny_model, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, text = run_cli(["model", "info", str(folder)])
    assert_one_readable_error(code, text, f"could not load the model folder {folder}: its weights file "
                                          "model.safetensors cannot be read (")
    assert text.rstrip().endswith("): truncated or corrupt? Copy or save the model again"), text


# ---- issue 33 item 7: the loss of a resumed run ---------------------------------------------------------------------


def test_a_resumed_runs_loss_curve_says_which_steps_its_first_entry_covers(work, tiny_model, xquad_cut):
    """Logging every 3 steps, resumed from the checkpoint at step 4: the step-6 entry is the mean over steps 5-6
    only (the trainer's running sum is not in a checkpoint), where the uninterrupted run's covers 4-6; train.json
    now says so (`from_step: 5`). The entries before the resume are the uninterrupted run's."""
    (work / "c.toml").write_text("logging_steps = 3\n", encoding="utf-8")
    args = ["train", "--config", "c.toml", "--model", str(tiny_model), "--data", str(xquad_cut), "--batch-size",
            "2", "--max-steps", "6", "--save-steps", "4", "--val-fraction", "0", "--no-progress", "--device", "cpu",
            "--keep-checkpoints"]
    code, text = run_cli([*args, "--out", "full"])
    assert code == 0, text
    shutil.copytree(work / "full", work / "resumed", ignore=shutil.ignore_patterns("checkpoint-6"))
    (work / "resumed" / "train.json").unlink()
    assert sorted(p.name for p in (work / "resumed" / "checkpoints").glob("checkpoint-*")) == ["checkpoint-4"]
    code, text = run_cli([*args, "--out", "resumed", "--resume"])
    assert code == 0, text
    full, resumed = (json.loads((work / d / "train.json").read_text())["loss_curve"]["train"]
                     for d in ("full", "resumed"))
    assert [e["step"] for e in full] == [3, 6] and "from_step" not in full[1]
    assert resumed[0] == full[0]
    assert resumed[1]["step"] == 6 and resumed[1]["from_step"] == 5
    assert json.loads((work / "resumed" / "train.json").read_text())["resumed_from_step"] == 4
