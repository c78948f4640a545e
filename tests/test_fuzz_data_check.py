"""`hybridbatch data check` renders whatever the readers report on fuzzed files. The property, the bookkeeping and
the budgets: tests/fuzz_helpers.py."""

from __future__ import annotations

import pytest
from corpus_helpers import valid_doc
from fuzz_helpers import (
    MODULE_MARKS,
    budgets,
    fuzz,
    hang_guard,
    record,
    scratch,
    squad_docs,
    write_json,
)
from hypothesis import strategies as st

pytestmark = MODULE_MARKS


@pytest.mark.parametrize("n", budgets(15))
def test_data_check_cli_on_fuzzed_files(n: int) -> None:
    """Any problem text (lone surrogates, 100 kB values, control characters) prints: exit 0 or 2, no traceback."""
    from typer.testing import CliRunner

    from hybridbatch.cli import base as cli
    runner = CliRunner()
    with scratch() as d:  # once outside the examples' deadline: the command's first run imports what it needs
        write_json(d / "en.json", valid_doc())
        assert runner.invoke(cli.app, ["data", "check", str(d)]).exit_code == 0

    def prop(x: tuple[dict, bool]) -> None:
        doc, ascii_only = x
        with scratch() as d:
            write_json(d / "en.json", doc, ascii_only=ascii_only)
            with hang_guard():
                r = runner.invoke(cli.app, ["data", "check", str(d)])
            assert r.exit_code in (0, 2), (r.exception, r.output[-2000:])
            assert r.exception is None or isinstance(r.exception, SystemExit), (r.exception, r.output[-2000:])
            assert "Traceback" not in r.output
            record("data check CLI on fuzzed files", "exit 0" if r.exit_code == 0 else "exit 2")

    fuzz(n, st.tuples(squad_docs(), st.booleans()), prop)
