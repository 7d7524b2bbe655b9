"""The galleries of the report: what each trained model's outputs look like, as PNG grids,
maps, plots and a GIF. Each function draws one model's set into ``out`` and returns
(path relative to the report, caption) pairs."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentlab.data.prepared import UNLABELED, as_float, load_split
from latentlab.galleries import heatmap, line_plot, save_gif, save_grid, scatter_map, to_uint8
from latentlab.generators import FAMILIES
from latentlab.metrics import pairwise_distances
from latentlab.models.sampling import gan_samples, vae_samples
from latentlab.params import RenderBlock
from latentlab.precision import load_model
from latentlab.report import LABEL_KINDS


@dataclass
class Context:
    """What a generator family's galleries may draw on (`generators.Family.galleries`)."""

    test: np.ndarray     # a shuffled sample of test images, floats
    train: np.ndarray    # the train split, floats
    models: Path         # models/ (a family's own: models/<name>/)
    reports: Path        # reports/ (a family's training stage may have left frames there)
    metrics: Path        # metrics/ (a family's scores: metrics/evaluate/<name>.json)
    seed: int


def shuffled_sample(prepared: Path, split: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded sample of ``n`` images (floats) and labels of a split, in shuffled order, so that
    grids show varied classes."""
    images, labels = load_split(prepared, split)
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(images), min(len(images), n), replace=False))
    order = rng.permutation(len(index))
    return as_float(images[index][order]), labels[index][order]


def _interleave(*rows: np.ndarray) -> np.ndarray:
    """Rows of equal length, one after another: e.g. inputs over outputs."""
    return np.concatenate(rows)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_csv(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]} if rows else {}


def autoencoder_galleries(out: Path, block: RenderBlock, test: np.ndarray, labels: np.ndarray,
                          models: Path, noise_std: float, class_names, seed: int) -> list:
    encoder = load_model(models / "pretrain/encoder.keras")
    decoder = load_model(models / "pretrain/decoder.keras")
    g = block.grid_size
    x = test[:g * 2]
    recon = decoder.predict(encoder.predict(x, verbose=0), verbose=0)
    save_grid(to_uint8(_interleave(x[:g], recon[:g], x[g:], recon[g:])), out / "reconstructions.png", g)
    noisy = np.clip(x[:g] + np.random.default_rng(seed).normal(0, noise_std, x[:g].shape), 0, 1)
    denoised = decoder.predict(encoder.predict(noisy, verbose=0), verbose=0)
    save_grid(to_uint8(_interleave(x[:g], noisy, denoised)), out / "denoising.png", g)
    codings = encoder.predict(test[:block.map_points], verbose=0)
    heatmap(codings[:32], out / "coding_activations.png", "Codings of 32 test images",
            "coding unit", "image")
    if block.map_method == "tsne" and len(codings) > 30:
        from sklearn.manifold import TSNE

        points = TSNE(2, init="pca", random_state=seed,
                      perplexity=min(30, len(codings) - 1)).fit_transform(codings)
    else:
        from sklearn.decomposition import PCA

        points = PCA(2, random_state=seed).fit_transform(codings)
    scatter_map(points, np.where(labels[:len(points)] == UNLABELED, 0, labels[:len(points)]),
                test[:len(points)], out / "codings_map.png",
                f"Autoencoder codings, {block.map_method.upper()}", class_names, block.map_thumbnails)
    return [
        ("galleries/reconstructions.png", "Autoencoder: test images (odd rows) over their reconstructions"),
        ("galleries/denoising.png", "Denoising: clean, with Gaussian noise, and the autoencoder's output"),
        ("galleries/coding_activations.png", "Coding activations (sparse codings show as dark columns)"),
        ("galleries/codings_map.png", "2-D map of the codings of test images, " + (
            "coloured by class" if class_names else "one colour: the dataset has no classes")),
    ]


def vae_galleries(out: Path, block: RenderBlock, context: Context) -> list:
    test, seed = context.test, context.seed
    encoder = load_model(context.models / "vae/encoder.keras")
    decoder = load_model(context.models / "vae/decoder.keras")
    g, steps = block.grid_size, block.interpolation_steps
    save_grid(to_uint8(vae_samples(decoder, g * g, seed)), out / "vae_prior.png", g)
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
    frames = sorted((context.reports / "vae/progress").glob("epoch_*.png"))
    if frames:
        save_gif(frames, out / "vae_progress.gif")
    return [
        ("galleries/vae_prior.png", "VAE: samples from the prior N(0, I)"),
        *([("galleries/vae_progress.gif",
            "VAE: one fixed batch of prior codings, epoch by epoch")] if frames else []),
        *([("galleries/vae_interpolation.png",
            "VAE: interpolation between the codings of two test images")] if pairs else []),
        ("galleries/vae_traversal.png",
         f"VAE: one latent dimension per row, from −{block.traversal_range} to +{block.traversal_range}"),
    ]


def gan_galleries(out: Path, block: RenderBlock, context: Context) -> list:
    train = context.train
    generator = load_model(context.models / "gan/generator.keras")
    g = block.grid_size
    samples = gan_samples(generator, g * g, context.seed)
    save_grid(to_uint8(samples), out / "gan_samples.png", g)
    frames = sorted((context.reports / "gan/progress").glob("epoch_*.png"))
    items = [("galleries/gan_samples.png", "GAN: samples")]
    if frames:
        save_gif(frames, out / "gan_progress.gif")
        items.append(("galleries/gan_progress.gif", "GAN: one fixed noise batch, epoch by epoch"))
    shown = samples[:6]
    distances = pairwise_distances(shown.reshape(len(shown), -1), train.reshape(len(train), -1))
    nearest = np.argsort(distances, axis=1)[:, :block.neighbours]
    rows = [np.concatenate([s[None], train[idx]]) for s, idx in zip(shown, nearest)]
    save_grid(to_uint8(np.concatenate(rows)), out / "gan_nearest.png", nearest.shape[1] + 1)
    items.append(("galleries/gan_nearest.png",
                  "GAN: each sample (left) and its nearest training images: copies would match"))
    return items


def diffusion_galleries(out: Path, block: RenderBlock, context: Context) -> list:
    """Samples (a class a row, conditional), the denoising of a few samples step by step, the
    same seeds at more and more steps, and the Fréchet distance against the steps."""
    from latentlab.models import diffusion
    from latentlab.models.card import card_of

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
    frames = sorted((context.reports / "diffusion/progress").glob("epoch_*.png"))
    if frames:
        save_gif(frames, out / "diffusion_progress.gif")
        items.append(("galleries/diffusion_progress.gif",
                      "Diffusion: the same noise, sampled after each epoch"))
    scores = _read_json(context.metrics / "evaluate/diffusion.json")
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


def curve_galleries(out: Path, plots: Path) -> list:
    items = []
    curves = [("pretrain", "Autoencoder", ("loss", "val_loss")),
              *((f.name, f.label, f.history) for f in FAMILIES.values())]
    for name, title, columns in curves:
        history = _read_csv(plots / f"{name}_history.csv")
        if history:
            line_plot({c: (history["epoch"], history[c]) for c in columns if c in history},
                      out / f"loss_{name}.png", f"{title} loss per epoch", "epoch", "loss")
            items.append((f"galleries/loss_{name}.png", f"{title}: loss per epoch"))
    curve = _read_csv(plots / "finetune_curve.csv")
    if curve:
        kinds = [k for k, _ in LABEL_KINDS if k in curve]  # the report table's, in its order
        line_plot({k: (curve["labels"], curve[k]) for k in kinds}, out / "label_efficiency.png",
                  "Test accuracy vs labeled training images", "labeled images", "test accuracy",
                  errors={k: curve[f"{k}_std"] for k in kinds})
        items.append(("galleries/label_efficiency.png",
                      "Label efficiency: pretrained encoder vs from scratch vs linear probe vs "
                      "the pixel baselines (± std)"))
    return items
