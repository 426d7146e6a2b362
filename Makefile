# Surrogate pipeline. On a fresh clone: `make train export bench`, then `make test`.
# Every target creates the virtual environment it needs; SURROGATES=... narrows what is trained and exported.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SURROGATES ?= $(basename $(notdir $(wildcard pipeline/specs/*.toml)))
BENCH_JSON := benchmarks/results/raw.json
# Train a surrogate only if it has no checkpoint yet (so `make export` or `make bench` also work on their own).
ENSURE_TRAINED = for n in $(SURROGATES); do test -f runs/$$n/checkpoint.pt || $(PY) -m pipeline train $$n || exit 1; done
ENSURE_EXPORTED = for n in $(SURROGATES); do test -f exported/$$n.onnx || $(PY) -m pipeline export $$n || exit 1; done

EXAMPLE_SPECS := examples/byo_callable/cylinder.toml examples/byo_csv/packed_bed.toml

.PHONY: help venv list train verify export bench test gate seed examples clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## create .venv with the pinned dependencies

list: venv ## show the surrogates
	$(PY) -m pipeline list

train: venv ## train every surrogate (checkpoints in runs/)
	$(PY) -m pipeline train $(SURROGATES)

verify: venv ## check every surrogate's accuracy gates (non-zero exit and a table on failure)
	@$(ENSURE_TRAINED)
	$(PY) -m pipeline verify $(SURROGATES)

export: venv ## write exported/NAME.onnx and NAME.json (checked: onnx.checker, parity, gates)
	@$(ENSURE_TRAINED)
	$(PY) -m pipeline export $(SURROGATES)

bench: venv ## benchmark onnxruntime vs PyTorch vs the reference; tables, plots, README block
	@$(ENSURE_TRAINED)
	@$(ENSURE_EXPORTED)
	mkdir -p benchmarks/results
	$(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-min-rounds=5 --benchmark-max-time=0.5 \
		--benchmark-json=$(BENCH_JSON) --benchmark-columns=median,iqr,rounds
	$(PY) -m benchmarks.summarize $(BENCH_JSON) --readme README.md

gate: venv ## retrain every surrogate from scratch with its seed and verify all gates (CI)
	$(PY) -m pipeline gate --runs runs/gate --quiet $(SURROGATES)

test: venv ## run the test suite
	$(PY) -m pytest -q -p no:cacheprovider

examples: venv ## the worked examples: bring-your-own callable and CSV (to runs/examples/)
	$(PY) -m pipeline gate --quiet --runs runs/examples $(EXAMPLE_SPECS)
	$(PY) -m pipeline export --runs runs/examples --out runs/examples/exported $(EXAMPLE_SPECS)

seed: venv ## the seed script's faults, removed one at a time
	$(PY) examples/seed_explained.py

clean: ## remove runs/ and the virtual environment (exported/ is kept: it is committed)
	rm -rf runs $(VENV)
