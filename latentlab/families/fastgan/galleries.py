"""FastGAN's galleries: samples, its progress GIF, and each sample beside its nearest training
images (copies would match)."""

from __future__ import annotations

from pathlib import Path

from latentlab.families.fastgan.sampling import samples
from latentlab.galleries import save_grid, to_uint8
from latentlab.model_galleries import Context, nearest_train_images, progress_gif
from latentlab.params import RenderBlock
from latentlab.precision import load_model


def galleries(out: Path, block: RenderBlock, context: Context) -> list:
    generator = load_model(context.models / "fastgan/generator.keras")
    g = block.grid_size
    images = samples(generator, g * g, context.seed)
    save_grid(to_uint8(images), out / "fastgan_samples.png", g)
    return [("galleries/fastgan_samples.png", "FastGAN: samples of its moving-average generator"),
            *progress_gif(out, context, "fastgan", "FastGAN: one fixed noise batch, epoch by epoch"),
            nearest_train_images(out, block, context, "fastgan", "FastGAN", images)]
