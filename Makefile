# The two commands the README promises:  `make demo`  and  `make test`.
# Both build their own virtual environment in .venv (torch pinned to the CPU wheel this machine carries;
# pyproject keeps a range that users elsewhere can satisfy).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DATA ?= ../shared/data
STAMP := $(VENV)/.installed

.PHONY: pilot-converged results-converged install demo demo-long test test-all test-fast bench results-small results-samplers results-losses results-zero-shot \
	report-zero-shot results-zero-shot-lsar results-bias results-adv-weights zero-shot-base clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

# About 5 minutes on 2 CPU cores after the install (30 steps of batch 16); `make demo-long`: the demo preset's 60
# steps of batch 32 (15-20 min).
demo: $(STAMP)
	$(BIN)/hybridbatch demo --data-dir $(DATA)

demo-long: $(STAMP)
	$(BIN)/hybridbatch demo --long --data-dir $(DATA)

# CI runs `make test`: everything but the `heavy` end-to-end drivers and repeated crash drills (pyproject markers),
# each a longer variant of a test it keeps; `make test-all` runs those too (about twice as long).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -m "not heavy"

test-all: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

# The re-run of the research grid (docs/RESULTS.md section 8): every cell in results/small-v2, resumable; stop it any
# time and run it again. Seed by seed, so each finished seed set can be reported and committed (CPU: ~7-15 min a cell).
SWEEP0 = $(BIN)/hybridbatch sweep --preset small --data-dir $(DATA) --out results/small-v2
SWEEP = $(SWEEP0) --shift
REPORT = $(BIN)/hybridbatch experiment report --out results/small-v2
SAMPLERS ?= xx,xy,hybrid,bilingual,hybrid-multi,curriculum
results-small: $(STAMP)
	for s in 0 1 2; do $(SWEEP) --samplers $(SAMPLERS) --alphas 0.5 --seeds $$s --base || exit 1; done
	$(SWEEP) --samplers en --seeds 0,1,2 || exit 1
	$(SWEEP) --samplers hybrid --alphas 0,0.25,0.5,0.75,1 --seeds 0,1,2 --name alpha-sweep || exit 1
	$(BIN)/hybridbatch experiment alignment-vs-alpha --sweep results/small-v2/alpha-sweep.json \
	  --out results/small-v2/alignment-vs-alpha --data-dir $(DATA) --limit 200 --no-progress || exit 1
	$(REPORT) --name alpha --reference hybrid-a0.25-plain,hybrid-a0.75-plain --against xy-plain,hybrid-a0.5-plain,xx-plain
	$(REPORT) --reference hybrid-a0.5-plain --old results/paper-small

# Our samplers and the hard negative in the query's language (issue 14): each against hybrid, xy and xx, and
# hardneg-q against the hard negative in the passage's language (the same loss, the negative's language changed).
results-samplers: results-small
	$(SWEEP) --samplers hybrid,xy --alphas 0.5 --losses hardneg-q --seeds 0,1,2 || exit 1
	$(SWEEP0) --samplers hybrid --alphas 0.5 --losses hardneg --seeds 0,1,2 || exit 1
	$(REPORT) --name samplers --reference bilingual-a0.5-plain,hybrid-multi-a0.5-plain,curriculum-a0.5-plain,\
	hybrid-a0.5-hardneg-q,xy-hardneg-q --against hybrid-a0.5-plain,xy-plain,xx-plain,hybrid-a0.5-hardneg

# Loss variants with hybrid batches (issue 13 item 2; XQuAD-R only, no shift pools): symmetric InfoNCE and one hard
# negative at scale 20, plain at scales 10 and 50; hybrid plain at 20 is the results-small cell. Then xx under the best
# variant (hardneg-q; its xy cells come from results-samplers), so hybrid vs xx / xy is asked again under that loss.
results-losses: results-samplers
	$(SWEEP0) --samplers hybrid --alphas 0.5 --losses symmetric,hardneg --seeds 0,1,2 || exit 1
	$(SWEEP0) --samplers hybrid --alphas 0.5 --losses plain --scales 10,50 --seeds 0,1,2 || exit 1
	$(SWEEP0) --samplers xx --alphas 0.5 --losses hardneg-q --seeds 0,1,2 || exit 1
	$(REPORT) --name losses --reference hybrid-a0.5-symmetric,hybrid-a0.5-hardneg,hybrid-a0.5-hardneg-q,\
	hybrid-a0.5-plain-t10,hybrid-a0.5-plain-t50 --against hybrid-a0.5-plain || exit 1
	$(REPORT) --name best-loss --reference hybrid-a0.5-hardneg-q,xx-hardneg-q --against xx-hardneg-q,xy-hardneg-q,xx-plain

# The paper's protocol (issue 20): train on sources disjoint from XQuAD-R only (XLingHealth + MKQA question ->
# answer string), test on all 48 XQuAD-R articles plus the TyDi / Tatoeba pools; en, X-X, X-Y, hybrid, bilingual and
# hybrid + hardneg-q, against the zero-shot base; then the bias-targeted methods of issue 21 (multipos over translation
# slots at alpha 0 / 0.5, the language adversary with hybrid and X-Y batches). Seed by seed and resumable like
# results-small (CPU: 17-21 min a cell, two side by side); `make report-zero-shot` tabulates them once every group has a
# finished cell (the report refuses a group without one; section 9 of docs/RESULTS.md names the groups it used).
ZS = $(BIN)/hybridbatch sweep --preset zero-shot --data-dir $(DATA) --out results/zero-shot
BIAS_CELLS = --samplers translations --alphas 0,0.5 --losses multipos
ADV_CELLS = --samplers hybrid,xy --alphas 0.5 --losses adv
# The adversary with its classifier on its own learning rate (presets.ADVERSARIAL_HEAD_LR; seed 0 only: its classifier
# still sat at chance, chasing each batch's one or two languages) and with a memory of earlier batches as well
# (adv-mem, presets.ADVERSARIAL_MEMORY); adv-mem runs in domain too (bias-seed-%).
ADV_HEAD_CELLS = --samplers hybrid,xy --alphas 0.5 --losses adv-mem
# JOBS seeds at once, each process on CORES / JOBS torch threads. On the 2-core machine two one-thread cells ran
# side by side in 21 min each (hybrid seed 2: 1275 s), where one two-thread cell alone took 17 min (hybrid + hardneg-q
# seed 0: 998 s, a slightly heavier cell): about 1.6x the cells per hour, as batch-32, 48-token steps of a small model
# keep two threads only half busy. `make results-zero-shot JOBS=2`.
JOBS ?= 1
CORES ?= $(shell nproc)
JOB_THREADS = $(shell echo $$(( $(CORES) / $(JOBS) > 0 ? $(CORES) / $(JOBS) : 1 )))
# Every cell of one seed, through the sweep command $(1): hybrid, X-X, X-Y, hybrid + hardneg-q, then issue 21's.
define seed_cells
	$(1) --name seed$(2) --samplers hybrid,xx,xy --alphas 0.5 --seeds $(2)
	$(1) --name seed$(2) --samplers hybrid --alphas 0.5 --losses hardneg-q --seeds $(2)
	$(1) --name seed$(2) $(BIAS_CELLS) --seeds $(2)
	$(1) --name seed$(2) $(ADV_CELLS) --seeds $(2)
endef
results-zero-shot: $(STAMP)
	$(MAKE) -j$(JOBS) zero-shot-seed-0 zero-shot-seed-1 zero-shot-seed-2 \
	  OMP_NUM_THREADS=$(JOB_THREADS)
	$(MAKE) report-zero-shot

# The base model and the first cell, once, before the seeds run side by side (two seeds must not evaluate the
# base into one folder at once).
zero-shot-base: $(STAMP)
	$(ZS) --name seed0 --samplers hybrid --alphas 0.5 --seeds 0 --base

# One seed of every zero-shot group (its own table name, so concurrent seeds never write one file).
zero-shot-seed-%: zero-shot-base
	$(ZS) --name seed$* --samplers en,bilingual --alphas 0.5 --seeds $*
	$(call seed_cells,$(ZS),$*)
	$(ZS) --name seed$* $(ADV_HEAD_CELLS) --seeds $*

ZS_BASELINES = base,xx-plain,xy-plain,en-plain,bilingual-a0.5-plain
BIAS_GROUPS = translations-a0.5-multipos,translations-a0-multipos,hybrid-a0.5-adv,xy-adv
ADV_HEAD_GROUPS = hybrid-a0.5-adv-mem,xy-adv-mem,hybrid-a0.5-adv-head,xy-adv-head
report-zero-shot: $(STAMP)
	$(BIN)/hybridbatch experiment report --out results/zero-shot --reference hybrid-a0.5-plain,hybrid-a0.5-hardneg-q,\
	bilingual-a0.5-plain --against $(ZS_BASELINES),hybrid-a0.5-plain
	$(BIN)/hybridbatch experiment report --out results/zero-shot --name bias --reference $(BIAS_GROUPS) \
	  --against hybrid-a0.5-plain,xy-plain,xx-plain,bilingual-a0.5-plain,hybrid-a0.5-hardneg-q
	$(BIN)/hybridbatch experiment report --out results/zero-shot --name adv-head --reference $(ADV_HEAD_GROUPS) \
	  --against hybrid-a0.5-adv,xy-adv,hybrid-a0.5-plain,xy-plain,xx-plain

# The adversary's weight (issue 21): adv-mem at the default 0.5 cut the language preference and cost 0.015 Mono
# zero-shot; does a smaller weight keep the first at less of the second? Zero-shot, hybrid and X-Y batches, three
# seeds (cells named ...-adv-mem-w<weight>-seed<n>), then a report against adv-mem at 0.5 and the baselines.
ADV_WEIGHTS ?= 0.1,0.25
comma := ,
ADV_WEIGHT_GROUPS = $(subst $(eval) ,$(comma),$(foreach w,$(subst $(comma), ,$(ADV_WEIGHTS)),hybrid-a0.5-adv-mem-w$(w) \
  xy-adv-mem-w$(w)))
results-adv-weights: zero-shot-base
	$(MAKE) -j$(JOBS) adv-weights-seed-0 adv-weights-seed-1 adv-weights-seed-2 OMP_NUM_THREADS=$(JOB_THREADS)
	$(BIN)/hybridbatch experiment report --out results/zero-shot --name adv-weights --reference $(ADV_WEIGHT_GROUPS) \
	  --against hybrid-a0.5-adv-mem,xy-adv-mem,hybrid-a0.5-plain,xy-plain,xx-plain

adv-weights-seed-%: zero-shot-base
	$(ZS) --name adv-weights-seed$* $(ADV_HEAD_CELLS) --adv-weights $(ADV_WEIGHTS) --seeds $*

# Base + LSAR zero-shot (issue 20 item 5): the language subspace from Tatoeba sentences (disjoint from XQuAD-R; one
# file per XQuAD-R language, English from the deu-eng pairs), rank 10, evaluated on all 48 articles; both with the
# torch encoder (the exported runtimes take Transformer + Pooling [+ Normalize] only; the cells use openvino-bf16).
LSAR_TEXTS = runs/lsar-texts
results-zero-shot-lsar: $(STAMP)
	mkdir -p $(LSAR_TEXTS)
	for l in ara cmn deu ell hin rus spa tha tur vie; do cp $(DATA)/tatoeba-laser/tatoeba.$$l-eng.$$l $(LSAR_TEXTS)/$$l.txt; done
	cp $(DATA)/tatoeba-laser/tatoeba.deu-eng.eng $(LSAR_TEXTS)/eng.txt
	$(BIN)/hybridbatch debias -m embedded --rank 10 $(patsubst %,--texts $(LSAR_TEXTS)/%.txt,ara cmn deu ell hin rus spa \
	  tha tur vie eng) --max-seq-length 48 --no-progress -o runs/e5-lsar-tatoeba
	for m in embedded:base runs/e5-lsar-tatoeba:base-lsar; do \
	  $(BIN)/hybridbatch eval -m $${m%%:*} --split all --max-seq-length 48 --encoder torch --data-dir $(DATA) \
	    --no-progress --overwrite -o results/zero-shot/lsar/$${m##*:} || exit 1; done
	$(BIN)/hybridbatch compare results/zero-shot/lsar/base results/zero-shot/lsar/base-lsar --out results/zero-shot/lsar

# The bias-targeted methods in domain (issue 21), in a folder of their own: the baselines they are compared with
# (hybrid, X-X, X-Y, hybrid + hardneg-q) are retrained beside them, because results/small-v2's per-query files predate
# the language-preference metrics and its models are not kept (bilingual is not retrained here, so the in-domain report
# leaves it out). Small preset with the shift pools; JOBS seeds at once as in results-zero-shot.
BIAS = $(BIN)/hybridbatch sweep --preset small --shift --data-dir $(DATA) --out results/bias-in-domain
results-bias: $(STAMP)
	$(MAKE) -j$(JOBS) bias-seed-0 bias-seed-1 bias-seed-2 \
	  OMP_NUM_THREADS=$(JOB_THREADS)
	$(BIN)/hybridbatch experiment report --out results/bias-in-domain --name bias \
	  --reference $(BIAS_GROUPS),hybrid-a0.5-adv-mem,xy-adv-mem --against hybrid-a0.5-plain,xy-plain,xx-plain,hybrid-a0.5-hardneg-q

bias-seed-%: $(STAMP)
	$(call seed_cells,$(BIAS),$*)
	$(BIAS) --name seed$* $(ADV_HEAD_CELLS) --seeds $*

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache

# Issue 30, training to convergence (docs/RESULTS.md "Convergence"). First the pilot: hybrid seed 0 under each
# candidate learning rate, trained until its held-out Multi mAP stops improving, the choice made from that held-out
# metric alone (results/converged/pilot.{json,md,png}); two candidates side by side, one thread each. The chosen lr
# then goes into presets.PRESETS["converged"], and the chosen run is the grid's hybrid seed-0 cell.
CV = $(BIN)/hybridbatch sweep --preset converged --data-dir $(DATA) --out results/converged
PILOT = $(BIN)/hybridbatch experiment pilot --preset converged --data-dir $(DATA) --out results/converged
PILOT_LRS ?= 3e-5,1e-4
pilot-converged: $(STAMP)
	$(MAKE) -j2 $(addprefix pilot-lr-,$(subst $(comma), ,$(PILOT_LRS))) OMP_NUM_THREADS=1
	$(PILOT) --lrs $(PILOT_LRS)
pilot-lr-%: $(STAMP)
	$(PILOT) --lrs $*
comma := ,

# The converged grid: X-X, X-Y, hybrid and bilingual, seed 0 of each first, then seeds 1 and 2 (issue 30's done-when:
# 3 seeds of X-X, X-Y and hybrid, bilingual on seed 0). Hybrid seed 0 is the pilot's chosen run (copied into its cell
# folder by `converged-from-pilot`). Two one-thread lanes pull balanced, fixed lists of cells; each cell is resumable
# (a killed lane resumes its checkpoint) and committed when it finishes; `converged-report` then tabulates every
# finished cell, so it can run while the lanes are still filling.
CV_CELL = $(CV) --alphas 0.5 --samplers $(1) --seeds $(2) --name seed$(2)-$(1) $(3)
converged-lane-a: $(STAMP)
	$(call CV_CELL,xx,0,--base)
	$(call CV_CELL,bilingual,0)
	$(call CV_CELL,hybrid,1)
	$(call CV_CELL,xx,2)
	$(call CV_CELL,xy,2)
converged-lane-b: $(STAMP)
	$(call CV_CELL,xy,0)
	$(call CV_CELL,xx,1)
	$(call CV_CELL,xy,1)
	$(call CV_CELL,hybrid,2)
results-converged: $(STAMP)
	$(MAKE) -j2 converged-lane-a converged-lane-b OMP_NUM_THREADS=1
	$(MAKE) converged-report
converged-from-pilot: $(STAMP)
	$(BIN)/python -c "from hybridbatch.experiments.pilot import adopt_chosen; adopt_chosen('results/converged')"
converged-report: $(STAMP)
	$(BIN)/hybridbatch experiment report --out results/converged --reference hybrid-a0.5-plain --old results/zero-shot
	$(BIN)/hybridbatch experiment curves --out results/converged
# A session that stops mid-pilot keeps the candidates' curves so far (checkpoints are too large to commit).
pilot-progress: $(STAMP)
	$(BIN)/python -c "from hybridbatch.experiments.pilot import pilot_progress; pilot_progress('results/converged')"
