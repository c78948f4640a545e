"""`hybridbatch data check | stats | download`: every problem listed at once, per-language stats, and downloads from a
local http.server / file:// mirror (checksums, resume, offline message)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from corpus_helpers import partial_set, valid_doc, write
from typer.testing import CliRunner

from hybridbatch import data as C
from hybridbatch.cli import base as cli
from hybridbatch.errors import DataError, HybridBatchError, UsageError
from hybridbatch.provenance import sha256_file

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich folds table cells at 80 columns; tests read whole messages."""
    monkeypatch.setattr(cli.out, "width", 400)


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


# ---- check ----------------------------------------------------------------------------------------------------------


def test_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    d = valid_doc("de")
    d["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "3"
    d["data"][0]["paragraphs"][1]["sentence_breaks"].pop()
    d["data"][1]["paragraphs"][0]["qas"][1]["id"] = "r1"
    write(tmp_path / "de.json", d)
    (tmp_path / "en.json").write_text('{"data": [{"title": "x",', encoding="utf-8")
    (tmp_path / "pairs.jsonl").write_text('{"id": 1}\n', encoding="utf-8")
    d2 = valid_doc("es")
    d2["data"][0]["paragraphs"][0]["sentences"][0] = "[es] The Rhine flows north!"
    write(tmp_path / "es.json", d2)
    r = invoke("data", "check", str(tmp_path))
    assert r.exit_code == 2, r.output
    for where in ("data[0].paragraphs[0].qas[0].answers[0].answer_start", "data[0].paragraphs[1].sentence_breaks",
                  "data[1].paragraphs[0].qas[1].id", "line 1 column 25", "line 1: lang", "line 1: query",
                  "line 1: positive"):
        assert where in r.output, where
    assert "duplicate question id 'r1'" in r.output and "truncated" in r.output
    assert "7 errors" in r.output and "1 warnings" in r.output
    assert "data[0].paragraphs[0].sentences[0]" in r.output  # the warning, in its own table


def test_check_clean_real_data_exits_0_with_the_tr_warning(shared_data: Path) -> None:
    r = invoke("data", "check", str(shared_data / "xquad-r"), str(shared_data / "tatoeba-laser"),
               str(shared_data / "tydiqa-goldp" / "english_tydiqa_dev.json"))
    assert r.exit_code == 0, r.output
    assert "ok" in r.output and "2 warnings" in r.output and "tr.json" in r.output
    assert "data[9].paragraphs[3].sentences[2]" in r.output


def test_check_missing_path(tmp_path: Path) -> None:
    r = invoke("data", "check", str(tmp_path / "nope.json"))
    assert r.exit_code == 2 and "no such file or folder" in r.output


# ---- stats ----------------------------------------------------------------------------------------------------------


def test_stats_table_for_named_dataset(shared_data: Path) -> None:
    r = invoke("data", "stats", "xquad-r", "--data-dir", str(shared_data))
    assert r.exit_code == 0, r.output
    assert "13014" in r.output and "13090" in r.output and "1190" in r.output
    assert "k languages" in r.output


def test_stats_json_partial_parallel(tmp_path: Path) -> None:
    partial_set(tmp_path / "mlqa-r")
    r = invoke("data", "stats", "mlqa-r", "--data-dir", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    assert st["ids_in_k_languages"] == {"2": 3, "3": 3} and st["ids"] == 6
    assert st["languages"]["en"] == {"questions": 4, "paragraphs": 4, "candidates": 12, "shared_ids": 4}


def test_stats_tydi_tatoeba_and_pairs(shared_data: Path, tmp_path: Path) -> None:
    st = json.loads(invoke("data", "stats", "tydiqa-goldp", "--data-dir", str(shared_data), "--json").output)
    assert st["languages"]["bn"]["questions"] == 113 and st["ids_in_k_languages"] == {"1": 5077}
    st = json.loads(invoke("data", "stats", "tatoeba-laser", "--data-dir", str(shared_data), "--json").output)
    assert st["languages"]["th"] == {"pairs": 548} and st["pairs"] == 10548
    rows = [{"id": "a", "lang": lang, "query": "q", "positive": "p"} for lang in ("en", "de")]
    (tmp_path / "p.jsonl").write_text("\n".join(map(json.dumps, rows)), encoding="utf-8")
    st = json.loads(invoke("data", "stats", str(tmp_path / "p.jsonl"), "--json").output)
    assert st["kind"] == "pairs" and st["ids_in_k_languages"] == {"2": 1}


def test_stats_split_option(shared_data: Path) -> None:
    st = json.loads(invoke("data", "stats", "xquad-r", "--data-dir", str(shared_data), "--split", "test",
                           "--json").output)
    assert st["articles"] == 12 and st["ids_in_k_languages"].keys() == {"11"}


def test_entry_point_turns_errors_into_one_message_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "HYBRIDBATCH_DATA": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    p = subprocess.run([sys.executable, "-m", "hybridbatch.cli", "data", "stats", "xquad-r"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "error:" in p.stderr and "--data-dir" in p.stderr and "Traceback" not in p.stderr


# ---- download -------------------------------------------------------------------------------------------------------


def make_mirror(root: Path, shared_data: Path, name: str) -> Path:
    """Lay out `<owner>/<repo>/<commit>/<path>` like raw.githubusercontent.com, linking to the shared copies."""
    src = C.SOURCES[name]
    for f in src.files:
        dest = root / src.repo / src.commit / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(shared_data / name / f.name)
    return root


class _Quiet(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        super().do_GET()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "mirror"
    root.mkdir()
    _Quiet.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_over_http_checks_sha_and_resumes(shared_data: Path, tmp_path: Path, server) -> None:
    url, root = server
    make_mirror(root, shared_data, "tatoeba-laser")
    data = tmp_path / "data"
    r = invoke("data", "download", "tatoeba-laser", "--data-dir", str(data), "--mirror", url)
    assert r.exit_code == 0, r.output
    folder = data / "tatoeba-laser"
    assert len(_Quiet.requests) == 22
    for f in C.SOURCES["tatoeba-laser"].files:
        assert sha256_file(folder / f.name) == f.sha256
    assert not list(folder.glob(".*.tmp"))
    assert read_counts(folder)["th"] == 548
    # Resume: delete one file, damage another; only those two are fetched again.
    (folder / "tatoeba.vie-eng.vie").unlink()
    (folder / "tatoeba.deu-eng.eng").write_text("damaged\n", encoding="utf-8")
    _Quiet.requests = []
    assert invoke("data", "download", "tatoeba-laser", "--data-dir", str(data), "--mirror", url).exit_code == 0
    assert sorted(p.rsplit("/", 1)[1] for p in _Quiet.requests) == ["tatoeba.deu-eng.eng", "tatoeba.vie-eng.vie"]
    assert sha256_file(folder / "tatoeba.deu-eng.eng") == next(
        f.sha256 for f in C.SOURCES["tatoeba-laser"].files if f.name == "tatoeba.deu-eng.eng")


def read_counts(folder: Path) -> dict[str, int]:
    return {lang: len(x) for lang, (x, _) in C.read_tatoeba(folder).items()}


def test_download_checksum_mismatch_is_a_data_error(shared_data: Path, tmp_path: Path, server) -> None:
    url, root = server
    make_mirror(root, shared_data, "xquad-r")
    src = C.SOURCES["xquad-r"]
    bad = root / src.repo / src.commit / "xquad-r" / "th.json"
    bad.unlink()
    bad.write_bytes((shared_data / "xquad-r" / "th.json").read_bytes()[:-2] + b"}\n")
    data = tmp_path / "data"
    with pytest.raises(DataError) as e:
        C.download("xquad-r", data, mirror=url, progress=False)
    (p,) = e.value.problems
    assert p.file == str(data / "xquad-r" / "th.json") and p.where.endswith("/xquad-r/th.json")
    assert "sha256 mismatch" in p.message and "not saved" in p.message
    assert not (data / "xquad-r" / "th.json").exists()
    assert len(list((data / "xquad-r").glob("*.json"))) == 10 and not list((data / "xquad-r").glob(".*"))
    # Through the CLI: exit 2 (via main) and one readable message.
    r = invoke("data", "download", "xquad-r", "--data-dir", str(data), "--mirror", url)
    assert isinstance(r.exception, DataError) and r.exception.exit_code == 2


def test_download_from_file_url_then_load(shared_data: Path, tmp_path: Path) -> None:
    root = make_mirror(tmp_path / "mirror", shared_data, "xquad-r")
    folder = C.download("xquad-r", tmp_path / "data", mirror=root.as_uri(), progress=False)
    assert (folder / "SOURCE.txt").read_text(encoding="utf-8").startswith(
        "https://github.com/google-research-datasets/lareqa at commit 9bc8c7f")
    corpus = C.load_corpus("xquad-r", tmp_path / "data")
    assert sum(len(v) for v in corpus.candidates.values()) == 13014


def test_download_offline_says_how_to_use_a_local_copy(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused, as offline
    with pytest.raises(HybridBatchError) as e:
        C.download("tydiqa-goldp", tmp_path, mirror=f"http://127.0.0.1:{port}", progress=False, timeout=5)
    msg = str(e.value)
    assert "cannot download tydiqa-goldp" in msg and "--data-dir" in msg and "HYBRIDBATCH_DATA" in msg
    assert not (tmp_path / "tydiqa-goldp").exists()  # no empty folder that would hide the "not found" hint


def test_download_http_404_and_unknown_names(tmp_path: Path, server) -> None:
    url, _ = server
    with pytest.raises(HybridBatchError, match="HTTP 404"):
        C.download("tatoeba-laser", tmp_path, mirror=url, progress=False)
    with pytest.raises(UsageError, match="MLQA-R cannot be downloaded"):
        C.download("mlqa-r", tmp_path)
    with pytest.raises(UsageError, match="unknown dataset"):
        C.download("squad", tmp_path)


def test_download_urls_are_pinned_raw_github() -> None:
    src = C.SOURCES["tydiqa-goldp"]
    assert src.url(src.files[0]) == (
        "https://raw.githubusercontent.com/sagorbrur/tydiqa-language-specific/"
        "55c6649475e0765f717a6d32a173c6664096a8ce/language_data/arabic/arabic_tydiqa_dev.json")
    for s in C.SOURCES.values():
        assert len(s.commit) == 40 and all(len(f.sha256) == 64 for f in s.files)


def test_download_xlinghealth_from_a_file_mirror_then_read_it(shared_data: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYBRIDBATCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the user cache holds no mkqa either
    root = make_mirror(tmp_path / "mirror", shared_data, "xlinghealth")
    src = C.SOURCES["xlinghealth"]
    assert src.url(src.files[0]) == ("https://raw.githubusercontent.com/claws-lab/XLingEval/"
                                     "75ac9c8c5345b5d003bdcdf13a2b0fdcfeddec2a/XLingHealth_Dataset/LiveQA.xlsx")
    folder = C.download("xlinghealth", tmp_path / "data", mirror=root.as_uri(), progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["LiveQA.xlsx", "MedicationQA.xlsx", "SOURCE.txt"]
    assert len(C.load_pairs("xlinghealth", tmp_path / "data").items) == 936
    with pytest.raises(UsageError, match="mkqa cannot be downloaded as it is read here"):
        C.download("mkqa", tmp_path)
    with pytest.raises(UsageError, match=r"put its files \(mkqa\*\.jsonl\) in a folder"):
        C.load_pairs("mkqa", tmp_path / "nowhere")
