"""FastGAN's galleries: samples, its progress GIF, and each sample beside its nearest training
images (copies would match)."""

from __future__ import annotations

from pathlib import Path

from latentlab.families.fastgan.sampling import samples
from latentlab.model_galleries import Context, generator_galleries
from latentlab.params import RenderBlock


def galleries(out: Path, block: RenderBlock, context: Context) -> list:
    return generator_galleries(out, block, context, "fastgan", "FastGAN", samples,
                               "samples of its moving-average generator")
