"""The only place that computes with TensorFlow, JAX or PyTorch.

Keras 3 runs on any of the three; everything else in the package is written
with ``keras`` and numpy and reaches a framework only through the functions
below. The module for the active Keras backend (``keras.backend.backend()``,
fixed at import) is loaded on first use, so importing this package loads no
framework, and under JAX or PyTorch TensorFlow is never imported.

API (the same on every backend)
-------------------------------

``name() -> str``
    The active Keras backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``.

``compile_function(fn, name="fn", *, state=None) -> TracedFunction``
    ``fn(*args)`` compiled where the backend compiles: ``tf.function`` on
    TensorFlow, ``jax.jit`` on JAX; PyTorch runs it eagerly under
    ``torch.no_grad()`` (eager measured faster than ``torch.compile`` for
    these calls, see ``torch.py``). Arguments are arrays (numpy or the
    backend's tensors) or lists / tuples / dicts of them; numpy arguments are
    converted to the backend's tensors. Results are the backend's tensors:
    pass them through `to_numpy`. ``.traces`` counts traces, one per input
    signature (shapes and dtypes), so a fixed batch traces once.

    ``state`` names what ``fn`` reads weights from: a Keras model or layer (or
    a list of models, layers and variables). Under ``jax.jit`` a function
    that closes over a model would freeze the weights it saw when traced; on
    JAX the compiled function therefore takes the variables' current values
    as arguments, read at every call (after ``model.jax_state_sync()``, so a
    call made during an epoch sees the weights of the last step, not stale
    or placeholder ones), and ``fn`` runs inside ``keras.StatelessScope``
    mapping each variable to its value. A variable ``fn`` reads that is not
    in ``state`` is frozen on JAX: pass the model whose layers ``fn`` calls
    (probe models share the user's layers, so the user's model covers them).
    TensorFlow and PyTorch read variables live and ignore ``state``.

``value_and_grads(fn, wrt, *args) -> (scores, aux, grads)``
    ``fn(wrt_values, *args) -> (scores, aux)``: ``wrt_values`` is the list
    ``wrt`` (floating arrays: an image batch, the zeros ``delta`` of a model
    split at a layer, see ``keras_vizcallbacks._split``), ``scores`` one
    value per example (N,), ``aux`` any structure of tensors to pass through.
    Returns ``scores`` as float32, ``aux`` (detached on PyTorch), and
    ``grads[i] = d sum(scores) / d wrt[i]`` as float32, zeros where the
    scores do not depend on ``wrt[i]``. Works inside a compiled function
    (``tf.GradientTape`` / ``jax.value_and_grad`` / ``torch.autograd.grad``)
    and outside one, and under mixed precision (the backward pass runs in
    the layers' compute dtype; scores and gradients come back float32).

``to_numpy(x) -> np.ndarray``
    A numpy array from the backend's tensors (PyTorch: detached, moved to
    the CPU, bfloat16 widened to float32), Keras variables, numpy arrays and
    Python numbers.

``limit_threads(n) -> bool``
    Limit the framework's compute threads to ``n`` for the process; True
    when the limit took effect. TensorFlow: intra- and inter-op threads (only
    before TensorFlow's first op). JAX: ``XLA_FLAGS`` with
    ``--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=n``,
    only before JAX's backend starts; XLA's CPU runtime may still run some
    work on its own pool (best effort; pin the process with ``taskset`` for a
    hard limit). PyTorch: ``torch.set_num_threads(n)`` (any time) and
    ``torch.set_num_interop_threads(n)`` (only before the first parallel op).

``sync_model_state(model) -> None``
    JAX: ``model.jax_state_sync()`` (Keras' JAX trainer holds the weights
    outside the model's variables during an epoch and writes them back before
    ``on_epoch_end``); a no-op elsewhere. For code that reads variables
    directly (``layer.kernel``) from a batch-level callback.

``set_random_seed(seed) -> None``
    Seeds for reproducible model construction: ``keras.utils.set_random_seed``
    on TensorFlow; on JAX and PyTorch Python's ``random`` (Keras' unseeded
    initializers draw from it), numpy (and torch), because
    ``keras.utils.set_random_seed`` imports TensorFlow whenever it is
    installed. Keras' global seed generator (``keras.random`` calls without a
    seed) is left as it is there.

``TracedFunction``
    The common base class of compiled functions (``isinstance`` checks work
    without loading a framework).

The TensorFlow module also keeps ``gradients(fn, x)`` and ``gradient(fn, x)``,
the tape-style functions the explainers used before `value_and_grads`; they
exist on TensorFlow only and go once the explainers are ported.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from keras_vizcallbacks._backend._common import TracedFunction

BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")

_API = frozenset(
    {"compile_function", "value_and_grads", "to_numpy", "limit_threads", "sync_model_state", "set_random_seed"}
)
_TF_ONLY = frozenset({"gradients", "gradient"})

_MODULE: ModuleType | None = None


def name() -> str:
    """The active Keras backend (imports keras, which loads that backend only)."""
    import keras

    return keras.backend.backend()


def module() -> ModuleType:
    """The implementation module for the active Keras backend, imported on first use.

    Raises ValueError for a Keras backend we do not support (numpy, openvino).
    """
    global _MODULE
    if _MODULE is None:
        backend = name()
        if backend not in BACKENDS:
            raise ValueError(
                f"keras_vizcallbacks computes gradients and compiled calls with TensorFlow, JAX or PyTorch; "
                f"the Keras backend is {backend!r}. Set KERAS_BACKEND to one of {list(BACKENDS)}."
            )
        _MODULE = importlib.import_module(f"keras_vizcallbacks._backend.{backend}")
    return _MODULE


def __getattr__(attr: str) -> Any:
    if attr in _API:
        return getattr(module(), attr)
    if attr == "BACKEND":
        return name()
    if attr in _TF_ONLY:
        impl = module()
        if hasattr(impl, attr):
            return getattr(impl, attr)
        raise AttributeError(
            f"_backend.{attr} exists on TensorFlow only (backend {name()!r}); use _backend.value_and_grads."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API, "BACKEND"})


__all__ = [
    "BACKENDS",
    "TracedFunction",
    "compile_function",
    "limit_threads",
    "module",
    "name",
    "set_random_seed",
    "sync_model_state",
    "to_numpy",
    "value_and_grads",
]
