"""GAN training throughput (images/s): latentlab's compiled step against the textbook loop that
alternates `discriminator.train_on_batch` and `gan.train_on_batch` (Géron, chapter 17), side by
side on the same DCGAN, data and machine.

    uv run python -m benchmarks.gan_throughput [--batch-sizes 32 128] [--steps 150]

Writes benchmarks/results/gan_throughput_<backend>.json.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import keras
import numpy as np

from benchmarks import Results, command_line
from latentlab.data.prepared import load_split
from latentlab.families.gan.model import build_gan
from latentlab.families.gan.training import GanTrainer
from latentlab.params import Params
from latentlab.seeding import seed_everything
from latentlab.training.stage import to_signed_range

PREPARED = Path("data/prepared")


def textbook(block, shape, images: np.ndarray, batch: int, steps: int) -> float:
    """Seconds for ``steps`` steps of the textbook loop (after one warm-up step)."""
    gan = build_gan(block, shape)
    generator, discriminator = gan.generator, gan.discriminator
    discriminator.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True),
                          optimizer=keras.optimizers.Adam(block.learning_rate, beta_1=block.beta_1))
    rng = np.random.default_rng(0)
    y1 = np.concatenate([np.zeros((batch, 1)), np.ones((batch, 1))]).astype("float32")
    y2 = np.ones((batch, 1), "float32")

    def step(i):
        real = to_signed_range(images[(i * batch) % (len(images) - batch):][:batch])
        noise = rng.standard_normal((batch, block.latent), dtype=np.float32)
        fake = generator(noise, training=True)
        discriminator.train_on_batch(np.concatenate([keras.ops.convert_to_numpy(fake), real]), y1)
        noise = rng.standard_normal((batch, block.latent), dtype=np.float32)
        combined.train_on_batch(noise, y2)

    # Trace D's train function while it is trainable, then freeze it inside the combined model.
    noise = rng.standard_normal((batch, block.latent), dtype=np.float32)
    fake = keras.ops.convert_to_numpy(generator(noise))
    discriminator.train_on_batch(np.concatenate([fake, to_signed_range(images[:batch])]), y1)
    discriminator.trainable = False
    combined = keras.Sequential([generator, discriminator])
    combined.compile(loss=keras.losses.BinaryCrossentropy(from_logits=True),
                     optimizer=keras.optimizers.Adam(block.learning_rate, beta_1=block.beta_1))
    step(0)
    start = time.perf_counter()
    for i in range(steps):
        step(i + 1)
    return time.perf_counter() - start


def ours(block, shape, images: np.ndarray, batch: int, steps: int) -> float:
    trainer = GanTrainer(build_gan(block, shape), block, seed=0)
    state = trainer.initial_state()
    rng = np.random.default_rng(0)

    def step(i, state):
        real = to_signed_range(images[(i * batch) % (len(images) - batch):][:batch])
        state, logs = trainer.fused_step(state, trainer.host_batch(rng, real, None, 0.0))
        return state, logs

    state, logs = step(0, state)
    keras.ops.convert_to_numpy(logs["g_loss"])
    start = time.perf_counter()
    for i in range(steps):
        state, logs = step(i + 1, state)
    keras.ops.convert_to_numpy(logs["g_loss"])  # wait for the device
    return time.perf_counter() - start


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = command_line(__doc__)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    seed_everything(0)
    images, _ = load_split(PREPARED, "train")
    images = np.asarray(images[:20_000])
    shape = tuple(images.shape[1:])
    rows = {}
    for batch in args.batch_sizes:
        block = Params().train_gan.model_copy(update={"batch_size": batch})
        # Alternate the two loops and keep each one's best run: background noise only slows.
        times = {"textbook": [], "latentlab": []}
        for _ in range(args.repeats):
            times["textbook"].append(textbook(block, shape, images, batch, args.steps))
            times["latentlab"].append(ours(block, shape, images, batch, args.steps))
        best = {k: min(v) for k, v in times.items()}
        rows[str(batch)] = {
            "textbook_images_per_s": round(args.steps * batch / best["textbook"], 1),
            "latentlab_images_per_s": round(args.steps * batch / best["latentlab"], 1),
            "speedup": round(best["textbook"] / best["latentlab"], 2),
        }
        logging.info("batch %d: %s", batch, rows[str(batch)])
    result = Results(args, "gan_throughput", keras.backend.backend())
    result.save(**{"backend": keras.backend.backend(), "cpus": os.cpu_count(), "steps": args.steps,
              "architecture": "dcgan 28x28x1, filters [64, 128], latent 100", "batches": rows})
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
