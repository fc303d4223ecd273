# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install lint clean

demo: $(STAMP)
	$(BIN)/mrilearn demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

install: $(STAMP)

# torch first, pinned to 2.13.0; everything else under the same constraint, so no dependency
# can swap the build. TORCH_INDEX chooses it: https://download.pytorch.org/whl/cpu for the CPU
# build on Linux (PyPI's Linux wheel is the multi-GB CUDA one), .../whl/cuXXX for a GPU.
TORCH_INDEX ?=
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,federated,hospital]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) runs
