"""The first sheet of an .xlsx workbook with the standard library (an xlsx is zipped XML: the workbook names its
sheets, each sheet holds cells that point into a table of shared strings), so reading the XLingHealth source files
needs no spreadsheet dependency. Every problem names the file and, for a cell, `sheet <name>, row <n>, column <C>`.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from hybridbatch.data.validation import WHOLE_FILE, ValidationReport

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_REF = re.compile(r"^([A-Z]{1,3})([0-9]+)$")
#: bounds on what one workbook part unpacks to, and on one cell's text: the real XLingHealth parts are at most 1.7 MB
#: and its cells a few kB, while a zip bomb (a 300 MB cell in an 809 kB file) would be read and parsed whole
MAX_PART_BYTES = 32 * 2**20
MAX_CELL_CHARS = 1_000_000


@dataclass(frozen=True)
class XlsxCell:
    """One cell: its text (a number as written in the file) and its kind: 'text', 'number', 'bool' or 'error'."""

    value: str
    kind: str


@dataclass
class Sheet:
    """The cells of one sheet: `rows` are (row number, {column letters: cell}) in file order; empty cells are absent,
    as in the file."""

    file: Path
    name: str
    rows: list[tuple[int, dict[str, XlsxCell]]] = field(default_factory=list)

    def where(self, row: int, column: str, header: str = "") -> str:
        """The location of a cell in a problem message."""
        return f"sheet {self.name}, row {row}, column {column}" + (f" ({header})" if header else "")


def _xml(rep: ValidationReport, path: Path, zf: zipfile.ZipFile, part: str) -> ET.Element | None:
    try:
        declared = zf.getinfo(part).file_size
        with zf.open(part) as f:
            data = f.read(MAX_PART_BYTES + 1) if declared <= MAX_PART_BYTES else b""
        if declared > MAX_PART_BYTES or len(data) > MAX_PART_BYTES:
            rep.error(path, f"part {part}", f"unpacks to {max(declared, len(data)):,} bytes or more; at most "
                                            f"{MAX_PART_BYTES:,} are read (a corrupt or hostile file?)")
            return None
        return ET.fromstring(data)
    except KeyError:
        rep.error(path, WHOLE_FILE, f"not a complete xlsx workbook: it has no part {part!r}")
    except ET.ParseError as e:
        rep.error(path, WHOLE_FILE, f"malformed XML in the workbook part {part!r}: {e}")
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        rep.error(path, WHOLE_FILE, f"cannot read the workbook part {part!r}: {e} (truncated or corrupt file?)")
    return None


def _shared_strings(rep: ValidationReport, path: Path, zf: zipfile.ZipFile) -> list[str] | None:
    if "xl/sharedStrings.xml" not in zf.namelist():
        return []  # a workbook with no text cells has no table
    root = _xml(rep, path, zf, "xl/sharedStrings.xml")
    if root is None:
        return None
    # the text of an entry is its own <t>, or the <t> of its rich-text runs <r>; phonetic hints (<rPh>) are not text
    out = ["".join(t.text or "" for t in [*si.findall(f"{_MAIN}t"), *si.findall(f"{_MAIN}r/{_MAIN}t")])
           for si in root.findall(f"{_MAIN}si")]
    long = [(i, len(t)) for i, t in enumerate(out) if len(t) > MAX_CELL_CHARS]
    for i, n in long[:3]:
        rep.error(path, f"part xl/sharedStrings.xml, entry {i}", f"a text of {n:,} characters; a cell holds at most "
                                                                 f"{MAX_CELL_CHARS:,}")
    return None if long else out


def _first_sheet_part(rep: ValidationReport, path: Path, zf: zipfile.ZipFile) -> tuple[str, str] | None:
    """(sheet name, zip part of its XML) of the workbook's first sheet."""
    book = _xml(rep, path, zf, "xl/workbook.xml")
    if book is None:
        return None
    sheet = book.find(f"{_MAIN}sheets/{_MAIN}sheet")
    if sheet is None:
        rep.error(path, WHOLE_FILE, "the workbook lists no sheet")
        return None
    name, rid = sheet.get("name", "Sheet1"), sheet.get(f"{_REL}id")
    target = "worksheets/sheet1.xml"
    if rid and "xl/_rels/workbook.xml.rels" in zf.namelist():
        rels = _xml(rep, path, zf, "xl/_rels/workbook.xml.rels")
        if rels is None:
            return None
        for r in rels.findall(f"{_PKG_REL}Relationship"):
            if r.get("Id") == rid and r.get("Target"):
                target = r.get("Target", target)
    part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return name, part


def _cell(rep: ValidationReport, sheet: Sheet, c: ET.Element, row: int, col: str,
          strings: list[str]) -> XlsxCell | None:
    kind, v = c.get("t", "n"), c.find(f"{_MAIN}v")
    if kind == "inlineStr":
        return _bounded(rep, sheet, row, col, XlsxCell("".join(t.text or "" for t in c.iter(f"{_MAIN}t")), "text"))
    if v is None or v.text is None:
        return None  # a styled but empty cell
    if kind == "s":
        try:
            return XlsxCell(strings[int(v.text)], "text")
        except (ValueError, IndexError):
            rep.error(sheet.file, sheet.where(row, col), f"points at shared string {v.text!r}, but the workbook has "
                                                         f"{len(strings)} (a corrupt file)")
            return None
    if kind in ("str", "e"):
        return _bounded(rep, sheet, row, col, XlsxCell(v.text, "text" if kind == "str" else "error"))
    return _bounded(rep, sheet, row, col, XlsxCell(v.text, "bool" if kind == "b" else "number"))


def _bounded(rep: ValidationReport, sheet: Sheet, row: int, col: str, cell: XlsxCell) -> XlsxCell | None:
    if len(cell.value) <= MAX_CELL_CHARS:
        return cell
    rep.error(sheet.file, sheet.where(row, col), f"a text of {len(cell.value):,} characters; a cell holds at most "
                                                 f"{MAX_CELL_CHARS:,}")
    return None


def read_first_sheet(rep: ValidationReport, path: Path) -> Sheet | None:
    """The first sheet of workbook `path`, or None after recording why it cannot be read (not a zip, a part
    missing or malformed, a cell pointing outside the shared strings, a cell without a valid reference)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        what = (e.strerror if isinstance(e, OSError) and e.strerror
                else "not an xlsx workbook (not a zip archive, or truncated: its zip directory is missing)")
        rep.error(path, WHOLE_FILE, f"cannot read: {what}" + (" (a folder, not a file)" if path.is_dir() else ""))
        return None
    with zf:
        strings = _shared_strings(rep, path, zf)
        found = _first_sheet_part(rep, path, zf)
        if strings is None or found is None:
            return None
        name, part = found
        root = _xml(rep, path, zf, part)
        if root is None:
            return None
    sheet = Sheet(path, name)
    for r_el in root.iter(f"{_MAIN}row"):
        cells: dict[str, XlsxCell] = {}
        row = int(r_el.get("r", "0") or 0) if (r_el.get("r") or "").isdigit() else len(sheet.rows) + 1
        for c in r_el.findall(f"{_MAIN}c"):
            m = _REF.match(c.get("r", ""))
            if not m or int(m.group(2)) != row:
                rep.error(path, f"sheet {name}, row {row}", f"a cell with reference {c.get('r')!r}, not a column of "
                                                            f"row {row}")
                continue
            cell = _cell(rep, sheet, c, row, m.group(1), strings)
            if cell is not None:
                cells[m.group(1)] = cell
        sheet.rows.append((row, cells))
    return sheet
