# Surrogate pipeline. On a fresh clone: `make train export bench`, then `make test`.
# Every target creates the virtual environment it needs; SURROGATES=... narrows what is trained and exported.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SURROGATES ?= $(basename $(notdir $(wildcard pipeline/specs/*.toml)))
# Surrogates trained, verified or exported at once, one process each (pipeline/build/cores.py);
# 0: one per core. The bytes are the same whatever JOBS is.
JOBS ?= 0
# The tests run the same way: one pytest process per core (pytest-xdist), a test file to a process, so that a file's
# shared fixtures are built once.
PYTEST := $(PY) -m pytest -q -p no:cacheprovider -n $(if $(filter 0,$(JOBS)),auto,$(JOBS)) --dist loadfile
BENCH_JSON := runs/bench/raw.json
BENCH_BATCHES ?= 1,64,4096,65536
BENCH_MAX_TIME ?= 0.2
# Train a surrogate only if it has no checkpoint yet (so `make export` or `make bench` also work on their own).
ENSURE_TRAINED = for n in $(SURROGATES); do test -f runs/$$n/checkpoint.pt || $(PY) -m pipeline train $$n || exit 1; done
ENSURE_EXPORTED = for n in $(SURROGATES); do test -f exported/$$n.onnx || $(PY) -m pipeline export $$n || exit 1; done

EXAMPLE_SPECS := examples/byo_callable/cylinder.toml examples/byo_csv/packed_bed.toml examples/noisy_rig/rig.toml

.PHONY: help venv list train verify export bench bench-full publish readme lint format check train-bench test gate seed kernel examples codegen fmu code-saturne \
	search costly-timings clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

# The pinned set, then this checkout itself as an editable package (no dependencies: they are the pinned ones), so
# that tests, examples and benchmarks import the installed `pipeline` as a user's code would, with no sys.path edits.
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

venv: $(VENV)/.installed ## create .venv with the pinned dependencies

list: venv ## show the surrogates
	$(PY) -m pipeline list

train: venv ## train every surrogate (checkpoints in runs/)
	$(PY) -m pipeline train --jobs $(JOBS) $(SURROGATES)

verify: venv ## check every surrogate's accuracy gates (non-zero exit and a table on failure)
	@$(ENSURE_TRAINED)
	$(PY) -m pipeline verify --jobs $(JOBS) $(SURROGATES)

export: venv ## write exported/NAME.onnx and NAME.json (checked: onnx.checker, parity, gates)
	@$(ENSURE_TRAINED)
	$(PY) -m pipeline export --jobs $(JOBS) $(SURROGATES)

bench: venv ## benchmark onnxruntime vs PyTorch vs the reference: runs/bench/ (tables, plots); committed files untouched
	@$(ENSURE_TRAINED)
	@$(ENSURE_EXPORTED)
	mkdir -p runs/bench
	BENCH_SURROGATES="$(SURROGATES)" BENCH_BATCHES="$(BENCH_BATCHES)" $(PY) -m pytest benchmarks -q -p no:cacheprovider --benchmark-min-rounds=5 \
		--benchmark-max-time=$(BENCH_MAX_TIME) \
		--benchmark-json=$(BENCH_JSON) --benchmark-columns=median,iqr,rounds
	$(PY) -m benchmarks.summarize $(BENCH_JSON)

bench-full: ## make bench with batches up to 1,048,576 and 0.5 s per timing (make bench: 65,536 and 0.2 s)
	$(MAKE) --no-print-directory bench BENCH_BATCHES=1,64,4096,65536,1048576 BENCH_MAX_TIME=0.5

publish: venv ## copy the last `make bench` (runs/bench/) to the committed benchmarks/results/, then `make readme`
	@test -f runs/bench/bench.json || { echo "no runs/bench/bench.json: run make bench first"; exit 2; }
	cp runs/bench/bench.json runs/bench/summary.md runs/bench/*.png benchmarks/results/
	$(MAKE) --no-print-directory readme

# The results block (between <!-- results:begin --> and <!-- results:end -->) lives in docs/results.md, linked from
# the README. benchmarks/summarize.py writes its link to the full tables relative to the repository root; the second
# line makes it relative to the page's folder (docs/), where GitHub resolves it.
RESULTS_PAGE ?= docs/results.md
readme: venv ## rewrite docs/results.md's results block from benchmarks/results/bench.json and the exported cards
	$(PY) -m benchmarks.summarize benchmarks/results/bench.json --results benchmarks/results --readme $(RESULTS_PAGE) \
		--readme-only
	$(PY) -c 'import pathlib, sys; p = pathlib.Path(sys.argv[1]); t = p.read_text(); \
		p.write_text(t.replace("](benchmarks/results/", "](../benchmarks/results/"))' $(RESULTS_PAGE)

gate: venv ## retrain every surrogate from scratch with its seed and verify all gates (CI)
	$(PY) -m pipeline gate --jobs $(JOBS) --runs runs/gate --quiet $(SURROGATES)
	$(PY) -m benchmarks.training --runs runs/gate

lint: venv ## ruff: lint and format check (the rules are in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## ruff format: rewrite the code in the project's format
	$(VENV)/bin/ruff format .

check: venv ## the fast tier for day-to-day work: every test not marked slow, then make lint
	$(PYTEST) -m "not slow" --durations=10
	$(MAKE) --no-print-directory lint

train-bench: venv ## what the last `make train` recorded per surrogate: time, steps, flops per step, error / gate
	$(PY) -m benchmarks.training --runs runs $(SURROGATES)

test: venv ## the test suite, then make lint
	$(PYTEST) --durations=15
	$(MAKE) --no-print-directory lint

examples: venv ## worked examples: bring-your-own callable and CSV; the heated pipe in Python, C and Fortran
	$(PY) -m pipeline gate --quiet --runs runs/examples $(EXAMPLE_SPECS)
	$(PY) -m pipeline export --runs runs/examples --out runs/examples/exported $(EXAMPLE_SPECS)
	$(PY) examples/heated_pipe/heated_pipe.py
	$(PY) -m pipeline codegen water colebrook gnielinski --lang c --dest runs/examples/generated
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -I runs/examples/generated examples/heated_pipe/heated_pipe.c \
		$(addprefix runs/examples/generated/,water.c colebrook.c gnielinski.c) -lm -o runs/examples/heated_pipe_c
	@echo "C:       $$(runs/examples/heated_pipe_c)"
	@if command -v gfortran >/dev/null; then \
		$(PY) -m pipeline codegen water colebrook gnielinski --lang fortran --dest runs/examples/generated >/dev/null && \
		gfortran -std=f2008 -Wall -Werror -O2 -J runs/examples/generated \
			$(addprefix runs/examples/generated/,water_surrogate.f90 colebrook_surrogate.f90 gnielinski_surrogate.f90) \
			examples/heated_pipe/heated_pipe.f90 -o runs/examples/heated_pipe_f && \
		echo "Fortran: $$(runs/examples/heated_pipe_f)"; \
	else echo "Fortran: skipped, gfortran is not installed (apt-get install gfortran)"; fi

fmu: venv ## FMI 2.0 FMUs of the exported surrogates (runs/fmu/); the water FMU in a heated-tank simulation
	@$(ENSURE_EXPORTED)
	$(PY) -m pipeline fmu $(SURROGATES) --dest runs/fmu
	@if [ -f runs/fmu/water.fmu ]; then $(PY) examples/fmu/heated_tank.py --fmu runs/fmu/water.fmu; fi

code-saturne: venv ## the water surrogate inside code_saturne: a heated channel vs CoolProp (needs code-saturne)
	@test -f exported/water.onnx || $(PY) -m pipeline export water
	USER=$${USER:-$$(id -un)} $(PY) examples/code_saturne/run_case.py

TRIALS ?= 30
search: venv ## Optuna search for the cheapest passing network; rewrites the spec if cheaper (runs/search/)
	$(PY) -m pipeline search --trials $(TRIALS) --apply $(SURROGATES)

codegen: venv ## generate C and Fortran for every exported surrogate (to generated/)
	@$(ENSURE_EXPORTED)
	$(PY) -m pipeline codegen $(SURROGATES) --lang c
	$(PY) -m pipeline codegen $(SURROGATES) --lang fortran

costly-timings: venv ## the solve_bvp fin's gate: serial, on the cores, on a Dask LocalCluster, from the cache (~6 min)
	$(PY) examples/costly_reference/timings.py

seed: venv ## the seed script's faults, removed one at a time
	$(PY) examples/seed_explained.py

kernel: venv ## register .venv as the Jupyter kernel "Python (surrogate-pipeline .venv)" for your user (notebooks)
	$(PY) -m ipykernel install --user --name surrogate-pipeline --display-name "Python (surrogate-pipeline .venv)"

clean: ## remove runs/ and the virtual environment (exported/ is kept: it is committed)
	rm -rf runs $(VENV)
