"""Summarise the language classifier's curve of every finished adv cell (model/train.json, git-ignored) into a
committed JSON: does the adversary's classifier learn the language at all?"""
import glob, json, math, subprocess, sys
from datetime import datetime, timezone

def curve(o):
    if isinstance(o, dict):
        if isinstance(o.get("language"), list):
            return o["language"]
        for v in o.values():
            r = curve(v)
            if r:
                return r
    return None

out = {"what": "language classifier cross-entropy / accuracy (latest batch at each logged step) of the adv cells",
       "command": "python examples/adv_classifier_curves.py results/zero-shot results/bias-in-domain",
       "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
       "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "cells": {}}
for root in sys.argv[1:]:
    for path in sorted(glob.glob(f"{root}/cells/*-adv-seed*/model/train.json")):
        train = json.load(open(path))
        lang = curve(train)
        key = path.split("/model/")[0]
        out["cells"][key] = {"seed": train.get("seed"), "loss": train.get("loss"), "steps": [h["step"] for h in lang],
                             "language_ce": [round(h["language_ce"], 4) for h in lang],
                             "language_acc": [round(h["language_acc"], 4) for h in lang]}
json.dump(out, open("results/adv-classifier.json", "w"), indent=1)
for k, v in out["cells"].items():
    print(f"{k}: ce first {v['language_ce'][0]:.3f} last {v['language_ce'][-1]:.3f}; "
          f"mean acc {sum(v['language_acc'])/len(v['language_acc']):.3f}")
