"""The only backend-specific code of the custom training loops.

Steps are written once against four operations on a network's state (``call``,
``value_and_grad``, ``apply_gradients``, ``jit``), and each backend supplies them its own way:

- jax: functional. A state holds arrays; ``model.stateless_call`` and
  ``optimizer.stateless_apply`` return new ones; ``jax.value_and_grad`` and ``jax.jit``.
- tensorflow: stateful. A state holds the Keras variables themselves; models are called
  directly, ``tf.GradientTape`` differentiates, ``optimizer.apply`` updates in place, and
  ``tf.function`` compiles the step around those variables.

Nothing here imports tensorflow unless the backend is tensorflow, so the jax backend runs where
tensorflow is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import numpy as np

from latentlab.errors import UserError

SUPPORTED = ("tensorflow", "jax")


def backend() -> str:
    name = keras.backend.backend()
    if name not in SUPPORTED:
        raise UserError(f"KERAS_BACKEND={name!r} is not supported for training; use tensorflow or jax")
    return name


def functional() -> bool:
    return backend() == "jax"


DATA_PARALLEL = "LATENTLAB_DATA_PARALLEL"


def setup_data_parallel() -> int:
    """With LATENTLAB_DATA_PARALLEL=1 (jax): every network built from here on is replicated on all
    visible devices and each batch is split across them, gradients all-reduced
    (`keras.distribution.DataParallel`; `model.fit` does this itself, the custom loops through
    `shard`). Returns the number of devices the batches are split over (1 when off)."""
    if os.environ.get(DATA_PARALLEL, "0") != "1":
        return 1
    if backend() != "jax":
        raise UserError(f"{DATA_PARALLEL}=1 needs KERAS_BACKEND=jax (Keras' distribution API)")
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    return len(devices)


def shard(batch: dict | np.ndarray, size: int):
    """Split the arrays of a batch whose first axis is the batch (``size``) across the devices of
    the data-parallel distribution; the rest (and everything, when it is off) is left as is."""
    distribution = keras.distribution.distribution()
    if distribution is None:
        return batch
    devices = len(keras.distribution.list_devices())

    def one(x):
        if isinstance(x, dict):
            return {k: one(v) for k, v in x.items()}
        if x.shape[:1] != (size,) or size % devices:
            return x
        return keras.distribution.distribute_tensor(x, distribution.get_data_layout(x.shape))

    return one(batch)


def state_of(variables: dict[str, list]) -> dict[str, list]:
    """A network's state from its variables: their values (jax), or the variables (tensorflow)."""
    if functional():
        # Copies: Keras may free a variable's buffer when the variable is next assigned.
        return {kind: [keras.ops.copy(v.value) for v in vs] for kind, vs in variables.items()}
    return {kind: list(vs) for kind, vs in variables.items()}


def restore(state: dict[str, list], arrays: dict[str, list]) -> dict[str, list]:
    """``state`` with its values replaced by ``arrays`` (numpy, same structure)."""
    if functional():
        return {kind: [keras.ops.convert_to_tensor(a) for a in arrays[kind]] for kind in state}
    for kind, variables in state.items():
        for variable, array in zip(variables, arrays[kind]):
            variable.assign(array)
    return state


def call(model: keras.Model, net_state: dict, inputs, training: bool):
    """``model(inputs)`` on ``net_state``; returns (outputs, new net_state)."""
    if functional():
        outputs, non_trainable = model.stateless_call(
            net_state["trainable"], net_state["non_trainable"], inputs, training=training)
        return outputs, {**net_state, "non_trainable": non_trainable}
    return model(inputs, training=training), net_state


def value_and_grad(fn: Callable) -> Callable:
    """``fn(params, *args) -> (loss, aux)`` ↦ ``g(params, *args) -> ((loss, aux), grads)``,
    differentiated with respect to ``params`` (a net state's trainable list) only."""
    if functional():
        import jax

        return jax.value_and_grad(fn, has_aux=True)
    import tensorflow as tf

    def wrapped(params, *args):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch([p.value for p in params])
            loss, aux = fn(params, *args)
        return (loss, aux), tape.gradient(loss, [p.value for p in params])

    return wrapped


def apply_gradients(optimizer: keras.optimizers.Optimizer, net_state: dict, grads) -> dict:
    if functional():
        trainable, opt = optimizer.stateless_apply(net_state["optimizer"], grads,
                                                   net_state["trainable"])
        return {**net_state, "trainable": trainable, "optimizer": opt}
    optimizer.apply(grads, net_state["trainable"])
    return net_state


def input_gradient(fn: Callable, x):
    """The gradient of ``sum(fn(x))`` with respect to ``x`` (itself differentiable: WGAN-GP)."""
    if functional():
        import jax

        return jax.grad(lambda inputs: keras.ops.sum(fn(inputs)))(x)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        total = keras.ops.sum(fn(x))
    return tape.gradient(total, x)


def jit(fn: Callable, updates_state: bool = True) -> Callable:
    """Compile ``fn(state, *args)``, which returns ``(new state, outputs)`` when
    ``updates_state`` else just outputs. The compiled function has the same signature."""
    if functional():
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    compiled: dict[int, Callable] = {}

    def wrapper(state, *args):
        # The state is the same set of variables on every call: compile around it, once.
        key = id(state)
        if key not in compiled:
            if updates_state:
                compiled[key] = tf.function(lambda *a: fn(state, *a)[1], reduce_retracing=True)
            else:
                compiled[key] = tf.function(lambda *a: fn(state, *a), reduce_retracing=True)
        outputs = compiled[key](*args)
        return (state, outputs) if updates_state else outputs

    return wrapper


def warmed_decay(decay: float, step: int) -> np.float32:
    """A moving average's decay at ``step`` with a warm-up, ``min(decay, (1 + step) / (10 +
    step))``: the early weights, far from any good one, leave the average quickly."""
    return np.float32(min(decay, (1 + step) / (10 + step)))


def moving_average(net_state: dict, values: list, decay, non_trainable: list | None = None) -> dict:
    """``net_state`` with its trainable values moved towards ``values``: ``decay × own + (1 −
    decay) × values`` (the EMA weights a diffusion model samples with); ``non_trainable`` (a
    network's BatchNorm statistics) is copied as it is."""
    if functional():
        state = {**net_state, "trainable": [decay * own + (1.0 - decay) * new for own, new
                                            in zip(net_state["trainable"], values)]}
        return state if non_trainable is None else {**state, "non_trainable": list(non_trainable)}
    for own, new in zip(net_state["trainable"], values):
        own.assign(decay * own.value + (1.0 - decay) * new.value)
    for own, new in zip(net_state["non_trainable"] if non_trainable is not None else (),
                        non_trainable or ()):
        own.assign(new.value)
    return net_state
