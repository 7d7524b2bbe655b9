"""The dataset card: counts per split and class, shapes, what was left out, sample grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentlab.data.prepared import SPLITS, class_counts, load_split
from latentlab.data.raw import write_json
from latentlab.galleries import save_grid


def write_card(prepared_dir: Path, card_dir: Path, meta: dict, grid_size: int, seed: int) -> dict:
    """Write card.json, card.md and one ``{split}_samples.png`` per non-empty split."""
    rng = np.random.default_rng(seed)
    card = {
        "dataset": meta["dataset"],
        "source": meta["source"],
        "image_shape": meta["image_shape"],
        "class_names": meta["class_names"],
        "skipped": meta["skipped"],
        "splits": {},
    }
    for split in SPLITS:
        images, labels = load_split(prepared_dir, split)
        card["splits"][split] = {
            "count": int(len(labels)),
            "class_counts": class_counts(labels, meta["class_names"]),
        }
        if len(images):
            k = min(len(images), grid_size * grid_size)
            picks = np.sort(rng.choice(len(images), size=k, replace=False))
            save_grid(np.asarray(images[picks]), card_dir / f"{split}_samples.png", columns=grid_size)
    write_json(card_dir / "card.json", card)
    (card_dir / "card.md").write_text(_markdown(card))
    return card


def _markdown(card: dict) -> str:
    shape = "×".join(str(d) for d in card["image_shape"])
    lines = [
        f"# Dataset card: {card['dataset']}",
        "",
        f"- source: `{card['source']}`",
        f"- image shape: {shape} (uint8)",
        f"- left out: {', '.join(f'{k}: {v}' for k, v in card['skipped'].items()) or 'nothing'}",
        "",
    ]
    names = list(card["splits"]["train"]["class_counts"])
    lines.append("| class | " + " | ".join(SPLITS) + " |")
    lines.append("|---|" + "---:|" * len(SPLITS))
    for name in names:
        row = [str(card["splits"][s]["class_counts"].get(name, 0)) for s in SPLITS]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines.append("| **total** | " + " | ".join(str(card["splits"][s]["count"]) for s in SPLITS) + " |")
    lines.append("")
    for split in SPLITS:
        if card["splits"][split]["count"]:
            lines.append(f"![{split} samples]({split}_samples.png)")
    return "\n".join(lines) + "\n"
