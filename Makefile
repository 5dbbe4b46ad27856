# Two commands do all the set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test setup system-deps bench clean

demo: setup
	$(BIN)/facetvlp demo

test: setup
	$(BIN)/python -m pytest -q

setup: $(VENV)/.installed

# The venv is rebuilt only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml
	bash .ci/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev,bench]"
	touch $@

bench: setup
	$(BIN)/python benchmarks/train_step.py

clean:
	rm -rf $(VENV) work_dirs
