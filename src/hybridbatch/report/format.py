"""Markdown formatting: the one number formatter of every Markdown table, so that a missing value and a rounding rule
are chosen in one place (each report keeps its own glyph for a missing value, so that committed reports regenerate
identically), and the one table writer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite(v: Any) -> bool:
    """A real number that is neither None, NaN nor infinite (bools are not numbers here)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def fmt(v: Any, digits: int = 3, *, signed: bool = False, missing: str = "–") -> str:
    """`v` with `digits` decimals (a sign always shown when `signed`); `missing` for None / NaN / inf."""
    if not finite(v):
        return missing
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: a header row, its rule and one line per row of already formatted cells."""
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out) + "\n"
