"""The `latentlab` command: use what the pipeline trained; print a params profile.

    latentlab sample models/gan/generator.keras -n 16 -o samples/          # 16 PNGs
    latentlab sample models:/latentlab-gan-generator/3 -n 64 --grid -o grid.png
    latentlab sample models/vae/decoder.keras --interpolate 1 2 --steps 24 -o walk.gif
    latentlab sample models/diffusion/denoiser.keras --steps 50 --eta 1 --grid -o grid.png
    latentlab sample models/diffusion/denoiser.keras --label Sneaker --guidance 3 --denoising -o d.gif

A model is the network a generator family draws with (`models/<family>/<network>`, registered
as latentlab-<family>-<network>: a GAN's or FastGAN's generator, a VAE's decoder, a diffusion
model's denoiser), given as a path or as an MLflow registry URI (`models:/<name>/<version>`, from
``MLFLOW_TRACKING_URI``); its card (model.json) names its family, which says how it is drawn.
The same seed gives the same images.

    eval "dvc exp run -n flowers64 $(latentlab profile flowers64)"        # profiles/flowers64.yaml
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shlex
import sys
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from latentlab.errors import UserError
from latentlab.families import FAMILIES
from latentlab.stage_runner import EXIT_USER_ERROR

if TYPE_CHECKING:
    from latentlab.models.card import ModelCard

KINDS = ("generator", "vae_decoder")  # the names of the networks `sample` draws from


def load_model(source: str):
    """(A Keras model, its card or None) from a .keras path or a `models:/name/version` URI."""
    path = Path(source)
    if not source.startswith("models:/") and not path.is_file():
        raise UserError(f"{source}: no such model file; give a .keras file (e.g. "
                        "models/gan/generator.keras) or a registry URI models:/<name>/<version>")

    import latentlab.models  # noqa: F401 - registers the custom layers saved models use
    from latentlab import precision
    from latentlab.models.card import card_of, from_dict

    if source.startswith("models:/"):
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            return (precision.in_current_precision(mlflow.keras.load_model(source)),
                    from_dict(mlflow.models.get_model_info(source).metadata))
        except MlflowException as exc:
            uri = mlflow.get_tracking_uri()
            raise UserError(
                f"{source}: not found in the MLflow registry at {uri} ({exc.message.splitlines()[0]}); "
                "check the name and version (the MLflow UI's Models page lists them) or set "
                "MLFLOW_TRACKING_URI"
            ) from None
    if not zipfile.is_zipfile(path):
        raise UserError(f"{source}: not a Keras model file (a .keras file is the zip archive that "
                        "`model.save` writes); give models/gan/generator.keras or the like")
    try:
        return precision.load_model(path), card_of(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"{source}: not a Keras model file ({type(exc).__name__}: {exc})") from None


def _card(model, card: ModelCard | None) -> ModelCard:
    """The model's card; for a model saved without one, what its network's name implies (a GAN
    generator draws in [-1, 1], a VAE decoder in [0, 1]); else a UserError naming what can be
    sampled."""
    from latentlab.models.card import ModelCard

    if card is not None:
        if card.family not in FAMILIES:
            raise UserError(
                f"the model's model.json names the family {card.family!r}, which latentlab does "
                f"not know ({', '.join(FAMILIES)}); sample it with the latentlab that trained "
                "it, or fix the card's \"family\"")
        return card
    if model.name not in KINDS:
        raise UserError(
            f"the model is the {model.name!r} network; `latentlab sample` draws from a GAN generator "
            "(models/gan/generator.keras, models:/latentlab-gan-generator/<version>) or a VAE "
            "decoder (models/vae/decoder.keras, models:/latentlab-vae-decoder/<version>)"
        )
    classes = ([str(i) for i in range(model.inputs[1].shape[-1])] if len(model.inputs) > 1
               else None)
    gan = model.name == "generator"
    return ModelCard("gan" if gan else "vae", f"{model.name}.keras",
                     list(model.output_shape[1:]), [-1.0, 1.0] if gan else [0.0, 1.0],
                     model.inputs[0].shape[-1], classes)


def _noise(card: ModelCard, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, card.latent)).astype(np.float32)


def draw(model, card: ModelCard, noise: np.ndarray, label: str | None, seed: int) -> np.ndarray:
    """uint8 images (N, H, W, C) the model makes from ``noise`` (and a class, conditional GANs:
    ``label``, a class name or index; random classes without)."""
    from latentlab.galleries import to_uint8

    inputs = noise
    if card.classes:  # a conditional generator: one-hot classes next to the noise
        try:
            chosen = card.label(label) if label is not None else None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        n_classes = len(card.classes)
        labels = (np.full(len(noise), chosen) if chosen is not None else
                  np.random.default_rng(seed + 1).integers(0, n_classes, len(noise)))
        inputs = [noise, np.eye(n_classes, dtype=np.float32)[labels]]
    elif label is not None:
        raise UserError("--label: this model is not class-conditional; leave --label out")
    return to_uint8(card.to_unit(model.predict(inputs, batch_size=256, verbose=0)))


def save_gif(images: np.ndarray, out: Path, duration: int | list[int], back: bool) -> None:
    from latentlab.galleries import image_grid

    pictures = [image_grid(f[None], 1, min_cell=128, gap=0).convert("RGB") for f in images]
    if back:
        pictures += pictures[-2:0:-1]  # there and back
    pictures[0].save(out, save_all=True, append_images=pictures[1:], duration=duration, loop=0)


def _save_png(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def _check_writable(out: Path, folder: bool) -> None:
    """Refuse, before anything is drawn or made, an output that cannot be written: under a file,
    or on a read-only place. Nothing is created here."""
    import tempfile

    target = out if folder else out.parent
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise UserError(f"-o {out}: {existing} is a file, not a folder; name another place")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise UserError(f"-o {out}: cannot write in {existing} ({exc.strerror}); name a folder "
                        "you can write to") from None


def sample(args: argparse.Namespace) -> list[Path]:
    if args.n < 1:
        raise UserError(f"-n {args.n}: ask for at least one image")
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps {args.steps}: give 1 or more")
    out = Path(args.out)
    if (args.interpolate or args.denoising) and out.suffix.lower() != ".gif":
        flag = "--interpolate" if args.interpolate else "--denoising"
        raise UserError(f"-o {out}: {flag} writes a GIF; name a .gif file")
    if args.grid and out.suffix.lower() != ".png":
        raise UserError(f"-o {out}: --grid writes one PNG; name a .png file")
    _check_writable(out, folder=not (args.grid or args.interpolate or args.denoising))
    model, card = load_model(args.model)
    card = _card(model, card)  # before any output is written
    own = FAMILIES[card.family].hook("cli", "sample")  # a family that samples its own way
    if own is not None:
        return own(model, card, args, out)
    for flag, value in (("--eta", args.eta), ("--guidance", args.guidance),
                        ("--denoising", args.denoising or None)):
        if value is not None:
            raise UserError(f"{flag} is for diffusion models; this is a {card.family}")
    if args.steps is not None and not args.interpolate:
        raise UserError(f"--steps is for diffusion models (DDIM steps) and --interpolate "
                        f"(frames of the walk); this is a {card.family} drawn at once")
    if args.interpolate:
        steps = 16 if args.steps is None else args.steps
        if steps < 2:
            raise UserError(f"--steps {steps}: a walk needs at least 2 frames")
        a, b = (_noise(card, 1, s)[0] for s in args.interpolate)
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        # Spherical interpolation: Gaussian noise lives near a sphere, so straight lines
        # between two draws pass through unlikely, low-norm points.
        omega = np.arccos(np.clip(np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b)), -1, 1))
        if omega < 1e-6:
            path = (1 - t) * a + t * b
        else:
            path = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
        frames = draw(model, card, path.astype(np.float32), args.label, args.interpolate[0])
        out.parent.mkdir(parents=True, exist_ok=True)
        save_gif(frames, out, 80, back=True)
        return [out]
    return write_images(draw(model, card, _noise(card, args.n, args.seed), args.label, args.seed),
                        args, out)


def write_images(images: np.ndarray, args: argparse.Namespace, out: Path) -> list[Path]:
    """uint8 images as one grid PNG (``--grid``) or a PNG each in the folder ``out``."""
    from latentlab.galleries import image_grid

    out.parent.mkdir(parents=True, exist_ok=True)
    if args.grid:
        image_grid(images, int(np.ceil(np.sqrt(len(images))))).save(out)
        return [out]
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: a file is in the way; name a folder for the PNGs")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, image in enumerate(images):
        written.append(out / f"sample_{args.seed}_{i:04d}.png")
        _save_png(image, written[-1])
    return written


PROFILES = Path("profiles")  # the project's own, where latentlab runs: not the installed package's


def read_profile(name: str, params_file: Path = Path("params.yaml")
                 ) -> tuple[dict, list[dict] | None]:
    """``profiles/<name>.yaml`` as dotted overrides, and, for a sweep profile (a ``sweep:`` list
    of points), each point's own overrides, which go on top of them (None for a profile of one
    run). Every run it names is checked against the project's params first."""
    from latentlab.params import flatten_dotted, parse_params, read_yaml, set_dotted

    path = PROFILES / f"{name}.yaml"
    if not PROFILES.is_dir():
        raise UserError(f"no {PROFILES}/ folder in {Path.cwd()}; run `latentlab profile` in the "
                        "project's folder (beside params.yaml)")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES.glob("*.yaml"))) or "none"
        raise UserError(f"no profile {name!r}; the profiles are: {known}")
    data = read_yaml(path.read_text(), str(path)) or {}
    sweep = data.pop("sweep", None) if isinstance(data, dict) else None
    overrides = flatten_dotted(data)
    points = None
    if sweep is not None:
        if not (isinstance(sweep, list) and sweep and all(isinstance(p, dict) for p in sweep)):
            raise UserError(f"{path}: sweep: write a list of points, each a mapping of params "
                            "keys to values ({} for the profile's own params), e.g. "
                            "[{}, {train_gan.replay: true}]")
        points = [flatten_dotted(point) for point in sweep]
    project = read_yaml(params_file.read_text(), str(params_file)) if params_file.is_file() else {}
    for i, point in enumerate(points or [{}]):
        where = f"params.yaml with profile {name}" + (f", point {i}" if points else "")
        parse_params(set_dotted(copy.deepcopy(project), {**overrides, **point}), origin=where)
    return overrides, points


def profile_flags(name: str, params_file: Path = Path("params.yaml")) -> list[str]:
    """``-S key=value`` flags for `dvc exp run` from ``profiles/<name>.yaml``, checked against the
    project's params first."""
    import json

    overrides, points = read_profile(name, params_file)
    if points is not None:
        raise UserError(f"profile {name!r} is a sweep of {len(points)} runs, not one: run it "
                        f"with `python -m pipelines.flow --profile {name}`")
    flags = []
    for dotted, value in overrides.items():
        text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        flags += ["-S", f"{dotted}={text}"]
    return flags


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="latentlab", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("sample", help="images from a trained generator",
                            description="Write images drawn from a GAN generator, a VAE decoder "
                                        "or a diffusion model.")
    p.add_argument("model", help="a .keras file or models:/<name>/<version>")
    p.add_argument("-n", type=int, default=16, help="how many images (default 16)")
    p.add_argument("--seed", type=int, default=0, help="the noise seed (default 0)")
    p.add_argument("-o", "--out", default="samples",
                   help="a folder for the PNGs; a .png with --grid; a .gif with --interpolate")
    p.add_argument("--grid", action="store_true", help="one PNG grid instead of one PNG each")
    p.add_argument("--interpolate", nargs=2, type=int, metavar=("SEED_A", "SEED_B"),
                   help="a GIF walking the latent space from one seed's noise to another's")
    p.add_argument("--steps", type=int, default=None,
                   help="frames of the walk (default 16); diffusion: DDIM steps (default: the "
                        "model's)")
    p.add_argument("--label", default=None, metavar="CLASS",
                   help="conditional models: the class to draw, by name or index (default: "
                        "random classes)")
    p.add_argument("--eta", type=float, default=None,
                   help="diffusion: 0 = deterministic DDIM, 1 = DDPM's ancestral sampling "
                        "(default: the model's)")
    p.add_argument("--guidance", type=float, default=None,
                   help="conditional diffusion: classifier-free guidance, 0 = unconditional, 1 = "
                        "conditional, more = stronger (default: the model's)")
    p.add_argument("--denoising", action="store_true",
                   help="diffusion: a GIF of one sample being denoised, step by step")
    p = commands.add_parser(
        "profile", help="print a params profile as `dvc exp run` flags",
        description="Print profiles/NAME.yaml as -S flags, shell-quoted: "
                    'eval "dvc exp run -n NAME $(latentlab profile NAME)"')
    p.add_argument("name", help="a profile in profiles/, e.g. flowers64")
    return top


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if argv is None:  # the console script: TensorFlow's native start-up lines out, as in stages
        from latentlab.native_logs import filter_native_logs

        filter_native_logs()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parser().parse_args(argv)
    try:
        if args.command == "profile":
            print(shlex.join(profile_flags(args.name)))  # for the shell: eval or copy-paste
            return
        written = sample(args)
    except UserError as exc:
        print(f"latentlab {args.command}: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)  # as the stages exit on a user error
    print(f"wrote {written[0]}" + (f" and {len(written) - 1} more" if len(written) > 1 else ""))


if __name__ == "__main__":
    main()
