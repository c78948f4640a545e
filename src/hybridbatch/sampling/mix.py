"""The realised batch mix: counts of kinds, sources and language pairs, from plans or from batch-log entries."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from hybridbatch.provenance import write_json, write_text
from hybridbatch.sampling.index import batch_info


def summarise_plans(plans: Any) -> dict[str, Any]:
    """The realised mix of a sequence of plans (or of dicts with kind / source / qlang / plang)."""
    kinds: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    n = 0
    for p in plans:
        get = p.get if isinstance(p, dict) else (lambda k, p=p: getattr(p, k))
        kinds[get("kind")] += 1
        sources[get("source")] += 1
        pairs[f"{get('qlang')}-{get('plang')}"] += 1
        n += 1
    return {
        "steps": n,
        "kinds": dict(sorted(kinds.items())),
        "xx_share": kinds.get("xx", 0) / n if n else 0.0,
        "sources": dict(sorted(sources.items())),
        "lang_pairs": dict(sorted(pairs.items())),
    }


def save_mix(path: Path | str, mix: dict[str, Any], **extra: Any) -> Path:
    return write_json(path, {**extra, **mix})


def dump_plans(sampler: Any, n_groups: int, path: Path | str) -> Path:
    """Write the first `n_groups` plans as JSON lines (for inspection)."""
    lines = []
    for g in range(n_groups):
        p = sampler.plan(g)
        lines.append(json.dumps({"step": g, "kind": p.kind, "source": p.source, "qlang": p.qlang,
                                 "plang": p.plang, "hash": batch_info(sampler.index, p.rows)["hash"]}))
    return write_text(path, "\n".join(lines) + "\n")
