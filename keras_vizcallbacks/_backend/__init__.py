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
    ``torch.no_grad()`` (``torch.compile`` measured no faster for these calls
    and costs ~20 s per function and shape, see ``torch.py``). Arguments are arrays (numpy or the
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
    split at a layer, see ``keras_vizcallbacks.layers.split_at``), ``scores`` one
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
    before TensorFlow's first op). JAX: one thread through ``XLA_FLAGS``
    (``--xla_cpu_multi_thread_eigen=false``), only before JAX's backend
    starts; XLA has no flag for other counts (its pool has a thread per core:
    True when ``n`` covers the cores, else False; pin the process with
    ``taskset`` for a hard limit). PyTorch: ``torch.set_num_threads(n)`` (any time) and
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

``process_index() -> int`` and ``process_count() -> int``
    This process's place in a distributed job and the job's processes (0 and
    1 alone): JAX ``jax.process_index()`` / ``jax.process_count()``; PyTorch
    the rank and world size of an initialized ``torch.distributed``;
    TensorFlow the task of ``TF_CONFIG`` (TensorFlow's own resolver), chief
    first, then the workers: 0 is the chief, or worker 0 without a chief.
    ``callbacks/_chief.py`` decides with them which process renders.

``process_local(model) -> context manager``
    Compute with ``model`` on this process alone. JAX with several processes:
    no Keras distribution inside the block (nothing new is laid out over the
    other processes' devices; ValueError for a weight split across
    processes), and compiled functions always read replicated weights as this
    process's own copy, so no computation needs another process to join.
    Elsewhere, and in a single process, it changes nothing.

``TracedFunction``
    The common base class of compiled functions (``isinstance`` checks work
    without loading a framework).

"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from keras_vizcallbacks._backend._common import TracedFunction

BACKENDS: tuple[str, ...] = ("tensorflow", "jax", "torch")

_API = frozenset(
    {
        "compile_function",
        "value_and_grads",
        "to_numpy",
        "limit_threads",
        "sync_model_state",
        "set_random_seed",
        "process_index",
        "process_count",
        "process_local",
    }
)

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
    "process_count",
    "process_index",
    "process_local",
    "set_random_seed",
    "sync_model_state",
    "to_numpy",
    "value_and_grads",
]
