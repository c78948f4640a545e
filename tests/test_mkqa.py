"""MKQA (MIA 2022 dev split, JSONL): the real per-language counts, the two pairings (question <-> question for X-Y
alignment, question -> first answer with answer groups), the CLI, and a bad copy whose every bad line and field is
named (exit 2)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridbatch.cli import base as cli
from hybridbatch.data.checks import check_paths, dataset_stats
from hybridbatch.data.lookup import load_pairs
from hybridbatch.data.mkqa import read_mkqa
from hybridbatch.errors import DataError, UsageError

runner = CliRunner()
LANGS = ["ar", "en", "es", "fi", "ja", "km", "ko", "ms", "ru", "sv", "tr", "zh"]  # zh_cn in the file


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "width", 400)


@pytest.fixture(scope="module")
def mkqa_file(shared_data: Path) -> Path:
    return shared_data / "mkqa" / "mkqa_mia_dev.jsonl"


def test_real_counts_per_language(shared_data: Path) -> None:
    st = dataset_stats("mkqa", shared_data)
    assert list(st["languages"]) == LANGS and st["ids"] == 1758 and st["ids_in_k_languages"] == {"12": 1758}
    assert {v["questions"] for v in st["languages"].values()} == {1758}
    assert {v["with_answers"] for v in st["languages"].values()} == {1758}
    assert {k: v["answers"] for k, v in st["languages"].items()} == {
        "ar": 2665, "en": 2630, "es": 2649, "fi": 2656, "ja": 2669, "km": 2646, "ko": 2660, "ms": 3055, "ru": 2653,
        "sv": 2663, "tr": 2663, "zh": 2661}
    assert st["questions"] == 21096 and st["warnings"] == 0


def test_question_pairing_is_alignment_pairs(mkqa_file: Path) -> None:
    ps = read_mkqa(mkqa_file)
    assert ps.name == "mkqa" and ps.languages == LANGS and len(ps.items) == 1758 and len(ps) == 21096
    first = ps.items["mkqa:563260143484355911"]
    assert first["en"].query == first["en"].positive  # query and "passage" are one text: X-Y only
    assert first["ja"].query == "「 I hear you knocking」は誰が歌っていますか"
    assert all(it.group == qid for qid, by in ps.items.items() for it in by.values())


def test_answer_pairing_groups_repeated_answers(mkqa_file: Path) -> None:
    ps = read_mkqa(mkqa_file, "answers")
    assert ps.name == "mkqa:answers" and len(ps) == 21096
    first = ps.items["mkqa:563260143484355911"]
    assert first["ar"].positive == "ديف إدموندز" and first["ja"].positive == "デイヴ・エドモンズ"
    groups = {it.group for by in ps.items.values() for it in by.values()}
    assert len(groups) == 1421  # 1758 ids; ids sharing a first answer in some language (yes, no, 2, ...) linked
    yes = [q for q, by in ps.items.items() if by["en"].positive.casefold() == "yes"]
    assert len(yes) == 24 and len({ps.items[q]["en"].group for q in yes}) == 1
    sizes = Counter(it.group for by in ps.items.values() for it in by.values())
    assert max(sizes.values()) == 360  # the largest group: 30 ids x 12 languages


def test_load_pairs_names_and_paths(shared_data: Path, mkqa_file: Path) -> None:
    assert load_pairs("mkqa", shared_data).name == "mkqa"
    assert load_pairs("mkqa:answers", shared_data).name == "mkqa:answers"
    assert load_pairs(f"{mkqa_file}:answers").items == read_mkqa(mkqa_file, "answers").items
    assert load_pairs(mkqa_file).checksum == read_mkqa(mkqa_file).checksum
    with pytest.raises(UsageError, match="pairing must be one of questions, answers"):
        read_mkqa(mkqa_file, "passages")


def test_cli_stats_and_check(shared_data: Path, mkqa_file: Path) -> None:
    r = runner.invoke(cli.app, ["data", "stats", "mkqa", "--data-dir", str(shared_data)])
    assert r.exit_code == 0, r.output
    assert "1758 ids: in how many languages" in r.output and "32270" in r.output  # answers over all languages
    r = runner.invoke(cli.app, ["data", "check", str(mkqa_file)])
    assert r.exit_code == 0 and "ok: no errors, 0 warnings" in r.output


def bad_copy(mkqa_file: Path, out: Path) -> Path:
    lines = mkqa_file.read_text(encoding="utf-8").split("\n")[:9]
    rec = [json.loads(x) for x in lines]
    rec[1]["answers"] = "Dave Edmunds"  # line 2: a string, not a list
    del rec[2]["question"]  # line 3
    rec[3]["lang"] = "xx"  # line 4
    rec[4]["answers"] = ["", "x"]  # line 5: an empty answer
    rec[5] = dict(rec[0])  # line 6: (pid, lang) of line 1 again
    rec[7]["answer"] = ["typo"]  # line 8: unknown field (a warning)
    text = [json.dumps(r, ensure_ascii=False) for r in rec]
    text[6] = text[6][:40]  # line 7: cut
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text) + "\n", encoding="utf-8")
    return out


def test_a_bad_copy_names_every_line_and_field(mkqa_file: Path, tmp_path: Path) -> None:
    bad = bad_copy(mkqa_file, tmp_path / "mkqa" / "mkqa_bad.jsonl")
    problems, warnings = check_paths([bad])
    assert [(p.where, p.message) for p in problems] == [
        ("line 2: answers", "expected a list, got a string ('Dave Edmunds')"),
        ("line 3: question", "missing field 'question'"),
        ("line 4: lang", problems[2].message),
        ("line 5: answers[0]", "expected a non-empty string, got ''"),
        ("line 6", "duplicate (pid, lang) ('mkqa:563260143484355911', 'ar'), first on line 1"),
        ("line 7", problems[5].message),
    ]
    assert "'xx'" in problems[2].message and problems[5].message.startswith("malformed JSON")
    assert {p.file for p in problems} == {str(bad)}
    assert [(w.where, w.message) for w in warnings] == [
        ("line 8: answer", "unknown field 'answer' ignored (fields: pid, lang, question, answers, split)")]
    r = runner.invoke(cli.app, ["data", "check", str(bad.parent)])
    assert r.exit_code == 2 and "6 errors, 1 warnings" in r.output
    assert f"{bad}: line 5: answers[0]: expected a non-empty string" in r.output
    with pytest.raises(DataError) as e:
        read_mkqa(bad)
    assert len(e.value.problems) == 6 and e.value.file == str(bad)
    r = runner.invoke(cli.app, ["data", "stats", str(bad)])
    assert isinstance(r.exception, DataError) and r.exception.exit_code == 2


def test_an_empty_file_and_a_folder_of_two(tmp_path: Path, mkqa_file: Path) -> None:
    empty = tmp_path / "mkqa_empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    problems, _ = check_paths([empty])
    assert [(p.where, p.message) for p in problems] == [("file", "no MKQA questions in this file")]
    two = tmp_path / "two"
    two.mkdir()
    for name in ("mkqa_a.jsonl", "mkqa_b.jsonl"):
        (two / name).write_bytes(mkqa_file.read_bytes()[:2000].rsplit(b"\n", 1)[0] + b"\n")
    with pytest.raises(UsageError, match="expected one MKQA .jsonl file in this folder, found 2"):
        read_mkqa(two)
