"""TensorFlow implementations of the backend functions (see ``_backend/__init__.py``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_vizcallbacks._backend._common import TracedFunction as _Base
from keras_vizcallbacks._backend._common import state_variables


class TracedFunction(_Base):
    """``tf.function`` around ``fn``; variables are read live, so ``state`` is not needed."""

    def __init__(self, fn: Callable[..., Any], name: str = "fn", state: Any = None) -> None:
        super().__init__(fn, name)
        self.variables, _ = state_variables(state)

        def counted(*args: Any) -> Any:
            self.traces += 1  # Python side effect: runs only while tracing
            return fn(*args)

        # tf.function's "frequent retracing" warning keys its statistics by the Python
        # function's code object, which every TracedFunction's `counted` shares: a few
        # views each tracing once would trigger it falsely. A partial has no code object
        # of its own, so each compiled function is counted on its own.
        self._compiled = tf.function(functools.partial(counted), reduce_retracing=True)

    def __call__(self, *args: Any) -> Any:
        return self._compiled(*args)


def compile_function(fn: Callable[..., Any], name: str = "fn", *, state: Any = None) -> TracedFunction:
    """Compile ``fn`` once (tf.function); calls with same-shaped inputs reuse the trace."""
    return TracedFunction(fn, name, state)


def value_and_grads(fn: Callable[..., Any], wrt: Sequence[Any], *args: Any) -> tuple[Any, Any, list[Any]]:
    """Scores, aux and float32 gradients of ``sum(scores)`` w.r.t. each of ``wrt`` (zeros if unconnected)."""
    wrt = [tf.convert_to_tensor(w) for w in wrt]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for w in wrt:
            tape.watch(w)
        scores, aux = fn(wrt, *args)
        scores = tf.cast(scores, tf.float32)
        total = tf.reduce_sum(scores)
    grads = tape.gradient(total, wrt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return scores, aux, [tf.cast(g, tf.float32) for g in grads]


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.Variable):
        x = x.value
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def limit_threads(n: int) -> bool:
    """Intra- and inter-op threads; False once TensorFlow has run an op (it then refuses)."""
    n = int(n)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        return (
            tf.config.threading.get_intra_op_parallelism_threads() == n
            and tf.config.threading.get_inter_op_parallelism_threads() == n
        )
    return True


def sync_model_state(model: Any) -> None:
    """Nothing to do: TensorFlow's trainer updates the model's variables in place."""


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed``: Python, numpy, TensorFlow and Keras' global seed generator."""
    keras.utils.set_random_seed(int(seed))


# --------------------------------------------------------------------------- until the port of explain/


def gradient(fn: Callable[[Any], Any], x: Any) -> tuple[Any, Any]:
    """Return ``(fn(x), d sum(fn(x)) / dx)`` for a tensor ``x``. Use inside a compiled function.

    Tape style, TensorFlow only: superseded by `value_and_grads`.
    """
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return y, tape.gradient(y, x)


def gradients(fn: Callable[[Any], Any], x: Any) -> tuple[Any, Any, list[Any]]:
    """Differentiate a per-example score under one tape that watches ``x``.

    ``fn(x)`` returns ``(y, wrt, aux)``: ``y`` the scores (one per example),
    ``wrt`` a list of tensors to differentiate against (``x`` itself, or
    tensors computed from it such as a layer's output), ``aux`` anything to
    pass through. Returns ``(y, aux, [d sum(y) / d w for w in wrt])`` with the
    scores and gradients cast to float32. A tensor that ``y`` does not depend
    on gets a zero gradient. Use inside a compiled function.

    Tape style, TensorFlow only (``jax.grad`` and ``torch.autograd`` cannot
    differentiate with respect to a tensor computed inside ``fn``): superseded
    by `value_and_grads` with a model split at the layer (``_split``).
    """
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, wrt, aux = fn(x)
        y = tf.cast(y, tf.float32)
        total = tf.reduce_sum(y)
    grads = tape.gradient(total, list(wrt), unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return y, aux, [tf.cast(g, tf.float32) for g in grads]
