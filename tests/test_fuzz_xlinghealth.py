"""Fuzzing `read_xlinghealth` on damaged workbooks (cells rewritten, files cut, bytes flipped), checked against
`data check`. The property, the bookkeeping and the budgets: tests/fuzz_helpers.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import (
    MODULE_MARKS,
    NASTY_STRINGS,
    SENTENCE,
    SHARED_DATA,
    attempt,
    budgets,
    fuzz,
    scratch,
)
from hypothesis import strategies as st

from hybridbatch.data.checks import check_paths

pytestmark = MODULE_MARKS


def _small_workbook(src: Path, rows: int = 31) -> bytes:
    """The real LiveQA.xlsx cut to its header and first `rows - 1` rows (6 question ids): a small valid workbook."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                text = data.decode("utf-8")
                head, body = text.split("<sheetData>", 1)
                rows_xml = [m.group(0) for m in re.finditer(r"<row r=\"(\d+)\".*?</row>", body)
                            if int(m.group(1)) <= rows]
                assert len(rows_xml) == rows
                data = (head + "<sheetData>" + "".join(rows_xml) + "</sheetData>"
                        + body.split("</sheetData>", 1)[1]).encode("utf-8")
            zout.writestr(info, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def small_workbook() -> bytes:
    return _small_workbook(SHARED_DATA / "xlinghealth" / "LiveQA.xlsx")


CELL_VALUES = st.sampled_from(['<v>-1</v>', '<v>2</v>', '<v>1.5</v>', '<v>1e3</v>', '<v>abc</v>', '<v></v>',
                               '<v>' + '9' * 400 + '</v>']) | st.builds(lambda i: f'<v>{i}</v>', st.integers(0, 5000))


@st.composite
def workbook_edits(draw: st.DrawFn) -> tuple[str, Any]:
    """One damage to the small workbook: a cell rewritten (numbers, text, booleans, errors, shared-string indexes in
    and out of range, removed), the file cut at a random byte, or random bytes flipped."""
    what = draw(st.sampled_from(["cell", "cell", "cell", "cut", "flip"]))
    if what == "cell":
        ref = f"{draw(st.sampled_from('ABCDEFGHIJK'))}{draw(st.integers(1, 31))}"
        kind = draw(st.sampled_from(["", ' t="s"', ' t="b"', ' t="e"', ' t="str"', "inline", "remove"]))
        if kind == "inline":
            text = draw(SENTENCE | NASTY_STRINGS).replace("&", "&amp;").replace("<", "&lt;")
            return what, (ref, f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>')
        return what, (ref, "" if kind == "remove" else f'<c r="{ref}"{kind}>{draw(CELL_VALUES)}</c>')
    if what == "cut":
        return what, draw(st.floats(0, 1))
    return what, draw(st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8))


def _damage(raw: bytes, edit: tuple[str, Any]) -> bytes:
    import io
    import zipfile

    what, arg = edit
    if what == "cut":
        return raw[: int(arg * len(raw))]
    if what == "flip":
        b = bytearray(raw)
        for at, value in arg:
            b[min(len(b) - 1, int(at * len(b)))] = value
        return bytes(b)
    ref, cell = arg
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rf'<c r="{ref}"[^>]*?(/>|>.*?</c>)', lambda m: cell, data.decode("utf-8"),
                              count=1).encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8
            zout.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize("n", budgets(25))
def test_xlinghealth_workbooks(n: int, small_workbook: bytes) -> None:
    """A damaged workbook reads (items valid) or raises one DataError whose problems name it and a location."""
    from hybridbatch.data.xlinghealth import read_xlinghealth

    def prop(edit: tuple[str, Any]) -> None:
        with scratch() as d:
            f = d / "LiveQA.xlsx"
            f.write_bytes(_damage(small_workbook, edit))
            outcome, value = attempt(f"xlsx workbook: {edit[0]}", lambda: read_xlinghealth(f), files=[f])
            problems, _ = check_paths([f])
        assert (outcome == "valid") == (not problems)
        if outcome == "valid":
            assert len(value.items) <= 6

    fuzz(n, workbook_edits(), prop)
