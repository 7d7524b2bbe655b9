"""The GAN: a DCGAN (or dense GAN) with switchable training remedies (replay, minibatch
features, DiffAugment, instance noise, WGAN-GP, class conditioning)."""

from latentlab.families import Family, register
from latentlab.families.gan.params import GanBlock

register(Family("gan", "GAN", GanBlock, "generator.keras", low_recall="mode collapse",
                history=("d_loss", "g_loss"), order=20), __name__)
