# Two commands: `make run` (creates .venv, installs, starts mockpanel) and `make test` (the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test docs bench clean image

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mockpanel $(ARGS)

# Two workers (pytest-xdist): every test starts its own servers on free ports, so they run side by side.
# `make test WORKERS=0` runs them one at a time.
WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -n $(WORKERS) $(PYTEST_ARGS)

# The documentation site at http://127.0.0.1:8001 (the settings reference regenerated first)
docs: $(STAMP)
	$(BIN)/python -m mockpanel.docsgen
	$(BIN)/python -m mkdocs serve -a 127.0.0.1:8001

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/bench_auth.py
	$(BIN)/python benchmarks/bench_oidc.py
	$(BIN)/python benchmarks/bench_s3.py
	$(BIN)/python benchmarks/bench_panel.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_memory.py

# The container image, built offline: a wheelhouse made here (build/wheels) and a base image made from Debian's
# packages (docker/base-image.sh), since no image registry is reachable. Elsewhere `docker build .` needs neither.
IMAGE ?= mockpanel:latest
BASE ?= mockpanel-base:bookworm
image: $(STAMP)
	bash docker/build-image.sh $(IMAGE) $(BASE) $(BIN)/python

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
