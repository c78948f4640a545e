"""XLingHealth (parallel medical QA in en / es / zh / hi): the xlsx source files read into training pairs.

Each sheet row is (question id, label, answer id, question and answer text in four languages): per question id one
row with label 1 (its relevant passage) and about four with label 0 (labelled non-relevant passages: the hard
negatives). A label-0 row's answer id names the question whose relevant passage it is, so its negative group is that
question's answer group. Question ids are shared by the four languages (`<file stem>:<id>`, e.g. `LiveQA:0`, the
`pid` of the JSONL conversion beside the xlsx files, which is not read: the xlsx is the source of truth).

A language whose question (or relevant passage) cell is empty on every row of an id leaves the id out of that
language, with a warning: the real files have three such ids (LiveQA 58 and 67 have no English question,
MedicationQA 212 no English or Chinese passage), so 933 of the 936 questions exist in all four languages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hybridbatch.data.records import PairSet, TrainItem, union_groups
from hybridbatch.data.validation import FOLDER, WHOLE_FILE, ValidationReport, unicode_problem
from hybridbatch.data.xlsx import Sheet, XlsxCell, read_first_sheet
from hybridbatch.errors import UsageError
from hybridbatch.provenance import sha256_files

XLH_LANGUAGES = {"English": "en", "Spanish": "es", "Chinese": "zh", "Hindi": "hi"}  # column suffix -> ISO 639-1
XLH_FILES = ("LiveQA.xlsx", "MedicationQA.xlsx")
_ID_COLUMNS = ("id", "label", "answer_ids")
_COLUMNS = (*_ID_COLUMNS, *(f"{k}_{lang}" for lang in XLH_LANGUAGES for k in ("question", "answer")))
_INT = re.compile(r"^-?[0-9]+(\.0*)?$")


@dataclass
class _Row:
    n: int  # sheet row number
    qid: int
    label: int
    aid: int
    text: dict[str, str]  # column name -> text ("" when the cell is empty)


def _header(rep: ValidationReport, sheet: Sheet) -> dict[str, str] | None:
    """Column name -> column letters, from row 1; None after recording missing or repeated columns."""
    if not sheet.rows:
        rep.error(sheet.file, f"sheet {sheet.name}", "the sheet is empty (no header row)")
        return None
    row, cells = sheet.rows[0]
    cols: dict[str, str] = {}
    ok = True
    for col, cell in cells.items():
        name = cell.value.strip()
        if name in cols:
            rep.error(sheet.file, sheet.where(row, col), f"column {name!r} given twice (also column {cols[name]})")
            ok = False
        elif name in _COLUMNS:
            cols[name] = col
        else:
            rep.warn(sheet.file, sheet.where(row, col), f"unknown column {name!r} ignored")
    for name in _COLUMNS:
        if name not in cols:
            rep.error(sheet.file, f"sheet {sheet.name}, row {row}", f"missing column {name!r} (XLingHealth columns: "
                                                                    f"{', '.join(_COLUMNS)})")
            ok = False
    return cols if ok else None


def _int(rep: ValidationReport, sheet: Sheet, row: int, col: str, name: str, cell: XlsxCell | None) -> int | None:
    if cell is None:
        rep.error(sheet.file, sheet.where(row, col, name), "is empty (expected an integer)")
        return None
    if cell.kind not in ("number", "text") or not _INT.match(cell.value.strip()):
        rep.error(sheet.file, sheet.where(row, col, name), f"expected an integer, got {cell.kind} {cell.value!r:.40}")
        return None
    value = int(float(cell.value)) if "." in cell.value else int(cell.value)
    if name == "label" and value not in (0, 1):
        rep.error(sheet.file, sheet.where(row, col, name), f"expected 0 (not relevant) or 1 (relevant), got {value}")
        return None
    return value


def _rows(rep: ValidationReport, sheet: Sheet, cols: dict[str, str]) -> list[_Row]:
    out = []
    for row, cells in sheet.rows[1:]:
        if not cells:
            continue
        ids = [_int(rep, sheet, row, cols[k], k, cells.get(cols[k])) for k in _ID_COLUMNS]
        text = {}
        for name in _COLUMNS[len(_ID_COLUMNS):]:
            cell = cells.get(cols[name])
            value = cell.value.strip() if cell is not None else ""
            if bad := unicode_problem(value):
                rep.error(sheet.file, sheet.where(row, cols[name], name), bad)
                value = ""
            text[name] = value
        if all(v is not None for v in ids):
            out.append(_Row(row, ids[0], ids[1], ids[2], text))  # type: ignore[arg-type]
    return out


def _question(rep: ValidationReport, sheet: Sheet, col: str, name: str, rows: list[_Row]) -> str:
    """The id's question in one language: the same text on every row of the id, or empty on all of them."""
    first = next((r for r in rows if r.text[name]), None)
    for r in rows:
        if first is not None and r.text[name] != first.text[name]:
            what = "is empty" if not r.text[name] else "differs"
            rep.error(sheet.file, sheet.where(r.n, col, name), f"{what}, while row {first.n} of the same id {r.qid} "
                                                               f"holds its question; every row of an id repeats it")
    return first.text[name] if first is not None else ""


def _check_sheet(rep: ValidationReport, path: Path) -> dict[str, dict[str, TrainItem]]:
    """The items of one workbook (`<stem>:<id>` -> lang -> item), recording every problem."""
    sheet = read_first_sheet(rep, path)
    cols = _header(rep, sheet) if sheet is not None else None
    if sheet is None or cols is None:
        return {}
    by_id: dict[int, list[_Row]] = {}
    for r in _rows(rep, sheet, cols):
        by_id.setdefault(r.qid, []).append(r)
    if not by_id and not any(p.file == str(path) for p in rep.problems):
        rep.error(path, f"sheet {sheet.name}", "no question rows below the header")
    key = (lambda qid: f"{path.stem}:{qid}")
    positive: dict[int, _Row] = {}
    for qid, rows in by_id.items():
        pos = [r for r in rows if r.label == 1]
        if len(pos) != 1:
            rep.error(path, sheet.where(rows[0].n, cols["label"], "label"), f"id {qid} has {len(pos)} relevant "
                      f"passages (label 1) in rows {[r.n for r in pos]}; each question needs exactly one")
        else:
            positive[qid] = pos[0]
    groups = union_groups({key(q): [("answer", p.aid), *((c, p.text[c]) for c in p.text if c.startswith("answer_")
                                                          and p.text[c])] for q, p in positive.items()})
    group_of_answer = {p.aid: groups[key(q)] for q, p in positive.items()}
    items: dict[str, dict[str, TrainItem]] = {}
    for qid, pos in positive.items():
        rows = by_id[qid]
        for suffix, lang in XLH_LANGUAGES.items():
            qcol, acol = f"question_{suffix}", f"answer_{suffix}"
            question = _question(rep, sheet, cols[qcol], qcol, rows)
            if not question or not pos.text[acol]:
                what = f"question ({qcol})" if not question else f"relevant passage ({acol}, row {pos.n})"
                rep.warn(path, sheet.where(pos.n, cols[qcol if not question else acol]),
                         f"id {qid} has no {what}: it is left out of {lang}")
                continue
            negs = [r for r in rows if r.label == 0]
            for r in negs:
                if not r.text[acol]:
                    rep.warn(path, sheet.where(r.n, cols[acol], acol), f"empty non-relevant passage of id {qid}: "
                                                                       f"not used as a hard negative in {lang}")
            negs = [r for r in negs if r.text[acol]]
            items.setdefault(key(qid), {})[lang] = TrainItem(
                question, pos.text[acol], tuple(r.text[acol] for r in negs), groups[key(qid)],
                tuple(group_of_answer.get(r.aid, f"{path.stem}:passage:{r.aid}") for r in negs))
    return items


def xlinghealth_files(rep: ValidationReport, spec: Path | Sequence[Path]) -> list[Path]:
    """The workbooks of a spec: a folder (its *.xlsx, lock files `~$...` and hidden files skipped), one file, or a
    list of files."""
    if not isinstance(spec, (str, Path)):
        return [Path(p) for p in spec]
    path = Path(spec)
    if not path.is_dir():
        return [path]
    files = [p for p in sorted(path.glob("*.xlsx")) if not p.name.startswith(("~$", "."))]
    if not files:
        rep.error(path, FOLDER, "no .xlsx workbooks in this folder (XLingHealth: LiveQA.xlsx, MedicationQA.xlsx)")
    return files


def check_xlinghealth(rep: ValidationReport, files: Sequence[Path]) -> dict[str, dict[str, TrainItem]]:
    items: dict[str, dict[str, TrainItem]] = {}
    seen: list[tuple[Path, dict[str, dict[str, TrainItem]]]] = []
    for f in files:
        if f.suffix.lower() != ".xlsx":
            rep.error(f, WHOLE_FILE, "not an .xlsx workbook (XLingHealth is read from its xlsx source files)")
            continue
        mine = _check_sheet(rep, f)
        for other, theirs in seen:
            _check_shared_questions(rep, f, mine, other, theirs)
        seen.append((f, mine))
        items.update(mine)  # ids carry the file stem: two workbooks never share one
    return items


def _check_shared_questions(rep: ValidationReport, path: Path, mine: dict[str, dict[str, TrainItem]], other: Path,
                            theirs: dict[str, dict[str, TrainItem]]) -> None:
    """Questions of `path` whose text (in some language) is a question of `other` too: ids carry the file stem, so
    a second copy of a workbook (`LiveQA (1).xlsx`) would be read twice under new ids, in separate answer groups,
    and its questions would meet their copies as false negatives. Half or more shared: an error (a copied
    workbook); fewer: a warning naming both files."""
    texts = {(lang, item.query) for by_lang in theirs.values() for lang, item in by_lang.items()}
    shared = [qid for qid, by_lang in mine.items() if any((lang, it.query) in texts for lang, it in by_lang.items())]
    if not shared:
        return
    what = (f"{len(shared)} of its {len(mine)} questions are also questions of {other.name} (the same text; "
            f"first: {shared[0]})")
    if 2 * len(shared) >= min(len(mine), len(theirs)):
        rep.error(path, "questions", f"{what}: are {path.name} and {other.name} copies of one workbook? Their "
                                     "questions would be read twice, under other ids, and meet their copies as false "
                                     "negatives; remove one of the two files")
    else:
        rep.warn(path, "questions", f"{what}: they are read twice, under other ids and answer groups")


def read_xlinghealth(spec: Path | str | Sequence[Path]) -> PairSet:
    """XLingHealth training pairs from its xlsx files (a folder, one workbook or a list): per question id and
    language the question, its relevant passage and its labelled non-relevant passages as hard negatives, with
    answer groups (ids whose relevant passage is one text share a group) and the negatives' groups. Raises one
    DataError naming every problem (file, `sheet S, row R, column C (name)`); empty cells are warnings."""
    rep = ValidationReport()
    path = Path(spec) if isinstance(spec, (str, Path)) else None
    if path is not None and not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    files = xlinghealth_files(rep, spec if path is None else path)
    items = check_xlinghealth(rep, files)
    rep.raise_if_any()
    name = "xlinghealth" if path is None or path.is_dir() else path.stem
    return PairSet(name, items, sha256_files(files), list(rep.warnings))
