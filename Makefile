# The two commands the README promises:  `make demo`  and  `make test`.
# Both build their own virtual environment in .venv (torch pinned to the CPU wheel this machine carries;
# pyproject keeps a range that users elsewhere can satisfy).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DATA ?= ../shared/data
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench results-small results-losses clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[embedded,fast,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hybridbatch demo --data-dir $(DATA)

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# The re-run of the research grid (docs/RESULTS.md section 8): every cell in results/small-v2, resumable; stop it any
# time and run it again. Seed by seed, so each finished seed set can be reported and committed (CPU: ~15 min a cell).
SWEEP = $(BIN)/hybridbatch sweep --preset small --shift --data-dir $(DATA) --out results/small-v2
SAMPLERS ?= xx,xy,hybrid,bilingual,hybrid-multi
results-small: $(STAMP)
	for s in 0 1 2; do $(SWEEP) --samplers $(SAMPLERS) --alphas 0.5 --seeds $$s --base || exit 1; done
	$(SWEEP) --samplers en --seeds 0,1,2 || exit 1
	$(SWEEP) --samplers hybrid --alphas 0,0.25,0.5,0.75,1 --seeds 0,1,2 || exit 1
	$(BIN)/hybridbatch experiment report --out results/small-v2 --reference hybrid-a0.5-plain,bilingual-a0.5-plain \
	  --old results/paper-small

# Loss variants with hybrid batches (issue 13 item 2): symmetric InfoNCE and one hard negative at scale 20, plain at
# scales 10 and 50; hybrid plain at 20 is the results-small cell. xx / xy under the best variant follow from this.
results-losses: $(STAMP)
	$(SWEEP) --samplers hybrid --alphas 0.5 --losses symmetric,hardneg --seeds 0,1,2 || exit 1
	$(SWEEP) --samplers hybrid --alphas 0.5 --losses plain --scales 10,50 --seeds 0,1,2 || exit 1

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
