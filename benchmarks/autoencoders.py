"""Val MSE of each autoencoder architecture and variant on the prepared dataset (default:
Fashion-MNIST 28×28×1), next to the figures Géron's chapter-17 notebook prints.

Runs the real `pretrain` stage once per variant into a temp directory and writes
benchmarks/results/autoencoders.json.

    uv run dvc repro downsample && uv run python -m benchmarks.autoencoders [--epochs 10] [--only conv ...]
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from benchmarks import Results, command_line
from latentlab.data.prepared import load_split
from latentlab.params import load_params, parse_params
from stages import pretrain

# name → (pretrain overrides, Géron's val MSE for the same code size, or None)
# The chapter's autoencoders: no contrastive term, Géron's batch size.
PLAIN = {"contrastive_weight": 0.0, "batch_size": 128}
VARIANTS = {
    "stacked_784-100-30": ({"architecture": "dense", "hidden_units": [100], "codings": 30,
                            "activation": "selu"}, 0.0132),
    "stacked_tied": ({"architecture": "dense", "hidden_units": [100], "codings": 30,
                      "activation": "selu", "tied_weights": True}, None),
    "stacked_layerwise": ({"architecture": "dense", "hidden_units": [100], "codings": 30,
                           "activation": "selu", "layerwise": True}, None),
    "conv": ({"architecture": "conv", "codings": 30}, 0.0121),
    "recurrent": ({"architecture": "recurrent", "codings": 30}, None),
    "denoising_gaussian": ({"architecture": "conv", "codings": 30, "noise": "gaussian"}, None),
    "denoising_dropout": ({"architecture": "conv", "codings": 30, "noise": "dropout",
                           "noise_level": 0.5}, None),
    "sparse_l1_300": ({"architecture": "dense", "hidden_units": [100], "codings": 300,
                       "sparsity": "l1", "sparsity_weight": 0.001}, None),
    "sparse_kl_300": ({"architecture": "dense", "hidden_units": [100], "codings": 300,
                       "activation": "selu", "sparsity": "kl", "sparsity_weight": 0.05,
                       "sparsity_target": 0.1}, 0.0099),
    "sparse_kl_300_target_0.095": ({"architecture": "dense", "hidden_units": [100], "codings": 300,
                                    "activation": "selu", "sparsity": "kl",
                                    "sparsity_weight": 0.05, "sparsity_target": 0.095}, 0.0099),
}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = command_line(__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--only", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    base = load_params().model_dump()
    results = Results(args, "autoencoders", resume=True)
    for name in args.only:
        overrides, geron = VARIANTS[name]
        train = len(load_split(pretrain.PREPARED, "train")[1])
        budget = {"images_seen": args.epochs * train, "min_epoch_images": 1}
        params = parse_params({**base, "pretrain": {**PLAIN, **overrides, **budget}})
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            start = time.perf_counter()
            metrics = pretrain.run(params, pretrain.PREPARED, tmp / "m", tmp / "ck",
                                   tmp / "metrics.json", tmp / "history.csv")
        results[name] = {
            "params": overrides, "epochs": args.epochs,
            "val_mse": round(metrics["val_mse"], 5), "geron_val_mse": geron,
            "mean_coding_activation": round(metrics["mean_coding_activation"], 4),
            "near_zero_coding_fraction": round(metrics["near_zero_coding_fraction"], 4),
            "epochs_trained": metrics["epochs_trained"],
            "seconds": round(time.perf_counter() - start, 1),
        }
        logging.info("%s: %s", name, results[name])
        results.save()


if __name__ == "__main__":
    main()
