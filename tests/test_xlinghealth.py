"""XLingHealth from its xlsx source files: the real counts, the answer / negative groups, the CLI (`data stats`,
`data check`), and bad copies of the real workbooks (one cell changed in the sheet XML) that must exit 2 naming the
file, sheet, row and column."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hybridbatch.cli import base as cli
from hybridbatch.data.checks import check_paths, dataset_stats
from hybridbatch.data.lookup import load_pairs
from hybridbatch.data.xlinghealth import read_xlinghealth
from hybridbatch.errors import DataError, UsageError

runner = CliRunner()
SHEET = "xl/worksheets/sheet1.xml"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.out, "width", 400)


@pytest.fixture(scope="module")
def xlh(shared_data: Path):
    return read_xlinghealth(shared_data / "xlinghealth")


def patched(src: Path, dst: Path, edit: Callable[[str], str], part: str = SHEET) -> Path:
    """A copy of workbook `src` whose zip part `part` is `edit(text)`; every other part byte-identical."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == part:
                new = edit(data.decode("utf-8"))
                assert new != data.decode("utf-8"), "the edit changed nothing"
                data = new.encode("utf-8")
            zout.writestr(info, data)
    return dst


def sub(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, old
        return text.replace(old, new)
    return edit


# ---- the real files -------------------------------------------------------------------------------------------------


def test_real_counts_per_language(xlh) -> None:
    assert xlh.name == "xlinghealth" and len(xlh.items) == 936 and len(xlh) == 3740
    per_lang = {lang: sum(1 for v in xlh.items.values() if lang in v) for lang in xlh.languages}
    assert per_lang == {"en": 933, "es": 936, "hi": 936, "zh": 935}
    negs = {lang: sum(len(v[lang].negatives) for v in xlh.items.values() if lang in v) for lang in xlh.languages}
    assert negs == {"en": 3732, "es": 3744, "hi": 3744, "zh": 3740}  # 4 labelled non-relevant passages each
    assert Counter(len(v) for v in xlh.items.values()) == {4: 933, 3: 2, 2: 1}
    assert Counter(q.split(":")[0] for q in xlh.items) == {"LiveQA": 246, "MedicationQA": 690}


def test_empty_cells_are_warnings_naming_the_cell(xlh) -> None:
    got = sorted((Path(w.file).name, w.where) for w in xlh.warnings)
    assert got == [("LiveQA.xlsx", "sheet Sheet1, row 292, column D"),
                   ("LiveQA.xlsx", "sheet Sheet1, row 337, column D"),
                   ("MedicationQA.xlsx", "sheet Sheet1, row 1062, column E"),
                   ("MedicationQA.xlsx", "sheet Sheet1, row 1062, column G")]
    assert "id 58 has no question (question_English): it is left out of en" in {w.message for w in xlh.warnings}
    assert set(xlh.items["LiveQA:58"]) == {"es", "hi", "zh"} and set(xlh.items["MedicationQA:212"]) == {"es", "hi"}


def test_first_question_its_passage_and_negative_groups(xlh) -> None:
    en = xlh.items["LiveQA:0"]["en"]
    assert en.query.startswith("12 years ago I was bitten by tick while deer hunting.")
    assert en.positive.startswith("Lyme disease tests are used to determine if a person")
    assert en.negatives[0] == "Arachnoiditis A-Z List of Top 1000 Cities"
    # a negative's answer id names the question whose relevant passage it is: its group is that question's
    assert en.group == "LiveQA:0" and en.negative_groups == ("LiveQA:195", "LiveQA:136", "LiveQA:204", "LiveQA:13")
    assert xlh.items["LiveQA:195"]["en"].positive == en.negatives[0]
    zh = xlh.items["LiveQA:0"]["zh"]
    assert zh.query.startswith("12年前") and len(zh.negatives) == 4


def test_ids_with_one_relevant_text_share_an_answer_group(xlh) -> None:
    """Nine MedicationQA questions have the relevant passage 'No hay respuestas' (English 'No answers', once
    'No Answers'): one answer group, so they never meet in a batch as each other's false negatives."""
    no_answers = sorted(q for q, v in xlh.items.items() if v["es"].positive == "No hay respuestas")
    assert len(no_answers) == 9 and sum(xlh.items[q]["en"].positive == "No answers" for q in no_answers) == 8
    assert {xlh.items[q][lang].group for q in no_answers for lang in xlh.items[q]} == {"MedicationQA:31"}
    assert sum(1 for q, v in xlh.items.items() if v["es"].group != q) == 43


def test_the_jsonl_conversion_agrees_with_the_xlsx(shared_data: Path, xlh) -> None:
    """The README calls the JSONL unchecked: checked here, its positives and negatives equal the xlsx's."""
    pos = [json.loads(line) for line in (shared_data / "xlinghealth" / "xlinghealth_pos.jsonl").open(encoding="utf-8")]
    assert len(pos) == 3740
    assert all(xlh.items[r["pid"]][r["lang"]].query == r["question"].strip()
               and xlh.items[r["pid"]][r["lang"]].positive == r["positive"].strip() for r in pos)


def test_load_pairs_by_name_file_and_folder(shared_data: Path, xlh) -> None:
    assert load_pairs("xlinghealth", shared_data).items == xlh.items
    assert load_pairs(shared_data / "xlinghealth").checksum == xlh.checksum
    live = load_pairs(shared_data / "xlinghealth" / "LiveQA.xlsx")
    assert live.name == "LiveQA" and len(live.items) == 246 and len(live) == 982


def test_cli_stats_and_check_on_the_real_files(shared_data: Path) -> None:
    r = runner.invoke(cli.app, ["data", "stats", "xlinghealth", "--data-dir", str(shared_data), "--json"])
    assert r.exit_code == 0, r.output
    st = json.loads(r.output)
    assert {k: v["questions"] for k, v in st["languages"].items()} == {"en": 933, "es": 936, "hi": 936, "zh": 935}
    assert st["ids"] == 936 and st["ids_in_k_languages"] == {"2": 1, "3": 2, "4": 933}
    r = runner.invoke(cli.app, ["data", "check", str(shared_data / "xlinghealth")])
    assert r.exit_code == 0, r.output
    assert "ok: no errors, 6 warnings" in r.output  # 4 empty cells + the 2 JSONL files not checked
    assert "xlinghealth_all.jsonl: file: warning: not checked" in r.output


# ---- bad copies -----------------------------------------------------------------------------------------------------


def test_a_bad_copy_lists_every_problem_and_exits_2(shared_data: Path, tmp_path: Path) -> None:
    edits = [("<c r=\"B3\"><v>0</v></c>", "<c r=\"B3\"><v>2</v></c>"),  # label 2
             ("<c r=\"A4\"><v>0</v></c>", "<c r=\"A4\" t=\"inlineStr\"><is><t>zero</t></is></c>"),  # id as text
             ("<c r=\"B8\"><v>0</v></c>", "<c r=\"B8\"><v>1</v></c>"),  # id 1: two relevant passages
             ("<c r=\"D5\" t=\"s\"><v>11</v></c>", "<c r=\"D5\" t=\"s\"><v>35</v></c>"),  # id 0: another question
             ("<c r=\"D6\" t=\"s\"><v>11</v></c>", "")]  # id 0: question missing on one row

    def edit(text: str) -> str:
        for old, new in edits:
            text = sub(old, new)(text)
        return text

    bad = patched(shared_data / "xlinghealth" / "LiveQA.xlsx", tmp_path / "bad" / "LiveQA.xlsx", edit)
    problems, _ = check_paths([bad])
    assert [(p.file, p.where, p.message) for p in problems] == [
        (str(bad), "sheet Sheet1, row 3, column B (label)", "expected 0 (not relevant) or 1 (relevant), got 2"),
        (str(bad), "sheet Sheet1, row 4, column A (id)", "expected an integer, got text 'zero'"),
        (str(bad), "sheet Sheet1, row 7, column B (label)",
         "id 1 has 2 relevant passages (label 1) in rows [7, 8]; each question needs exactly one"),
        (str(bad), "sheet Sheet1, row 5, column D (question_English)",
         "differs, while row 2 of the same id 0 holds its question; every row of an id repeats it"),
        (str(bad), "sheet Sheet1, row 6, column D (question_English)",
         "is empty, while row 2 of the same id 0 holds its question; every row of an id repeats it"),
    ]
    r = runner.invoke(cli.app, ["data", "check", str(bad.parent)])
    assert r.exit_code == 2 and "5 errors" in r.output
    assert f"{bad}: sheet Sheet1, row 3, column B (label): expected 0" in r.output
    with pytest.raises(DataError) as e:
        read_xlinghealth(bad)
    assert len(e.value.problems) == 5 and e.value.where == "sheet Sheet1, row 3, column B (label)"
    r = runner.invoke(cli.app, ["data", "stats", str(bad)])
    assert isinstance(r.exception, DataError) and r.exception.exit_code == 2


def test_a_missing_column_names_the_header_row(shared_data: Path, tmp_path: Path) -> None:
    bad = patched(shared_data / "xlinghealth" / "MedicationQA.xlsx", tmp_path / "MedicationQA.xlsx",
                  sub('<c r="C1" s="1" t="s"><v>8</v></c>', ""))
    with pytest.raises(DataError) as e:
        read_xlinghealth(bad)
    (p,) = e.value.problems
    assert (p.file, p.where) == (str(bad), "sheet Sheet1, row 1") and p.message.startswith(
        "missing column 'answer_ids' (XLingHealth columns: id, label, answer_ids, question_English")


def test_broken_workbooks_name_the_file(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "xlinghealth" / "LiveQA.xlsx"
    cut = tmp_path / "cut" / "LiveQA.xlsx"
    cut.parent.mkdir()
    cut.write_bytes(src.read_bytes()[:300_000])
    dangling = patched(src, tmp_path / "dangling" / "LiveQA.xlsx",
                       sub('<c r="E2" t="s"><v>12</v></c>', '<c r="E2" t="s"><v>99999</v></c>'))
    no_xml = patched(src, tmp_path / "xml" / "LiveQA.xlsx", lambda t: t[: len(t) // 2])
    problems, _ = check_paths([cut, dangling, no_xml])
    got = [(Path(p.file).parent.name, p.where, p.message) for p in problems]
    assert got[:2] == [
        ("cut", "file", "cannot read: not an xlsx workbook (not a zip archive, or truncated: its zip directory is "
                        "missing)"),
        ("dangling", "sheet Sheet1, row 2, column E", "points at shared string '99999', but the workbook has 1970 "
                                                      "(a corrupt file)"),
    ]
    assert len(got) == 3 and got[2][:2] == ("xml", "file")
    assert got[2][2].startswith("malformed XML in the workbook part 'xl/worksheets/sheet1.xml': ")


def test_a_folder_without_workbooks_and_a_missing_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        read_xlinghealth(tmp_path / "empty")
    assert e.value.where == "folder" and "no .xlsx workbooks" in str(e.value)
    with pytest.raises(UsageError, match="no such file or folder"):
        read_xlinghealth(tmp_path / "nope")


def test_stats_of_one_workbook(shared_data: Path) -> None:
    st = dataset_stats(shared_data / "xlinghealth" / "LiveQA.xlsx")
    assert st["name"] == "LiveQA" and st["languages"]["en"] == {"questions": 244, "shared_ids": 244, "negatives": 976}
