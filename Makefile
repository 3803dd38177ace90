# Two commands do all set-up: `make demo` (the main job) and `make test` (the suite).
# Each creates or updates the local virtual environment .venv when setup.cfg changes.
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed-stamp
PY     := $(VENV)/bin/python

.PHONY: venv test lint demo clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision are pinned in setup.cfg; pip takes them from this machine's disk.
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The tests are single-threaded (tests/conftest.py), so one worker per core (pytest-xdist)
# nearly halves the suite on 2 cores. `PYTEST_WORKERS=0 make test` runs it in one process.
# worksteal: an idle worker takes tests queued for the other, so a few slow tests (ONNX exports,
# the DDP spawn) do not leave one core waiting at the end (194 s against 216 s, one run each, here).
PYTEST_WORKERS ?= auto

test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal

lint: $(STAMP)
	$(VENV)/bin/ruff check .

demo: $(STAMP)
	$(PY) -m pix2pix_aa.demo

clean:
	rm -rf $(VENV) *.egg-info
