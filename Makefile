# crowdnb: the two commands of the README, and what they need.
#
#   make book       run the whole study (notebooks, by papermill) and build the book
#   make test       run the test suite, including the smoke study and a book build
#   make audioset   the whole study on AudioSet's crowd segments (needs the internet)
#
# Both create .venv when it is missing, and reinstall into it when the pins in
# pyproject.toml change (the stamp file is older than pyproject.toml).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.crowdnb-installed
PARAMS ?= params/default.yaml
# The slowest tests are listed at the end of every run: where make test's time goes.
PYTEST_ARGS ?= --durations=15
# Test workers (pytest-xdist): auto is one per usable core, as many as free memory
# holds (tests/conftest.py); the smoke study starts first on one of them and the
# other tests share the rest (worksteal evens out the ends).
TEST_WORKERS ?= auto

.PHONY: book study html test bench help audioset

help:
	@echo "make book   run the whole study with $(PARAMS) and build the book (_build/html)"
	@echo "make study  run the whole study with $(PARAMS) into runs/, without building the HTML"
	@echo "make html   rebuild the book from the executed chapters, running nothing"
	@echo "make test   run the tests (unit tests, the smoke study, a book build)"
	@echo "make audioset  the study on AudioSet's crowd segments (needs the internet), and its book"
	@echo "make bench  run the benchmark scripts"
	@echo "(another parameter file: make book PARAMS=params/smoke.yaml)"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@# librosa's numba code compiled once, before processes side by side would
	$(BIN)/python -c "from crowdnb.perf import compile_numba_caches; compile_numba_caches()"
	@touch $(STAMP)

RUN_STUDY  = $(BIN)/crowdnb run --params $(PARAMS)
BUILD_BOOK = $(BIN)/jupyter-book build --warningiserror --keep-going --path-output . .

study: $(STAMP)
	$(RUN_STUDY)

html: $(STAMP)
	$(BUILD_BOOK)

# One recipe, so that the book is built after the study even under make -j.
book: $(STAMP)
	$(RUN_STUDY)
	$(BUILD_BOOK)
	@echo "The book is in _build/html/index.html"

# The whole study on real recordings, AudioSet's crowd segments (see the
# parameter file: what it downloads, the anger proxy, the licences). Other
# parameter files run the same way: make book PARAMS=params/emotional_crowd_sound.yaml
audioset: PARAMS = params/audioset.yaml
audioset: book

# pytest exits 5 when it collects no tests: that is a failure here, not a pass.
test: $(STAMP)
	@$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

bench: $(STAMP)
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done
