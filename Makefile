# The two commands of the README: `make study` and `make test`. Both set up the machine first.
.PHONY: setup setup-test study test bench clean

VENV := .venv
export MUJOCO_GL ?= egl

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

study: setup
	$(VENV)/bin/mirrorlab study --out results/study

test: setup-test
	$(VENV)/bin/python -m pytest -q -n 2 tests

bench: setup
	$(VENV)/bin/mirrorlab bench all

clean:
	rm -rf results .pytest_cache
