"""The GAN's table in the report."""

from __future__ import annotations

from latentlab.report import Table, pairs


def table(values: dict, data: dict) -> Table:
    return Table("GAN training", ["metric", "value"], pairs(values),
                 "Last epoch's discriminator and generator losses and D's outputs on real and "
                 "fake images, and training throughput.")
