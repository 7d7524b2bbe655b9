"""`dvc repro` from nothing to `reports/index.html` on each kind of dataset a user brings.

Each dataset gets its own copy of the project (git + DVC, tracking to its own MLflow store), the
default params with the image size, channels and a shorter training budget set for it, and one
timed `dvc repro`. Written to benchmarks/results/datasets.json:

- `rgba_folder`: a flat folder (no labels) of RGBA PNG sprites with transparency, 32×32×3;
- `labeled_rgb64`: class sub-folders of 64×64 RGB images made from real Fashion-MNIST pictures
  (upscaled, tinted at random), 64×64×3;
- `digits`: scikit-learn's digits, 8×8×1;
- `flowers102`: TFDS's real oxford_flowers102 builder on made-up files in its download layout,
  given in `data.local_dir` (no network); only the builder's published checksums are replaced by
  those of the made-up files (a `sitecustomize` on the stages' PYTHONPATH), 64×64×3.

    uv run python -m benchmarks.datasets [--only digits rgba_folder] [--work DIR]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks import Results, command_line
from tests.support.data import make_rgba_sprites
from tests.support.project import commit_all, copy_project, set_params

ROOT = Path(__file__).resolve().parents[1]
SHORT = {  # a CPU budget in images seen: the stages' own defaults otherwise
    "pretrain": {"images_seen": 50_000},
    "train_vae": {"images_seen": 100_000},
    "train_gan": {"images_seen": 50_000},
}
CHECKSUMS_HOOK = """\
# Made-up oxford_flowers102 files: their checksums stand in for the published ones.
import json, os
path = os.environ.get("FLOWERS102_URL_INFOS")
if path:
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import checksums
    infos = {url: checksums.UrlInfo(size=info["size"], checksum=info["checksum"],
                                    filename=info["filename"])
             for url, info in json.load(open(path)).items()}
    tfds.builder_cls("oxford_flowers102").url_infos = infos
"""


def make_labeled_rgb64(root: Path, per_class: int, seed: int = 0, split: str = "test") -> None:
    """Class sub-folders of 64×64 RGB JPEGs from Fashion-MNIST's ``split`` pictures."""
    from latentlab.data import fashion_mnist

    def read(part: str) -> np.ndarray:
        spec = fashion_mnist.FILES[(split, part)]
        payload = fashion_mnist.read_payload(fashion_mnist.DEBIAN_DIR / spec.name)
        return fashion_mnist.parse_idx(payload, spec)

    images, labels = read("images"), read("labels")
    rng = np.random.default_rng(seed)
    for cls, name in enumerate(fashion_mnist.CLASS_NAMES):
        folder = root / name.replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for i, index in enumerate(np.flatnonzero(labels == cls)[:per_class]):
            gray = np.asarray(Image.fromarray(images[index]).resize((64, 64), Image.BICUBIC))
            tint = rng.uniform(0.4, 1.0, 3)
            rgb = (255 - (255 - gray[..., None]) * tint).astype(np.uint8)  # white ground kept
            Image.fromarray(rgb).save(folder / f"{i:04d}.jpg", quality=92)


def prepare(name: str, work: Path) -> tuple[Path, dict]:
    """The project copy for ``name``, and extra environment for its `dvc repro`."""
    project = copy_project(work / name)
    env: dict[str, str] = {}
    if name == "rgba_folder":
        make_rgba_sprites(work / "sprites", 600, size=48, radius=(8, 16), bar=True)
        set_params(project, data={"source": "folder", "local_dir": str(work / "sprites")},
                   downsample={"image_size": 32, "channels": 3, "fit": "pad"})
    elif name == "labeled_rgb64":
        make_labeled_rgb64(work / "rgb64", per_class=100)
        set_params(project, data={"source": "folder", "local_dir": str(work / "rgb64")},
                   downsample={"image_size": 64, "channels": 3},
                   finetune={"labels_per_class": [10, 50]})
    elif name == "digits":
        set_params(project, data={"source": "digits"}, downsample={"image_size": 8})
    elif name == "flowers102":
        from tests.flowers102_files import make_files, url_infos

        manual = work / "flowers_files"
        make_files(manual, per_split=40, size=96)
        infos = {url: {"size": int(i.size), "checksum": i.checksum, "filename": i.filename}
                 for url, i in url_infos(manual).items()}
        (work / "hook").mkdir(exist_ok=True)
        (work / "hook" / "sitecustomize.py").write_text(CHECKSUMS_HOOK)
        (work / "hook" / "url_infos.json").write_text(json.dumps(infos))
        env = {"PYTHONPATH": str(work / "hook"),
               "FLOWERS102_URL_INFOS": str(work / "hook" / "url_infos.json"),
               "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
        set_params(project, data={"source": "tfds:oxford_flowers102", "local_dir": str(manual),
                                  "download_retries": 0},
                   downsample={"image_size": 64, "channels": 3},
                   finetune={"labels_per_class": [5, 10]})
    else:
        raise SystemExit(f"unknown dataset {name}")
    set_params(project, **SHORT)
    commit_all(project, f"{name} params")
    return project, env


def summary(project: Path) -> dict:
    def read(rel: str) -> dict:
        path = project / rel
        return json.loads(path.read_text()) if path.is_file() else {}

    meta = read("data/prepared/meta.json")
    gan, anchors = read("metrics/evaluate/gan.json"), read("metrics/evaluate/anchors.json")
    return {
        "dataset": meta.get("dataset"),
        "image_shape": meta.get("image_shape"),
        "counts": meta.get("counts"),
        "classes": len(meta.get("class_names") or []),
        "feature_space": anchors.get("feature_space"),
        "gan_frechet_distance": gan.get("frechet_distance"),
        "finetune_available": read("metrics/finetune.json").get("available", True),
        "report_bytes": (project / "reports/index.html").stat().st_size
        if (project / "reports/index.html").is_file() else 0,
    }


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--only", nargs="+",
                        default=["rgba_folder", "labeled_rgb64", "digits", "flowers102"])
    parser.add_argument("--work", type=Path, default=None, help="keep the projects here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="latentlab-datasets-"))
    results = Results(args, "datasets", resume=True)
    for name in args.only:
        project, extra = prepare(name, work)
        env = {**os.environ, **extra, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
        env.pop("MLFLOW_TRACKING_URI", None)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=project, env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        (work / f"{name}.log").write_text(proc.stdout + proc.stderr)
        results[name] = {"exit_status": proc.returncode, "seconds": round(seconds, 1),
                         "project": str(project), **summary(project)}
        print(name, json.dumps(results[name]), flush=True)
        results.save()


if __name__ == "__main__":
    main()
