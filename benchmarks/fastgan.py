"""The few-shot family (FastGAN) against the DCGAN, at equal CPU time and at equal images seen,
on a built project's small colour set (its data/prepared, models/pretrain and models/evaluator,
from `dvc repro` with the small64 profile).

    uv run python -m benchmarks.fastgan --project /data/sprites_run --name sprites --seconds 300

``--set KEY=VALUE`` changes a param for every contender
(``--set train_fastgan.spectral_norm=true``).

Each contender's throughput is measured first, alone, on this machine (images/s of a second and
third epoch after a first that compiles): run that part with nothing else running. The
trainings then get ``seconds × rate`` images each, in epochs of one pass over the split (run by
run deterministic, so a busy machine only makes them slower, never different): the project's
DCGAN (``train_gan``), the same with DiffAugment, FastGAN (``train_fastgan``), and the DCGAN at
FastGAN's image count (equal images).
Each is scored in the project's judge against the ladder, as `score@` does, and its sample grid
and nearest-train-image grid are saved. Writes benchmarks/results/fastgan_NAME.json and
benchmarks/results/fastgan_NAME/<contender>_{samples,nearest}.png.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import Results, command_line


def contenders(params) -> dict:
    """name → (family, params with that family's block as the contender trains it)."""
    gan = params.train_gan
    diffaugment = gan.model_copy(update={"diffaugment": ["color", "translation", "cutout"]})
    return {"dcgan": ("gan", params),
            "dcgan_diffaugment": ("gan", params.model_copy(update={"train_gan": diffaugment})),
            "fastgan": ("fastgan", params)}


def with_images(params, family: str, images: int, epoch_images: int = 0):
    key = f"train_{family}"
    block = getattr(params, key).model_copy(update={
        "images_seen": images, **({"min_epoch_images": epoch_images} if epoch_images else {})})
    return params.model_copy(update={key: block})


def train(params, family: str, prepared: Path, where: Path) -> float:
    from stages import train as stage

    start = time.perf_counter()
    stage.run(params, family, prepared, where / "models" / family, where / "checkpoints",
              where / f"{family}.json", where / "history.csv", where / "samples")
    return time.perf_counter() - start


def rate(params, family: str, prepared: Path, train_images: int) -> float:
    """Images/s of two more epochs (one pass over the split each) than a one-epoch run, after a
    one-epoch run that warms the process up."""
    times = []
    for epochs in (1, 1, 3):
        with tempfile.TemporaryDirectory() as tmp:
            times.append(train(with_images(params, family, epochs * train_images, 1), family,
                               prepared, Path(tmp)))
    batch = getattr(params, f"train_{family}").batch_size
    return 2 * (train_images // batch * batch) / (times[2] - times[1])


PREPARED, MODELS = Path("data/prepared"), Path("models")  # in the project (the working folder)
SCORES = ("frechet_distance", "fd_spread", "kid", "precision", "recall", "memorization_ratio",
          "exact_copies", "ladder_position", "verdict")


def anchors(params) -> dict:
    """The judge's ladder as this revision's `evaluate` makes it (with its spreads), not as the
    project's last `dvc repro` left it."""
    from latentlab.evaluation import evaluate_base

    return evaluate_base(params.evaluate, PREPARED, MODELS, MODELS / "evaluator",
                         params.base.seed)


def ladder(base: dict) -> dict:
    """The ladder's rungs, as results keep them: name → [FD, its sampling spread]."""
    return {k: [round(v["frechet_distance"], 3), round(v["fd_spread"], 3)]
            for k, v in base["anchors"]["ladder"].items()}


def judge(name: str, family: str, params, models: Path, base: dict, out: Path) -> dict:
    """Score the generator in ``models/<family>`` in the project's judge against ``base``'s
    ladder, as `score@` does, and save its sample grid and nearest-train-image grid under
    ``out`` as ``<name>_samples.png`` and ``<name>_nearest.png``."""
    from latentlab.data.prepared import as_float, load_split
    from latentlab.evaluation import evaluate_family
    from latentlab.families import FAMILIES
    from latentlab.galleries import save_grid, to_uint8
    from latentlab.model_galleries import Context, nearest_train_images
    from latentlab.precision import load_model

    if not (models / "pretrain").exists():
        (models / "pretrain").symlink_to((MODELS / "pretrain").resolve())
    scores = evaluate_family(FAMILIES[family], params.evaluate, PREPARED, models,
                             MODELS / "evaluator", params.base.seed, base)
    generator = load_model(models / family / FAMILIES[family].network)
    samples = FAMILIES[family].module("sampling").samples(generator, 64, params.base.seed)
    out.mkdir(parents=True, exist_ok=True)
    save_grid(to_uint8(samples), out / f"{name}_samples.png", 8)
    train_set = as_float(load_split(PREPARED, "train")[0])
    nearest_train_images(out, params.render, Context(train_set, train_set, models, models, models,
                                                     params.base.seed), name, name, samples)
    return {k: scores[k] for k in SCORES if k in scores}


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--project", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=300.0, help="each contender's CPU time")
    parser.add_argument("--rates", default="", help="name=images/s,... measured before (skips "
                        "measuring them)")
    parser.add_argument("--only", nargs="*", default=None, help="these contenders only")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    args.name = args.name or args.project.resolve().name
    results = Results(args, "fastgan", resume=True)

    import os
    os.chdir(args.project)
    from latentlab.data.prepared import load_split
    from latentlab.params import load_params, with_settings

    params = with_settings(load_params("params.yaml"), args.set)
    train_images = len(load_split(PREPARED, "train")[0])
    base = anchors(params)
    out = results.path.with_suffix("")
    out.mkdir(parents=True, exist_ok=True)
    rates = {k: float(v) for k, v in (p.split("=") for p in args.rates.split(",") if p)}
    chosen = contenders(params)
    for name, (family, p) in chosen.items():
        if name not in rates and (args.only is None or name in args.only):
            rates[name] = rate(p, family, PREPARED, train_images)
            print(f"{name}: {rates[name]:.1f} images/s", flush=True)
    runs = [(name, family, p, rates.get(name, 0) * args.seconds)
            for name, (family, p) in chosen.items()]
    runs.append(("dcgan_equal_images", "gan", params, rates.get("fastgan", 0) * args.seconds))
    for name, family, p, images in runs:
        if args.only is not None and name not in args.only:
            continue
        batch = getattr(p, f"train_{family}").batch_size
        images = max(batch, int(images) // batch * batch)
        with tempfile.TemporaryDirectory() as tmp:
            where = Path(tmp)
            # Epochs of one pass over the split: a budget rounds to whole epochs, and the
            # project's min_epoch_images (10,000 by default) would move it by up to 5,000 images.
            seconds = train(with_images(p, family, images, 1), family, PREPARED, where)
            trained = json.loads((where / "models" / family / "training.json").read_text())
            scores = judge(name, family, p, where / "models", base, out)
        results[name] = {"family": family, "images_asked": images,
                         "images_seen": trained["images_seen"], "seconds": round(seconds, 1),
                         "images_per_second": round(rates.get(name.removesuffix("_equal_images"),
                                                              rates.get("dcgan", 0)), 1),
                         **scores}
        print(name, json.dumps(results[name]), flush=True)
        results.save()
    results["anchors"] = ladder(base)
    results["params"] = {"train_gan": params.train_gan.model_dump(),
                         "train_fastgan": params.train_fastgan.model_dump(),
                         "seconds": args.seconds, "settings": args.set}
    results.save()
    print(yaml.safe_dump({k: v for k, v in results.items() if k != "params"}))


if __name__ == "__main__":
    main()
