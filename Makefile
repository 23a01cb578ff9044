# Set-up is part of every target: the first run creates .venv and installs qattn into it.
VENV := .venv
PYTHON := $(VENV)/bin/python

.PHONY: quickstart demo test bench clean

quickstart: $(VENV)/.installed
	$(VENV)/bin/qattn quickstart

demo: $(VENV)/.installed
	$(VENV)/bin/qattn demo

test: $(VENV)/.installed
	$(PYTHON) -m pytest

bench: $(VENV)/.installed
	$(PYTHON) benchmarks/speed.py

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV)
