"""latentlab: reproducible dataset-to-model runs for autoencoders, VAEs and GANs."""

__version__ = "0.1.0"
