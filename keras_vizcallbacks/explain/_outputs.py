"""Model outputs -> class probabilities, the number of classes, single-sigmoid (binary) outputs.

One home for what the views read from a classifier's output; the callers differ
on purpose and keep their behaviour:

* `logits_to_probabilities`: from *logits* (the gradient views take the
  pre-softmax value), squashed by the model's final activation.
* `to_probabilities`: from the model's *outputs*, which may already be
  probabilities (decision regions, confusion matrix, the shared data pass).
* `n_classes` raises for an output that is not ``(batch, classes)`` (the
  gradient views need one); `n_outputs` returns None when the model's output
  shape is unknown (the data views then count the labels).

A single output unit is a binary classifier: two classes, ``[1 - p, p]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import layers as L


def _binary(p: np.ndarray) -> np.ndarray:
    """One sigmoid probability per row -> two-class rows ``[1 - p, p]``."""
    return np.stack([1.0 - p, p], axis=1)


def _classes_of_units(units: Any) -> int:
    return 2 if int(units) == 1 else int(units)


# --------------------------------------------------------------------------- number of classes


def n_classes(logits_shape: Sequence[Any]) -> int:
    """Classes of a classifier whose logits have ``logits_shape`` (one sigmoid unit = 2 classes).

    Raises ValueError unless the shape is ``(batch, classes)``.
    """
    k = logits_shape[-1]
    if len(logits_shape) != 2 or k is None:
        raise ValueError(
            f"Gradient views explain a classifier whose output is (batch, classes); this model's "
            f"output has shape {tuple(logits_shape)}."
        )
    return _classes_of_units(k)


def n_outputs(model: keras.Model, *, infer_shape: bool = False, output: int | None = None) -> int | None:
    """Number of classes the model scores (a 1-unit output is binary: 2), if its output shape is known.

    ``output``: the index of the output (multi-output models); None for a model's only
    output, and None is returned for a model with several outputs and no ``output``.
    ``infer_shape=True``: a model without symbolic outputs (subclassed) is asked
    for the output shape of its input shape (``compute_output_shape``).
    """
    try:
        outs = model.outputs
        if output is None and len(outs) > 1:
            return None
        units = outs[output or 0].shape[-1]
    except Exception:
        if not infer_shape:
            return None
        try:
            units = model.compute_output_shape((1, *model.input_shape[1:]))[-1]
        except Exception:
            return None
    if units is None:
        return None
    return _classes_of_units(units)


def squashing(model: keras.Model, output: int = 0) -> str | None:
    """The final squashing (``"softmax"``/``"sigmoid"``) of output number ``output``; None when unknown
    (subclassed models: `to_probabilities` then decides from the values)."""
    try:
        return L.final_squashing(model, output)
    except Exception:
        return None


_REGRESSION_LOSSES = ("squared", "absolute", "huber", "log_cosh", "logcosh", "mse", "mae", "mape", "msle", "poisson")
_CLASSIFICATION_LOSSES = ("crossentropy", "hinge", "focal")


def _loss_of(model: keras.Model, output: int) -> str | None:
    """The lower-case name of the loss compiled for output number ``output``, if one is known."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple)):
        loss = loss[output] if output < len(loss) else None
    elif isinstance(loss, dict):
        names = L.output_names(model)
        name = names[output] if output < len(names) else None
        loss = loss.get(name) if name in loss else (list(loss.values())[output] if output < len(loss) else None)
    if loss is None:
        return None
    if isinstance(loss, str):
        return loss.lower()
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return str(name).lower()


def check_classifier(model: keras.Model, output: int, who: str) -> None:
    """ValueError unless output number ``output`` of ``model`` is a classifier's (batch, classes) output.

    Refused: an output whose shape is not (batch, classes); one linear unit (not a sigmoid)
    unless its compiled loss is a cross-entropy; an output compiled with a regression loss
    (mean squared / absolute error, Huber, ...). Models without symbolic outputs pass.
    """
    try:
        outs = model.outputs
        shape = tuple(outs[output].shape)
    except Exception:
        return
    names = L.output_names(model)
    what = f"output {output} {names[output]!r}" if len(outs) > 1 else f"the output {names[output]!r}"
    others = f" Outputs: {L.describe_outputs(model)}." if len(outs) > 1 else ""
    loss = _loss_of(model, output)
    if len(shape) != 2 or shape[-1] is None:
        raise ValueError(
            f"{who} needs a classifier's output (batch, classes); {what} of model {model.name!r} has shape "
            f"{shape}.{others}"
        )
    regression_loss = loss is not None and any(k in loss for k in _REGRESSION_LOSSES)
    classification_loss = loss is not None and any(k in loss for k in _CLASSIFICATION_LOSSES)
    squash = squashing(model, output)
    if regression_loss or (shape[-1] == 1 and squash != "sigmoid" and not classification_loss):
        why = f"compiled with the regression loss {loss!r}" if regression_loss else "one linear unit (no sigmoid)"
        raise ValueError(
            f"{who} draws classes, but {what} of model {model.name!r} is a regression output ({why}).{others} "
            "Pass output=<a classifier output>, or give a binary classifier a sigmoid unit."
        )


def check_one_output(model: keras.Model, x: Any, output: Any, who: str) -> None:
    """ValueError when ``output`` is not given and ``model``, which has no symbolic outputs (subclassed),
    returns several: it is called once on the first example of ``x`` (an array, a list/tuple or a dict
    of arrays) to see. A model with symbolic outputs is checked by `layers.output_index` instead."""
    from keras_vizcallbacks.explain._batches import take_rows  # _batches imports this module

    if output is not None or L.output_names(model):  # names only for a model with symbolic outputs
        return
    try:
        out = model(take_rows(x, 0, 1), training=False)
    except Exception:  # data the model cannot take: the view's own checks say so
        return
    if not isinstance(out, (list, tuple, dict)):
        return
    leaves = keras.tree.flatten(out)
    if len(leaves) < 2:
        return
    keys = sorted(out) if isinstance(out, dict) else None  # keras.tree.flatten orders a dict by its keys
    listed = ", ".join(
        f"{i}{f' {keys[i]!r}' if keys and len(keys) == len(leaves) else ''} {tuple(t.shape)}"
        for i, t in enumerate(leaves)
    )
    raise ValueError(
        f"{who}: model {model.name!r} ({type(model).__name__}) returns {len(leaves)} outputs: {listed}. "
        "Pass output=<index> to choose the one this view explains (in that order)."
    )


# --------------------------------------------------------------------------- probabilities


def logits_to_probabilities(logits: np.ndarray, squash: str | None) -> np.ndarray:
    """Class probabilities (N, classes) from logits, in numpy (float64 for stability).

    A softmax model's probabilities are the softmax of its logits; one sigmoid
    unit gives ``[1 - p, p]``; several sigmoid units are independent; an
    unsquashed output is read as logits (softmax).
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
        return _binary(p)
    if squash == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - np.max(np.where(np.isfinite(x), x, -np.inf), axis=1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=1, keepdims=True)


def to_probabilities(out: Any, squash: str | None) -> np.ndarray:
    """Model outputs -> class probabilities (N, C), C >= 2.

    One output unit is a binary classifier (sigmoid, or a logit). Several units
    are used as they are when the model ends in softmax/sigmoid (or the values
    already look like probabilities), else passed through a softmax.
    """
    a = np.asarray(out, dtype=np.float64)
    a = a.reshape(len(a), -1)
    if a.shape[1] == 1:
        p = a[:, 0] if squash == "sigmoid" else _sigmoid(a[:, 0])
        return _binary(p)
    if squash in ("softmax", "sigmoid"):
        return a
    finite = a[np.isfinite(a)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        sums = np.sum(a, axis=1)
        if np.all(np.abs(sums[np.isfinite(sums)] - 1.0) < 1e-3):
            return a
    with np.errstate(invalid="ignore", over="ignore"):
        return _softmax(a)


def classes_and_confidence(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmax and max of probability rows; NaN rows give class 0 and confidence NaN."""
    p = np.asarray(probs, dtype=np.float64)
    cls = np.argmax(np.nan_to_num(p, nan=-np.inf), axis=1)
    conf = np.take_along_axis(p, cls[:, None], axis=1)[:, 0]
    return cls.astype(np.int64), conf.astype(np.float32)
