"""The confusion matrix: counts of (true class, predicted class) pairs, and its normalizations."""

from __future__ import annotations

from typing import Any

import numpy as np

NORMALIZE = ("true", "pred", "all", None)


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts: row = true class, column = predicted class.

    ``y_true`` and ``y_pred`` are integer class indices (1-D) or one-hot /
    probability rows (2-D, reduced by argmax). ``n_classes`` defaults to one
    more than the largest index seen. Negative or out-of-range indices raise
    ``ValueError``.
    """
    t = _as_indices(y_true, "y_true")
    p = _as_indices(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} entries but y_pred has {p.size}; they must match.")
    top = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    n = top if n_classes is None else int(n_classes)
    if n < 1:
        n = 1
    if top > n:
        raise ValueError(f"class index {top - 1} is out of range for n_classes={n}.")
    if t.size and min(t.min(), p.min()) < 0:
        raise ValueError("class indices must be >= 0.")
    return np.bincount(t * n + p, minlength=n * n).reshape(n, n).astype(np.int64)


def normalize_confusion(counts: Any, normalize: str | None = "true") -> np.ndarray:
    """Rates from counts (float64). ``"true"``: each row sums to 1 (recall on the
    diagonal); ``"pred"``: each column sums to 1 (precision on the diagonal);
    ``"all"``: the whole matrix sums to 1; ``None``: the counts as floats.
    An empty row / column / matrix gives zeros, never NaN.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, got {normalize!r}.")
    c = np.asarray(counts, dtype=np.float64)
    if normalize is None:
        return c.copy()
    if normalize == "true":
        total = c.sum(axis=1, keepdims=True)
    elif normalize == "pred":
        total = c.sum(axis=0, keepdims=True)
    else:
        total = np.full((1, 1), c.sum())
    return np.divide(c, total, out=np.zeros_like(c), where=total > 0)


def _as_indices(y: Any, name: str) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim == 2 and a.shape[1] > 1:
        a = np.argmax(np.nan_to_num(a, nan=-np.inf), axis=1)
    elif a.ndim > 1:
        a = a.reshape(len(a), -1)[:, 0]
    fractional = a.size and not np.issubdtype(a.dtype, np.integer)
    if fractional and (not np.all(np.isfinite(a)) or np.any(a != np.round(a))):
        raise ValueError(f"{name} must hold integer class indices (or one-hot rows).")
    return a.astype(np.int64).reshape(-1)


__all__ = ["NORMALIZE", "confusion_matrix", "normalize_confusion"]
