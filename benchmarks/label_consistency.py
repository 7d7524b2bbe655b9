"""Consistency training on the unlabeled images (FixMatch-style) for the label-efficiency protocol:
does it make the pretrained encoder pay, against the same recipe from scratch?

Each step takes ``batch`` labeled images (weak view: flip + shift) and ``mu`` × ``batch``
unlabeled ones. Where the classifier's prediction on a weak view of an unlabeled image reaches
``threshold``, its top class is the target for a strong view (weak + random erasing + contrast),
weighted by ``weight``; ``recon`` weights an extra reconstruction loss of the unlabeled images
through a decoder (the pretrained one, or a fresh copy for scratch). All views go through the
network as one batch, so BatchNorm sees them together. Keras 3 only: any backend.

Run it in a built project (`dvc repro pretrain`); the classifier is the finetune stage's own
(`build_classifier`, the stage's `head_units`), the subsets the stage's own (`labeled_subset`):

    uv run python -m benchmarks.label_consistency                    # the README's table
    uv run python -m benchmarks.label_consistency --only threshold_0.8 --seeds 0 1 2
    uv run python -m benchmarks.label_consistency --encoder models/other/encoder.keras
    uv run python -m benchmarks.label_consistency --augmented-pretraining 10 --only threshold_0.8

`--augmented-pretraining E` first trains the `pretrain` block's autoencoder for E epochs on
flipped and shifted images (the weak view; the target is the augmented image) and uses its
encoder instead.

Writes benchmarks/results/label_consistency.json (one row per variant, model and seed).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from benchmarks import Results, command_line
from latentlab.data.prepared import as_float, load_split, read_meta
from latentlab.data.splits import labeled_subset
from latentlab.models.autoencoders import build_autoencoder
from latentlab.models.classifier import build_classifier, fresh_copy, without_penalties
from latentlab.params import load_params
from latentlab.seeding import seed_everything
from latentlab.training.semi_supervised import FixMatch, weak_view

BASE = {"steps": 640, "mu": 3, "lr": 1e-3, "threshold": 0.95, "weight": 1.0, "recon": 0.0,
        "freeze_steps": 0}
VARIANTS = {
    "labels_only": {"weight": 0.0, "freeze_steps": 320},
    "consistency_frozen_first": {"freeze_steps": 320},
    "consistency": {},
    "consistency_2000_steps": {"steps": 2000, "mu": 7},
    "threshold_0.8": {"threshold": 0.8},
    "lr_3e-4": {"lr": 3e-4},
    "reconstruction_only": {"weight": 0.0, "recon": 10.0},
    "consistency_and_reconstruction": {"recon": 10.0},
}


class Consistency(FixMatch):
    """The stage's FixMatch, plus ``recon`` × a reconstruction loss of the unlabeled images
    through ``encoder`` and ``decoder``."""

    def __init__(self, classifier, threshold, weight, encoder, decoder, recon, **kwargs):
        super().__init__(classifier, threshold, weight, **kwargs)
        self.encoder, self.decoder, self.recon = encoder, decoder, recon

    def call(self, inputs, training=None):
        outputs = list(super().call(inputs, training=training))
        if self.recon:
            labeled, unlabeled = inputs
            unlabeled = ops.reshape(unlabeled, (-1, *labeled.shape[1:]))
            rebuilt = self.decoder(self.encoder(unlabeled, training=training), training=training)
            outputs.append(ops.mean(ops.square(rebuilt - unlabeled)))
        return outputs

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred[:3], sample_weight, training)
        return loss + self.recon * y_pred[3] if self.recon else loss


class AugmentedAutoencoder(keras.Model):
    """The autoencoder reconstructing a weak view of each image."""

    def __init__(self, autoencoder: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.autoencoder, self.weak = autoencoder, keras.Sequential(weak_view())

    def call(self, x, training=None):
        view = self.weak(x, training=training)
        return view, self.autoencoder(view, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        view, rebuilt = y_pred
        return ops.mean(ops.square(view - rebuilt))


def pretrain_augmented(params, train_x, epochs: int, out: Path) -> Path:
    seed_everything(params.base.seed)
    block = params.pretrain
    autoencoder = build_autoencoder(block, train_x.shape[1:])
    model = AugmentedAutoencoder(autoencoder.model)
    model.compile(optimizer=keras.optimizers.Adam(block.learning_rate))
    model.fit(as_float(train_x), epochs=epochs, batch_size=block.batch_size, verbose=2)
    autoencoder.encoder.save(out / "encoder.keras")
    autoencoder.decoder.save(out / "decoder.keras")
    return out / "encoder.keras"


def train(kind: str, encoder_path: Path, head_units: int, n_classes: int, labels_per_class: int,
          seed: int, train_x, train_y, test_x, test_y, steps, mu, lr, threshold, weight, recon,
          freeze_steps, batch: int = 32) -> float:
    seed_everything(seed)
    index = labeled_subset(train_y, labels_per_class, seed)
    x, y = as_float(train_x[index]), train_y[index]
    encoder = without_penalties(keras.models.load_model(encoder_path))
    decoder = keras.models.load_model(encoder_path.with_name("decoder.keras"))
    if kind == "scratch":
        encoder, decoder = fresh_copy(encoder), fresh_copy(decoder)
    classifier = build_classifier(encoder, n_classes, head_units)
    rng = np.random.default_rng(seed)

    def batches(n: int):
        order = np.concatenate([rng.permutation(len(x)) for _ in range(-(-n * batch // len(x)))])
        pick = np.sort(rng.integers(0, len(train_x), n * batch * mu))
        unlabeled = as_float(train_x[pick])[rng.permutation(len(pick))]
        return [x[order[:n * batch]], unlabeled.reshape(n * batch, mu, *x.shape[1:])], \
            y[order[:n * batch]]

    # pretrained: head alone first (encoder frozen), then everything at lr × 0.1, as the stage
    phases = [(freeze_steps, lr, False),
              (steps - freeze_steps, lr * 0.1 if freeze_steps and kind == "pretrained" else lr,
               True)]
    for n, phase_lr, trainable in phases:
        if n <= 0:
            continue
        encoder.trainable = trainable or kind == "scratch"
        model = Consistency(classifier, threshold, weight, encoder, decoder, recon)
        model.compile(optimizer=keras.optimizers.Adam(phase_lr))
        inputs, targets = batches(n)
        model.fit(inputs, targets, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    predicted = classifier.predict(test_x, batch_size=1024, verbose=0).argmax(axis=1)
    return float((predicted == test_y).mean())


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--labels-per-class", type=int, default=10)
    parser.add_argument("--encoder", type=Path, default=Path("models/pretrain/encoder.keras"))
    parser.add_argument("--augmented-pretraining", type=int, default=0, metavar="EPOCHS")
    args = parser.parse_args()
    params = load_params()
    prepared = Path("data/prepared")
    train_x, train_y = load_split(prepared, "train")
    test_x, test_y = load_split(prepared, "test")
    test_x, n_classes = as_float(test_x), len(read_meta(prepared)["class_names"])
    workdir = tempfile.TemporaryDirectory()
    if args.augmented_pretraining:
        args.encoder = pretrain_augmented(params, train_x, args.augmented_pretraining,
                                          Path(workdir.name))
    rows = []
    for name in args.only:
        config = {**BASE, **VARIANTS[name]}
        for kind in ("pretrained", "scratch"):
            for seed in args.seeds:
                start = time.perf_counter()
                acc = train(kind, args.encoder, params.finetune.head_units, n_classes,
                            args.labels_per_class, params.base.seed + seed, train_x, train_y,
                            test_x, test_y, **config)
                rows.append({"variant": name, "model": kind, "seed": seed,
                             "augmented_pretraining": args.augmented_pretraining, **config, "accuracy": round(acc, 4),
                             "seconds": round(time.perf_counter() - start, 1)})
                print(json.dumps(rows[-1]), flush=True)
    workdir.cleanup()
    Results(args, "label_consistency").save(rows=rows)


if __name__ == "__main__":
    main()
