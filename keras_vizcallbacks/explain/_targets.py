"""Which class a gradient explains, and the score that is differentiated.

Shared by the gradient methods (Grad-CAM family, saliency). The score is the
target class's logit: the pre-softmax / pre-sigmoid value when the model ends
in a squashing activation (taken by `keras_vizcallbacks.layers.build_probe`
with ``logits=True``, the user's model untouched). A model with one sigmoid
output is a binary classifier: class 1 scores its logit, class 0 the negative.

Targets travel as one int32 per image; ``-1`` means "the predicted class" and
is resolved inside the compiled function from the same forward pass, so a
changing prediction never retraces.

A target may also be a callable ``score(outputs) -> (N,)``: it receives the chosen
output (after the model's own final softmax / sigmoid, as ``model.predict`` returns it)
as a backend tensor inside the differentiated function, so it is written with
``keras.ops`` (e.g. ``lambda y: y[:, 0]`` for one regression unit). Its class is -1.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import layers as L

PREDICTED = -1


def resolve(class_index: Any, n: int, classes: int) -> np.ndarray:
    """``class_index`` (None, an int, or one int per image) -> int32 (n,), -1 = predicted.

    Raises ValueError naming the number of classes when an index is out of range.
    """
    if class_index is None:
        return np.full(n, PREDICTED, dtype=np.int32)
    if isinstance(class_index, (bool, np.bool_)):
        raise ValueError(f"class_index must be None, an int or one int per image, got {class_index!r}.")
    arr = np.asarray(class_index)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    elif arr.ndim != 1 or len(arr) != n:
        raise ValueError(f"class_index must be None, an int or one int per image ({n} images), got shape {arr.shape}.")
    integral = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(np.mod(arr, 1) == 0))
    )
    if arr.size and not integral:
        raise ValueError(f"class_index must hold integers, got {arr.tolist()}.")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= classes)]
    if bad.size:
        which = "one sigmoid output: classes 0 and 1" if classes == 2 else f"classes 0..{classes - 1}"
        raise ValueError(f"class_index {int(bad[0])} is out of range: the model has {classes} classes ({which}).")
    return arr.astype(np.int32)


def score(logits: Any, target: Any) -> tuple[Any, Any]:
    """Per-image score and the class it belongs to, as backend tensors.

    ``logits`` (N, K) cast to float32; ``target`` int32 (N,), -1 = predicted.
    Returns ``(score (N,), class (N,))``.
    """
    z = keras.ops.cast(logits, "float32")
    target = keras.ops.cast(target, "int32")
    if z.shape[-1] == 1:
        z1 = z[:, 0]
        predicted = keras.ops.cast(z1 > 0, "int32")
        cls = keras.ops.where(target < 0, predicted, target)
        return keras.ops.where(cls == 1, z1, -z1), cls
    predicted = keras.ops.cast(keras.ops.argmax(z, axis=-1), "int32")
    cls = keras.ops.where(target < 0, predicted, target)
    picked = keras.ops.take_along_axis(z, keras.ops.expand_dims(cls, -1), axis=-1)
    return picked[:, 0], cls


def is_score_function(target: Any) -> bool:
    """True for a callable target ``score(outputs) -> (N,)`` (not a class index, label array or name)."""
    return callable(target) and not isinstance(target, (str, bytes, np.ndarray, np.generic, int))


def score_name(fn: Any) -> str:
    """How a score function is named in descriptions: its ``__name__`` (a lambda: ``"a custom score"``)."""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return "a custom score" if name == "<lambda>" else f"`{name}`"


def squashed(logits: Any, squash: str | None) -> Any:
    """The model's output from its logits: the final softmax / sigmoid applied again (backend tensors)."""
    if squash == "softmax":
        return keras.ops.softmax(logits, axis=-1)
    if squash == "sigmoid":
        return keras.ops.sigmoid(logits)
    return logits


def custom_score(fn: Any, logits: Any, squash: str | None) -> tuple[Any, Any]:
    """``(score (N,), class (N,) = -1)`` of a score function on the output with these logits."""
    s = fn(squashed(keras.ops.cast(logits, "float32"), squash))
    s = keras.ops.cast(s, "float32")
    if len(s.shape) == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if len(s.shape) != 1:
        raise ValueError(
            f"target={score_name(fn)} must return one score per example, shape (N,); it returns shape "
            f"{tuple(s.shape)} on an output of shape {tuple(logits.shape)}."
        )
    return s, keras.ops.cast(keras.ops.zeros_like(s), "int32") - 1


def check_score_function(fn: Any, output_shape: tuple, who: str) -> None:
    """ValueError when ``fn`` run symbolically on an output of ``output_shape`` does not give one value
    per example. A function that cannot run symbolically is checked at its first real call."""
    spec = keras.KerasTensor((2, *[d if d is not None else 1 for d in output_shape[1:]]), dtype="float32")
    try:
        out = fn(spec)
        shape = tuple(out.shape)
    except Exception:
        return
    if shape not in ((2,), (2, 1)):
        raise ValueError(
            f"{who}: target={score_name(fn)} must return one score per example, shape (N,); on the output of "
            f"shape {tuple(output_shape)} it returns shape {('N', *shape[1:]) if shape else ()}. "
            "Reduce it, e.g. keras.ops.sum(y[..., k], axis=(1, 2)) for a map's class channel."
        )


def score_with(target: Any, squash: str | None) -> Any:
    """The score function the compiled code applies: `score` for class targets, `custom_score` for a callable."""
    if is_score_function(target):
        return lambda logits, _t: custom_score(target, logits, squash)
    return score


def split_inputs(model: keras.Model, x: Any, image_input: str | int | None = None) -> tuple[int, list[Any]]:
    """``(index of the image input, inputs as a list in the model's order)``.

    ``x`` is an array (single-input model), a list/tuple, or a dict keyed by
    input names. The image input is ``image_input`` (a name or an index), else
    the first 4-D input.
    """
    inputs = model.inputs
    if isinstance(image_input, int) and not isinstance(image_input, bool):
        if not 0 <= image_input < len(inputs):
            raise ValueError(f"image_input={image_input} but the model has {len(inputs)} input(s).")
        idx = image_input
    else:
        idx = L.image_input_index(model, image_input)
    if isinstance(x, dict):
        names = [getattr(getattr(t, "_keras_history", [None])[0], "name", None) for t in inputs]
        missing = [n for n in names if n not in x]
        if missing:
            raise ValueError(f"Inputs given by name {sorted(x)} lack the model's inputs {missing}.")
        xs = [x[n] for n in names]
    elif isinstance(x, (list, tuple)):
        xs = list(x)
    else:
        xs = [x]
    if len(xs) != len(inputs):
        raise ValueError(f"The model takes {len(inputs)} input(s); got {len(xs)} array(s).")
    return idx, xs
