PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# hearvalidator declares tensorflow and Python < 3.9 but needs neither for PyTorch models (tests/test_hear.py)
$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps --ignore-requires-python hearvalidator==2021.0.6
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/lint-imports
	PYTHON=$(PYTHON) bash tests/core_install.sh
	$(PY) -m pytest -n 2 -q

demo: $(STAMP)
	$(VENV)/bin/arinext demo

clean:
	rm -rf $(VENV) .venv-core build dist src/*.egg-info .pytest_cache
