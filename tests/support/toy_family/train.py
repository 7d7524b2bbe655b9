"""The toy's training: one dense layer from noise to pixels, fitted to rebuild random train
images from fixed noise (a generator of blurred averages)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from latentlab.data.prepared import as_float
from latentlab.io import staged_dir, write_json
from latentlab.models.card import ModelCard, write_card
from latentlab.training.stage import save_frame, train_and_val, write_outputs


def run(params, prepared: Path, models_dir: Path, checkpoints: Path, metrics_path: Path,
        history_path: Path, samples_dir: Path) -> dict:
    block, seed = params.train_toy, params.base.seed
    train, _, _ = train_and_val(prepared, "train_toy", 0, seed)
    shape = tuple(int(s) for s in train.shape[1:])
    keras.utils.set_random_seed(seed)
    generator = keras.Sequential([keras.Input((block.latent,)),
                                  keras.layers.Dense(int(np.prod(shape)), activation="sigmoid"),
                                  keras.layers.Reshape(shape)], name="generator")
    generator.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((block.images_seen, block.latent)).astype(np.float32)
    targets = as_float(train[rng.integers(0, len(train), block.images_seen)])
    fit = generator.fit(noise, targets, batch_size=block.batch_size, epochs=2, verbose=0)
    losses = [float(v) for v in fit.history["loss"]]
    images = (generator.predict(noise[:16], verbose=0) * 255).round().astype(np.uint8)
    with staged_dir(models_dir) as staging, staged_dir(samples_dir) as samples:
        generator.save(staging / "generator.keras")
        write_card(staging, ModelCard("toy", "generator.keras", list(shape), [0.0, 1.0],
                                      block.latent))
        write_json(staging / "training.json", {"images_seen": 2 * block.images_seen,
                                               "train_images": len(train)})
        save_frame(images, samples / "progress", 1, 4)
    metrics = {"loss": losses[-1], "images_seen": 2 * block.images_seen}
    write_outputs(metrics, metrics_path, {"loss": losses}, history_path)
    return metrics
