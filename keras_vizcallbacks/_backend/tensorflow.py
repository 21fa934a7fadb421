"""TensorFlow implementations of the backend functions (see ``_backend/__init__.py``)."""

from __future__ import annotations

import contextlib
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


# --------------------------------------------------------------------------- processes (distributed training)

_TASK_ORDER = ("chief", "master", "worker", "ps", "evaluator")


def _tasks() -> tuple[int, int]:
    """``(index, count)`` of this task in the ``TF_CONFIG`` cluster, read by TensorFlow's own resolver."""
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    jobs = resolver.cluster_spec().as_dict()
    sizes = {job: len(tasks) if isinstance(tasks, (list, tuple)) else len(dict(tasks)) for job, tasks in jobs.items()}
    order = [job for job in _TASK_ORDER if job in sizes] + sorted(job for job in sizes if job not in _TASK_ORDER)
    count = sum(sizes.values())
    if resolver.task_type is None or count == 0:  # no TF_CONFIG (or no task in it): the only process
        return 0, max(count, 1)
    if resolver.task_type not in sizes:  # e.g. an evaluator, which TF_CONFIG's cluster usually leaves out
        return count + int(resolver.task_id or 0), count + 1
    before = sum(sizes[job] for job in order[: order.index(resolver.task_type)])
    return before + int(resolver.task_id or 0), count


def process_index() -> int:
    """This task's place in the ``TF_CONFIG`` cluster, chief (or master) first, then the workers, the
    parameter servers and the rest: 0 for the chief, or for worker 0 when the cluster has no chief, or
    without ``TF_CONFIG``."""
    return _tasks()[0]


def process_count() -> int:
    """The tasks of the ``TF_CONFIG`` cluster; 1 without ``TF_CONFIG``."""
    return _tasks()[1]


def process_local(model: Any) -> contextlib.AbstractContextManager[None]:
    """Nothing to do: this process's variables already hold the whole weights (JAX's may not)."""
    return contextlib.nullcontext()
