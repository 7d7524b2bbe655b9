"""Independent stages side by side, one core each, against one stage on both cores: the training
step of the GAN, the contrastive autoencoder and the evaluator, in images/s (tensorflow).

    uv run python -m benchmarks.side_by_side [--repeats 1]

In a built project (it reads data/prepared). Each figure comes from its own process: TensorFlow's
intra- and inter-op threads set to 2, or to 1 with the process pinned to one core (`taskset`),
alone or beside a twin on the other core. Writes benchmarks/results/side_by_side.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import ROOT, Results, command_line

IMAGES = 20_000


def measure(what: str) -> float:
    """Images/s of one training workload, after a warm-up (this process's thread settings)."""
    import keras
    import numpy as np

    from benchmarks.gan_throughput import ours
    from latentlab.data.prepared import as_float, load_split
    from latentlab.models.autoencoders import TrainingAutoencoder, build_autoencoder
    from latentlab.models.classifier import build_evaluator
    from latentlab.params import Params
    from latentlab.seeding import seed_everything

    seed_everything(0)
    x, y = load_split(Path("data/prepared"), "train")
    x, y = np.asarray(x[:IMAGES]), np.asarray(y[:IMAGES])
    if what == "gan":
        block = Params().train_gan
        ours(block, x.shape[1:], x, block.batch_size, 30)
        return 400 * block.batch_size / ours(block, x.shape[1:], x, block.batch_size, 400)
    xf = as_float(x)
    if what == "pretrain":
        block = Params().pretrain
        model = TrainingAutoencoder(build_autoencoder(block, x.shape[1:]),
                                       block.contrastive_weight, block.temperature)
        model.compile(optimizer=keras.optimizers.Adam(block.learning_rate))
        data, batch, n = (xf,), block.batch_size, 40 * block.batch_size
    else:
        model = build_evaluator(x.shape[1:], int(y.max()) + 1)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        data, batch, n = (xf, y), Params().evaluator.batch_size, len(xf)
    model.fit(*(d[:2048] for d in data), batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(*(d[:n] for d in data), batch_size=batch, epochs=1, verbose=0)
    return n / (time.perf_counter() - start)


def child(what: str, threads: int, core: int | None) -> subprocess.Popen:
    """A process measuring ``what`` on ``threads`` threads, pinned to ``core`` if given."""
    pin = ["taskset", "-c", str(core)] if core is not None else []
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([*pin, sys.executable, "-m", "benchmarks.side_by_side", "--child",
                             what, "--threads", str(threads)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def images_per_s(*procs: subprocess.Popen) -> list[float]:
    """What each process measured (they run at the same time)."""
    return [round(float(p.communicate()[0].strip().splitlines()[-1]), 1) for p in procs]


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--workloads", nargs="+", default=["gan", "pretrain", "evaluator"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        print(measure(args.child))
        return
    rows = {}
    for what in args.workloads:
        runs = []
        for _ in range(args.repeats):
            both, = images_per_s(child(what, 2, None))
            alone, = images_per_s(child(what, 1, 0))
            pair = images_per_s(child(what, 1, 0), child(what, 1, 1))
            runs.append({"two_threads": both, "one_thread": alone, "side_by_side": pair,
                         "side_by_side_vs_two_threads": round(sum(pair) / both, 2)})
            print(what, runs[-1], flush=True)
        rows[what] = runs
    result = Results(args, "side_by_side")
    result.save(cpus=os.cpu_count(), images=IMAGES, images_per_s=rows)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
