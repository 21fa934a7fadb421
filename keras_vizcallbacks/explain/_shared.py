"""One forward pass over fixed data per epoch, shared by every view that reads the same model and data.

A view registers at ``prepare`` what it needs from the pass (layer outputs or
inputs, the model output) and gets a :class:`SharedView`; at ``compute`` it
asks for the outputs of the current epoch. All views registered on the same
model with the same data (same shapes, dtypes and values: a content
fingerprint, since each view keeps its own copy of the data) share one
:class:`SharedForward`: one probe built from the union of their taps, compiled
once, and run once per epoch: the first view to ask runs it, the others read
the cached arrays.

A cached pass is reused only while the weights cannot have changed: the same
epoch and the same optimizer step count, and a view that reads the same pass
twice (calling ``compute`` again without training in between, as a benchmark
does) gets a fresh pass. Views with different data get separate passes.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain._batches import run_over

OUTPUT = L.OUTPUT


def fingerprint(x: Any) -> tuple:
    """A content key for the data: shapes, dtypes and a hash of the bytes of every array."""
    arrays = list(x.values()) if isinstance(x, dict) else (list(x) if isinstance(x, (list, tuple)) else [x])
    keys = sorted(x) if isinstance(x, dict) else None
    if keys is not None:
        arrays = [x[k] for k in keys]
    h = hashlib.blake2b(digest_size=16)
    parts: list[Any] = [tuple(keys) if keys else None]
    for a in arrays:
        a = np.ascontiguousarray(a)
        parts.append((a.shape, a.dtype.str))
        h.update(memoryview(a).cast("B"))
    return (tuple(parts), h.hexdigest())


def _weights_version(model: keras.Model) -> int | None:
    """The optimizer's step count (changes whenever training changed the weights), if known.

    Read after `_backend.sync_model_state`: during an epoch Keras' JAX trainer holds the optimizer's
    variables outside the model, and reading ``iterations`` there returns its initial value.
    """
    try:
        _backend.sync_model_state(model)
        return int(_backend.to_numpy(model.optimizer.iterations))
    except Exception:
        return None


class SharedForward:
    """The forward pass of ``model`` over ``x`` for every view registered on it."""

    def __init__(self, model: keras.Model, x: Any, batch_size: int) -> None:
        self._model = weakref.ref(model)  # the registry is keyed by the model: no strong reference back
        self.x = x
        self.batch_size = int(batch_size)
        self.paths: list[str] = []
        self.inputs_of: list[str] = []
        self.output_indices: list[int] = [0]  # the model outputs read, each under `layers.output_key`
        self.fn: Any = None  # the compiled probe; rebuilt when a view asks for a tensor it lacks
        self.names: list[str] = []
        self.runs = 0  # passes run (tests and benchmarks count them)
        self._key: Any = None
        self._outputs: dict[str, np.ndarray] | None = None
        self._readers: set[int] = set()

    def need(self, paths: Sequence[str] = (), inputs_of: Sequence[str] = (), outputs: Sequence[int] = ()) -> None:
        new_paths = [p for p in paths if p not in self.paths]
        new_inputs = [p for p in inputs_of if p not in self.inputs_of]
        new_outputs = [int(i) for i in outputs if int(i) not in self.output_indices]
        if new_paths or new_inputs or new_outputs or self.fn is None:
            self.paths += new_paths
            self.inputs_of += new_inputs
            self.output_indices += new_outputs
            model = self._model()
            probe = L.build_probe(model, self.paths, inputs_of=self.inputs_of, outputs=self.output_indices)
            probe_model = probe.model
            self.names = probe.names
            self.fn = _backend.compile_function(
                lambda x: probe_model(x, training=False), name="shared_forward", state=model
            )
            self._outputs = self._key = None

    def outputs(self, reader: int, epoch: int | None) -> dict[str, np.ndarray]:
        key = (epoch, _weights_version(self._model()))
        if self._outputs is None or key != self._key or reader in self._readers or epoch is None:
            arrays = run_over(self.fn, self.x, self.batch_size)
            self._outputs = dict(zip(self.names, arrays, strict=True))
            self._key = key
            self._readers = set()
            self.runs += 1
        self._readers.add(reader)
        return self._outputs


class SharedView:
    """One view's handle on a :class:`SharedForward`: ``outputs(epoch)`` -> ``{name: array}``
    with the names it registered (layer paths, ``"<path>:input"``, ``OUTPUT`` and, for the other
    outputs of a multi-output model, ``layers.output_key(i)``)."""

    def __init__(self, forward: SharedForward) -> None:
        self.forward = forward

    def outputs(self, epoch: int | None = None) -> dict[str, np.ndarray]:
        return self.forward.outputs(id(self), epoch)

    def compiled_functions(self) -> list[_backend.TracedFunction]:
        """The pass's compiled probe (shared with the other views on it)."""
        return [] if self.forward.fn is None else [self.forward.fn]


_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {fingerprint: SharedForward}


def register(
    model: keras.Model,
    x: Any,
    *,
    paths: Sequence[str] = (),
    inputs_of: Sequence[str] = (),
    batch_size: int,
    key: tuple | None = None,
    outputs: Sequence[int] = (),
) -> SharedView:
    """A handle on the shared pass of ``model`` over ``x`` that also returns the tapped tensors.

    The pass always returns the model's first output (``OUTPUT``); ``outputs`` adds the
    outputs with those indices (multi-output models), each under ``layers.output_key(i)``.

    ``key`` is ``fingerprint(x)`` when the caller has it. Raises ``layers.ProbeError``
    for models whose layers cannot be reached symbolically (subclassed): use a private pass.
    """
    key = fingerprint(x) if key is None else key
    passes = _REGISTRY.setdefault(model, {})
    forward = passes.get(key)
    if forward is None:
        forward = passes[key] = SharedForward(model, x, batch_size)
    forward.need(paths, inputs_of, outputs)
    return SharedView(forward)


def shared_passes(model: keras.Model) -> list[SharedForward]:
    """The shared passes registered on ``model`` (for tests and benchmarks)."""
    return list(_REGISTRY.get(model, {}).values())


__all__ = ["OUTPUT", "SharedForward", "SharedView", "fingerprint", "register", "shared_passes"]
