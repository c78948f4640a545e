"""Before / after issue #11 on the XQuAD-R train split: how many batch groups hold two ids of one answer group (a
translated-duplicate false negative), and how much of the (id, language) items one epoch covers.

The "before" sampler is the previous implementation (sampling/samplers.py at the commit given as --old, loaded from
git); the "after" one is the current package. Writes benchmarks/results/sampler_dedup_epochs.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def load_old(commit: str):
    src = subprocess.run(["git", "show", f"{commit}:src/hybridbatch/sampling/samplers.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "old_samplers.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_samplers", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["old_samplers"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default="ba823d5")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--groups", type=int, default=400)
    a = ap.parse_args()
    from hybridbatch.data.lookup import load_corpus
    from hybridbatch.provenance import provenance, write_json
    from hybridbatch.sampling import make_sampler, pair_dataset

    old = load_old(a.old)
    train = load_corpus("xquad-r", a.data_dir).split()[0]
    ps = train.pairs()
    group = {q.qid: q.group for q in train.questions["en"]}
    answer = {(q.qid, lang): q.answer for lang in train.languages for q in train.questions[lang]}

    def false_negative(ids: list[str], plangs: list[str]) -> bool:
        """Some row's passage is, in its language, the very sentence answering another row's question."""
        seen: dict[tuple[str, int], str] = {}
        for qid, pl in zip(ids, plangs, strict=True):
            seen.setdefault((pl, answer[(qid, pl)]), qid)
        return any(seen.get((pl, answer.get((qid, pl), -1)), qid) != qid for qid in ids for pl in set(plangs))
    table = old.build_pair_table(ps, "query: ", "passage: ")
    ds = pair_dataset(ps, "query: ", "passage: ")
    rows = []
    for name in ("mixed", "random", "hybrid-multi", "xy", "xx", "hybrid"):
        kw = {"alpha": 0.5, "world_size": 2, "per_pair": False}
        o = old.make_sampler(name, table, 32, seed=1, **kw)
        n = make_sampler(name, ds, 32, seed=1, **kw)

        def dup_share(plans, qid_of, plang_of):
            bad = fn = 0
            for p in plans:
                ids = qid_of(p.rows)
                g = [group[q] for q in ids]
                bad += len(set(g)) < len(g)
                fn += false_negative(ids, plang_of(p.rows))
            return bad / len(plans), fn / len(plans)

        o_plans = [o.plan(g) for g in range(a.groups)]
        n_plans = [n.plan(g) for g in range(a.groups)]
        o_dup, o_fn = dup_share(o_plans, lambda r: [table.qids[0][i] for i in table.row_qid[r]],
                                lambda r: [table.languages[i] for i in table.row_plang[r]])
        n_dup, n_fn = dup_share(n_plans, lambda r: [n.index.ids[0][i] for i in n.index.row_id[r]],
                                lambda r: [n.index.languages[i] for i in n.index.row_plang[r]])
        # one epoch: the default number of batch groups, (id, query language) items seen
        o_epoch = o.num_batches // o.world_size
        seen = set()
        for g in range(o_epoch):
            r = o.plan(g).rows
            seen.update(zip(table.row_qid[r].tolist(), table.row_qlang[r].tolist()))
        allowed_items = int(sum(table.has(0)[:, i].sum() for i in o._allowed_langs()))
        rows.append({"sampler": name, "groups": a.groups, "batch": "2 x 32",
                     "false_negative_share_before": round(o_fn, 4), "false_negative_share_after": round(n_fn, 4),
                     "dup_group_share_before": round(o_dup, 4), "dup_group_share_after": round(n_dup, 4),
                     "epoch_steps_before": o_epoch, "epoch_query_coverage_before": round(len(seen) / allowed_items, 4),
                     "epoch_steps_after": n.num_batches // n.world_size,
                     "epoch_query_coverage_after": round(n.coverage()["query_items"], 4)})
        print(rows[-1], flush=True)
    write_json(ROOT / "benchmarks" / "results" / "sampler_dedup_epochs.json",
               provenance(kind="bench", bench="sampler_dedup_epochs", old_commit=a.old, rows=rows,
                          note="false_negative_share: share of batch groups (2 processes x 32 pairs) in which some "
                               "row's passage is, in its language, the sentence that answers another row's question; "
                               "dup_group_share: share holding two ids of one (union, language-independent) answer "
                               "group; coverage: share of (id, query language) items drawn in one epoch "
                               "(the sampler's default epoch length); XQuAD-R train split, no hard negatives, "
                               "seed 1"))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
