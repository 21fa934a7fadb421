"""TensorFlow implementations of the backend functions."""

from __future__ import annotations

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

        self._compiled = tf.function(counted, reduce_retracing=True)

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
