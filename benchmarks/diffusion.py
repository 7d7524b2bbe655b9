"""The diffusion model against the GAN and the VAE at equal training time, scored by the
project's own judge (`score@<family>`'s): FD, KID, precision / recall, classes, memorization,
and the diffusion model's FD against its DDIM steps.

Run it in a built project (`dvc repro evaluate score@gan score@vae`: the anchors and the other
families' scores it compares with); params.yaml's `train_diffusion` block, with overrides:

    uv run python -m benchmarks.diffusion --seconds 300                    # the GAN's time
    uv run python -m benchmarks.diffusion --seconds 300 -S conditional=true -S guidance=2.0

The training budget is ``--seconds`` × the images/s of a short timed run first. Writes
benchmarks/results/diffusion_<name>.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from benchmarks import Results, command_line
from latentlab.families import FAMILIES
from latentlab.params import load_params, with_settings


def images_per_second(params, prepared: Path) -> float:
    """The stage's training throughput, from a timed 3,200-image run after a warm-up."""
    from stages import train

    rates = []
    for images in (640, 3200):
        block = params.train_diffusion.model_copy(update={
            "images_seen": images, "min_epoch_images": images, "max_train_images": images})
        with tempfile.TemporaryDirectory() as tmp:
            out = [Path(tmp) / k for k in ("m", "c", "x.json", "h.csv", "s")]
            start = time.perf_counter()
            train.run(params.model_copy(update={"train_diffusion": block}), "diffusion", prepared,
                                *out)
            rates.append((images, time.perf_counter() - start))
    (n0, t0), (n1, t1) = rates
    return (n1 - n0) / (t1 - t0)


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--images", type=int, default=None,
                        help="train on this many images instead (a run beside another's)")
    parser.add_argument("-S", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a train_diffusion param")
    parser.add_argument("--guidance", type=float, nargs="+", default=None,
                        help="conditional: score the one model at each of these guidance scales")
    parser.add_argument("--samples", type=int, default=None,
                        help="score this many samples, without the steps curve (a quick run)")
    args = parser.parse_args()
    results = Results(args, "diffusion", *([] if args.name else [f"{int(args.seconds)}s"]))
    from latentlab.evaluation import evaluate_family
    from stages import train

    params = load_params()
    params = with_settings(params, args.overrides, "-S", block="train_diffusion")
    block = params.train_diffusion
    if args.samples:
        quick = {"samples": args.samples,
                 "kid_subset_size": min(params.evaluate.kid_subset_size, args.samples)}
        params = params.model_copy(update={"evaluate": params.evaluate.model_copy(update=quick)})
        block = block.model_copy(update={"steps_curve": []})
    prepared, models = Path("data/prepared"), Path("models")
    if args.images:
        rate, images = None, args.images
    else:
        rate = images_per_second(params, prepared)
        images = int(args.seconds * rate) // block.batch_size * block.batch_size
    block = block.model_copy(update={"images_seen": images})
    params = params.model_copy(update={"train_diffusion": block})
    base = {p: json.loads(Path(f"metrics/evaluate/{p}.json").read_text())
            for p in ("autoencoder", "anchors")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        train.run(params, "diffusion", prepared, tmp / "models/diffusion", tmp / "checkpoints",
                            tmp / "diffusion.json", tmp / "history.csv", tmp / "samples")
        seconds = time.perf_counter() - start
        (tmp / "models/pretrain").symlink_to((models / "pretrain").resolve())
        start = time.perf_counter()
        scores = evaluate_family(FAMILIES["diffusion"], params.evaluate, prepared, tmp / "models",
                                 models / "evaluator", params.base.seed, base, block)
        scoring = time.perf_counter() - start
        by_guidance = {}
        card_path = tmp / "models/diffusion/model.json"
        for scale in args.guidance or ():  # the same model, another guidance in its card
            card = json.loads(card_path.read_text())
            card["sampler"]["guidance"] = scale
            card_path.write_text(json.dumps(card))
            by_guidance[str(scale)] = evaluate_family(
                FAMILIES["diffusion"], params.evaluate, prepared, tmp / "models",
                models / "evaluator", params.base.seed, base,
                block.model_copy(update={"steps_curve": []}))
        grid = tmp / "samples/progress"
        frames = sorted(grid.glob("epoch_*.png"))
        if frames:
            results.path.parent.mkdir(parents=True, exist_ok=True)
            results.path.with_suffix(".png").write_bytes(frames[-1].read_bytes())
    others = {f: json.loads(Path(f"metrics/evaluate/{f}.json").read_text())
              for f in ("gan", "vae") if Path(f"metrics/evaluate/{f}.json").is_file()}
    results.save(**{"params": block.model_dump(), "images_per_second": rate and round(rate, 1),
              "training_seconds": round(seconds, 1), "scoring_seconds": round(scoring, 1),
              "diffusion": scores, "by_guidance": by_guidance, **others,
              "fd_ratio_to_gan": (round(scores["frechet_distance"]
                                        / others["gan"]["frechet_distance"], 3)
                                  if "gan" in others else None)})
    print(json.dumps({k: v for k, v in results.items() if k != "params"}, indent=1,
                     default=float)[:3000])


if __name__ == "__main__":
    main()
