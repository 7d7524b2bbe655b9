"""Drawing from a trained diffusion model, and what its scores add: the FD against the steps."""

from __future__ import annotations

import keras
import numpy as np

from latentlab.families.diffusion.model import denoiser_call, generate


def samples(denoiser: keras.Model, n: int, seed: int, card, steps: int | None = None,
            guidance: float | None = None) -> np.ndarray:
    """DDIM samples in [0, 1] with the card's settings
    (``steps``, ``guidance`` override them); a conditional model draws uniform classes."""
    if card is None or not card.sampler:
        raise ValueError("a diffusion model needs its model.json card (its schedule) to sample")
    images = generate(denoiser_call(denoiser), tuple(card.image_shape), n, seed, card.sampler,
                      n_classes=len(card.classes or ()), steps=steps, guidance=guidance)
    return card.to_unit(images)


def extra_metrics(directory, denoiser: keras.Model, card, real: np.ndarray, judge,
                  block) -> dict[str, float]:
    """The Fréchet distance (and KID) of ``train_diffusion.steps_curve_samples`` samples at
    each of ``train_diffusion.steps_curve`` DDIM step counts, judged as every generator is
    (`evaluation.Judge`): what fewer steps cost."""
    values = {}
    n = min(block.steps_curve_samples, len(real))
    for count in block.steps_curve:
        scores = judge.scores(samples(denoiser, n, judge.seed, card, steps=count),
                              ("frechet_distance", "kid"))
        values.update({f"{k}_at_{count}_steps": v for k, v in scores.items()})
    return values
