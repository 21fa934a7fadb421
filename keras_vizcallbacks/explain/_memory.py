"""How many images go into one backend call: ``batch_size``, checked, or derived from the layer shapes.

Every explainer that runs a model on many images (Grad-CAM's images and Score-CAM's masked
copies, saliency's images and the noisy / interpolated copies of SmoothGrad and Integrated
Gradients) calls the backend with at most ``batch_size`` images at a time. By default the
number is chosen so that one call's activations and gradients stay under `MEMORY_BUDGET`:

    per image = 2 x 4 bytes x (the input's values + every layer's output values)

(float32 activations kept for the backward pass, and a gradient of the same size), and
``batch_size = clip(MEMORY_BUDGET // per image, 1, MAX_BATCH_SIZE)``. A model without layer
shapes (a subclassed model) gets `MAX_BATCH_SIZE`. The estimate counts every layer's output,
also those a backend frees or fuses, so it errs on the large side.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L

MEMORY_BUDGET = 256 * 2**20  # bytes: one backend call's activations and gradients, by default
MAX_BATCH_SIZE = 64  # images per backend call at most, by default (the explainers' chunk before the budget)
BYTES_PER_VALUE = 2 * 4  # float32 activation + its gradient


def check_batch_size(value: Any, name: str = "batch_size") -> int | None:
    """``None`` (derive it) or a positive integer (``np.integer`` accepted) -> int or None.

    Raises ValueError for anything else (``True``, ``0``, ``-5``, ``2.5``, ``"8"``).
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(
            f"{name} must be a positive integer (images per backend call) or None (derived from the layer "
            f"shapes and a {MEMORY_BUDGET // 2**20} MiB budget), got {value!r}."
        )
    return int(value)


def _values(shape: Any) -> int | None:
    try:
        dims = tuple(shape)[1:]
    except TypeError:
        return None
    if any(d is None for d in dims):
        return None
    return int(np.prod(dims, dtype=np.int64))


def _output_values(model: Any) -> list[int] | None:
    """Input values, then every layer's output values, for one example (nested models included),
    or None when the model has no layer shapes (subclassed, never built)."""
    if not L.has_graph(model):
        return None
    sizes = []
    for t in model.inputs:
        v = _values(t.shape)
        if v is None:
            return None
        sizes.append(v)
    for _, layer in L.iter_layers(model):
        if L.is_model(layer) or isinstance(layer, keras.layers.InputLayer):
            continue  # a nested model's layers are counted; the inputs are counted above
        try:
            out = layer.output
        except Exception:  # a layer called more than once, or never
            continue
        for t in out if isinstance(out, (list, tuple)) else [out]:
            sizes.append(_values(getattr(t, "shape", None)) or 0)
    return sizes


def values_per_example(model: Any) -> int | None:
    """Input values plus every layer's output values for one example (nested models included),
    or None when the model has no layer shapes (subclassed, never built)."""
    sizes = _output_values(model)
    return None if sizes is None else sum(sizes)


def largest_output_values(model: Any) -> int | None:
    """The most values one layer (or input) holds for one example, or None without layer shapes."""
    sizes = _output_values(model)
    if not sizes:
        return None
    return max(sizes) or None


def default_batch_size(model: Any, budget: int = MEMORY_BUDGET) -> int:
    """Images per backend call so that one call's activations and gradients stay under ``budget`` bytes
    (see the module docstring); `MAX_BATCH_SIZE` when the model has no layer shapes."""
    values = values_per_example(model)
    if not values:
        return MAX_BATCH_SIZE
    return int(max(1, min(MAX_BATCH_SIZE, budget // (BYTES_PER_VALUE * values))))


def resolve_batch_size(model: Any, batch_size: Any) -> int:
    """``batch_size`` checked (`check_batch_size`), else `default_batch_size` of ``model``."""
    checked = check_batch_size(batch_size)
    return default_batch_size(model) if checked is None else checked


def chunks(n: int, batch_size: int) -> tuple[int, list[tuple[int, int]]]:
    """Split ``n`` rows into calls of at most ``batch_size``, all of one size (balanced, so the padding
    of the last call is at most one row per call): ``(rows per call, [(start, stop), ...])``.
    ``n <= batch_size`` is one call of ``n`` rows."""
    if n <= batch_size:
        return n, [(0, n)]
    calls = -(-n // batch_size)
    size = -(-n // calls)
    return size, [(a, min(a + size, n)) for a in range(0, n, size)]


def run_chunked(fn: Any, xs: list[np.ndarray], target: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """``fn(inputs, target)`` over the rows of ``xs`` (one array per model input) in calls of at most
    ``batch_size`` rows, all of one size (the last padded by repeating its last row: one trace); each
    output as numpy, the calls' rows concatenated (padding dropped)."""
    size, spans = chunks(len(target), batch_size)
    parts: list[list[np.ndarray]] = []
    for a, b in spans:
        pad = size - (b - a)
        batch = [np.concatenate([v[a:b], np.repeat(v[b - 1 : b], pad, axis=0)]) if pad else v[a:b] for v in xs]
        t = np.concatenate([target[a:b], np.repeat(target[b - 1 : b], pad)]) if pad else target[a:b]
        outs = [_backend.to_numpy(o)[: b - a] for o in fn(batch, t)]
        parts = parts or [[] for _ in outs]
        for store, o in zip(parts, outs, strict=True):
            store.append(o)
    return [np.concatenate(p) if len(p) > 1 else p[0] for p in parts]


__all__ = [
    "MAX_BATCH_SIZE",
    "MEMORY_BUDGET",
    "check_batch_size",
    "chunks",
    "default_batch_size",
    "largest_output_values",
    "resolve_batch_size",
    "run_chunked",
    "values_per_example",
]
