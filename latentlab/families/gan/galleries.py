"""The GAN's galleries and its report table."""

from __future__ import annotations

from pathlib import Path

from latentlab.families.gan.sampling import samples
from latentlab.galleries import save_grid, to_uint8
from latentlab.model_galleries import Context, nearest_train_images, progress_gif
from latentlab.params import RenderBlock
from latentlab.precision import load_model


def galleries(out: Path, block: RenderBlock, context: Context) -> list:
    """Samples, its progress GIF, and each sample beside its nearest training images."""
    generator = load_model(context.models / "gan/generator.keras")
    g = block.grid_size
    images = samples(generator, g * g, context.seed)
    save_grid(to_uint8(images), out / "gan_samples.png", g)
    return [("galleries/gan_samples.png", "GAN: samples"),
            *progress_gif(out, context, "gan", "GAN: one fixed noise batch, epoch by epoch"),
            nearest_train_images(out, block, context, "gan", "GAN", images)]
