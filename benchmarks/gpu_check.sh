#!/usr/bin/env bash
# The GPU check of issue #10 (what it measures: benchmarks/gpu_check.py). Under 8 minutes on one GPU.
#
#   benchmarks/gpu_check.sh prepare     here, before going to the GPU machine: fill benchmarks/gpu_payload/ (git-
#                                       ignored, ~26 MB) with the XQuAD-R files and the e5 tokenizer.json (packed) and wheels of
#                                       the pure-Python packages the check imports; carry that folder along
#   benchmarks/gpu_check.sh             on the GPU machine (no network): install from the payload's wheels whatever
#                                       is missing, run, write benchmarks/results/gpu_check.json
#   benchmarks/gpu_check.sh --smoke     the same code on the CPU at toy sizes (CI; no payload needed)
#
# PYTHON picks the interpreter (default: python3); DATA the data folder for `prepare` (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PAYLOAD=benchmarks/gpu_payload
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

if [ "${1:-}" = prepare ]; then
    DATA=${DATA:-../shared/data}
    rm -rf "$PAYLOAD" && mkdir -p "$PAYLOAD/xquad-r" "$PAYLOAD/wheels"
    cp "$DATA"/xquad-r/*.json "$PAYLOAD/xquad-r/"
    "$PY" -c 'from hybridbatch.models.embedded import e5_tokenizer_file as f; print(f())' \
        | xargs -I{} cp {} "$PAYLOAD/tokenizer.json"
    # exact installed versions, without dependencies: torch, numpy, pyarrow & co are expected on a GPU machine
    pkgs=$("$PY" - <<'PYEOF'
from importlib.metadata import version
print(" ".join(f"{p}=={version(p)}" for p in ("sentence-transformers", "transformers", "accelerate", "datasets",
                                              "huggingface-hub", "tokenizers", "safetensors", "typer", "rich",
                                              "platformdirs", "filelock")))
PYEOF
)
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d "$PAYLOAD/wheels" $pkgs
    # packed: JSON compresses ~4x, and the payload plus the working tree must fit the 64 MiB a GPU run takes
    tar czf "$PAYLOAD/data.tar.gz" -C "$PAYLOAD" xquad-r tokenizer.json && rm -rf "$PAYLOAD/xquad-r" "$PAYLOAD/tokenizer.json"
    du -sh "$PAYLOAD" && echo "carry $PAYLOAD along (it must stay under 64 MiB with the working tree)"
    exit 0
fi

if [ -f "$PAYLOAD/data.tar.gz" ] && [ ! -f "$PAYLOAD/xquad-r/en.json" ]; then
    tar xzf "$PAYLOAD/data.tar.gz" -C "$PAYLOAD"
fi
if [ "${1:-}" != --smoke ] && compgen -G "$PAYLOAD/wheels/*.whl" > /dev/null; then
    missing=$("$PY" - <<'PYEOF'
import importlib.util
mods = {"sentence_transformers": "sentence-transformers", "transformers": "transformers", "accelerate": "accelerate",
        "datasets": "datasets", "huggingface_hub": "huggingface-hub", "tokenizers": "tokenizers",
        "safetensors": "safetensors", "typer": "typer", "rich": "rich", "platformdirs": "platformdirs",
        "filelock": "filelock"}
print(" ".join(p for m, p in mods.items() if importlib.util.find_spec(m) is None))
PYEOF
)
    if [ -n "$missing" ]; then
        echo "installing from $PAYLOAD/wheels: $missing"
        "$PY" -m pip install -q --no-index --no-deps --find-links "$PAYLOAD/wheels" $missing
    fi
fi
exec timeout 480 "$PY" benchmarks/gpu_check.py "$@"
