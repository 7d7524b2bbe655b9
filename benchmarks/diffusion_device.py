"""Diffusion training and sampling throughput on the jax backend, for a GPU (or the CPU).

The step is latentlab's own (`DiffusionTrainer`: the noised batch, the U-Net's v-prediction
loss, Adam, the EMA update), fed host batches as the stage feeds them; sampling is
`diffusion.generate` (DDIM) through the compiled network. The images are random pictures of the
right shape (throughput does not depend on what they show; a GPU machine may have no dataset).

    KERAS_BACKEND=jax uv run python -m benchmarks.diffusion_device \\
        [--sizes 28x1 64x3] [--widths 16 32 64] [--batch-sizes 64 128 256] [--steps 20]

Writes benchmarks/results/diffusion_device_<platform>.json: per size × width × batch, training
images/s and sampling image-steps/s (or the error, e.g. out of memory).
"""

from __future__ import annotations

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import Results, command_line  # noqa: E402
from latentlab.families.diffusion import model as d  # noqa: E402
from latentlab.families.diffusion.training import DiffusionTrainer, settings  # noqa: E402
from latentlab.params import Params  # noqa: E402


def measure(size: int, channels: int, width: int, blocks: int, batch: int, steps: int,
            timed_steps: int) -> dict:
    keras.utils.set_random_seed(0)
    block = Params().train_diffusion.model_copy(update={"batch_size": batch, "width": width,
                                                        "blocks": blocks})
    shape = (size, size, channels)
    widths = d.unet_widths("auto", size, width)
    trainer = DiffusionTrainer(d.build_denoiser(shape, widths, blocks),
                               d.build_denoiser(shape, widths, blocks), block, 0, seed=0)
    state = trainer.initial_state()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
    for i in range(3):  # compile, warm up
        state, logs = trainer.step(state, trainer.host_batch(rng, images, None, i))
    float(logs["loss"])
    start = time.perf_counter()
    for i in range(timed_steps):
        state, logs = trainer.step(state, trainer.host_batch(rng, images, None, i))
    float(logs["loss"])
    train = timed_steps * batch / (time.perf_counter() - start)
    sampler = trainer.sampler(state)
    d.generate(sampler, shape, 500, 0, settings(block), steps=1)  # compile
    start = time.perf_counter()
    d.generate(sampler, shape, 500, 0, settings(block), steps=steps)
    sample = 500 * steps / (time.perf_counter() - start)
    return {"parameters": trainer.denoiser.count_params(), "train_images_per_second":
            round(train, 1), "sample_image_steps_per_second": round(sample, 1)}


def main() -> None:
    import jax

    parser = command_line(__doc__)
    parser.add_argument("--sizes", nargs="+", default=["28x1", "64x3"])
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps when sampling")
    parser.add_argument("--timed-steps", type=int, default=20)
    args = parser.parse_args()
    platform = jax.devices()[0].platform
    rows = []
    results = Results(args, "diffusion_device", platform)
    for text in args.sizes:
        size, channels = map(int, text.split("x"))
        for width in args.widths:
            for batch in args.batch_sizes:
                row = {"size": text, "width": width, "blocks": args.blocks, "batch": batch}
                try:
                    row.update(measure(size, channels, width, args.blocks, batch, args.steps,
                                       args.timed_steps))
                except Exception as exc:  # noqa: BLE001 - e.g. out of memory: record it
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                rows.append(row)
                print(json.dumps(row), flush=True)
                results.save(device=str(jax.devices()[0]), rows=rows)


if __name__ == "__main__":
    main()
