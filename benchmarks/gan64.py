"""The DCGAN on a labeled 64×64×3 folder of real pictures, within a fixed CPU budget of GAN
training: the network before `filters: auto` (fixed [64, 128]: a dense layer to a 16×16 map, two
transposed convs) against the size-following one, scored in the evaluator's feature space.

The folder holds 12,500 Fashion-MNIST train pictures (1,250 per class), upscaled to 64×64 and
tinted at random (`datasets.make_labeled_rgb64`); `dvc repro evaluator` downsamples it (10,000
train images) and trains the evaluator once. Each variant then runs the real `train_gan` stage:
one epoch to time it, then as many epochs as fit the budget, continued from that checkpoint.
Samples (as many as test images) are scored against the test split with the `evaluate` stage's
own `Judge`; an 8×8 sample grid of each goes to benchmarks/results/gan64/.

    uv run python -m benchmarks.gan64 [--budget 1200] [--variants before auto ...] [--work DIR]
        [--name NAME]

Writes benchmarks/results/gan64[_NAME].json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Results, command_line
from benchmarks.datasets import make_labeled_rgb64
from latentlab.data.prepared import load_split
from latentlab.families.gan.params import GanBlock
from tests.support.project import commit_all, copy_project, dvc, dvc_env, set_params

ROOT = Path(__file__).resolve().parents[1]
GRIDS = ROOT / "benchmarks" / "results" / "gan64"
VARIANTS = {
    "before": {"filters": [64, 128]},
    "auto": {"filters": "auto"},
    "auto_resize_sn": {"filters": "auto", "upsample": "resize", "spectral_norm": True},
    "auto_conditional": {"filters": "auto", "conditional": True},
}
# Every key a variant sets, at its default: a variant's settings do not leak into the next.
BASE = {key: GanBlock.model_fields[key].default for values in VARIANTS.values() for key in values}
THROUGHPUT = re.compile(r"train_gan: ([\d.]+) images/s over (\d+) images")


def train_gan(project: Path, values: dict, epochs: int) -> float:
    """Run the `train_gan` stage with ``values`` for ``epochs`` passes; seconds spent training."""
    train = len(load_split(project / "data/prepared", "train")[1])
    set_params(project, train_gan={**BASE, **values, "images_seen": epochs * train,
                                   "min_epoch_images": 1})
    proc = subprocess.run([sys.executable, "-m", "stages.train", "gan"], cwd=project,
                          env=dvc_env(), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"train_gan failed:\n{proc.stderr[-3000:]}")
    found = THROUGHPUT.search(proc.stderr + proc.stdout)
    return int(found[2]) / float(found[1]) if found else 0.0


def labeled_project(work: Path | None, per_class: int) -> Path:
    """The project on the labeled 64×64×3 folder, downsampled and its evaluator trained: made in
    ``work`` (a new temporary folder when None) unless it is there already."""
    work = work or Path(tempfile.mkdtemp(prefix="latentlab-gan64-"))
    project = work / "project"
    if not (project / "models/evaluator/evaluator.keras").is_file():
        copy_project(work)
        make_labeled_rgb64(work / "rgb64", per_class, split="train")
        set_params(project, data={"source": "folder", "local_dir": str(work / "rgb64")},
                   downsample={"image_size": 64, "channels": 3})
        commit_all(project, "gan64 params")
        started = time.perf_counter()
        dvc(project, "repro", "evaluator")
        print(f"data and evaluator: {time.perf_counter() - started:.0f} s", flush=True)
    return project


def judge(project: Path, seed: int):
    """The `evaluate` stage's scorer on the test split, and the anchors' scores."""
    import keras

    from latentlab.data.prepared import as_float, load_split
    from latentlab.evaluation import Judge, rounded
    from latentlab.models.classifier import evaluator_features
    from latentlab.models.sampling import pixel_gaussian_samples
    from latentlab.params import parse_params

    prepared = project / "data/prepared"
    test, test_labels = load_split(prepared, "test")
    train = as_float(load_split(prepared, "train")[0])
    val = as_float(load_split(prepared, "val")[0])
    classifier = keras.models.load_model(project / "models/evaluator/evaluator.keras")
    block = parse_params({"evaluate": {"kid_subset_size": 500}}).evaluate
    scorer = Judge(block, evaluator_features(classifier), classifier, as_float(test), test_labels, train, seed)
    anchors = {"real_holdout": rounded(scorer(val[:len(test)])),
               "pixel_gaussian": rounded(scorer(pixel_gaussian_samples(train, len(test), seed)))}
    return scorer, len(test), anchors


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--budget", type=float, default=1200.0, help="seconds of GAN training")
    parser.add_argument("--variants", nargs="+", default=["before", "auto", "auto_conditional"],
                        choices=list(VARIANTS))
    parser.add_argument("--per-class", type=int, default=1250)
    parser.add_argument("--work", type=Path, default=None, help="keep the project here")
    args = parser.parse_args()
    suffix = f"_{args.name}" if args.name else ""
    project = labeled_project(args.work, args.per_class)

    import keras

    from latentlab.galleries import save_grid, to_uint8
    from latentlab.models.sampling import gan_samples

    seed = 42
    scorer, n, anchors = judge(project, seed)
    results = Results(args, "gan64", resume=True)
    results.update({"budget_seconds": args.budget, "samples": n, "anchors": anchors,
                    "evaluator": json.loads((project / "metrics/evaluator.json").read_text()),
                    "backend": os.environ.get("KERAS_BACKEND", "tensorflow")})
    GRIDS.mkdir(parents=True, exist_ok=True)
    for name in args.variants:
        values = VARIANTS[name]
        first = train_gan(project, values, 1)
        epochs = max(1, int(args.budget // first))
        seconds = first + (train_gan(project, values, epochs) if epochs > 1 else 0.0)
        generator = keras.models.load_model(project / "models/gan/generator.keras")
        samples = gan_samples(generator, n, seed)
        save_grid(to_uint8(samples[:64]), GRIDS / f"{name}{suffix}.png", columns=8)
        results.setdefault("variants", {})[name] = {
            "train_gan": values, "epochs": epochs, "training_seconds": round(seconds, 1),
            "generator_params": generator.count_params(),
            **{k: round(v, 4) for k, v in scorer(samples).items()}}
        print(name, json.dumps(results["variants"][name]), flush=True)
        results.save()


if __name__ == "__main__":
    main()
