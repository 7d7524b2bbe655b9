"""Benchmark `downsample` on a folder of JPEGs: peak memory vs folder size, speed vs plain PIL.

Makes N varied-size JPEGs (a few corrupt), runs the real `download` + `downsample` stages as
subprocesses at 64×64×3 while sampling the RSS of the whole process tree, and times a plain
single-process PIL loop over the same files side by side. Results go to stdout and to
benchmarks/results/downsample_folder.json.

    uv run python -m benchmarks.downsample_folder [--sizes 2000 8000]
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import yaml
from PIL import Image

from benchmarks import Results, command_line
from tests.support.data import make_image_folder

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
log = logging.getLogger("benchmark")


def make_folder(root: Path, count: int) -> None:
    # ~1% corrupt files, ten classes, 40..640 px on a side.
    classes = [f"class_{i}" for i in range(10)]
    make_image_folder(root, classes, per_class=count // 10, seed=count, corrupt=count // 100,
                      sizes=(40, 640))


def run_tree(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Run ``cmd``; return (seconds, peak RSS of the tree in MiB, peak RSS of the parent)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    peak_tree = peak_parent = 0
    while proc.poll() is None:
        try:
            parent_rss = parent.memory_info().rss
            tree = parent_rss + sum(c.memory_info().rss for c in parent.children(recursive=True))
        except psutil.Error:
            continue
        peak_tree, peak_parent = max(peak_tree, tree), max(peak_parent, parent_rss)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stderr.read().decode()}")
    return seconds, peak_tree / 2**20, peak_parent / 2**20


def plain_pil_loop(files: list[Path]) -> float:
    """The baseline: one process, open → RGB → center crop → resize, into one array."""
    out = np.zeros((len(files), SIZE, SIZE, 3), dtype=np.uint8)
    start = time.perf_counter()
    for i, path in enumerate(files):
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                side = min(image.size)
                left, top = (image.width - side) // 2, (image.height - side) // 2
                image = image.crop((left, top, left + side, top + side))
                out[i] = np.asarray(image.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
        except OSError:
            pass
    return time.perf_counter() - start


def bench(count: int, work: Path) -> dict:
    images = work / f"images_{count}"
    if not images.exists():
        log.info("writing %d JPEGs to %s", count, images)
        make_folder(images, count)
    project = work / f"project_{count}"
    project.mkdir(exist_ok=True)
    params = {
        "data": {"source": "folder", "local_dir": str(images)},
        "downsample": {"image_size": SIZE, "channels": 3, "workers": 2},
    }
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    run_tree([sys.executable, "-m", "stages.download"], project)
    seconds, tree_mib, parent_mib = run_tree([sys.executable, "-m", "stages.downsample"], project)
    files = sorted(p for p in images.rglob("*") if p.is_file())
    baseline = plain_pil_loop(files)
    meta = json.loads((project / "data/prepared/meta.json").read_text())
    return {
        "files": len(files),
        "prepared": sum(meta["counts"].values()),
        "undecodable": meta["skipped"]["undecodable"],
        "output_array_mib": round(sum(meta["counts"].values()) * SIZE * SIZE * 3 / 2**20, 1),
        "downsample_seconds": round(seconds, 2),
        "downsample_images_per_s": round(len(files) / seconds, 1),
        "plain_pil_seconds": round(baseline, 2),
        "plain_pil_images_per_s": round(len(files) / baseline, 1),
        "speedup_vs_plain_pil": round(baseline / seconds, 2),
        "peak_rss_tree_mib": round(tree_mib, 1),
        "peak_rss_parent_mib": round(parent_mib, 1),
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = command_line(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--workdir", type=Path, default=None, help="keep images here between runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = {str(n): bench(n, work) for n in args.sizes}
    result = Results(args, "downsample_folder")
    result.update({
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
        "image_size": SIZE,
        "runs": rows,
    })
    result.save()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
