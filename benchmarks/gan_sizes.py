"""The DCGAN at 32×32×3 and 64×64×3: parameters and training throughput of the networks before
`filters: auto` (the fixed 64/128 pair: a dense layer to a 16×16 map at 64 px, two transposed
convs) and after it (one stride-2 block per doubling from 4×4), with transposed or resize
convolutions, with and without a spectral-normalised D; the same compiled step, random images.

    uv run python -m benchmarks.gan_sizes [--sizes 32 64] [--steps 20]

Writes benchmarks/results/gan_sizes.json.
"""

from __future__ import annotations

import numpy as np

from benchmarks import Results, command_line
from benchmarks.gan_throughput import ours
from latentlab.families.gan.model import build_gan
from latentlab.params import parse_params
from latentlab.seeding import seed_everything

VARIANTS = {
    "fixed [64, 128], transpose (before)": {"filters": [64, 128]},
    "auto, transpose": {"filters": "auto"},
    "auto, resize": {"filters": "auto", "upsample": "resize"},
    "auto, resize, spectral norm": {"filters": "auto", "upsample": "resize", "spectral_norm": True},
}


def throughput(block, shape, steps: int) -> float:
    """Images per second of latentlab's step (`gan_throughput.ours`) on random images."""
    seed_everything(0)
    images = np.random.default_rng(0).integers(0, 256, (4 * block.batch_size, *shape), np.uint8)
    return steps * block.batch_size / ours(block, shape, images, block.batch_size, steps)


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    results = Results(args, "gan_sizes")
    for size in args.sizes:
        shape = (size, size, 3)
        for name, values in VARIANTS.items():
            block = parse_params({"train_gan": {**values, "batch_size": 32}}, origin="bench").train_gan
            gan = build_gan(block, shape)
            row = {"generator_params": gan.generator.count_params(),
                   "discriminator_params": gan.discriminator.count_params(),
                   "images_per_second": round(throughput(block, shape, args.steps), 1)}
            results[f"{size}: {name}"] = row
            print(f"{size}×{size}×3  {name:38s} {row}", flush=True)
    results.save()


if __name__ == "__main__":
    main()
