"""The diffusion model's galleries and its report table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.families.diffusion import model as diffusion
from latentlab.galleries import line_plot, save_grid, to_uint8
from latentlab.model_galleries import Context, progress_gif, read_json
from latentlab.models.card import card_of
from latentlab.params import RenderBlock
from latentlab.precision import load_model


def galleries(out: Path, block: RenderBlock, context: Context) -> list:
    """Samples (a class a row, conditional), the denoising of a few samples step by step, the
    same seeds at more and more steps, and the Fréchet distance against the steps."""
    path = context.models / "diffusion/denoiser.keras"
    denoiser, card = load_model(path), card_of(path)
    denoise, shape = diffusion.denoiser_call(denoiser), tuple(card.image_shape)
    n_classes, g = len(card.classes or ()), block.grid_size
    labels = np.repeat(np.arange(g) % n_classes, g) if n_classes else None
    samples = diffusion.generate(denoise, shape, g * g, context.seed, card.sampler,
                                 labels=labels, n_classes=n_classes)
    save_grid(to_uint8(card.to_unit(samples)), out / "diffusion_samples.png", g)
    rows = min(g, 6)  # each row: one sample from its noise through every step
    _, path = diffusion.generate(denoise, shape, rows, context.seed + 1, card.sampler,
                                 labels=None if labels is None else labels[::g][:rows],
                                 n_classes=n_classes, trajectory=True)
    save_grid(to_uint8(card.to_unit(path.swapaxes(0, 1).reshape(-1, *shape))),
              out / "diffusion_denoising.png", len(path))
    counts = sorted({1, 2, 5, 10, 20, 50, card.sampler["steps"]})
    by_steps = [diffusion.generate(denoise, shape, g, context.seed, card.sampler,
                                   labels=None if labels is None else labels[::g][:g],
                                   n_classes=n_classes, steps=s) for s in counts]
    save_grid(to_uint8(card.to_unit(np.concatenate(by_steps))), out / "diffusion_steps.png", g)
    items = [
        ("galleries/diffusion_samples.png",
         f"Diffusion: samples, {card.sampler['steps']} DDIM steps (eta {card.sampler['eta']}"
         + (f", guidance {card.sampler['guidance']}, a class a row)" if n_classes else ")")),
        ("galleries/diffusion_denoising.png",
         "Diffusion: one sample a row, from its noise (left) through each DDIM step"),
        ("galleries/diffusion_steps.png",
         "Diffusion: the same noise, rows of " + ", ".join(map(str, counts)) + " DDIM steps"),
    ]
    items += progress_gif(out, context, "diffusion",
                          "Diffusion: the same noise, sampled after each epoch")
    scores = read_json(context.metrics / "evaluate/diffusion.json")
    curve = sorted((int(k.split("_")[3]), v) for k, v in scores.items()
                   if k.startswith("frechet_distance_at_"))
    if curve:
        line_plot({"Fréchet distance": ([c for c, _ in curve], [v for _, v in curve])},
                  out / "diffusion_fd_steps.png", "Diffusion: FD vs sampling steps",
                  "DDIM steps", "Fréchet distance")
        items.append(("galleries/diffusion_fd_steps.png",
                      "Diffusion: Fréchet distance against DDIM steps (fewer samples than the "
                      "table's, so higher)"))
    return items
