"""Which channels (filters) a view shows: chosen once, at the first render, and kept for the run,
so the frames of different epochs show the same channels and compare.

* `most_active`: the channels with the largest mean activation on the view's samples;
* `largest_norm`: the filters with the largest kernel (weight) L2 norm.

Both return int64 indices, largest first; ties keep the lower index; a NaN or infinite
score ranks last; ``k`` at or above the number of channels returns them all, ranked.
"""

from __future__ import annotations

import numpy as np


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"the number of channels to choose must be an integer >= 1, got {k!r}.")
    return int(k)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, largest first; stable, so ties keep the lower index."""
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    return np.argsort(-scores, kind="stable")[:k].astype(np.int64)


def most_active(activations: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` channels (last axis) of ``activations`` (e.g. (N, H, W, C)) with the largest mean
    activation over every other axis (examples and positions), most active first."""
    a = np.asarray(activations)
    if a.ndim < 1 or a.shape[-1] == 0:
        raise ValueError(f"activations need a channel axis (the last), got shape {a.shape}.")
    scores = a.reshape(-1, a.shape[-1]).mean(axis=0, dtype=np.float64)
    return _top(scores, _check_k(k))


def largest_norm(kernels: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` output filters (last axis, Keras' kernel layout ``(*kernel_size, in, out)``) of
    ``kernels`` with the largest L2 norm over every other axis, largest first."""
    w = np.asarray(kernels)
    if w.ndim < 1 or w.shape[-1] == 0:
        raise ValueError(f"kernels need an output-filter axis (the last), got shape {w.shape}.")
    flat = w.reshape(-1, w.shape[-1]).astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        scores = np.sqrt(np.einsum("ij,ij->j", flat, flat))
    return _top(scores, _check_k(k))


__all__ = ["largest_norm", "most_active"]
