# The two entry points of the README; both set up a fresh machine first.
UV := python3 -m uv

.PHONY: setup pipeline test benchmark

setup:
	@bash scripts/setup.sh

pipeline: setup
	$(UV) run dvc repro

test:
	@bash scripts/setup.sh test
	$(UV) run pytest -n 2 --dist loadfile --durations=25

benchmark: setup
	$(UV) run python -m benchmarks default
