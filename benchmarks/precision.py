"""Each stage's training (or inference) step in float32 against bfloat16 (`base.precision`), side
by side: images/s, each figure from a process of its own, the two precisions alternated, so both
see the machine in the same state.

    uv run python -m benchmarks.precision [--steps NAME ...] [--repeats 2] [--seconds 8]
                                          [--name NAME]

The steps run on random images of the stage's shape (speed does not depend on the pixels) with
the default params of the stage, at the batch size the stage uses. Writes
benchmarks/results/precision[_NAME].json; ``ONEDNN_VERBOSE=1`` in the environment shows which oneDNN
kernel ran each op.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from benchmarks import ROOT, Results, command_line

# name: (what it is, image shape)
STEPS = {
    "contrastive_ae": ("pretrain: contrastive conv autoencoder fit, batch 256", (28, 28, 1)),
    "finetune": ("finetune: classifier on the encoder fit, batch 32", (28, 28, 1)),
    "vae_dense": ("train@vae: dense VAE step, batch 128", (28, 28, 1)),
    "vae_conv64": ("train@vae: conv VAE step at 64×64×3, batch 128", (64, 64, 3)),
    "gan28": ("train@gan: DCGAN step (transpose), batch 32", (28, 28, 1)),
    "gan64": ("train@gan: DCGAN step at 64×64×3 (transpose), batch 32", (64, 64, 3)),
    "gan64_resize": ("train@gan: DCGAN step at 64×64×3 (resize), batch 32", (64, 64, 3)),
    "diffusion": ("train@diffusion: U-Net step, batch 64", (28, 28, 1)),
    "evaluator": ("evaluator: CNN fit, batch 128", (28, 28, 1)),
    "score": ("score@gan: generator + evaluator features, batch 500 (inference)", (28, 28, 1)),
}


def _images(shape, n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)


def _timed(step, batch: int, seconds: float) -> float:
    """Images/s of ``step()`` (one batch; returns something to wait on) after two warm-up calls,
    over at least ``seconds``."""
    import keras

    for _ in range(2):
        keras.ops.convert_to_numpy(step())
    start, n = time.perf_counter(), 0
    while True:
        out = step()
        n += 1
        if n % 5 == 0:
            keras.ops.convert_to_numpy(out)
            if time.perf_counter() - start >= seconds:
                break
    return n * batch / (time.perf_counter() - start)


def _fit_step(model, x, y, batch: int):
    """One `train_on_batch` of a compiled model: the step `model.fit` runs."""
    def step():
        return model.train_on_batch(x[:batch], None if y is None else y[:batch])
    return step


def measure(name: str, seconds: float) -> float:
    import keras

    from latentlab.data.prepared import as_float
    from latentlab.models.autoencoders import TrainingAutoencoder, build_autoencoder
    from latentlab.models.classifier import build_classifier, build_evaluator
    from latentlab.params import Params
    from latentlab.training.fit import make_optimizer

    shape = STEPS[name][1]
    params = Params()
    if name in ("contrastive_ae", "finetune"):
        block = params.pretrain
        ae = build_autoencoder(block, shape)
        x = as_float(_images(shape, 256))
        if name == "contrastive_ae":
            model = TrainingAutoencoder(ae, block.contrastive_weight, block.temperature)
            model.compile(optimizer=make_optimizer(block.optimizer, block.learning_rate))
            return _timed(_fit_step(model, x, None, 256), 256, seconds)
        model = build_classifier(ae.encoder, 10, params.finetune.head_units)
        model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy")
        return _timed(_fit_step(model, x, np.arange(256) % 10, 32), 32, seconds)
    if name == "evaluator":
        model = build_evaluator(shape, 10)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        x = as_float(_images(shape, 128))
        return _timed(_fit_step(model, x, np.arange(128) % 10, 128), 128, seconds)
    if name.startswith("vae"):
        from latentlab.families.vae.model import build_vae
        from latentlab.families.vae.training import VaeTrainer

        block = params.train_vae
        trainer = VaeTrainer(build_vae(block, shape, 0), block, shape, 0)
        holder = {"state": trainer.initial_state()}
        x = as_float(_images(shape, block.batch_size))

        def step():
            holder["state"], logs = trainer.train_step(holder["state"], x)
            return logs["loss"]
        return _timed(step, block.batch_size, seconds)
    if name.startswith("gan") or name == "score":
        from latentlab.families.gan.model import build_gan
        from latentlab.families.gan.training import GanTrainer
        from latentlab.training.stage import to_signed_range

        block = params.train_gan.model_copy(
            update={"upsample": "resize" if name.endswith("resize") else "transpose"})
        gan = build_gan(block, shape)
        if name == "score":
            features = build_evaluator(shape, 10)
            noise = np.random.default_rng(0).standard_normal((500, block.latent)).astype("float32")

            def infer():
                fake = gan.generator.predict_on_batch(noise)
                return features.predict_on_batch((fake + 1.0) / 2.0)
            return _timed(infer, 500, seconds)
        trainer = GanTrainer(gan, block, 0)
        holder = {"state": trainer.initial_state()}
        rng = np.random.default_rng(0)
        real = to_signed_range(_images(shape, block.batch_size))

        def step():
            holder["state"], logs = trainer.fused_step(
                holder["state"], trainer.host_batch(rng, real, None, 0.0))
            return logs["g_loss"]
        return _timed(step, block.batch_size, seconds)
    if name == "diffusion":
        from latentlab.families.diffusion.model import build_denoiser, unet_widths
        from latentlab.families.diffusion.training import DiffusionTrainer

        block = params.train_diffusion
        widths = unet_widths(block.widths, shape[0], block.width)
        trainer = DiffusionTrainer(build_denoiser(shape, widths, block.blocks),
                                   build_denoiser(shape, widths, block.blocks), block, 0, 0)
        holder = {"state": trainer.initial_state()}
        rng = np.random.default_rng(0)
        images = _images(shape, block.batch_size)

        def step():
            holder["state"], logs = trainer.step(holder["state"],
                                                 trainer.host_batch(rng, images, None, 0))
            return logs["loss"]
        return _timed(step, block.batch_size, seconds)
    raise ValueError(name)


def one(name: str, precision: str, seconds: float) -> None:
    """In this process: set the precision, measure one step, print its images/s as JSON."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from latentlab.precision import configure
    from latentlab.seeding import seed_everything

    seed_everything(0)
    configure(precision)
    print(json.dumps({"images_per_s": measure(name, seconds)}))


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--one", nargs=2, metavar=("STEP", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one(*args.one, args.seconds)
    from latentlab.precision import hardware

    rows = []
    for name in args.steps:
        runs = {"float32": [], "bfloat16": []}
        for r in range(args.repeats):
            order = ("float32", "bfloat16") if r % 2 == 0 else ("bfloat16", "float32")
            for precision in order:
                out = subprocess.run(
                    [sys.executable, "-m", "benchmarks.precision", "--one", name, precision,
                     "--seconds", str(args.seconds)],
                    cwd=ROOT, capture_output=True, text=True, check=True)
                runs[precision].append(round(json.loads(out.stdout.splitlines()[-1])[
                    "images_per_s"], 1))
        ratios = [round(b / f, 2) for f, b in zip(runs["float32"], runs["bfloat16"])]
        rows.append({"step": name, "what": STEPS[name][0], "shape": list(STEPS[name][1]),
                     **runs, "ratio": ratios})
        print(f"{name:16s} float32 {runs['float32']}  bfloat16 {runs['bfloat16']}  "
              f"ratio {ratios}", flush=True)
    found = hardware()
    Results(args, "precision").save(
        cpu_bf16_flags=sorted(f for f in found.cpu_flags if "bf16" in f),
        repeats=args.repeats, seconds=args.seconds, rows=rows)


if __name__ == "__main__":
    main()
