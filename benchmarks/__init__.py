"""Long measurements, each run side by side with its baseline; results in benchmarks/results/."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def command_line(doc: str) -> argparse.ArgumentParser:
    """A benchmark's command line: the first paragraph of its docstring as the description, and
    the options every benchmark has: ``--name`` (another run's results beside the first one's)
    and ``--results`` (the folder they go to)."""
    p = argparse.ArgumentParser(description=" ".join(doc.split("\n\n")[0].split()))
    p.add_argument("--name", default="",
                   help="names another run's results: <benchmark>[_<part>]_<NAME>.json")
    p.add_argument("--results", type=Path, default=RESULTS, metavar="DIR",
                   help="the folder for the results (default benchmarks/results)")
    return p


class Results(dict):
    """A benchmark's figures, saved as ``<results>/<benchmark>[_<part>…][_<name>].json`` together
    with how they were made (``run``: the command, the git revision, the date, the host's cores
    and bfloat16 flags). With ``resume``, it starts from the figures a previous run of the same
    file left, so that a benchmark of many long parts measures each part once."""

    def __init__(self, args: argparse.Namespace, benchmark: str, *parts: str,
                 resume: bool = False):
        stem = "_".join([benchmark, *(str(p) for p in parts), *([args.name] if args.name else [])])
        self.path = Path(args.results) / f"{stem}.json"
        previous = json.loads(self.path.read_text()) if resume and self.path.is_file() else {}
        previous.pop("run", None)
        super().__init__(previous)

    def save(self, **figures) -> Path:
        """Add ``figures`` and write them all (after each part: an interrupted run keeps what it
        measured)."""
        self.update(figures)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"run": _run_record(), **self}, indent=2) + "\n")
        return self.path


def _run_record() -> dict:
    from latentlab.precision import CPU_FLAGS, cpu_flags

    try:  # a device's copy of the tree may have no git, or no repository
        revision = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT,
                                  capture_output=True, text=True).stdout.strip()
    except OSError:
        revision = ""
    spec = sys.modules["__main__"].__spec__
    program = ["-m", spec.name.removesuffix(".__main__")] if spec else [sys.argv[0]]
    return {"command": shlex.join(["python", *program, *sys.argv[1:]]),
            "revision": revision or None,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "host": {"cpus": os.cpu_count(), "bf16_flags": sorted(cpu_flags() & set(CPU_FLAGS)),
                     "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow")}}


@contextlib.contextmanager
def code_trees(baseline: str | None) -> Iterator[dict[str, Path]]:
    """{name: source tree}: this checkout, and with ``baseline`` that git revision first, checked
    out in a temporary worktree that is removed afterwards."""
    if baseline is None:
        yield {"this checkout": ROOT}
        return
    worktree = Path(tempfile.mkdtemp()) / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), baseline], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        yield {f"baseline {baseline}": worktree, "this checkout": ROOT}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT,
                       check=False, capture_output=True)


# The GPU machine's image (CPython 3.12, x86-64): its Python distributions, as its pip list gave
# them. It has jax but not tensorflow.
ON_DEVICE = frozenset("""
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
    hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
    jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities
    linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl
    meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind
    narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti
    nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile
    nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
    nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime
    onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
    packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client
    propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks
    pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
    python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors
    scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
    sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels
    sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile
    tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics
    torchvision tqdm transformers treescope triton typer typing-extensions typing-inspect
    urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())
# What the stages' code imports on jax that the image lacks: carried there as wheels.
MISSING_ON_DEVICE = ("keras", "namex", "optree", "pydantic", "pydantic-core", "annotated-types",
                     "typing-inspection", "ruamel.yaml")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
SPLITS = ("train", "val", "test")


def pack_for_device(prepared: Path, to: Path) -> None:
    """A GPU machine has neither the project's data, the network nor some packages: write the
    prepared split as one compressed archive with its card, and the wheels it lacks, to ``to``
    (a folder to carry there)."""
    import shutil
    from importlib.metadata import version

    import numpy as np

    to.mkdir(parents=True, exist_ok=True)
    subprocess.run(["python3", "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp",
                    *(f"--platform={p}" for p in PLATFORMS), "-d", str(to / "wheels"),
                    *(f"{name}=={version(name)}" for name in MISSING_ON_DEVICE)], check=True)
    arrays = {f"{split}_{kind}": np.load(prepared / f"{split}_{kind}.npy")
              for split in SPLITS for kind in ("images", "labels")}
    np.savez_compressed(to / "prepared.npz", **arrays)
    shutil.copy(prepared / "meta.json", to / "meta.json")
    size = sum(f.stat().st_size for f in to.rglob("*") if f.is_file())
    print(f"{to}: {size / 2**20:.1f} MiB to carry")


def unpack_on_device(packed: Path, prepared: Path) -> None:
    """The prepared split `pack_for_device` wrote, as `data/prepared` holds it."""
    import shutil

    import numpy as np

    prepared.mkdir(parents=True, exist_ok=True)
    with np.load(packed / "prepared.npz") as arrays:
        for name in arrays.files:
            np.save(prepared / f"{name}.npy", arrays[name])
    shutil.copy(packed / "meta.json", prepared / "meta.json")


def accuracy_summary(rows: list[dict], skip=lambda name: False) -> dict[str, dict[str, str]]:
    """Per label count, each accuracy of the (point, seed) rows as "mean ± std" in percent, and
    printed; ``skip`` names the row entries that are not accuracies (beside the row's keys)."""
    import numpy as np

    summary = {}
    for k in sorted({r["labels_per_class"] for r in rows}):
        point = [r for r in rows if r["labels_per_class"] == k]
        summary[str(point[0]["labels"])] = {
            name: f"{100 * np.mean([r[name] for r in point]):.1f} ± "
                  f"{100 * np.std([r[name] for r in point]):.1f}"
            for name in point[0]
            if name not in ("labels_per_class", "seed", "labels") and not skip(name)}
    for labels, scores in summary.items():
        print(labels, scores)
    return summary
