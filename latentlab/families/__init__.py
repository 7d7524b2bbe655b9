"""The generator families. Each is one package, ``latentlab/families/<name>/``, that registers
itself here; the stages, the report, `compare`, tracking and ``latentlab sample`` iterate the
registry instead of naming the VAE or the GAN.

A family's package holds:

- ``__init__.py``: its `register(Family(...), __name__)`, and nothing that imports a backend;
- ``params.py``: its block, ``train_<name>`` in params.yaml;
- ``train.py``: ``run(params, prepared, models_dir, checkpoints, metrics_path, history_path,
  samples_dir) -> metrics``, the body of its ``train@<name>`` stage (``python -m stages.train
  <name>``);
- ``sampling.py``: ``samples(network, n, seed, card, block) -> n images`` as floats in [0, 1],
  and optionally ``extra_metrics(directory, network, card, real, judge, block) -> dict`` (the
  VAE's reconstruction, the diffusion model's FD against its steps);
- ``galleries.py``: ``galleries(out, render_block, Context) -> [(path, caption)]``;
- optionally ``report.py``: ``table(metrics, data) -> Table``, its training table in the report
  (without it, a plain table of ``metrics/<name>.json``);
- optionally ``cli.py``: ``sample(model, card, args, out) -> [written paths]`` when
  ``latentlab sample`` must do more than feed noise (and a class) to the network;
- ``dvc.yaml``: the plots of its ``plots/<name>_history.csv``, found by ``dvc plots show``.

Its outputs are ``models/<name>/`` (with the network that makes images, ``model.json``
and ``training.json``), ``reports/<name>/`` (``progress/epoch_*.png``), ``metrics/<name>.json``
and ``plots/<name>_history.csv``; ``score@<name>`` writes ``metrics/evaluate/<name>.json``.
Adding a family is a new folder here (found when this package is imported) and its
``train_<name>`` block in params.yaml.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType


@dataclass(frozen=True)
class Family:
    name: str          # its key in paths and metrics: "gan"
    label: str         # how the report names it: "GAN"
    block: type        # its params block (a `latentlab.blocks.Block`): train_<name>
    network: str       # the file in models/<name>/ that makes images: "generator.keras"
    low_recall: str    # in words, why its samples can cover few real images
    history: tuple[str, ...]  # the columns of plots/<name>_history.csv to plot: its losses
    others: tuple[str, ...] = ()  # more networks in models/<name>/ that MLflow keeps
    order: int = 100   # where the report lists it among the families (then by name)
    package: str = ""  # its package (set by `register`)

    @property
    def stage(self) -> str:
        """Its params block and the name its training runs under: ``train_gan``."""
        return f"train_{self.name}"

    @property
    def registered(self) -> str:
        """Its network's name in the MLflow model registry: ``latentlab-gan-generator``."""
        return f"latentlab-{self.name}-{Path(self.network).stem}"

    @property
    def budget_key(self) -> str:
        """The param to raise when it trained too little."""
        return f"{self.stage}.images_seen"

    def module(self, name: str) -> ModuleType | None:
        """Its module ``name`` (``"train"``, ``"sampling"``, ...), imported now; None if the
        family has none."""
        try:
            return importlib.import_module(f"{self.package}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{self.package}.{name}":
                raise
            return None

    def hook(self, module: str, function: str):
        """Its ``module.function``, or None where the family leaves it out."""
        found = self.module(module)
        return getattr(found, function, None) if found else None

    @property
    def folder(self) -> Path:
        return Path(importlib.import_module(self.package).__file__).parent


FAMILIES: dict[str, Family] = {}


def register(family: Family, package: str) -> Family:
    """Add a family; ``package`` is its package's ``__name__``."""
    if family.name in FAMILIES:
        raise ValueError(f"a generator family {family.name!r} is registered already")
    family = Family(**{**family.__dict__, "package": package})
    FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Take a family out of the registry (a test's toy family, once the test is done)."""
    FAMILIES.pop(name, None)


def selected(names: list[str]) -> list[Family]:
    """The families named (``params.generators``), in that order."""
    return [FAMILIES[name] for name in names]


def labels() -> dict[str, str]:
    """{name: label} of every family: "gan" -> "GAN"."""
    return {f.name: f.label for f in FAMILIES.values()}


def _discover() -> None:
    """Import every family package in this folder (each registers itself), then order the
    registry as the report shows the families: by `Family.order`, then name."""
    for found in pkgutil.iter_modules(__path__):
        if found.ispkg:
            importlib.import_module(f"{__name__}.{found.name}")
    ordered = sorted(FAMILIES.values(), key=lambda f: (f.order, f.name))
    FAMILIES.clear()
    FAMILIES.update((f.name, f) for f in ordered)


_discover()
