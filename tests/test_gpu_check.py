"""benchmarks/gpu_check.sh in its CPU smoke mode: the GPU check's every path (model from a config, CPU/device loss
agreement, bf16 training with ours and the plain trainer, evaluation encoding) runs and writes its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_mode_runs_every_part(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "gpu_check_smoke.json"
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--data-dir", str(shared_data),
                        "--out", str(out)], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    j = json.loads(out.read_text(encoding="utf-8"))
    assert j["mode"] == "smoke" and j["device"] == "cpu" and j["git_commit"]
    a, b, c = j["results"]["a_agreement"], j["results"]["b_speed"], j["results"]["c_eval"]
    # (a) every step logged on both sides, and the two CPU runs agree exactly (same seed, same batches)
    assert len(a["cpu_losses"]) == len(a["device_losses"]) == a["steps"] and a["pass"] and a["max_abs_diff"] == 0.0
    # (b) both trainers ran bf16 on the model built from the config; ours reports where it ran
    assert b["precision"] == "bf16" and b["ours"]["device"] == {"device": "cpu", "precision": "bf16"}
    assert b["ours"]["pairs_per_s"] > 0 and b["plain"]["pairs_per_s"] > 0 and b["ratio"] > 0
    # (c) encoding the questions and candidates of the subset
    assert c["texts"] == c["counts"]["n_queries"] + c["counts"]["n_candidates"] > 0 and c["texts_per_s"] > 0
