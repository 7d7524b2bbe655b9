"""FastGAN's table in the report."""

from __future__ import annotations

from latentlab.report import Table, pairs


def table(values: dict, data: dict) -> Table:
    return Table("FastGAN training", ["metric", "value"], pairs(values),
                 "Last epoch's hinge loss of D, its decoders' reconstruction error (MSE on the "
                 "real images, in [-1, 1]), G's loss and D's mean logits on real and fake images.")
