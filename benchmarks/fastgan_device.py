"""FastGAN against the DCGAN at equal time on a GPU (jax): the few-shot family with a budget that a
2-core CPU cannot give it (the paper trains 50,000 steps), on a small colour set carried to the
device, and judged back here in the project's own judge.

A GPU machine has jax but neither tensorflow, the project's data, the network nor some packages.
So, here, in a project built with the `small64` profile on the colour set (`dvc repro
downsample` is enough to pack; `judge` needs its `pretrain` and `evaluator` too), pack its
prepared split, its params.yaml and the wheels that machine lacks into the ignored `.device/`
of this checkout (a folder per set):

    uv run python -m benchmarks.fastgan_device pack --project DIR --to .device/emoji

There, `.device` carried (13 MiB for 1,900 emoji, wheels included), one call per set:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/emoji/wheels/*.whl &&
    PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax PYTHONUNBUFFERED=1 python3 -m benchmarks.fastgan_device \\
        --results $OUT --name emoji run --data .device/emoji --seconds 120

Each contender (`--contenders`: FastGAN and the project's DCGAN by default, or the DCGAN with
DiffAugment, as `benchmarks.fastgan` names them) has its images/s measured there first (two
epochs after a warm-up run, as `benchmarks.fastgan` does), then trains ``seconds × rate``
images with the stage's own code (`stages.train.run`, in epochs of one pass over the split); its
model folder comes back as ``<contender>.tar`` beside the results. ``--set KEY=VALUE`` changes a
param for every contender (``base.precision=float32``, ``train_fastgan.batch_size=64``). Back
here, with the returned files in DIR_BACK:

    uv run python -m benchmarks.fastgan_device --name emoji judge --project DIR --returned DIR_BACK

scores each returned generator in the project's judge as `benchmarks.fastgan` does (FD, KID,
precision / recall, copies, the ladder's verdict) and saves its sample and nearest-train grids.
Writes benchmarks/results/fastgan_device_NAME.json (the device's figures, then the judge's).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks import ROOT, Results, command_line, pack_for_device, unpack_on_device
from benchmarks.fastgan import anchors, contenders, judge, ladder, rate, train, with_images


def pack(project: Path, to: Path) -> None:
    pack_for_device(project / "data/prepared", to)
    shutil.copy(project / "params.yaml", to / "params.yaml")


def run(args: argparse.Namespace) -> None:
    import logging

    import keras

    from latentlab.data.prepared import load_split
    from latentlab.params import load_params, with_settings
    from latentlab.stage_runner import use_jax_compile_cache

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")  # the stage's own lines: its budget, each epoch
    if keras.backend.backend() == "jax":
        import jax

        use_jax_compile_cache()  # the rate's runs and the training compile the same steps
        device = str(jax.devices()[0].device_kind)
    else:
        device = "cpu"
    work = args.work or Path(tempfile.mkdtemp())
    prepared = work / "prepared"
    unpack_on_device(args.data, prepared)
    params = with_settings(load_params(args.data / "params.yaml"), args.set)
    results = Results(args, "fastgan_device", resume=True)
    results.update(backend=keras.backend.backend(), device=device, settings=args.set,
                   seconds=args.seconds)
    out = results.path.with_suffix("")
    out.mkdir(parents=True, exist_ok=True)
    train_images = len(load_split(prepared, "train")[0])
    chosen = contenders(params)
    for name in args.contenders:
        family, p = chosen[name]
        entry = results.setdefault("contenders", {}).setdefault(name, {"family": family})
        if "images_per_second" not in entry:
            entry["images_per_second"] = round(rate(p, family, prepared, train_images), 1)
            print(name, f"{entry['images_per_second']} images/s", flush=True)
            results.save()
    for name in args.contenders:
        family, p = chosen[name]
        entry = results["contenders"][name]
        batch = getattr(p, f"train_{family}").batch_size
        images = max(batch, int(entry["images_per_second"] * args.seconds) // batch * batch)
        where = work / name
        shutil.rmtree(where, ignore_errors=True)
        started = time.perf_counter()
        train(with_images(p, family, images, 1), family, prepared, where)
        trained = json.loads((where / "models" / family / "training.json").read_text())
        entry.update(images_asked=images, images_seen=trained["images_seen"],
                     trained_in=trained.get("precision"),  # float32 or bfloat16
                     seconds=round(time.perf_counter() - started, 1))
        with tarfile.open(out / f"{name}.tar", "w") as archive:
            archive.add(where / "models" / family, arcname=family)
        print(name, json.dumps(entry), flush=True)
        results.save()


def judge_returned(args: argparse.Namespace) -> None:
    """Score each model folder the device sent back, in the project's judge."""
    import os

    returned = json.loads(next(args.returned.glob("fastgan_device*.json")).read_text())
    tars = {p.stem: p for p in args.returned.rglob("*.tar")}
    os.chdir(args.project)
    from latentlab.params import load_params, with_settings

    params = with_settings(load_params("params.yaml"), returned.get("settings", []))
    results = Results(args, "fastgan_device", resume=True)
    results.update({k: v for k, v in returned.items() if k != "run"})
    results["device_run"] = returned.get("run")
    base = anchors(params)
    out = results.path.with_suffix("")
    chosen = contenders(params)
    for name, entry in results["contenders"].items():
        if name not in tars:
            continue
        family, p = chosen[name]
        with tempfile.TemporaryDirectory() as tmp:
            models = Path(tmp) / "models"
            with tarfile.open(tars[name]) as archive:
                archive.extractall(models, filter="data")
            entry.update(judge(name, family, p, models, base, out))
        print(name, json.dumps(entry), flush=True)
        results.save()
    results["anchors"] = ladder(base)
    results.save()


def main() -> None:
    parser = command_line(__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="here: a project's split and params for there")
    packing.add_argument("--project", type=Path, default=Path("."))
    packing.add_argument("--to", type=Path, default=ROOT / ".device")
    running = commands.add_parser("run", help="there: each contender's rate, then its training")
    running.add_argument("--data", type=Path, default=Path(".device"))
    running.add_argument("--work", type=Path, default=None,
                         help="models and checkpoints (default: a temporary folder)")
    running.add_argument("--seconds", type=float, default=150.0, help="each contender's time")
    running.add_argument("--contenders", nargs="+", default=["fastgan", "dcgan"],
                         choices=["fastgan", "dcgan", "dcgan_diffaugment"])
    running.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    judging = commands.add_parser("judge", help="here: score what the device sent back")
    judging.add_argument("--project", type=Path, required=True)
    judging.add_argument("--returned", type=Path, required=True,
                         help="the folder holding the returned results and .tar files")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.project, args.to)
    elif args.command == "run":
        run(args)
    else:
        args.results = args.results.resolve()
        judge_returned(args)


if __name__ == "__main__":
    main()
