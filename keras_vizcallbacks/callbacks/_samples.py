"""Turning what the user passes as ``samples`` / ``data`` into fixed arrays, once.

Accepted: an array (or tensor); an ``(x, y)`` tuple; a ``tf.data.Dataset`` (or
any iterable) of ``x`` or ``(x, y[, w])`` elements, batched or not, from which
the first ``limit`` examples are taken once and kept, so every epoch shows the
same images. Multi-input models take a list or dict of arrays as ``x``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks.callbacks._format import fmt_list
from keras_vizcallbacks.render import spread


def _to_numpy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _to_numpy(a) for k, a in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_numpy(a) for a in v]
    if hasattr(v, "numpy"):
        return np.asarray(v.numpy())
    return np.asarray(v)


def _is_dataset(obj: Any) -> bool:
    """A ``tf.data.Dataset`` or a ``keras.utils.PyDataset``. TensorFlow is not imported for this: a
    dataset object can only exist when the user's code has imported it already."""
    tf = sys.modules.get("tensorflow")
    dataset = getattr(getattr(tf, "data", None), "Dataset", None)
    if isinstance(dataset, type) and isinstance(obj, dataset):
        return True
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


def _n_outputs(model: keras.Model) -> int:
    try:
        return len(model.outputs)
    except Exception:
        return 1


def _output_names(model: keras.Model) -> list[str]:
    names = []
    for i, t in enumerate(model.outputs):
        history = getattr(t, "_keras_history", None)
        names.append(getattr(history[0], "name", f"output_{i}") if history else f"output_{i}")
    return names


def select_labels(y: Any, model: keras.Model, output: int | None, alias: Any = None, name: str = "samples") -> Any:
    """The labels of output number ``output`` when a multi-output model's ``y`` holds one entry per
    output: a list/tuple (by index) or a dict (by output name, or by ``alias``, the name the user
    passed as ``output=``). ``output=None`` (a view that does not read outputs) drops such labels."""
    if y is None or _n_outputs(model) < 2 or not isinstance(y, (list, tuple, dict)):
        return y
    if output is None:
        return None
    if isinstance(y, dict):
        names = _output_names(model)
        for key in (names[output], alias):
            if isinstance(key, str) and key in y:
                return y[key]
        raise ValueError(
            f"{name}: labels are a dict with keys {sorted(y)} but none is output {output} {names[output]!r}; "
            "key the labels by output name."
        )
    if len(y) != _n_outputs(model):
        raise ValueError(
            f"{name}: labels are a list of {len(y)} arrays but the model has {_n_outputs(model)} outputs; "
            "pass one array per output, in the model's output order."
        )
    return y[output]


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
    output: int | None = None,
    output_alias: Any = None,
) -> tuple[Any, np.ndarray | None]:
    """Return ``(x, y)`` as numpy (x may be a list/dict for multi-input models).

    A multi-output model's labels (a list or dict with one entry per output) are those of
    output number ``output`` (`select_labels`).

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
            ey = select_labels(ey, model, output, output_alias, name)
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
        y = select_labels(y, model, output, output_alias, name)
        x = _to_numpy(x)
        y = None if y is None else _to_numpy(y)
    if labels is not None:
        y = _to_numpy(select_labels(labels, model, output, output_alias, name))
    _check_not_a_list_of_examples(x, shapes, name)
    check_inputs(x, model, name=name)  # before the slicing below: the error names the shape the caller passed
    n = len(_first(x))
    if limit is not None:
        x = _slice(x, limit)
        y = None if y is None else y[:limit]
        n = min(n, limit)
    if n == 0:
        raise ValueError(f"{name} is empty; pass at least one example.")
    if y is not None:
        y = np.asarray(y)
        if len(y) != n:
            raise ValueError(f"{name}: {n} inputs but {len(y)} labels; pass one label per example.")
        if y.ndim == 2 and y.shape[1] > 1:  # one-hot
            y = np.argmax(y, axis=1)
        y = y.reshape(n, -1)[:, 0] if y.ndim > 1 else y
    return x, y


def _check_not_a_list_of_examples(x: Any, shapes: list[tuple], name: str) -> None:
    """A Python list of single examples for a one-input model: ValueError suggesting ``np.stack``
    (a list means one array per input, as in ``model.fit``)."""
    if not isinstance(x, list) or len(shapes) != 1 or not x:
        return
    want = len(shapes[0])
    if all(np.ndim(v) == want - 1 for v in x):
        raise ValueError(
            f"{name}: got a Python list of {len(x)} arrays of shape {np.shape(x[0])}, but the model has one input "
            f"{shapes[0]}; a list means one array per input. Stack the examples into one array with np.stack."
        )


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


def fixed_labelled_data(
    data: Any, model: keras.Model, max_points: int, name: str, output: int | None = None, output_alias: Any = None
) -> tuple[Any, np.ndarray, int, np.ndarray | None]:
    """``(x, y, n_total, chosen)``: at most ``max_points`` labelled examples, fixed once.

    A dataset is read only up to ``max_points`` examples; arrays keep an evenly
    spaced choice (``chosen``: their indices) so sorted data keeps every class.
    """
    is_stream = _is_dataset(data) or not isinstance(data, (tuple, list, dict, np.ndarray))
    x, y = materialize(
        data, model, limit=max_points if is_stream else None, name=name, output=output, output_alias=output_alias
    )
    if y is None:
        raise ValueError(
            f"{name}: no labels. Pass data as an (x, y) tuple of arrays or a tf.data.Dataset of (x, y) "
            "elements, with integer (or one-hot) labels."
        )
    n = len(y)
    chosen = None
    if n > max_points:
        chosen = spread(n, max_points)
        x = _take(x, chosen)
        y = y[chosen]
    if not np.issubdtype(np.asarray(y).dtype, np.integer):
        yf = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(yf)) or np.any(yf != np.round(yf)):
            raise ValueError(f"{name}: labels must be integer class indices (or one-hot rows).")
    return x, np.asarray(y).astype(np.int64), n, chosen


def _take(x: Any, idx: np.ndarray) -> Any:
    if isinstance(x, dict):
        return {k: np.asarray(v)[idx] for k, v in x.items()}
    if isinstance(x, list):
        return [np.asarray(v)[idx] for v in x]
    return np.asarray(x)[idx]


def check_classes(name: str, y: Any, n_classes: int | None, class_names: Sequence[str] | None) -> int:
    """The number of classes; ValueError naming the fix when labels or ``class_names`` do not fit.

    One rule for every view: labels are integer class indices ``0..n-1`` and
    ``class_names``, when given, has exactly one name per class, in class-index
    order. ``n`` is the model's number of classes (2 for a single sigmoid unit);
    when the model does not say, the number of ``class_names``, else the largest
    label + 1 (at least 2).
    """
    top = 0
    if y is not None and np.size(y):
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) or np.any(np.mod(y, 1) != 0):
            raise ValueError(f"{name}: labels must be integer class indices (or one-hot), got {y[:4]!r}.")
        if np.min(y) < 0:
            raise ValueError(f"{name}: label {int(np.min(y))} is out of range: labels are class indices from 0.")
        top = int(np.max(y)) + 1
    n = max(top, 2) if class_names is None else len(class_names)
    if n_classes is not None:
        n = int(n_classes)
    if top > n:
        names = "" if class_names is None or n_classes is not None else f" ({len(class_names)} class_names)"
        raise ValueError(
            f"{name}: label {top - 1} is out of range: the model has {n} classes{names} (0..{n - 1}). "
            "Check the labels (integer class indices or one-hot)."
        )
    if class_names is not None and len(class_names) != n:
        k = len(class_names)
        raise ValueError(
            f"{name}: class_names has {k} names but the model scores {n} classes ({k} class_names for {n} classes: "
            f"{'more' if k > n else 'fewer'} names than classes); pass exactly one name per class, in class-index "
            f"order (got {fmt_list(list(class_names))})."
        )
    return n
