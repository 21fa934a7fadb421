"""JAX implementations of the backend functions (see ``_backend/__init__.py``).

``jax.jit`` turns every value a traced function reads from outside its
arguments into a constant of the compiled program. A Keras model called inside
a jitted function reads its variables that way, so a closure over the model
would keep the weights of the epoch it was traced in. `TracedFunction`
therefore jits ``pure(values, *args)``: ``values`` are the current values of
the ``state`` variables, read at every call, and ``fn(*args)`` runs inside
``keras.StatelessScope(zip(variables, values))``, where every variable of the
model reads its value from the arguments. One trace serves every epoch.

Keras' JAX trainer keeps the weights in its own state during an epoch and
writes them back to the model's variables before ``on_epoch_end`` (and at
``jax_state_sync()``). In between, the variables are emptied, and reading one
silently returns its initializer's value. Each call therefore syncs the state
models first (``jax_state_sync`` returns at once when nothing is pending).
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_vizcallbacks._backend._common import TracedFunction as _Base
from keras_vizcallbacks._backend._common import as_numpy_leaf, seed_python_and_numpy, state_variables


class TracedFunction(_Base):
    """``jax.jit`` of ``fn`` with the ``state`` variables' current values as arguments."""

    def __init__(self, fn: Callable[..., Any], name: str = "fn", state: Any = None) -> None:
        super().__init__(fn, name)
        self.variables, models = state_variables(state)
        # Weakly: a cache keyed weakly by the model may hold this function (no cycle back to the key).
        self._models = [weakref.ref(m) for m in models]
        variables = self.variables

        def pure(values: list[Any], *args: Any) -> Any:
            self.traces += 1  # Python side effect: runs only while tracing
            if not variables:
                return fn(*args)
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        pure.__name__ = pure.__qualname__ = f"vizcallbacks_{name}"
        self._compiled = jax.jit(pure)

    def __call__(self, *args: Any) -> Any:
        for ref in self._models:
            model = ref()
            if model is not None:
                sync_model_state(model)
        values = [_local(v.value) for v in self.variables]  # this process's copy (distributed jobs)
        args = jax.tree_util.tree_map(as_numpy_leaf, args)
        return self._compiled(values, *args)


def compile_function(fn: Callable[..., Any], name: str = "fn", *, state: Any = None) -> TracedFunction:
    """Compile ``fn`` with ``jax.jit``; the weights of ``state`` are arguments, read at every call."""
    return TracedFunction(fn, name, state)


def value_and_grads(fn: Callable[..., Any], wrt: Sequence[Any], *args: Any) -> tuple[Any, Any, list[Any]]:
    """Scores, aux and float32 gradients of ``sum(scores)`` w.r.t. each of ``wrt`` (zeros if unconnected)."""
    wrt = [jnp.asarray(w) for w in wrt]

    def total(ws: list[Any]) -> tuple[Any, tuple[Any, Any]]:
        scores, aux = fn(ws, *args)
        scores = jnp.asarray(scores).astype(jnp.float32)
        return jnp.sum(scores), (scores, aux)

    (_, (scores, aux)), grads = jax.value_and_grad(total, has_aux=True)(wrt)
    return scores, aux, [g.astype(jnp.float32) for g in grads]


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.Variable):
        x = x.value
    return np.asarray(x)


_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge  # no public equivalent in jax 0.10

        return bool(xla_bridge.backends_are_initialized())
    except Exception:
        return True  # unknown: assume too late


def limit_threads(n: int) -> bool:
    """One thread: ``--xla_cpu_multi_thread_eigen=false`` in ``XLA_FLAGS`` (XLA's matrix products
    and convolutions on the calling thread), only before JAX's backend starts. XLA has no flag for
    another thread count (its pool has one thread per core): True for ``n`` >= the cores, else False
    (pin the process with ``taskset`` for a hard limit)."""
    if _backend_started():
        return False
    n = int(n)
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "multi_thread_eigen" not in f]
    if n == 1:
        flags.append(_ONE_THREAD)
    os.environ["XLA_FLAGS"] = " ".join(flags)
    return n == 1 or n >= (os.cpu_count() or 1)


def sync_model_state(model: Any) -> None:
    """Write the JAX trainer's pending state back into ``model``'s variables (no-op if none)."""
    sync = getattr(model, "jax_state_sync", None)
    if callable(sync):
        sync()


def set_random_seed(seed: int) -> None:
    """Python and numpy seeds (Keras' unseeded initializers draw from Python's ``random``); unlike
    ``keras.utils.set_random_seed`` it leaves TensorFlow unimported. ``keras.random`` calls without a
    seed keep using Keras' global seed generator as it is."""
    seed_python_and_numpy(seed)


def process_index() -> int:
    """``jax.process_index()``: 0 in a single process, or the process 0 of ``jax.distributed``."""
    return int(jax.process_index())


def process_count() -> int:
    """``jax.process_count()``."""
    return int(jax.process_count())


@contextlib.contextmanager
def process_local(model: Any) -> Iterator[None]:
    """Compute with ``model`` on this process alone, in a job of several processes.

    Within the block no Keras distribution is set, so nothing created there (a probe's variables, a
    tensor) is laid out over the other processes' devices, which would make them join in (JAX checks
    such a value across processes). Compiled functions read each variable as this process's own copy
    of its replicated value (`_local`). A variable split across processes has no whole copy here:
    ValueError. In a single process the block changes nothing.
    """
    if jax.process_count() == 1:
        yield
        return
    for variable in model.variables:
        value = variable.value
        if isinstance(value, jax.Array) and not value.is_fully_addressable and not value.sharding.is_fully_replicated:
            raise ValueError(
                f"{variable.path} is split across processes ({value.sharding}): this process holds no whole "
                "copy of it. Replicate the weights across processes (keras.distribution.DataParallel)."
            )
    distribution = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(distribution)


def _local(value: Any) -> Any:
    """A replicated array of a job of several processes (not wholly on this process) -> this process's
    own copy, so a compiled call on it runs here alone; anything else as it is."""
    if isinstance(value, jax.Array) and not value.is_fully_addressable and value.sharding.is_fully_replicated:
        return value.addressable_data(0)
    return value
