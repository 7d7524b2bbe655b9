"""The judge's validation: the ladder of degraded real images (`latentlab.ladder`) scored in each
feature space a project can judge in: the supervised evaluator's (where there are labels), the
contrastive evaluator's (which never reads a label) and, for comparison, the autoencoder's
codings (the label-free space of earlier revisions, where `models/pretrain` exists). A sound
space ranks the fidelity chain in order; where labels exist, the contrastive space should rank
the rungs as the supervised one does (Spearman's rank correlation over every rung).

    uv run python -m benchmarks.judge_ladder --project . [--images-seen 50000] [--models DIR]

``--project`` is a workspace whose `dvc repro downsample` has run (any dataset, any size).
Writes benchmarks/results/judge_ladder_<dataset>.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import ROOT, Results, command_line

SCALE = ("frechet_distance", "kid")


def spaces(project: Path, images_seen: int, out: Path) -> dict[str, Path]:
    """Train the evaluator of each kind the data allows into ``out``; the folders by kind."""
    from latentlab.data.prepared import is_labeled, load_split, read_meta
    from latentlab.params import load_params, parse_params
    from stages import evaluator

    prepared = project / "data/prepared"
    meta = read_meta(prepared)
    labeled = is_labeled(meta, load_split(prepared, "train")[1], load_split(prepared, "test")[1])
    defaults = load_params(project / "params.yaml").model_dump()
    folders = {}
    for kind in (["supervised"] if labeled else []) + ["contrastive"]:
        if (out / kind / "features.keras").is_file():
            folders[kind] = out / kind  # trained by an earlier run with --models
            continue
        blocks = {**defaults, "evaluator": {**defaults["evaluator"], "kind": kind,
                                            "images_seen": images_seen}}
        params = parse_params(blocks, origin="benchmark")
        metrics = evaluator.run(params, prepared, out / kind, out / f"{kind}.json")
        print(f"evaluator ({kind}): {metrics}", flush=True)
        folders[kind] = out / kind
    return folders


def ladder_scores(project: Path, folder: Path | None, seed: int, samples: int) -> dict:
    """Every rung's FD and KID against the test sample, in the space of ``folder`` (None: the
    autoencoder's codings)."""
    import numpy as np

    from latentlab import ladder
    from latentlab.data.prepared import as_float, load_split
    from latentlab.evaluation import Judge, load_model
    from latentlab.params import EvaluateBlock

    prepared = project / "data/prepared"
    block = EvaluateBlock(samples=samples, kid_subset_size=min(1000, samples))
    test, test_labels = load_split(prepared, "test")
    rng = np.random.default_rng(seed)
    index = np.sort(rng.choice(len(test), min(samples, len(test)), replace=False))
    real = as_float(test[index])
    train = as_float(load_split(prepared, "train")[0])
    val, val_labels = load_split(prepared, "val")
    if folder is None:
        features = load_model(project / "models/pretrain/encoder.keras")
    else:
        features = load_model(folder / "features.keras")
    supervised = folder is not None and (folder / "evaluator.keras").is_file()
    judge = Judge(block, features, None, real, test_labels[index], train, seed)
    rungs = ladder.rungs(as_float(val), val_labels if supervised else None, train, len(real), seed)
    return {name: judge.scores(images, SCALE) for name, images in rungs.items()}


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--project", type=Path, default=ROOT)
    parser.add_argument("--images-seen", type=int, default=50_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", type=Path, help="keep the evaluators here (and reuse them)")
    args = parser.parse_args()

    from latentlab import ladder
    from latentlab.data.prepared import read_meta
    from latentlab.precision import configure
    from latentlab.seeding import seed_everything

    seed_everything(args.seed)
    configure("auto")
    project = args.project.resolve()
    result: dict = {"dataset": read_meta(project / "data/prepared")["dataset"],
                    "images_seen": args.images_seen, "spaces": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folders: dict = spaces(project, args.images_seen, args.models or Path(tmp))
        if (project / "models/pretrain/encoder.keras").is_file():
            folders["autoencoder codings"] = None
        for kind, folder in folders.items():
            scores = ladder_scores(project, folder, args.seed, args.samples)
            result["spaces"][kind] = {
                "ladder": scores,
                "in_order": {m: ladder.in_order({k: v[m] for k, v in scores.items()})
                             for m in SCALE},
            }
    for kind, space in result["spaces"].items():
        if kind != "supervised" and "supervised" in result["spaces"]:
            space["spearman_vs_supervised"] = {m: ladder.spearman(
                [v[m] for v in result["spaces"]["supervised"]["ladder"].values()],
                [v[m] for v in space["ladder"].values()]) for m in SCALE}
    for kind, space in result["spaces"].items():
        print(f"\n{kind}: in order {space['in_order']}; "
              f"Spearman vs supervised {space.get('spearman_vs_supervised', '–')}")
        for name, values in space["ladder"].items():
            print(f"  {name:14s} FD {values['frechet_distance']:10.4f}  KID {values['kid']:.4f}")
    dataset = result["dataset"].replace(":", "_").replace("/", "_")
    Results(args, "judge_ladder", dataset).save(**result)


if __name__ == "__main__":
    main()
