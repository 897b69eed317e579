# gankit: the README's commands. A fresh machine needs only python3 (>= 3.10) and make.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gankit-installed
DEMO   ?= runs/demo

.PHONY: demo test bench install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,faces,web]" || { echo "note: no dlib-bin wheel for this platform: installing without the faces extra (gankit prepare faces)"; $(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,web]"; }
	@touch $(STAMP)

# Train DCGAN on the built-in MNIST digits (about 2 minutes on 2 CPU cores) into runs/demo/.
# An earlier demo run is moved aside, never overwritten.
demo: $(STAMP)
	@if [ -d $(DEMO)/checkpoints ]; then mv $(DEMO) $(DEMO)-$$(date +%Y%m%d-%H%M%S); fi
	$(VENV)/bin/gankit train dcgan --data mnist --out $(DEMO) --preset small

# One thread per test worker: two workers on two cores, no oversubscription (5x faster on a busy machine).
# pytest's -ra (pyproject) prints why a test was skipped (the studio's browser tests, where Chromium is missing).
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 -q

bench: $(STAMP)
	$(PY) bench/throughput.py

clean-venv:
	rm -rf $(VENV)
