"""The VAE's galleries and its report table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.families.vae.sampling import samples
from latentlab.galleries import save_grid, to_uint8
from latentlab.model_galleries import Context, progress_gif
from latentlab.params import RenderBlock
from latentlab.precision import load_model


def galleries(out: Path, block: RenderBlock, context: Context) -> list:
    """Prior samples, its progress GIF, interpolations and latent traversals."""
    test, seed = context.test, context.seed
    encoder = load_model(context.models / "vae/encoder.keras")
    decoder = load_model(context.models / "vae/decoder.keras")
    g, steps = block.grid_size, block.interpolation_steps
    save_grid(to_uint8(samples(decoder, g * g, seed)), out / "vae_prior.png", g)
    pairs = min(4, len(test) // 2)  # a tiny test split has fewer pairs to walk between
    if pairs:
        means = encoder.predict(test[:2 * pairs], verbose=0)[0]
        t = np.linspace(0, 1, steps)[:, None]
        paths = [(1 - t) * means[2 * i] + t * means[2 * i + 1] for i in range(pairs)]
        save_grid(to_uint8(decoder.predict(np.concatenate(paths), verbose=0)),
                  out / "vae_interpolation.png", steps)
    latent = decoder.input_shape[-1]
    dims = min(latent, 10)
    z = np.zeros((dims, steps, latent), np.float32)
    for d in range(dims):
        z[d, :, d] = np.linspace(-block.traversal_range, block.traversal_range, steps)
    save_grid(to_uint8(decoder.predict(z.reshape(-1, latent), verbose=0)),
              out / "vae_traversal.png", steps)
    return [
        ("galleries/vae_prior.png", "VAE: samples from the prior N(0, I)"),
        *progress_gif(out, context, "vae", "VAE: one fixed batch of prior codings, epoch by epoch"),
        *([("galleries/vae_interpolation.png",
            "VAE: interpolation between the codings of two test images")] if pairs else []),
        ("galleries/vae_traversal.png",
         f"VAE: one latent dimension per row, from −{block.traversal_range} to +{block.traversal_range}"),
    ]
