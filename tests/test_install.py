"""A library user's install (issue 32 item 4): the core dependencies carry the samplers, the pair datasets, the
metrics and the evaluator; the command line, plots, YAML configs and the faiss backend are extras, and a feature
that needs a missing extra says which one. The core install is simulated by a Python whose import of typer, rich,
matplotlib, faiss and yaml fails, as in a venv without them (a fresh-venv check is in docs/LIBRARY.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRA_ONLY = ("typer", "rich", "matplotlib", "faiss")

# A core install: these packages are absent (`sys.modules[name] = None` is how Python marks a module that cannot be
# imported: `import` raises ImportError and `importlib.util.find_spec` answers None, as for a package not installed).
# pyyaml comes with huggingface-hub, so it is made absent only for the YAML config's own import.
BLOCK = f"""
import sys
sys.modules.update(dict.fromkeys({EXTRA_ONLY!r}))
"""


def run_core(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})


def test_core_dependencies_leave_the_cli_plots_and_faiss_to_extras() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(meta["dependencies"])
    for pkg in ("typer", "rich", "click", "matplotlib", "faiss", "pyyaml"):
        assert pkg not in core, pkg
    extras = meta["optional-dependencies"]
    assert {"cli", "plots", "faiss", "fast", "embedded", "all"} <= set(extras)
    assert any(d.startswith("typer") for d in extras["cli"]) and any(d.startswith("matplotlib") for d in extras["plots"])
    assert extras["all"] == ["hybridbatch[cli,plots,faiss,fast,embedded]"]
    assert ".[all,test]" in (ROOT / "Makefile").read_text()  # `make` still installs everything


def test_the_library_example_runs_on_a_core_install(tmp_path: Path) -> None:
    """Samplers on a pair dataset, a metric, and each extra-only feature's message naming its extra."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("alpha: 0.5\n")
    code = f"""
import json, sys
from datasets import Dataset
from hybridbatch.sampling import HybridSampler, pairs_from_long
from hybridbatch.evaluation.metrics import average_precision
from hybridbatch.errors import MissingExtraError
rows = [{{"id": f"q{{i}}", "lang": l, "query": f"question {{i}} {{l}}", "positive": f"answer {{i}} {{l}}"}}
        for i in range(12) for l in ("en", "de", "fr")]
s = HybridSampler(pairs_from_long(Dataset.from_list(rows)), 4, seed=0, alpha=0.5)
out = {{"batches": [len(b) for b in s], "ap": float(average_precision([[1, 3]])[0])}}
def message(f):
    try:
        f()
    except MissingExtraError as e:
        return str(e)
from hybridbatch.report.plots import pyplot
from hybridbatch.training.config import TrainConfig
out["plots"] = message(pyplot)
sys.modules["yaml"] = None
out["yaml"] = message(lambda: TrainConfig.from_file({str(cfg)!r}))
import numpy as np
from hybridbatch.evaluation.retrieval import segment_counts
q = np.eye(3, dtype=np.float32)
out["faiss"] = message(lambda: segment_counts(q, q, np.arange(3)[:, None], [0, 3], backend="faiss"))
out["loaded"] = sorted(m for m in {EXTRA_ONLY!r} if sys.modules.get(m) is not None)
print(json.dumps(out))
"""
    r = run_core(code)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["batches"] and all(n == 4 for n in out["batches"]) and 0 < out["ap"] <= 1
    assert "pip install 'hybridbatch[plots]'" in out["plots"] and "matplotlib" in out["plots"]
    assert "pip install 'hybridbatch[cli]'" in out["yaml"] and "c.yaml" in out["yaml"]
    assert "pip install 'hybridbatch[faiss]'" in out["faiss"] and "faiss-cpu" in out["faiss"]
    assert out["loaded"] == []


def test_the_command_without_the_cli_extra_names_it() -> None:
    r = run_core("from hybridbatch.cli import main; main()")
    assert r.returncode == 2 and "pip install 'hybridbatch[cli]'" in r.stderr, r.stderr[-2000:]
