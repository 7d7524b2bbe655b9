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
from latentlab.metrics import pairwise_distances
from latentlab.params import RenderBlock
from latentlab.precision import load_model
from latentlab.report import LABEL_KINDS


@dataclass
class Context:
    """What a generator family's galleries may draw on (its ``galleries.galleries``)."""

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


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _read_csv(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        return {}
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in rows[0]} if rows else {}


def progress_gif(out: Path, context: Context, name: str, caption: str) -> list:
    """The GIF of the frames family ``name``'s training left in reports/<name>/progress, if any."""
    frames = sorted((context.reports / name / "progress").glob("epoch_*.png"))
    if not frames:
        return []
    save_gif(frames, out / f"{name}_progress.gif")
    return [(f"galleries/{name}_progress.gif", caption)]


def nearest_train_images(out: Path, block: RenderBlock, context: Context, name: str, label: str,
                         samples: np.ndarray) -> tuple[str, str]:
    """A grid of six samples (left), each beside its ``block.neighbours`` nearest training
    images in pixel space: a generator that copies shows its copies."""
    train, shown = context.train, samples[:6]
    distances = pairwise_distances(shown.reshape(len(shown), -1), train.reshape(len(train), -1))
    nearest = np.argsort(distances, axis=1)[:, :block.neighbours]
    rows = [np.concatenate([s[None], train[idx]]) for s, idx in zip(shown, nearest)]
    save_grid(to_uint8(np.concatenate(rows)), out / f"{name}_nearest.png", nearest.shape[1] + 1)
    return (f"galleries/{name}_nearest.png",
            f"{label}: each sample (left) and its nearest training images: copies would match")


def generator_galleries(out: Path, block: RenderBlock, context: Context, family: str,
                        label: str, samples, caption: str = "samples") -> list:
    """A generator family's galleries: ``block.grid_size``² samples (``samples(generator, n,
    seed)``), its progress GIF, and each sample beside its nearest training images."""
    generator = load_model(context.models / family / "generator.keras")
    g = block.grid_size
    images = samples(generator, g * g, context.seed)
    save_grid(to_uint8(images), out / f"{family}_samples.png", g)
    return [(f"galleries/{family}_samples.png", f"{label}: {caption}"),
            *progress_gif(out, context, family, f"{label}: one fixed noise batch, epoch by epoch"),
            nearest_train_images(out, block, context, family, label, images)]


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


def curve_galleries(out: Path, plots: Path, families: list) -> list:
    """Loss curves of pretrain and of ``families`` (the run's generators: a history an earlier
    run of another family left in plots/ is not this run's), and the label-efficiency curve."""
    items = []
    curves = [("pretrain", "Autoencoder", ("loss", "val_loss")),
              *((f.name, f.label, f.history) for f in families)]
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
