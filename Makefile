# The two commands of the README: `make study` and `make test`. Both set up the machine first.
.PHONY: setup setup-test study test bench clean

VENV := .venv
export MUJOCO_GL ?= egl

setup:
	@bash scripts/setup.sh

setup-test:
	@bash scripts/setup.sh --test

# The small preset's budget is 15 minutes on 2 CPU cores with setup included, so the clock starts before setup.
study:
	@start=$$(date +%s); bash scripts/setup.sh && $(VENV)/bin/mirrorlab study --out results/study && \
	echo "make study: $$(( $$(date +%s) - start )) s in all, setup included (budget: 900 s on 2 CPU cores)"

test: setup-test
	$(VENV)/bin/python -m pytest -q -n 2 tests

bench: setup
	$(VENV)/bin/mirrorlab bench all

clean:
	rm -rf results .pytest_cache
