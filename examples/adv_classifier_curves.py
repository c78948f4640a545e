"""Summarise the language classifier's curve of every finished adv cell (its git-ignored model/train.json,
`loss_curve.language`) into a committed JSON: does the adversary's classifier learn the language at all?"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

from hybridbatch.provenance import provenance, write_json

OUT = Path("results/adv-classifier.json")


def main(roots: list[str]) -> None:
    out = provenance(what="language classifier cross-entropy / accuracy (latest batch at each logged step) of the "
                          "adv cells", command=f"python examples/adv_classifier_curves.py {' '.join(roots)}", cells={})
    for root in roots:
        for path in sorted(glob.glob(f"{root}/cells/*-adv*-seed*/model/train.json")):
            train = json.loads(Path(path).read_text(encoding="utf-8"))
            lang = train["loss_curve"]["language"]
            # language_*: the latest batch, scored before the step; memory_*: the earlier batches the classifier
            # remembers (adv-mem only), i.e. does it know every language, not just the current one?
            out["cells"][path.split("/model/")[0]] = {
                "seed": train.get("seed"), "loss": train.get("loss"), "steps": [h["step"] for h in lang],
                **{k: [round(h[k], 4) if k in h else None for h in lang]
                   for k in ("language_ce", "language_acc", "memory_ce", "memory_acc") if any(k in h for h in lang)}}
    write_json(OUT, out)
    for key, cell in out["cells"].items():
        acc = cell["language_acc"]
        mem = [a for a in cell.get("memory_acc", []) if a is not None]
        print(f"{key}: ce first {cell['language_ce'][0]:.3f} last {cell['language_ce'][-1]:.3f}; "
              f"mean acc {sum(acc) / len(acc):.3f}" + (f"; memory acc last {mem[-1]:.3f}" if mem else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
