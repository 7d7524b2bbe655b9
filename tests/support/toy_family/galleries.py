"""The toy's gallery: a grid of samples."""

from __future__ import annotations

from latentlab.families.toy.sampling import samples

from latentlab.galleries import save_grid, to_uint8
from latentlab.precision import load_model


def galleries(out, block, context) -> list:
    generator = load_model(context.models / "toy/generator.keras")
    g = block.grid_size
    save_grid(to_uint8(samples(generator, g * g, context.seed)), out / "toy_samples.png", g)
    return [("galleries/toy_samples.png", "Toy: samples")]
