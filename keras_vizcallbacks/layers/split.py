"""A model split at a layer, for gradients with respect to that layer's output.

Grad-CAM and its siblings need ``G = d score / d A``, ``A`` a layer's output.
TensorFlow can watch ``A`` on a tape while the model runs; ``jax.grad`` and
``torch.autograd`` differentiate a function with respect to its arguments, so
``A`` has to be an argument. `split_at` builds, once, a probe of the model
that takes one more argument, ``delta``, shaped like ``A``, and computes

    A = body(inputs),   logits = head(A + delta, inputs)

in a single forward pass, returning ``(A, logits)``. At ``delta = 0`` the
forward values are the model's own, and ``d score / d delta`` equals
``d score / d A``: differentiate with ``_backend.value_and_grads(fn,
[image, delta], ...)`` on any backend.

Why ``A + delta`` inside one replayed graph rather than two models, a body
(inputs -> A) and a head (A -> logits): the head of a real network is seldom a
function of ``A`` alone. A residual connection that bypasses the layer, a
second input concatenated after the conv trunk, or a nested backbone whose
outer model adds other branches all feed the head with tensors computed
before ``A``. A separate head model would need each of them as an extra input
and a second copy of the body's forward pass to compute them. Adding ``delta``
where ``A`` is produced leaves every path of the graph as it is, so every
consumer of ``A`` (and only they) sees ``A + delta``, whatever the topology.

How ``delta`` enters the graph: the model's graph is re-run symbolically
(`build_probe`'s replay, nested models included, the user's layers and weights
shared) and the layer's output goes through a `_DeltaSlot`, a
layer that adds the delta held by the split during a call and is the identity
otherwise. ``delta`` cannot be a second Keras ``Input`` of the probe: the
replay rebuilds each functional model with ``keras.models.clone_model``, which
refuses a graph that depends on a tensor outside that model's own inputs
("Output ... is not connected to inputs"). The slot is read while the model
runs, so under ``tf.function`` and ``jax.jit`` the traced ``delta`` is part of
the compiled program; `Split.__call__` sets it and always clears it.

The probe is `build_probe(model, [path], logits=True, around={path: slot})`:
the logits are the pre-softmax (pre-sigmoid) value when the model ends in a
squashing activation, the model's first output otherwise, exactly as every
other probe takes them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks.layers.discovery import final_squashing, is_model, iter_layers, output_layer, require_graph
from keras_vizcallbacks.layers.probes import build_probe

_SLOTS = threading.local()  # {id(slot): delta} for the calls running on this thread


class _DeltaSlot(keras.layers.Layer):
    """``a + delta`` while a `Split` call holds a delta for this slot, else ``a``."""

    def __init__(self, layer: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(name=f"{layer.name}_delta", dtype=layer.dtype_policy, autocast=False, **kwargs)

    def call(self, a: Any) -> Any:
        delta = getattr(_SLOTS, "held", {}).get(id(self))
        if delta is None:
            return a
        return a + keras.ops.cast(delta, a.dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    @contextlib.contextmanager
    def holding(self, delta: Any) -> Iterator[None]:
        held = getattr(_SLOTS, "held", None)
        if held is None:
            held = _SLOTS.held = {}
        previous = held.get(id(self))
        held[id(self)] = delta
        try:
            yield
        finally:
            if previous is None:
                held.pop(id(self), None)
            else:
                held[id(self)] = previous


@dataclasses.dataclass
class Split:
    """A model split at layer ``path``: ``split(inputs, delta) -> (A, logits)``.

    ``model`` is the probe (the user's inputs -> ``[A, logits]``, the user's
    layers and weights shared); ``delta`` is added to ``A`` where the graph
    consumes it (see the module docstring). ``delta=None`` runs the plain
    forward pass.
    """

    model: keras.Model
    path: str
    layer: keras.layers.Layer
    squash: str | None
    slot: _DeltaSlot

    @property
    def n_inputs(self) -> int:
        return len(self.model.inputs)

    @property
    def activation_shape(self) -> tuple[int | None, ...]:
        """``A``'s shape without the batch axis (None where the input size is not fixed)."""
        return tuple(self.model.outputs[0].shape[1:])

    def __call__(self, inputs: Any, delta: Any = None, *, training: bool = False) -> tuple[Any, Any]:
        if isinstance(inputs, (list, tuple)) and self.n_inputs == 1:
            inputs = inputs[0]
        with self.slot.holding(delta):
            a, logits = self.model(inputs, training=training)
        return a, logits

    def zeros(self, inputs: Any) -> np.ndarray:
        """A float32 ``delta`` of zeros for the batch ``inputs`` (an array, or a list in the model's order)."""
        xs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        n = len(xs[0])
        shape = self.activation_shape
        if any(d is None for d in shape):  # input size not fixed: ask the graph for this input's size
            specs = [keras.KerasTensor(np.shape(x), dtype=str(getattr(x, "dtype", "float32"))) for x in xs]
            out = self.model.compute_output_spec(specs if self.n_inputs > 1 else specs[0])
            shape = tuple(out[0].shape[1:])
        return np.zeros((n, *shape), dtype=np.float32)


def split_at(model: keras.Model, path: str, output: int = 0) -> Split:
    """Split ``model`` at layer ``path`` (a path from `iter_layers`; nested models allowed); the logits
    are those of output number ``output`` (multi-output models).

    Raises ValueError (naming what is available) for an unknown path, the
    output layer itself, a layer the graph calls more than once (its output
    is ambiguous), and `ProbeError` for subclassed models.
    """
    require_graph(model)
    table = dict(iter_layers(model))
    if path not in table:
        raise ValueError(f"No layer path {path!r} in model {model.name!r}. Layers: {list(table)[:40]}.")
    target = table[path]
    if is_model(target) or isinstance(target, keras.layers.InputLayer):
        raise ValueError(f"{path!r} is a {type(target).__name__}; split the model at a layer inside it.")
    out_path, _ = output_layer(model, output)
    if path == out_path:
        raise ValueError(
            f"{path!r} produces the model's output; gradients of the logits with respect to it are trivial. "
            "Split at a layer before it."
        )
    slot = _DeltaSlot(target)
    calls = [0]

    def through_slot(a: Any) -> Any:
        calls[0] += 1
        return slot(a)

    probe = build_probe(model, [path], logits=True, around={path: through_slot}, output_index=output)
    if calls[0] != 1:
        raise ValueError(
            f"Layer {path!r} is called {calls[0]} times in model {model.name!r}; its output, and the gradient "
            "with respect to it, is ambiguous. Pick a layer called once."
        )
    return Split(probe.model, path, target, final_squashing(model, output), slot)


__all__ = ["Split", "split_at"]
