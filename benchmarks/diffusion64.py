"""The diffusion model on the labeled 64×64×3 folder of `gan64` (12,500 tinted Fashion-MNIST
pictures) within a fixed CPU budget, class-conditional, sampled with classifier-free guidance
off (0: the unconditional model) and on, scored as `gan64` scores the DCGAN.

    uv run python -m benchmarks.diffusion64 [--budget 1200] [--guidance 0 1 2] [--work DIR]
        [--name NAME]

The `train_diffusion` stage runs one epoch to time it, then as many as fit the budget, continued
from that checkpoint. Writes benchmarks/results/diffusion64[_NAME].json and a sample grid per
guidance scale in benchmarks/results/gan64/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks import Results, command_line
from benchmarks.gan64 import GRIDS, judge, labeled_project
from latentlab.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def train(project: Path, block, epochs: int, images: int) -> float:
    from stages import train

    params = load_params(project / "params.yaml")
    block = block.model_copy(update={"images_seen": epochs * images,
                                     "min_epoch_images": images})
    start = time.perf_counter()
    train.run(params.model_copy(update={"train_diffusion": block}), "diffusion",
                        project / "data/prepared", project / "models/diffusion",
                        project / "checkpoints/train_diffusion", project / "metrics/diffusion.json",
                        project / "plots/diffusion_history.csv", project / "reports/diffusion")
    return time.perf_counter() - start


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--budget", type=float, default=1200.0, help="seconds of training")
    parser.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--per-class", type=int, default=1250)
    parser.add_argument("--work", type=Path, default=None, help="keep the project here")
    args = parser.parse_args()
    suffix = f"_{args.name}" if args.name else ""
    project = labeled_project(args.work, args.per_class)

    import keras

    from latentlab.data.prepared import load_split
    from latentlab.families.diffusion.sampling import samples as diffusion_samples
    from latentlab.galleries import save_grid, to_uint8
    from latentlab.models.card import card_of

    seed = 42
    scorer, n, anchors = judge(project, seed)
    images = len(load_split(project / "data/prepared", "train")[1])
    block = load_params().train_diffusion.model_copy(update={"conditional": True})
    first = train(project, block, 1, images)
    epochs = max(1, int(args.budget // first))
    seconds = first + (train(project, block, epochs, images) if epochs > 1 else 0.0)
    path = project / "models/diffusion/denoiser.keras"
    denoiser, card = keras.models.load_model(path), card_of(path)
    result = Results(args, "diffusion64")
    result.update({"budget_seconds": args.budget, "samples": n, "anchors": anchors,
              "train_diffusion": block.model_dump(), "epochs": epochs,
              "images_seen": epochs * images, "training_seconds": round(seconds, 1),
              "denoiser_params": denoiser.count_params(), "by_guidance": {}})
    for scale in args.guidance:
        start = time.perf_counter()
        samples = diffusion_samples(denoiser, n, seed, card, guidance=scale)
        sampling = time.perf_counter() - start
        save_grid(to_uint8(samples[:64]), GRIDS / f"diffusion{suffix}_guidance_{scale:g}.png",
                  columns=8)
        result["by_guidance"][f"{scale:g}"] = {
            "sampling_seconds": round(sampling, 1),
            **{k: round(v, 4) for k, v in scorer(samples).items()}}
        print(scale, json.dumps(result["by_guidance"][f"{scale:g}"]), flush=True)
        result.save()


if __name__ == "__main__":
    main()
