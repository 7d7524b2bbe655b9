"""The generator families, each declared once: `evaluate`, `render`, the report, `compare` and
tracking iterate them instead of naming the VAE and the GAN.

The param ``generators`` says which families the pipeline builds: dvc.yaml expands it into a
``train@<name>`` stage (``python -m stages.train_<name>``) and a ``score@<name>`` stage each.
A family's trained network lives in ``models/<name>/<network>``; ``score@<name>`` writes its
scores to ``metrics/evaluate/<name>.json`` and the training stage its own to
``metrics/<name>.json``. Adding a family is: ``latentlab/models/<name>.py``,
``latentlab/training/<name>.py``, ``stages/train_<name>.py``, its params block
``train_<name>``, and one `register` call here. The functions a family names are imported only when used (``load``), so
reading the registry costs no TensorFlow import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    name: str          # its key in paths and metrics: "gan"
    label: str         # how the report names it: "GAN"
    stage: str         # the DVC stage that trains it
    network: str       # the file in models/<name>/ that makes images
    registered: str    # its MLflow registered model name
    sampler: str       # "module:function": (network, n, seed, card) -> n images, floats in [0, 1]
    galleries: str     # "module:function": (out, block, Context) -> [(path, caption)]
    low_recall: str    # in words, why its samples can cover few real images
    history: tuple[str, ...]  # the columns of plots/<name>_history.csv to plot: its losses
    # "module:function": (models/<name>/, its network, its card, real test images, the judge)
    # -> more metrics, e.g. the VAE's reconstruction
    extra_metrics: str | None = None

    @property
    def budget_key(self) -> str:
        """The param to raise when it trained too little."""
        return f"{self.stage}.images_seen"

    def load(self, field: str) -> Callable:
        module, _, function = getattr(self, field).partition(":")
        return getattr(importlib.import_module(module), function)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def selected(names: list[str]) -> list[Family]:
    """The families named (``params.generators``), in that order."""
    return [FAMILIES[name] for name in names]


def labels() -> dict[str, str]:
    """{name: label} of every family: "gan" -> "GAN"."""
    return {f.name: f.label for f in FAMILIES.values()}


register(Family(
    "vae", "VAE", "train_vae", "decoder.keras", "latentlab-vae-decoder",
    sampler="latentlab.models.sampling:vae_samples",
    galleries="latentlab.model_galleries:vae_galleries",
    low_recall="they are blurry or too alike",
    history=("loss", "val_loss"),
    extra_metrics="latentlab.evaluation:vae_reconstruction"))
register(Family(
    "gan", "GAN", "train_gan", "generator.keras", "latentlab-gan-generator",
    sampler="latentlab.models.sampling:gan_samples",
    galleries="latentlab.model_galleries:gan_galleries",
    low_recall="mode collapse",
    history=("d_loss", "g_loss")))
register(Family(
    "diffusion", "Diffusion", "train_diffusion", "denoiser.keras", "latentlab-diffusion-denoiser",
    sampler="latentlab.models.diffusion:samples",
    galleries="latentlab.model_galleries:diffusion_galleries",
    low_recall="too few sampling steps, or too short a training",
    history=("loss",),
    extra_metrics="latentlab.models.diffusion:steps_curve"))
