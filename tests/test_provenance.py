"""Provenance: the commit a long job records is the one its code came from."""

from __future__ import annotations

import re

from hybridbatch import provenance as prov


def test_process_commit_is_read_once_so_a_moving_head_is_not_recorded(monkeypatch):
    prov.process_commit.cache_clear()
    heads = iter(["a" * 40, "b" * 40])
    monkeypatch.setattr(prov, "git_commit", lambda start=None: next(heads))
    try:
        assert prov.process_commit() == "a" * 40
        # HEAD "moves" (a commit lands while a sweep runs): results still name the commit the process started from
        assert prov.provenance(seed=1)["git_commit"] == "a" * 40
    finally:
        prov.process_commit.cache_clear()


def test_process_commit_is_this_checkout():
    prov.process_commit.cache_clear()
    commit = prov.process_commit()
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", commit) and commit == prov.git_commit()  # unknown: no git
