"""Where named datasets live: `--data-dir`, then `$HYBRIDBATCH_DATA`, then the user cache. Its own module so that
lookup (which names the downloadable sets) and download (which writes into the first root) need not import each
other."""

from __future__ import annotations

import os
from pathlib import Path


def data_root(data_dir: Path | str | None = None) -> Path:
    """Where named datasets live: `--data-dir`, else `$HYBRIDBATCH_DATA`, else the user cache."""
    import platformdirs

    if data_dir:
        return Path(data_dir)
    if os.environ.get("HYBRIDBATCH_DATA"):
        return Path(os.environ["HYBRIDBATCH_DATA"])
    return Path(platformdirs.user_cache_dir("hybridbatch")) / "data"


def data_roots(data_dir: Path | str | None = None) -> list[Path]:
    """Every place a named dataset is looked for, in order: `--data-dir`, `$HYBRIDBATCH_DATA`, the user cache."""
    import platformdirs

    roots = [Path(data_dir)] if data_dir else []
    if os.environ.get("HYBRIDBATCH_DATA"):
        roots.append(Path(os.environ["HYBRIDBATCH_DATA"]))
    roots.append(Path(platformdirs.user_cache_dir("hybridbatch")) / "data")
    return roots
