"""One precision setting for every Keras stage: bfloat16 where the hardware computes it natively,
float32 elsewhere.

``base.precision: auto`` picks Keras' ``mixed_bfloat16`` policy (bfloat16 activations and
matrix products, float32 variables) on a CPU whose flags list ``amx_bf16`` or ``avx512_bf16``
(oneDNN's kernels use them) or a GPU of compute capability 8.0 or more, and float32 elsewhere:
emulated bfloat16 is slower than float32. Whatever the policy, every network ends in a float32
layer (`models.layers.float32_output`) and losses and metrics are computed in float32, so what a stage writes
(models' variables, metrics, samples) is float32.

The hardware is read at one boundary (`hardware`), so a test can present other flags to `choose`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # either one: native bfloat16 matrix products
MIXED = "mixed_bfloat16"
CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class Choice:
    precision: str  # "bfloat16" | "float32"
    reason: str
    emulated: bool = False  # bfloat16 asked for on hardware without it: slower than float32

    @property
    def policy(self) -> str:
        return MIXED if self.precision == "bfloat16" else "float32"


@dataclass(frozen=True)
class Hardware:
    cpu_flags: frozenset[str]
    gpu: str | None = None  # "a GPU of compute capability 9.0", when the backend computes on one
    gpu_bf16: bool = False


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags (Linux' /proc/cpuinfo); none where it cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def _gpu() -> tuple[str | None, bool]:
    """(a description of the GPU the backend computes on, whether it has native bfloat16)."""
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "tpu":
                return "a TPU", True
            if device.platform != "gpu":
                return None, False
            capability = str(getattr(device, "compute_capability", "0"))
        else:
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if not gpus:
                return None, False
            major, minor = tf.config.experimental.get_device_details(gpus[0]).get(
                "compute_capability", (0, 0))
            capability = f"{major}.{minor}"
    except Exception as exc:  # a backend that cannot list its devices computes on the CPU
        log.debug("no GPU found: %s", exc)
        return None, False
    return f"a GPU of compute capability {capability}", float(capability) >= 8.0


def hardware(cpuinfo: Path = CPUINFO) -> Hardware:
    gpu, gpu_bf16 = _gpu()
    return Hardware(cpu_flags(cpuinfo), gpu, gpu_bf16)


def choose(setting: str, found: Hardware, float32_because: str | None = None) -> Choice:
    """What ``base.precision`` (auto | float32 | bfloat16) means on ``found`` hardware, and why.
    ``float32_because``: why a stage computes in float32 under ``auto`` on a CPU with native
    bfloat16 (its step gains little there); a GPU still takes bfloat16."""
    if found.gpu is not None:
        native, where = found.gpu_bf16, found.gpu
    else:
        flags = [f for f in CPU_FLAGS if f in found.cpu_flags]
        native = bool(flags)
        where = (f"the CPU has {' and '.join(flags)}" if flags
                 else f"the CPU has neither {' nor '.join(CPU_FLAGS)}")
    if setting == "float32":
        return Choice("float32", "base.precision is float32")
    if setting == "bfloat16":
        if native:
            return Choice("bfloat16", f"base.precision is bfloat16 ({where})")
        return Choice("bfloat16", f"base.precision is bfloat16, though {where}: bfloat16 is "
                                  "emulated here and slower than float32", emulated=True)
    if native and float32_because and found.gpu is None:
        return Choice("float32", f"auto: {where}, but {float32_because}")
    if native:
        return Choice("bfloat16", f"auto: {where}, with native bfloat16")
    return Choice("float32", f"auto: {where}; emulated bfloat16 would be slower")


_chosen: Choice | None = None


def configure(setting: str, found: Hardware | None = None,
              float32_because: str | None = None) -> Choice:
    """Set Keras' global dtype policy for ``base.precision`` (`choose`) and log the choice; every
    network built (or loaded with `load_model`) from here on computes in it."""
    global _chosen
    import keras

    choice = choose(setting, found if found is not None else hardware(), float32_because)
    keras.config.set_dtype_policy(choice.policy)
    (log.warning if choice.emulated else log.info)(
        "precision: %s (%s)", choice.precision, choice.reason)
    _chosen = choice
    return choice


def chosen() -> Choice | None:
    """The choice `configure` made in this process, if any."""
    return _chosen


def current() -> str:
    """The precision networks built now compute in: "bfloat16" or "float32"."""
    import keras

    return "bfloat16" if keras.config.dtype_policy().name == MIXED else "float32"


def load_model(path):
    """``keras.models.load_model(path)``, in this process' precision (`in_current_precision`)."""
    import keras

    return in_current_precision(keras.models.load_model(path))


def in_current_precision(model):
    """``model``, computing in this process' precision: a model trained in bfloat16 becomes an
    equal float32 one where the policy is float32 (a machine without native bfloat16, or
    ``base.precision: float32``); its float32 layers stay float32."""
    import keras

    if current() == "bfloat16" or not any(
            getattr(layer, "dtype_policy", None) is not None and layer.dtype_policy.name == MIXED
            for layer in _layers(model)):
        return model

    def clone(layer):
        config = layer.get_config()
        if layer.dtype_policy.name == MIXED:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    plain = keras.models.clone_model(model, clone_function=clone, recursive=True)
    plain.set_weights(model.get_weights())
    return plain


def _layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _layers(layer)
