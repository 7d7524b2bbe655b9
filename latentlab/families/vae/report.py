"""The VAE's table in the report."""

from __future__ import annotations

from latentlab.report import Table, fmt, pairs

# Géron's chapter-17 notebook, Fashion-MNIST 28×28×1, same scaling: shown on that dataset only
GERON_VAE_VAL_LOSS = 0.0311


def table(values: dict, data: dict) -> Table:
    rows = pairs(values)
    if data.get("source") == "fashion_mnist" and list(data.get("image_shape", [])) == [28, 28, 1]:
        rows.append(["Géron's notebook val_loss (Fashion-MNIST 28×28)", fmt(GERON_VAE_VAL_LOSS)])
    return Table("VAE (val split; loss in Géron's scaling)", ["metric", "value"], rows,
                 "Val loss ↓ = per-pixel reconstruction MSE + KL divergence to the prior / pixels.")
