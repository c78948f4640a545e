"""Validation helpers shared by the readers: every check appends a Problem, so one pass finds every problem.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hybridbatch.errors import DataError, Problem

# ---------------------------------------------------------------------------------------------------------------------
# Validation helpers: every check appends to a ValidationReport instead of raising, so that one pass finds every
# problem.


# Locations for problems that concern a whole file or folder rather than a field or a line: every Problem names one,
# so `data check` never shows an empty "where" cell.
WHOLE_FILE = "file"
FILE_NAME = "file name"
TOP_LEVEL = "top level"
LINE_COUNT = "line count"
LANGUAGE = "language"  # the language code a file was given under (a key of `files`, often from its name)
FOLDER = "folder"


class ValidationReport:
    """Problems (errors) and warnings collected while reading one file set."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def error(self, file: Path | str, where: str, message: str) -> None:
        self.problems.append(Problem(str(file), where, message))

    def warn(self, file: Path | str, where: str, message: str) -> None:
        self.warnings.append(Problem(str(file), where, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataError(self.problems)


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


def kind_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    for t, name in _TYPE_NAMES.items():
        if isinstance(v, t):
            return name
    return "a number" if isinstance(v, float) else type(v).__name__


def show_value(v: Any, limit: int = 40) -> str:
    """A short, printable rendering of a value for a message (lone surrogates come out as \\udXXX escapes)."""
    if isinstance(v, str):
        s = repr(v[: limit + 2])
    else:
        try:
            s = json.dumps(v, ensure_ascii=False)
        except (ValueError, RecursionError):
            s = f"<{kind_name(v)}>"
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _bad_unicode(s: str) -> int | None:
    """Index of the first lone surrogate in `s` (from a broken `\\udXXX` escape: not valid Unicode, so tokenizers
    and UTF-8 writers fail on it later), or None."""
    if s.isascii():
        return None
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


def unicode_problem(s: str) -> str | None:
    i = _bad_unicode(s)
    if i is None:
        return None
    return (f"contains a lone surrogate {s[i]!r} at character {i} (a broken \\u escape): not valid Unicode; "
            f"fix the escape or drop the character")


def get_field(rep: ValidationReport, file: Path, obj: dict, key: str, where: str, want: type, *,
              nonempty: bool = False) -> Any:
    """obj[key] if it exists and has type `want` (bools are not integers; strings must be non-blank when `nonempty`),
    else None after recording the problem."""
    path = (f"{where} {key}" if where.endswith(":") else f"{where}.{key}") if where else key
    if key not in obj:
        rep.error(file, path, f"missing field {key!r}")
        return None
    v = obj[key]
    ok = isinstance(v, want) and not (want is int and isinstance(v, bool))
    if not ok:
        rep.error(file, path, f"expected {_TYPE_NAMES.get(want, want.__name__)}, got {kind_name(v)} ({show_value(v)})")
        return None
    if nonempty and ((isinstance(v, str) and not v.strip()) or (isinstance(v, list) and not v)):
        rep.error(file, path, "is empty" if isinstance(v, str) else "is an empty list")
        return None
    if isinstance(v, str) and (bad := unicode_problem(v)):
        rep.error(file, path, bad)
        return None
    return v


def read_text(rep: ValidationReport, path: Path) -> str | None:
    """The file as UTF-8 text (a BOM is accepted), or None after recording why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        what = (" (a broken symbolic link)" if path.is_symlink() and not path.exists()
                else " (a folder, not a file)" if path.is_dir() else "")
        rep.error(path, WHOLE_FILE, f"cannot read: {e.strerror or e}{what}")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        line = raw.count(b"\n", 0, start) + 1
        where = f"line {line} (byte {start})"
        if e.reason == "unexpected end of data" and start + 4 > len(raw):
            rep.error(path, where, "the file ends in the middle of a UTF-8 character (truncated: the file ends "
                                   "before the data does)")
            return None
        hint = ""
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            hint = " (it looks like UTF-16)"
        rep.error(path, where, f"wrong encoding: not valid UTF-8{hint}; save it as UTF-8")
        return None


def json_loads(rep: ValidationReport, path: Path, text: str, where_prefix: str = "") -> tuple[bool, Any]:
    """(True, value), or (False, None) after recording why `text` is not JSON: malformed (with line and column,
    and whether it looks truncated), nested deeper than the parser allows, or a number too long to convert."""
    try:
        return True, json.loads(text)
    except json.JSONDecodeError as e:
        body = text.strip()
        cut = e.pos >= len(text.rstrip()) or (body[:1] in "{[" and body[-1:] not in "}]")
        truncated = " (truncated: the file ends before the JSON does)" if cut and not where_prefix else ""
        if where_prefix:
            rep.error(path, where_prefix, f"malformed JSON: {e.msg} (column {e.colno})")
        elif not body:
            rep.error(path, f"line {e.lineno} column {e.colno}", "malformed JSON: the file is empty")
        else:
            rep.error(path, f"line {e.lineno} column {e.colno}", f"malformed JSON: {e.msg}{truncated}")
    except (RecursionError, ValueError) as e:  # ValueError: Python's limit on digits in an integer
        depth, deep_at, long_at = _json_hotspots(text)
        if isinstance(e, RecursionError):
            pos, msg = deep_at, f"malformed JSON: nested {depth} levels deep, more than the parser allows"
        else:
            pos, msg = long_at, f"malformed JSON: a number with more than {_max_digits()} digits"
        line = text.count("\n", 0, max(pos, 0)) + 1
        col = max(pos, 0) - (text.rfind("\n", 0, max(pos, 0)) + 1) + 1
        rep.error(path, where_prefix or f"line {line} column {col}",
                  f"{msg} (column {col})" if where_prefix else msg)
    return False, None


def _max_digits() -> int:
    import sys

    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300


def _json_hotspots(text: str) -> tuple[int, int, int]:
    """(deepest nesting, offset where it is first reached, offset of the first over-long number) in `text`, with
    strings skipped; only called to locate a JSON error the parser could not place."""
    depth = best = 0
    best_at = long_at = -1
    in_str = esc = False
    run_start, limit = -1, _max_digits()
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch.isdigit():
            if run_start < 0:
                run_start = i
            if long_at < 0 and i - run_start + 1 > limit:
                long_at = run_start
            continue
        run_start = -1
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best, best_at = depth, i
        elif ch in "]}":
            depth -= 1
    return best, best_at, long_at


def parse_json(rep: ValidationReport, path: Path) -> dict | None:
    """The SQuAD-style top-level object, or None after recording a malformed / truncated / wrong-shape problem."""
    text = read_text(rep, path)
    if text is None:
        return None
    ok, obj = json_loads(rep, path, text)
    if not ok:
        return None
    if not isinstance(obj, dict):
        rep.error(path, TOP_LEVEL, f"expected a SQuAD-style object with a 'data' list, got {kind_name(obj)}")
        return None
    if get_field(rep, path, obj, "data", "", list) is None:
        return None
    return obj


