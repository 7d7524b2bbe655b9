"""The variational autoencoder (Géron, chapter 17): a Gaussian encoder, a decoder, the KL
term in Géron's scaling; its samples are decoded draws from the prior."""

from latentlab.families import Family, register
from latentlab.families.vae.params import VaeBlock

register(Family("vae", "VAE", VaeBlock, "decoder.keras", low_recall="they are blurry or too alike",
                history=("loss", "val_loss"), others=("encoder.keras",), order=10), __name__)
