"""The diffusion model: a U-Net denoiser on a cosine schedule, sampled by DDIM (optionally
class-conditional, with classifier-free guidance)."""

from latentlab.families import Family, register
from latentlab.families.diffusion.params import DiffusionBlock

register(Family("diffusion", "Diffusion", DiffusionBlock, "denoiser.keras",
                low_recall="too few sampling steps, or too short a training",
                history=("loss",), order=30), __name__)
