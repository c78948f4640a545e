"""Fuzzing `read_tatoeba` (Tatoeba bitext folders). The property, the bookkeeping and the budgets:
tests/fuzz_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fuzz_helpers import (
    MODULE_MARKS,
    SENTENCE,
    attempt,
    budgets,
    check_encoding_outcome,
    damaged_bytes,
    fuzz,
    huge_strings,
    scratch,
    truncations_every_prefix,
    truncations_sampled,
)
from hypothesis import strategies as st

from hybridbatch.data.languages import normalize_lang
from hybridbatch.data.pairs import read_tatoeba

pytestmark = MODULE_MARKS


@st.composite
def tatoeba_folders(draw: st.DrawFn) -> tuple[dict[str, bytes | None], dict[str, int] | None]:
    """(file name -> bytes (None: a folder with that name), expected {language: pairs} or None). Sides with random
    lines, counts that may differ, missing sides, unknown codes, CRLF / CR line ends; or (half the time) a clean
    folder that must read."""
    files: dict[str, bytes | None] = {}
    if draw(st.booleans()):
        expected = {}
        for code in draw(st.lists(st.sampled_from(["deu", "spa", "cmn", "tha", "ara"]), unique=True, min_size=1,
                                  max_size=3)):
            n_lines = draw(st.integers(1, 6))
            eol = draw(st.sampled_from(["\n", "\r\n"]))
            for side in (code, "eng"):
                lines = [draw(SENTENCE | huge_strings(2000).filter(lambda s: s.strip() and "\n" not in s))
                         for _ in range(n_lines)]
                files[f"tatoeba.{code}-eng.{side}"] = (eol.join(lines) + draw(st.sampled_from([eol, ""]))).encode()
            expected[normalize_lang(code)] = n_lines
        return files, expected
    for code in draw(st.lists(st.sampled_from(["deu", "spa", "cmn", "xxx", "tha", "de", "eng"]), unique=True,
                              max_size=3)):
        n_lines = draw(st.integers(0, 6))
        for side in draw(st.sampled_from([(code, "eng"), (code, "eng"), (code,), ("eng",)])):
            lines = [draw(SENTENCE | st.sampled_from(["", " ", "\r", "x\ry"]) | huge_strings(2000))
                     for _ in range(n_lines + draw(st.sampled_from([0, 0, 0, 1, -1])))]
            text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + draw(st.sampled_from(["\n", ""]))
            files[f"tatoeba.{code}-eng.{side}"] = None if draw(st.integers(0, 20)) == 0 else text.encode("utf-8")
    if draw(st.booleans()):
        files["README.md"] = b"not data\n"
    return files, None


@pytest.mark.parametrize("n", budgets(60))
def test_tatoeba_folders(n: int) -> None:
    def prop(x: tuple[dict[str, bytes | None], dict[str, int] | None]) -> None:
        files, expected = x
        with scratch() as d:
            for name, raw in files.items():
                if raw is None:
                    (d / name).mkdir()
                else:
                    (d / name).write_bytes(raw)
            outcome, value = attempt(f"Tatoeba folder ({'clean' if expected else 'broken'})",
                                     lambda: read_tatoeba(d), folder=d)
        if expected is not None:
            assert outcome == "valid" and {k: len(v[0]) for k, v in value.items()} == expected

    fuzz(n, tatoeba_folders(), prop)


# ---- truncated real files (the first 12 lines of Tatoeba rus-eng) ----------------------------------------------------


@pytest.mark.parametrize("n", budgets(15))
def test_truncated_real_files_sampled(n: int, real_small_files: dict[str, Path]) -> None:
    truncations_sampled(n, real_small_files, ["tatoeba (rus side)"])


@pytest.mark.slow
@pytest.mark.heavy  # the exhaustive variant of the sampled test above
def test_truncated_real_files_every_prefix(real_small_files: dict[str, Path]) -> None:
    truncations_every_prefix(real_small_files, ["tatoeba (rus side)"])


# ---- wrong encodings and random bytes --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", budgets(20))
def test_wrong_encodings_and_random_bytes(n: int) -> None:
    def prop(x: tuple[str, bytes]) -> None:
        how, raw = x
        with scratch() as d:
            f = d / "tatoeba.deu-eng.deu"
            f.write_bytes(raw)
            (d / "tatoeba.deu-eng.eng").write_text("One.\nTwo.\nThree.\n", encoding="utf-8")
            outcome, value = attempt(f"encoding: {how} (Tatoeba)", lambda: read_tatoeba(d), folder=d)
        check_encoding_outcome(how, outcome, value)

    fuzz(n, damaged_bytes("Über den Fluss.\nÇa va très bien.\nStraße.\n"), prop)


# ---- edge cases named one by one -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a folder named like a side", "dangling symlink side", "CR-only line ends",
                                  "U+2028 inside a line", "empty folder"])
def test_edge_cases_tatoeba(name: str, tmp_path: Path) -> None:
    eng = tmp_path / "tatoeba.deu-eng.eng"
    deu = tmp_path / "tatoeba.deu-eng.deu"
    if name != "empty folder":
        eng.write_text("One.\nTwo.\n", encoding="utf-8")
    if name == "a folder named like a side":
        deu.mkdir()
    elif name == "dangling symlink side":
        deu.symlink_to(tmp_path / "nowhere")
    elif name == "CR-only line ends":
        deu.write_bytes(b"Eins.\rZwei.\r")
    elif name == "U+2028 inside a line":
        deu.write_text("Eins\u2028drei.\nZwei.\n", encoding="utf-8")
    outcome, value = attempt(f"edge case: Tatoeba {name}", lambda: read_tatoeba(tmp_path), folder=tmp_path)
    if name == "U+2028 inside a line":  # a Unicode line separator is not a line end: still two lines
        assert outcome == "valid" and value["de"][0] == ["Eins\u2028drei.", "Zwei."]
    else:
        assert outcome == "data-error"
