"""DCGAN training throughput on the jax backend (images/s), for a GPU or the CPU.

The step is latentlab's own (`GanTrainer`'s fused D-then-G update); around it the data stays on
the device (the images are uploaded once, batches are sliced there, noise is drawn there) and
`--steps-per-dispatch` steps run in one compiled call (`lax.fori_loop`), so the host does not
pace the device. `--precision bf16` trains under Keras' `mixed_bfloat16` policy. The images are
random uint8 pictures of the right shape: throughput does not depend on what they show, and the
script needs no dataset (a GPU machine may have none).

    KERAS_BACKEND=jax uv run python -m benchmarks.gan_device \\
        [--sizes 28x1 64x3] [--batch-sizes 128 256 512 1024] [--precision fp32 bf16]

Writes benchmarks/results/gan_device_<platform>.json (one row per size × batch × precision,
with the error when a configuration does not run, e.g. out of memory).
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import Results, command_line  # noqa: E402
from latentlab.families.gan.model import build_gan  # noqa: E402
from latentlab.families.gan.training import GanTrainer  # noqa: E402
from latentlab.params import Params  # noqa: E402


def throughput(size: int, channels: int, batch: int, precision: str, steps_per_dispatch: int,
               dispatches: int, images: int = 8192) -> float:
    import jax
    import jax.numpy as jnp

    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    keras.utils.set_random_seed(0)
    block = Params().train_gan.model_copy(update={"batch_size": batch})
    trainer = GanTrainer(build_gan(block, (size, size, channels)), block, seed=0)
    state = trainer.initial_state()
    data = jax.device_put(np.random.default_rng(0).integers(
        0, 256, (images, size, size, channels), dtype=np.uint8))
    targets = {"target_real": jnp.ones((batch, 1)), "target_fake": jnp.zeros((batch, 1))}

    def one_step(i, carry):
        state, key = carry
        key, k_start, k_d, k_g = jax.random.split(key, 4)
        start = jax.random.randint(k_start, (), 0, images - batch)
        real = jax.lax.dynamic_slice_in_dim(data, start, batch).astype("float32") / 127.5 - 1.0
        batch_ = {"real": real, **targets,
                  "noise_d": jax.random.normal(k_d, (1, batch, block.latent)),
                  "noise_g": jax.random.normal(k_g, (batch, block.latent))}
        state, _ = trainer.pure_step(state, batch_)
        return state, key

    @jax.jit
    def dispatch(state, key):
        return jax.lax.fori_loop(0, steps_per_dispatch, one_step, (state, key))

    carry = dispatch(state, jax.random.key(0))  # compile and warm up
    jax.block_until_ready(carry)
    start = time.perf_counter()
    for _ in range(dispatches):
        carry = dispatch(*carry)
    jax.block_until_ready(carry)
    return dispatches * steps_per_dispatch * batch / (time.perf_counter() - start)


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--sizes", nargs="+", default=["28x1", "64x3"], metavar="SIDExCHANNELS")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 256, 512, 1024])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"],
                        choices=["fp32", "bf16"])
    parser.add_argument("--steps-per-dispatch", type=int, default=10)
    parser.add_argument("--dispatches", type=int, default=10)
    args = parser.parse_args()
    import jax

    if keras.backend.backend() != "jax":
        parser.error("run with KERAS_BACKEND=jax")
    platform = jax.devices()[0].platform
    rows = []
    for spec in args.sizes:
        size, channels = map(int, spec.split("x"))
        for precision in args.precision:
            for batch in args.batch_sizes:
                row = {"size": size, "channels": channels, "batch": batch, "precision": precision}
                try:
                    row["images_per_s"] = round(throughput(
                        size, channels, batch, precision, args.steps_per_dispatch,
                        args.dispatches), 1)
                except Exception as exc:  # noqa: BLE001 - recorded, the other rows still run
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:300]}"
                print(json.dumps(row), flush=True)
                rows.append(row)
    result = Results(args, "gan_device", platform)
    result.save(**{"platform": platform, "device": str(jax.devices()[0].device_kind),
              "devices": jax.device_count(), "steps_per_dispatch": args.steps_per_dispatch,
              "dispatches": args.dispatches, "rows": rows})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
