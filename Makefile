# The README's two commands: `make demo` and `make test`. Both build .venv from nothing but Python 3.11.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# CPU wheel by default; GPU users: make demo TORCH_SPEC='torch==2.13.0' PIP_EXTRA='--index-url ...'
TORCH_SPEC ?= torch==2.13.0
OUT ?= flow2mask_demo

.PHONY: demo test test-fast export clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first: an unpinned torch pulled in by a dependency would be a multi-GB CUDA build
$(VENV)/.installed: $(BIN)/python setup.py settings.ini
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[dev,notebook,browser,napari,guitest,interp,batch,export]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/flow2mask demo --out $(OUT)

test: export FLOW2MASK_STATE_DIR := $(CURDIR)/build/test-state
test: $(VENV)/.installed-dev
	rm -rf $(FLOW2MASK_STATE_DIR)
	$(BIN)/python tools/check_export.py
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest tests -q -p no:cacheprovider

test-fast: export FLOW2MASK_STATE_DIR := $(CURDIR)/build/test-state
test-fast: $(VENV)/.installed-dev
	rm -rf $(FLOW2MASK_STATE_DIR)
	$(BIN)/python tools/check_export.py
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest tests -q -p no:cacheprovider -m "not slow and not gui"

export: $(VENV)/.installed-dev
	$(BIN)/nbdev_export

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
