"""Splitting a model at a layer: the last Dense layer, and the head after a layer."""

from __future__ import annotations

from typing import Any

import keras

from keras_vizcallbacks.layers.discovery import is_model, iter_layers
from keras_vizcallbacks.layers.probes import replay


def last_dense(model: keras.Model) -> tuple[str, keras.layers.Layer] | None:
    """``(path, layer)`` of the last ``Dense`` layer in graph order, nested models searched; None if none."""
    found = None
    for path, layer in iter_layers(model):
        if isinstance(layer, keras.layers.Dense):
            found = (path, layer)
    return found


def build_head(model: keras.Model, path: str, *, use_input: bool, output: int = 0) -> keras.Model:
    """A model from layer ``path``'s output (or input, ``use_input=True``) to the model's output
    (number ``output`` of a multi-output model).

    It shares the model's layers (and weights). ``ValueError`` when the output
    does not depend on that tensor alone (a branch bypasses the layer).
    """
    holder: dict[str, Any] = {}

    def visit(layer, lpath, args, kwargs):
        if is_model(layer) and path.startswith(lpath + "/"):
            _, outs = replay(layer, list(args), visit, prefix=lpath + "/")
            return outs[0] if len(outs) == 1 else outs
        result = layer(*args, **kwargs)
        if lpath == path:
            holder["input"] = args[0] if use_input else result
        return result

    _, outs = replay(model, visit=visit)
    if "input" not in holder:
        raise ValueError(f"layer {path!r} was not reached while replaying model {model.name!r}.")
    try:
        return keras.Model(holder["input"], outs[output], name=f"{model.name}_head")
    except Exception as e:
        raise ValueError(
            f"mode='embedding': the model's output does not depend on layer {path!r} alone (a branch "
            f"bypasses it), so the layers after it cannot be applied to its PCA slice ({e}). Pick a "
            "layer that every path to the output goes through."
        ) from None
