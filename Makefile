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
	$(UV) run dvc repro downsample
	$(UV) run python -m benchmarks.downsample_folder
	$(UV) run python -m benchmarks.precision
	$(UV) run python -m benchmarks.precision_quality
	$(UV) run python -m benchmarks.judge_ladder --project .
	$(UV) run python -m benchmarks.autoencoders
	$(UV) run python -m benchmarks.gan_throughput
	$(UV) run python -m benchmarks.gan_modes
	$(UV) run python -m benchmarks.prefect_overhead
	$(UV) run python -m benchmarks.gan_sizes
	$(UV) run python -m benchmarks.gan64
	$(UV) run python -m benchmarks.stage_overhead --baseline 1793510
	$(UV) run python -m benchmarks.datasets
	$(UV) run python -m benchmarks.scale_out
	$(UV) run dvc repro pretrain
	$(UV) run python -m benchmarks.label_consistency
	KERAS_BACKEND=jax $(UV) run python -m benchmarks.gan_device --batch-sizes 128 --steps-per-dispatch 2 --dispatches 3
