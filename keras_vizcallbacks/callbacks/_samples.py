"""Turning what the user passes as ``samples`` / ``data`` into fixed arrays, once.

Accepted: an array (or tensor); an ``(x, y)`` tuple; a ``tf.data.Dataset`` (or
any iterable) of ``x`` or ``(x, y[, w])`` elements, batched or not, from which
the first ``limit`` examples are taken once and kept, so every epoch shows the
same images. Multi-input models take a list or dict of arrays as ``x``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np


def _to_numpy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _to_numpy(a) for k, a in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_numpy(a) for a in v]
    if hasattr(v, "numpy"):
        return np.asarray(v.numpy())
    return np.asarray(v)


def _is_dataset(obj: Any) -> bool:
    try:
        import tensorflow as tf

        if isinstance(obj, tf.data.Dataset):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(obj, keras.utils.PyDataset)


def _n_inputs(model: keras.Model) -> int:
    try:
        return len(model.inputs)
    except Exception:
        return 1


def _split_xy(obj: Any, n_inputs: int) -> tuple[Any, Any]:
    """(x, y) from an element that may be x, (x,), (x, y) or (x, y, w)."""
    if isinstance(obj, tuple) and 1 <= len(obj) <= 3:
        if n_inputs > 1 and len(obj) == n_inputs and not isinstance(obj[0], (list, tuple, dict)):
            return list(obj), None  # a tuple of the model's inputs
        return obj[0], obj[1] if len(obj) > 1 else None
    return obj, None


def _first(x: Any) -> np.ndarray:
    if isinstance(x, dict):
        return next(iter(x.values()))
    if isinstance(x, list):
        return x[0]
    return x


def _slice(x: Any, n: int) -> Any:
    if isinstance(x, dict):
        return {k: v[:n] for k, v in x.items()}
    if isinstance(x, list):
        return [v[:n] for v in x]
    return x[:n]


def _concat(parts: list[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if isinstance(parts[0], list):
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]
    return np.concatenate(parts)


def _add_batch_axis(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: v[None] for k, v in x.items()}
    if isinstance(x, list):
        return [v[None] for v in x]
    return x[None]


def model_input_shapes(model: keras.Model) -> list[tuple]:
    try:
        return [tuple(t.shape) for t in model.inputs]
    except Exception:
        return []


def materialize(
    samples: Any,
    model: keras.Model,
    *,
    labels: Any = None,
    limit: int | None = None,
    name: str = "samples",
) -> tuple[Any, np.ndarray | None]:
    """Return ``(x, y)`` as numpy (x may be a list/dict for multi-input models).

    Raises ValueError naming the problem: empty, wrong rank/size/channels,
    labels that do not match.
    """
    n_in = _n_inputs(model)
    shapes = model_input_shapes(model)
    if samples is None:
        raise ValueError(f"{name} is required: pass an array of inputs, an (x, y) tuple or a tf.data.Dataset.")
    y = None
    if _is_dataset(samples) or (
        hasattr(samples, "__iter__")
        and not isinstance(samples, (np.ndarray, list, tuple, dict))
        and not hasattr(samples, "shape")
    ):
        xs, ys, count = [], [], 0
        want_rank = len(shapes[0]) if shapes else None
        for element in samples:
            ex, ey = _split_xy(element, n_in)
            ex, ey = _to_numpy(ex), (None if ey is None else _to_numpy(ey))
            if want_rank is not None and np.ndim(_first(ex)) == want_rank - 1:
                ex = _add_batch_axis(ex)
                ey = None if ey is None else np.asarray(ey)[None]
            xs.append(ex)
            if ey is not None:
                ys.append(np.asarray(ey))
            count += len(_first(ex))
            if limit is not None and count >= limit:
                break
        if not xs:
            raise ValueError(f"{name}: the dataset is empty; pass at least one example.")
        x = _concat(xs)
        y = np.concatenate(ys) if len(ys) == len(xs) else None
    else:
        x, y = _split_xy(samples, n_in) if isinstance(samples, tuple) else (samples, None)
        x = _to_numpy(x)
        y = None if y is None else _to_numpy(y)
    if labels is not None:
        y = _to_numpy(labels)
    n = len(_first(x))
    if limit is not None:
        x = _slice(x, limit)
        y = None if y is None else y[:limit]
        n = min(n, limit)
    if n == 0:
        raise ValueError(f"{name} is empty; pass at least one example.")
    check_inputs(x, model, name=name)
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"{name}: {n} inputs but {len(y)} labels; pass one label per example.")
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot
            y = np.argmax(y, axis=1)
        y = y.reshape(n, -1)[:, 0] if y.ndim > 1 else y
    return x, y


def check_inputs(x: Any, model: keras.Model, name: str = "samples") -> None:
    """ValueError unless ``x`` matches the model's input shapes (rank, sizes, channels)."""
    shapes = model_input_shapes(model)
    if not shapes:
        return
    arrays = list(x.values()) if isinstance(x, dict) else (x if isinstance(x, list) else [x])
    if len(arrays) != len(shapes):
        raise ValueError(
            f"{name}: the model takes {len(shapes)} inputs {shapes}, got {len(arrays)} array(s); "
            "pass a list (or dict by input name) with one array per input."
        )
    for i, (arr, shape) in enumerate(zip(arrays, shapes, strict=True)):
        got = tuple(np.shape(arr))
        expect = "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"
        which = f"input {i} " if len(shapes) > 1 else ""
        if len(got) != len(shape):
            raise ValueError(
                f"{name}: {which}has shape {got} (rank {len(got)}) but the model expects {expect} "
                f"(rank {len(shape)}). Add or remove axes, e.g. x[None] for a single image."
            )
        for g, e in zip(got[1:], shape[1:], strict=True):
            if e is not None and g != e:
                raise ValueError(
                    f"{name}: {which}has shape {got} but the model expects {expect}; "
                    "resize the samples or pass samples from the model's own data."
                )
        if not np.issubdtype(np.asarray(arr).dtype, np.number) and np.asarray(arr).dtype != bool:
            raise ValueError(f"{name}: {which}has dtype {np.asarray(arr).dtype}; pass numeric arrays.")


def n_classes(model: keras.Model) -> int | None:
    """Classes of the model's (first) output: its last axis (2 for a single sigmoid unit); None if unknown."""
    try:
        units = model.outputs[0].shape[-1]
    except Exception:
        try:
            units = model.compute_output_shape((1, *model.input_shape[1:]))[-1]
        except Exception:
            return None
    if units is None:
        return None
    return 2 if int(units) == 1 else int(units)


def check_classes(y: np.ndarray | None, model: keras.Model, class_names: Any = None, name: str = "samples") -> None:
    """ValueError for more class names than the model has outputs, or a label outside the classes."""
    n = n_classes(model)
    if class_names is not None and n is not None and len(class_names) > n:
        raise ValueError(
            f"{name}: {len(class_names)} class_names but the model has {n} classes; "
            f"pass {n} names, one per output unit."
        )
    if y is None or not np.size(y):
        return
    limit = n if class_names is None else min(len(class_names), n or len(class_names))
    lo, hi = int(np.min(y)), int(np.max(y))
    if lo < 0 or (limit is not None and hi >= limit):
        bad = lo if lo < 0 else hi
        what = f"{limit} classes (0..{limit - 1})" if limit is not None else "classes from 0"
        names = "" if class_names is None else f" and {len(class_names)} class_names"
        raise ValueError(
            f"{name}: label {bad} is out of range: the model has {n} outputs{names}, so labels must be {what}. "
            "Check the labels (integer class indices or one-hot) or class_names."
        )
