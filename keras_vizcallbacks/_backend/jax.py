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

import os
from collections.abc import Callable, Sequence
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
        self.variables, self._models = state_variables(state)
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
        for model in self._models:
            sync_model_state(model)
        values = [v.value for v in self.variables]
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


_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={n}"


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge  # no public equivalent in jax 0.10

        return bool(xla_bridge.backends_are_initialized())
    except Exception:
        return True  # unknown: assume too late


def limit_threads(n: int) -> bool:
    """Add XLA's CPU thread flags to ``XLA_FLAGS``; only works before JAX's backend starts."""
    if _backend_started():
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    kept = [f for f in flags.split() if "multi_thread_eigen" not in f and "intra_op_parallelism_threads" not in f]
    os.environ["XLA_FLAGS"] = " ".join([*kept, _THREAD_FLAGS.format(n=int(n))])
    return True


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
