"""The benchmarks, one registry: list them, run one, or run the default set (`make benchmark`).

    uv run python -m benchmarks                       # each benchmark: what it measures, needs
    uv run python -m benchmarks run gan_sizes [ARGS]  # one, with its own arguments (--help)
    uv run python -m benchmarks default               # the default set, what `make benchmark` runs

Each benchmark is a module `benchmarks/<name>.py` with a ``main()``: its command line is
`benchmarks.command_line` (with the options all share: ``--name``, ``--results``), its figures a
`benchmarks.Results`, saved to benchmarks/results/ with the command, revision and host. The default
set runs on the default data of a fresh clone: each entry says which DVC outputs it needs, built
first. The others need a dataset, a built project or a device of their own; their docstrings say
how to run them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass

from benchmarks import ROOT


@dataclass(frozen=True)
class Benchmark:
    name: str
    default_args: tuple[str, ...] = ()  # how the default set runs it
    needs: tuple[str, ...] = ()         # DVC stages whose outputs it reads: `dvc repro` first
    default: bool = False               # in the default set (`make benchmark`)
    backend: str = ""                   # KERAS_BACKEND it runs under, if not the default

    @property
    def description(self) -> str:
        """The first sentence of its docstring."""
        doc = ast.get_docstring(ast.parse((ROOT / "benchmarks" / f"{self.name}.py").read_text()))
        first = " ".join((doc or "").split("\n\n")[0].split())
        return first.split(". ")[0].removesuffix(".")


def _on(name: str, *args: str, needs: tuple[str, ...] = ("downsample",),
        backend: str = "") -> Benchmark:
    """A benchmark of the default set (most read the prepared default data)."""
    return Benchmark(name, args, needs, True, backend)


# In the order the default set runs them; then those that need more than a fresh clone.
REGISTRY: dict[str, Benchmark] = {b.name: b for b in (
    _on("downsample_folder", needs=()),
    _on("precision"),
    _on("precision_quality"),
    _on("judge_ladder", "--project", "."),
    _on("autoencoders"),
    _on("gan_throughput"),
    _on("prefect_overhead", needs=()),
    _on("gan_sizes"),
    _on("gan64", needs=()),
    _on("stage_overhead", "--baseline", "1793510", needs=()),
    _on("datasets", needs=()),
    _on("scale_out", needs=()),
    _on("label_consistency", needs=("pretrain",)),
    _on("gan_device", "--batch-sizes", "128", "--steps-per-dispatch", "2", "--dispatches", "3",
        needs=(), backend="jax"),
    Benchmark("diffusion", needs=("evaluate",)),
    Benchmark("diffusion64"),
    Benchmark("diffusion_device", backend="jax"),
    Benchmark("fastgan"),
    Benchmark("fastgan_device"),  # `run` there under jax; `pack` and `judge` here
    Benchmark("label_device", backend="jax"),
    Benchmark("label_propagation", needs=("pretrain",)),
    Benchmark("label_rounds", needs=("pretrain",)),
    Benchmark("label_semi", needs=("pretrain",)),
    Benchmark("poisson_reference", needs=("pretrain",)),
    Benchmark("side_by_side", needs=("downsample",)),
    Benchmark("tracking_cost", needs=("downsample",)),
)}


def run(benchmark: Benchmark, args: list[str]) -> int:
    """Run one benchmark as `python -m benchmarks.<name> ARGS`, under its backend; its exit
    status."""
    env = {**os.environ, **({"KERAS_BACKEND": benchmark.backend} if benchmark.backend else {})}
    return subprocess.run([sys.executable, "-m", f"benchmarks.{benchmark.name}", *args],
                          cwd=ROOT, env=env).returncode


def default_set() -> list[Benchmark]:
    return [b for b in REGISTRY.values() if b.default]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("list", "-h", "--help"):
        print(__doc__.split("\n\n")[0] + "\n")
        for b in REGISTRY.values():
            flags = ("default" if b.default else "on demand") + (
                f", needs {' '.join(b.needs)}" if b.needs else "") + (
                f", {b.backend}" if b.backend else "")
            print(f"{b.name:18} [{flags}] {b.description}")
        return
    command, rest = argv[0], argv[1:]
    if command == "run" and rest and rest[0] in REGISTRY:
        sys.exit(run(REGISTRY[rest[0]], rest[1:]))
    elif command == "default" and not rest:
        built: set[str] = set()
        for b in default_set():
            for stage in b.needs:
                if stage not in built:
                    subprocess.run([sys.executable, "-m", "dvc", "repro", stage], cwd=ROOT,
                                   check=True)
                    built.add(stage)
            print(f"== benchmarks.{b.name} {' '.join(b.default_args)}", flush=True)
            if status := run(b, list(b.default_args)):
                sys.exit(status)
    else:
        known = ", ".join(REGISTRY)
        print(f"usage: python -m benchmarks [list | run NAME [ARGS] | default]; the benchmarks "
              f"are {known}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
