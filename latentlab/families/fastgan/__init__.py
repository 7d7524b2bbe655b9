"""The few-shot GAN (FastGAN-style, Liu et al. 2021): a generator with skip-layer excitation, a
discriminator that must also rebuild the real images from its own features (small decoders, a
self-supervised task that keeps it from memorising a few hundred images), hinge loss, DiffAugment
on both of its inputs, and the generator's moving average to sample with."""

from latentlab.families import Family, register
from latentlab.families.fastgan.params import FastGanBlock

register(Family("fastgan", "FastGAN", FastGanBlock, "generator.keras",
                low_recall="mode collapse", history=("d_loss", "g_loss", "reconstruction"),
                order=25), __name__)
