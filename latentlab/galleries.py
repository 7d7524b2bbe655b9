"""Image grids and other pictures written next to the pipeline's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, columns: int, min_cell: int = 48, gap: int = 2) -> Image.Image:
    """Tile uint8 images (N, H, W, C) into one picture, upscaling small ones for legibility."""
    if len(images) == 0:
        raise ValueError("image_grid needs at least one image")
    n, height, width, channels = images.shape
    scale = max(1, -(-min_cell // max(height, width)))
    rows = -(-n // columns)
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full(
        (rows * cell_h + (rows + 1) * gap, columns * cell_w + (columns + 1) * gap, channels),
        255, dtype=np.uint8,
    )
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        top, left = gap + r * (cell_h + gap), gap + c * (cell_w + gap)
        canvas[top: top + cell_h, left: left + cell_w] = image.repeat(scale, 0).repeat(scale, 1)
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas)


def save_grid(images: np.ndarray, path: Path, columns: int) -> None:
    image_grid(images, columns).save(path)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] → uint8."""
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def save_gif(frames: list[Path], path: Path, millis: int = 400) -> None:
    """An animated GIF of PNG frames (e.g. the GAN's samples epoch by epoch)."""
    images = [Image.open(frame).convert("P", palette=Image.Palette.ADAPTIVE) for frame in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=millis, loop=0)


# Fonts tried, in turn, for each character of a label: Latin first, then CJK class names (the
# Debian package fonts-wqy-microhei, which `make setup` installs), where installed.
FONTS = ["DejaVu Sans", "WenQuanYi Micro Hei"]
FONT_FILES = {"WenQuanYi Micro Hei": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name, file in FONT_FILES.items():  # installed after matplotlib cached its font list
        if name not in installed and Path(file).is_file():
            font_manager.fontManager.addfont(file)
            installed.add(name)
    plt.rcParams["font.family"] = [f for f in FONTS if f in installed] or ["sans-serif"]
    return plt


def class_colours(n: int) -> np.ndarray:
    """One RGBA colour per class (tab10, tab20 past ten classes; repeating past twenty)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return cmap(np.arange(n) % cmap.N)


def line_plot(series: dict[str, tuple[list, list]], path: Path, title: str, xlabel: str,
              ylabel: str, errors: dict[str, list] | None = None, logy: bool = False) -> None:
    """Lines (``name → (x, y)``), optional error bars, one PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, (x, y) in series.items():
        if errors and name in errors:
            ax.errorbar(x, y, yerr=errors[name], label=name, marker="o", capsize=3)
        else:
            ax.plot(x, y, label=name, marker="o" if len(x) < 30 else None)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def heatmap(values: np.ndarray, path: Path, title: str, xlabel: str, ylabel: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    shown = ax.imshow(values, aspect="auto", cmap="viridis", interpolation="nearest")
    fig.colorbar(shown, ax=ax)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def scatter_map(points: np.ndarray, labels: np.ndarray, images: np.ndarray, path: Path,
                title: str, class_names: list[str] | None, thumbnails: int) -> None:
    """A 2-D map coloured by class, with image thumbnails spread over it (Géron's figure)."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 8), dpi=100)
    points = (points - points.min(0)) / np.maximum(np.ptp(points, 0), 1e-12)
    labels = np.asarray(labels, dtype=int)
    colours = class_colours(max(len(class_names or ()), int(labels.max(initial=0)) + 1))
    ax.scatter(points[:, 0], points[:, 1], c=colours[np.maximum(labels, 0)], s=8)
    if class_names:  # one handle per class present, in the colour its points are drawn in
        from matplotlib.lines import Line2D

        present = sorted(set(int(v) for v in labels if v >= 0))
        handles = [Line2D([], [], marker="o", linestyle="", color=colours[i]) for i in present]
        ax.legend(handles, [class_names[i] for i in present], loc="best", fontsize=8)
    shown = np.empty((0, 2))
    cmap = None if images.shape[-1] == 3 else "binary"
    for index in range(len(points)):
        if len(shown) >= thumbnails:
            break
        if len(shown) and np.min(((shown - points[index]) ** 2).sum(1)) < 0.004:
            continue  # keep thumbnails from piling up
        shown = np.vstack([shown, points[index]])
        image = images[index][..., 0] if images.shape[-1] == 1 else images[index]
        box = AnnotationBbox(OffsetImage(image, cmap=cmap, zoom=0.9), points[index],
                             frameon=False)
        ax.add_artist(box)
    ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
