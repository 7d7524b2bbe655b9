"""Typed, validated params: one model per block of ``params.yaml``.

Every block forbids unknown keys and checks types strictly, so a typo or a wrong type stops a
stage before any work, with a message naming the key and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from latentlab.blocks import (
    BatchSize,
    Block,
    ConvWidths,
    Epochs,
    Fraction,
    ImagesSeen,
    MinEpochImages,
    Optimizer,
    Rate,
    Units,
)
from latentlab.errors import UserError
from latentlab.families import FAMILIES

PARAMS_FILE = Path("params.yaml")

SOURCE_FORMS = "fashion_mnist, digits, tfds:<name> (e.g. tfds:oxford_flowers102) or folder"

class BaseBlock(Block):
    """Settings shared by every stage."""

    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42
    # auto: bfloat16 where the CPU (amx_bf16, avx512_bf16) or GPU computes it natively, else
    # float32 (`latentlab.precision`)
    precision: Literal["auto", "float32", "bfloat16"] = "auto"


class TfdsSplits(Block):
    """TFDS split expressions for latentlab's splits ("" = the dataset's own split if it has one)."""

    train: str = "train"
    val: str = ""
    test: str = ""

    @field_validator("train")
    @classmethod
    def _train_required(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must name a TFDS split expression, e.g. 'train' or 'train+validation'")
        return value


class DataBlock(Block):
    """The ``download`` stage: where the images come from."""

    source: str = "fashion_mnist"
    # The local input directory: the image tree for the folder source, or a directory that may hold
    # the four Fashion-MNIST IDX files (when it lacks them, Debian's copy and then the canonical
    # URLs are used). dvc.yaml lists it as a dependency, so a changed folder reruns `download`.
    local_dir: str = "data/external"
    on_bad_image: Literal["skip", "fail"] = "skip"
    download_retries: Annotated[int, Field(ge=0, le=20)] = 4
    # Seconds one attempt at one file may take in all (a server that trickles bytes is cut off).
    download_deadline: Annotated[float, Field(gt=0)] = 900.0
    # Base URLs to download the Fashion-MNIST files from; empty = the canonical locations.
    mirrors: list[str] = []
    tfds_splits: TfdsSplits = TfdsSplits()

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        kind, _, arg = value.partition(":")
        if value in ("fashion_mnist", "digits", "folder"):
            return value
        if kind == "tfds" and arg.strip():
            return value
        if kind == "folder":
            # The folder lives in data.local_dir so that dvc.yaml can track it as a dependency.
            raise ValueError(
                f"write the folder as data.local_dir={arg!r} and set data.source=folder, "
                "so DVC tracks the folder and reruns download when it changes"
            )
        raise ValueError(f"unknown source {value!r}; use one of {SOURCE_FORMS}")

    @field_validator("mirrors")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")) or not url.endswith("/"):
                raise ValueError(f"{url!r} must be an http(s) base URL ending in '/'")
        return value

    @property
    def kind(self) -> str:
        return self.source.partition(":")[0]

    @property
    def argument(self) -> str:
        return self.source.partition(":")[2]


class DownsampleBlock(Block):
    """The ``downsample`` stage: size, channels and splits of the prepared arrays."""

    image_size: Annotated[int, Field(ge=8, le=512)] = 28
    channels: Literal[1, 3] = 1
    # crop (center) or pad to square; content: crop to the object's bounding box, then pad
    fit: Literal["crop", "pad", "content"] = "crop"
    val_fraction: Fraction = 0.1
    test_fraction: Fraction = 0.1
    workers: Annotated[int, Field(ge=1, le=64)] = 2
    chunk_size: Annotated[int, Field(ge=1, le=100_000)] = 256
    grid_size: Annotated[int, Field(ge=1, le=32)] = 8


class PretrainBlock(Block):
    """The ``pretrain`` stage: an autoencoder trained on unlabeled images."""

    architecture: Literal["dense", "conv", "recurrent"] = "conv"
    codings: Units = 128
    hidden_units: list[Units] = [100]          # dense: layers between the input and the codings
    # conv: one strided 3x3 conv per entry; auto = one per halving of the side down to ≤ 7
    # (28: [32, 64]; 64: [32, 64, 128, 256])
    conv_filters: ConvWidths = "auto"
    recurrent_units: Units = 100               # recurrent: the outer LSTM's width
    activation: Literal["relu", "selu", "elu", "tanh"] = "relu"
    # auto = sigmoid when a sparsity penalty is on (activations in (0, 1)), else linear.
    codings_activation: Literal["auto", "linear", "relu", "sigmoid", "selu", "tanh"] = "auto"
    tied_weights: bool = False                 # dense: decoder reuses the encoder's kernels, transposed
    layerwise: bool = False                    # dense: greedy layer-wise training, then the whole stack
    noise: Literal["none", "gaussian", "dropout"] = "none"
    noise_level: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    sparsity: Literal["none", "l1", "kl"] = "none"
    sparsity_weight: Annotated[float, Field(ge=0.0)] = 0.05
    sparsity_target: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    # Weight of a contrastive term (SimCLR's NT-Xent) between the codings of two random views of
    # each image, added to the reconstruction loss of the image; 0 = a plain autoencoder.
    contrastive_weight: Annotated[float, Field(ge=0.0, le=1000.0)] = 0.05
    temperature: Annotated[float, Field(gt=0.0, le=10.0)] = 0.2  # of the contrastive term
    # Random shifts (and flips) of each training image, which is then rebuilt as shifted: a small
    # split is not learned by heart. Training only.
    augment: Literal["none", "shift", "shift_flip"] = "none"
    augment_shift: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.1
    images_seen: ImagesSeen = 1_080_000     # 20 passes over Fashion-MNIST's 54,000
    min_epoch_images: MinEpochImages = 10_000
    batch_size: BatchSize = 256
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0)] = 1e-3
    optimizer: Optimizer = "adam"
    patience: Annotated[int, Field(ge=1, le=1000)] = 3
    max_train_images: Annotated[int, Field(ge=0)] = 0  # 0 = the whole train split

    @model_validator(mode="after")
    def _consistent(self) -> PretrainBlock:
        if self.architecture != "dense":
            for key in ("tied_weights", "layerwise"):
                if getattr(self, key):
                    raise ValueError(
                        f"pretrain.{key}=true needs pretrain.architecture=dense "
                        f"(got {self.architecture!r}); set {key}=false or architecture=dense"
                    )
        if self.sparsity == "kl" and self.codings_activation not in ("auto", "sigmoid"):
            raise ValueError(
                "pretrain.sparsity=kl needs codings in (0, 1): set pretrain.codings_activation "
                f"to sigmoid or auto (got {self.codings_activation!r})"
            )
        return self

    @property
    def codings_act(self) -> str:
        if self.codings_activation != "auto":
            return self.codings_activation
        return "sigmoid" if self.sparsity != "none" else "linear"


class FinetuneBlock(Block):
    """The ``finetune`` stage: classifiers on small labeled subsets, pretrained vs scratch."""

    # Points of the label-efficiency curve, in labels per class; 0 = every labeled train image
    # (one subset whatever the seed: trained once).
    labels_per_class: list[Annotated[int, Field(ge=0)]] = [10, 50, 100]
    seeds: Annotated[int, Field(ge=1, le=100)] = 3
    head_units: Annotated[int, Field(ge=0, le=65_536)] = 64  # 0 = softmax right on the codings
    head_epochs: Epochs = 10          # encoder frozen
    finetune_epochs: Epochs = 10      # encoder unfrozen, learning rate × finetune_lr_factor
    learning_rate: Annotated[float, Field(gt=0.0, le=10.0)] = 1e-3
    finetune_lr_factor: Rate = 0.1
    batch_size: BatchSize = 32
    # Small subsets are repeated so that an epoch sees at least this many images.
    min_epoch_images: Annotated[int, Field(ge=1, le=1_000_000)] = 1024
    augment: Literal["none", "shift", "shift_flip"] = "none"  # training-time only
    augment_shift: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.1
    # Semi-supervised fine-tuning beside the supervised one adds two classifiers to every point,
    # made from the pretrained and the scratch one with the unlabeled train images: fixmatch
    # trains each further (semi_steps, at the fine-tune's learning rate) on the labeled subset
    # and those images (`training/semi_supervised.py`); poisson carries the subset's labels over
    # a graph of each one's codings of semi_graph_images of them (`training/graph.py`).
    semi_supervised: Literal["none", "fixmatch", "poisson"] = "poisson"
    semi_steps: Annotated[int, Field(ge=1, le=10_000_000)] = 640
    semi_ratio: Annotated[int, Field(ge=1, le=64)] = 3          # unlabeled images per labeled one
    semi_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.95  # confidence for a pseudo-label
    semi_weight: Annotated[float, Field(ge=0.0)] = 1.0          # of the unlabeled images' loss
    semi_neighbours: Annotated[int, Field(ge=1, le=1000)] = 10  # poisson: the graph's k
    semi_graph_images: Annotated[int, Field(ge=0)] = 20_000     # poisson: 0 = every unlabeled one

    @field_validator("labels_per_class")
    @classmethod
    def _curve(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("list at least one label count, e.g. [10, 100]")
        if len(set(value)) != len(value):
            raise ValueError("each label count may appear once")
        return value



class EvaluatorBlock(Block):
    """The ``evaluator`` stage: the judge's feature space. ``supervised``: a classifier's on the
    labeled train split; ``contrastive``: a self-supervised encoder's that never reads a label;
    ``auto``: the classifier's where the dataset has labels and it reaches ``min_accuracy`` on
    the test split, else contrastive."""

    kind: Literal["auto", "supervised", "contrastive"] = "auto"
    min_accuracy: Annotated[float, Field(ge=0.0, le=1.0)] = 0.8
    images_seen: ImagesSeen = 162_000       # 3 passes over 54,000
    min_epoch_images: MinEpochImages = 10_000
    batch_size: BatchSize = 128


GenerationMetric = Literal["frechet_distance", "kid", "precision_recall", "mode_coverage",
                          "memorization"]


class EvaluateBlock(Block):
    """The ``evaluate`` stage: reconstruction and generation metrics."""

    # Generation metrics to compute, by their name in `latentlab.metrics.REGISTRY`.
    metrics: list[GenerationMetric] = ["frechet_distance", "kid", "precision_recall",
                                       "mode_coverage", "memorization"]
    samples: Annotated[int, Field(ge=50, le=100_000)] = 5000  # generated / real images compared
    k: Annotated[int, Field(ge=1, le=50)] = 3                  # precision/recall neighbourhoods
    kid_subsets: Annotated[int, Field(ge=1, le=100)] = 10
    kid_subset_size: Annotated[int, Field(ge=10, le=10_000)] = 1000
    memorization_samples: Annotated[int, Field(ge=10, le=100_000)] = 1000
    noise_std: Annotated[float, Field(gt=0.0, le=1.0)] = 0.2  # denoising: Gaussian noise added

    @field_validator("metrics")
    @classmethod
    def _some_metrics(cls, value: list[str]) -> list[str]:
        if not value or len(set(value)) != len(value):
            raise ValueError("list each generation metric once, at least one")
        return value


class RenderBlock(Block):
    """The ``render`` stage: galleries and the report."""

    grid_size: Annotated[int, Field(ge=2, le=32)] = 8
    map_method: Literal["tsne", "pca"] = "tsne"
    map_points: Annotated[int, Field(ge=20, le=20_000)] = 1000
    map_thumbnails: Annotated[int, Field(ge=0, le=2000)] = 120
    interpolation_steps: Annotated[int, Field(ge=3, le=32)] = 10
    traversal_range: Annotated[float, Field(gt=0.0, le=10.0)] = 3.0
    neighbours: Annotated[int, Field(ge=1, le=16)] = 5


class _Stages(Block):
    """The blocks of every stage but the generator families' (`Params` adds theirs)."""

    base: BaseBlock = BaseBlock()
    # The generator families the pipeline trains and scores (`latentlab.families`), each by
    # its own stages: train@<name>, score@<name>
    generators: list[str] = ["vae", "gan"]
    data: DataBlock = DataBlock()
    downsample: DownsampleBlock = DownsampleBlock()
    pretrain: PretrainBlock = PretrainBlock()
    finetune: FinetuneBlock = FinetuneBlock()
    evaluator: EvaluatorBlock = EvaluatorBlock()
    evaluate: EvaluateBlock = EvaluateBlock()
    render: RenderBlock = RenderBlock()

    @field_validator("generators")
    @classmethod
    def _known_once(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in FAMILIES]
        if unknown:
            raise ValueError(f"{', '.join(map(repr, unknown))}: not a generator family; the "
                             f"families are {', '.join(FAMILIES)}")
        if len(set(value)) != len(value):
            raise ValueError("list each generator family once")
        return value

    def block_hash(self, *names: str, exclude: tuple[str, ...] = ()) -> str:
        """A short stable hash of the named blocks, for tagging outputs and runs, and for keying
        checkpoints; ``exclude`` leaves out dotted keys (``"train_gan.images_seen"``)."""
        blocks = {n: getattr(self, n).model_dump() for n in names}
        for dotted in exclude:
            block, _, key = dotted.partition(".")
            blocks[block].pop(key)
        payload = json.dumps(blocks, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


# The whole params.yaml: the stages' blocks and each registered family's ``train_<name>``.
Params = create_model(
    "Params", __base__=_Stages, __module__=__name__,
    **{family.stage: (family.block, family.block()) for family in FAMILIES.values()})


# Settings that moved to another block: a params.yaml written before says where they went.
MOVED = {"evaluate.steps_curve": "train_diffusion.steps_curve",
         "evaluate.steps_curve_samples": "train_diffusion.steps_curve_samples"}


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if where in MOVED:
        return f"{where}: this setting is now {MOVED[where]}; move it there"
    if error["type"] == "extra_forbidden":
        parent = ".".join(str(part) for part in error["loc"][:-1])
        allowed = _allowed_keys(error["loc"][:-1])
        scope = f"block {parent!r}" if parent else "params.yaml"
        return f"{where}: unknown key in {scope}; allowed keys: {', '.join(allowed)}"
    if isinstance(error["input"], dict):
        # A whole-block check: its message names the keys involved.
        return f"{where}: {message}"
    return f"{where}: {message} (got {error['input']!r})"


def _allowed_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = Params
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def parse_params(raw: object, origin: str = "params.yaml") -> Params:
    """Validate a decoded params mapping; raise :class:`UserError` listing every problem."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{origin}: expected a mapping of blocks (base, data, ...), got {raw!r}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "\n  ".join(_describe(e) for e in exc.errors())
        raise UserError(f"{origin} is invalid:\n  {problems}\nFix these keys and rerun.") from None


def read_yaml(text: str, origin: str) -> object:
    """YAML as DVC reads and writes it: YAML 1.2 (``1e-05`` is a float, ``yes`` a string), and a
    key written twice is an error rather than silently merged."""
    from ruamel.yaml import YAML
    from ruamel.yaml.constructor import DuplicateKeyError
    from ruamel.yaml.error import YAMLError

    loader = YAML(typ="safe", pure=True)
    try:
        return loader.load(text)
    except DuplicateKeyError as exc:
        key = re.search(r'duplicate key "([^"]*)"', exc.problem or "")
        first, again = exc.context_mark.line + 1, exc.problem_mark.line + 1
        raise UserError(f"{origin}: key {key.group(1) if key else '?'!r} is written twice (lines "
                        f"{first} and {again}); write each key once") from None
    except YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        what = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{origin}: not valid YAML{line}: {what}") from None


def flatten_dotted(value, prefix: str = "") -> dict:
    """Nested dicts as {dotted key: leaf value} (``{"train_gan.batch_size": 32}``); `set_dotted` puts
    them back."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, inner in value.items():
        flat.update(flatten_dotted(inner, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def set_dotted(params, overrides: dict):
    """Set each dotted key of ``overrides`` (``"train_gan.images_seen"``) in the nested ``params``,
    as `dvc exp run -S` does; returns ``params``."""
    for key, value in overrides.items():
        node = params
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return params


def key_value(item: str, flag: str, value: str = "VALUE") -> tuple[str, str]:
    """``KEY=VALUE`` of one command-line override, split; a clear error without ``=``."""
    key, equals, text = item.partition("=")
    if not equals or not key.strip():
        raise UserError(f"{flag} {item}: write KEY={value}, e.g. {flag} train_gan.replay=true")
    return key.strip(), text


def parse_value(text: str, key: str, flag: str = "-S") -> object:
    """One `-S key=value` value, as DVC parses it (YAML 1.2)."""
    return read_yaml(text, f"{flag} {key}={text}")


def settings(items: list[str], flag: str) -> dict:
    """Command-line ``KEY=VALUE`` items as {dotted key: value}, each value read as DVC reads
    `-S` (YAML 1.2)."""
    return {key: parse_value(text, key, flag)
            for key, text in (key_value(item, flag) for item in items)}


def with_settings(params: Params, items: list[str], flag: str = "--set",
                  block: str = "") -> Params:
    """``params`` with each command-line ``KEY=VALUE`` of ``items`` set as `dvc exp run -S`
    sets it (``block.`` before each key, if given), validated: a bad one fails here."""
    prefix = f"{block}." if block else ""
    overrides = {f"{prefix}{key}": value for key, value in settings(items, flag).items()}
    return parse_params(set_dotted(params.model_dump(mode="json"), overrides),
                        origin=f"params with {flag} {' '.join(items)}")


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Read and validate ``params.yaml``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: params file not found; run from the project root")
    return parse_params(read_yaml(path.read_text(), str(path)), origin=str(path))


def save_resolved(params: Params, blocks: list[str], path: Path) -> None:
    """Write the resolved blocks a stage used next to its outputs."""
    resolved = {name: getattr(params, name).model_dump() for name in blocks}
    path.write_text(yaml.safe_dump(resolved, sort_keys=False))
