"""TensorFlow implementations of the backend functions."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf


class TracedFunction:
    """A compiled function that counts how often it was traced.

    ``traces`` lets tests and benchmarks check that a fixed sample batch is
    traced once across all epochs.
    """

    def __init__(self, fn: Callable[..., Any], name: str = "fn") -> None:
        self.traces = 0
        self.name = name

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


def compile_function(fn: Callable[..., Any], name: str = "fn") -> TracedFunction:
    """Compile ``fn`` once (tf.function); calls with same-shaped inputs reuse the trace."""
    return TracedFunction(fn, name)


def gradient(fn: Callable[[Any], Any], x: Any) -> tuple[Any, Any]:
    """Return ``(fn(x), d sum(fn(x)) / dx)`` for a tensor ``x``. Use inside a compiled function."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
    return y, tape.gradient(y, x)


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


def gradients(fn: Callable[[Any], Any], x: Any) -> tuple[Any, Any, list[Any]]:
    """Differentiate a per-example score under one tape that watches ``x``.

    ``fn(x)`` returns ``(y, wrt, aux)``: ``y`` the scores (one per example),
    ``wrt`` a list of tensors to differentiate against (``x`` itself, or
    tensors computed from it such as a layer's output), ``aux`` anything to
    pass through. Returns ``(y, aux, [d sum(y) / d w for w in wrt])`` with the
    scores and gradients cast to float32 (under mixed precision the backward
    pass runs in the layers' compute dtype; the results are float32). A tensor
    that ``y`` does not depend on gets a zero gradient. Use inside a compiled
    function.
    """
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, wrt, aux = fn(x)
        y = tf.cast(y, tf.float32)
        total = tf.reduce_sum(y)
    grads = tape.gradient(total, list(wrt), unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return y, aux, [tf.cast(g, tf.float32) for g in grads]
