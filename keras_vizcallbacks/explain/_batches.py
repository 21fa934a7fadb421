"""Batched data passes: a compiled function run over many rows in batches of one fixed size.

Used by the shared data pass, the confusion matrix and the decision regions.
Data is one array, a list/tuple of arrays (multi-input models) or a dict of
arrays keyed by input name; every batch has exactly ``batch_size`` rows (the
last one padded by repeating its last row), so a compiled function traces once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks.explain._memory import largest_output_values
from keras_vizcallbacks.explain._outputs import squashing, to_probabilities


def n_rows(x: Any) -> int:
    """Rows (examples) in ``x``: an array, a list/tuple or a dict of arrays."""
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return len(x[0])
    return len(x)


def take_rows(x: Any, a: int, b: int) -> Any:
    """Rows ``[a, b)`` of ``x`` (views, no copy)."""
    if isinstance(x, dict):
        return {k: v[a:b] for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [v[a:b] for v in x]
    return x[a:b]


def take_index(x: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` (an index array) of ``x`` as numpy arrays (copies)."""
    if isinstance(x, dict):
        return {k: np.asarray(v)[idx] for k, v in x.items()}
    if isinstance(x, list):
        return [np.asarray(v)[idx] for v in x]
    return np.asarray(x)[idx]


def pad_rows(x: Any, size: int) -> Any:
    """Pad a batch to ``size`` rows by repeating its last row (keeps one traced shape)."""

    def one(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v)
        if len(v) == size:
            return v
        return np.concatenate([v, np.repeat(v[-1:], size - len(v), axis=0)])

    if isinstance(x, dict):
        return {k: one(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [one(v) for v in x]
    return one(x)


def run_batches(fn: Callable[[Any], Any], n: int, get: Callable[[int, int], Any], batch_size: int) -> list[np.ndarray]:
    """Call ``fn`` on rows ``[a, b)`` from ``get(a, b)`` in batches of exactly ``batch_size``
    (the last one padded), and return its output(s) concatenated, one array per output."""
    parts: list[list[np.ndarray]] = []
    for a in range(0, n, batch_size):
        b = min(a + batch_size, n)
        out = fn(pad_rows(get(a, b), batch_size))
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        arrays = [_backend.to_numpy(o)[: b - a] for o in outs]
        if not parts:
            parts = [[] for _ in arrays]
        for store, arr in zip(parts, arrays):
            store.append(arr)
    return [np.concatenate(p) for p in parts]


def run_over(fn: Callable[[Any], Any], x: Any, batch_size: int) -> list[np.ndarray]:
    """`run_batches` over every row of the data ``x``."""
    return run_batches(fn, n_rows(x), lambda a, b: take_rows(x, a, b), batch_size)


def _rows(n: int) -> int:
    """``n`` rows clipped to 32..4096 and rounded down to a power of 2."""
    b = max(32, min(4096, int(n)))
    return 1 << (b.bit_length() - 1)


def default_batch_size(values_per_example: int) -> int:
    """About 2**21 input values per batch: 4096 rows of a few features, 512 images of 32x32x3."""
    return _rows((1 << 21) // max(1, int(values_per_example)))


CACHE_BUDGET = 32 * 2**20  # bytes: the largest layer output of one forward batch, by default


def cache_batch_size(model: Any) -> int | None:
    """Rows whose largest layer output fits `CACHE_BUDGET` (float32; at least 32, a power of 2), or None
    without layer shapes. A forward pass is fastest while a batch's activations stay in the last-level
    cache: the reference CNN's 1,000-image pass (conv2d output 115 KB an image) took 182 ms in batches
    of 256 and 238 ms in batches of 512 on a 2-core EPYC with 32 MiB of L3 (`benchmarks/overhead.py`)."""
    largest = largest_output_values(model)
    if not largest:
        return None
    return _rows(CACHE_BUDGET // (4 * largest))


def batch_size_for(x: Any, batch_size: int | None = None, model: Any = None) -> int:
    """``batch_size`` if given, else `default_batch_size` for the per-example size of ``x``
    (its first array for a list/tuple/dict), lowered to `cache_batch_size` of ``model`` when known."""
    if batch_size:
        return int(batch_size)
    first = next(iter(x.values())) if isinstance(x, dict) else (x[0] if isinstance(x, (list, tuple)) else x)
    rows = default_batch_size(int(np.prod(np.shape(first)[1:], dtype=np.int64)))
    cached = None if model is None else cache_batch_size(model)
    return rows if cached is None else min(rows, cached)


class Predictor:
    """A model's forward pass compiled once, run in fixed-size batches, returning probabilities.

    ``squash`` is the final squashing of the output (None when unknown); its outputs
    become probabilities by `to_probabilities`. ``output``: the index of the output read
    (multi-output models; a dict of outputs is taken in `keras.tree.flatten` order, the
    order of ``model.outputs``).
    """

    def __init__(
        self, model: keras.Model, *, batch_size: int | None = None, name: str = "predict", output: int = 0
    ) -> None:
        self.model = model
        self.output = int(output)
        self.squash = squashing(model, self.output)
        self.batch_size = batch_size
        index = self.output

        def forward(x: Any) -> Any:
            out = model(x, training=False)
            return keras.tree.flatten(out)[index] if isinstance(out, (list, tuple, dict)) else out

        self.fn = _backend.compile_function(forward, name=name, state=model)

    def batch_size_for(self, x: Any) -> int:
        """Rows per compiled call for the data ``x``: ``batch_size``, else `batch_size_for` of the data and model."""
        return batch_size_for(x, self.batch_size, self.model)

    def to_probabilities(self, outputs: Any) -> np.ndarray:
        """This model's outputs (from any pass) -> class probabilities (N, C)."""
        return to_probabilities(outputs, self.squash)

    def probabilities(self, x: Any) -> np.ndarray:
        """Class probabilities (N, C) of the data ``x``."""
        (out,) = run_over(self.fn, x, self.batch_size_for(x))
        return to_probabilities(out, self.squash)

    def generated(self, n: int, get: Callable[[int, int], np.ndarray], batch_size: int) -> np.ndarray:
        """Class probabilities of ``n`` rows made on demand by ``get(a, b)``."""
        (out,) = run_batches(self.fn, n, get, batch_size)
        return to_probabilities(out, self.squash)

    def compiled_functions(self) -> list[_backend.TracedFunction]:
        return [self.fn]
