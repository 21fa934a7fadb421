"""Finding layers: by type, by name or nested path, the output layer and its squashing, the image input.

A path is the layer name, prefixed by the names of the models that contain it
(``"resnet50/conv5_block3_out"``). Keras 3 pitfall handled here:
``Sequential.output`` / ``.input`` raise on a model that was never called
symbolically, even after ``fit``; ``.inputs`` / ``.outputs`` work.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras

CONV_TYPES: tuple[type, ...] = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)

POOL_TYPES: tuple[type, ...] = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)

# Layers that only change values elementwise: a conv layer's "activation" for
# the purpose of choosing a Grad-CAM layer.
ACTIVATION_TYPES: tuple[type, ...] = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
)
ELEMENTWISE_TYPES: tuple[type, ...] = (
    *ACTIVATION_TYPES,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Add,
)


class ProbeError(ValueError):
    """A model whose layers cannot be reached symbolically (e.g. subclassed)."""


def is_model(layer: Any) -> bool:
    return isinstance(layer, keras.Model)


def has_graph(model: keras.Model) -> bool:
    """Sequential and functional models have symbolic inputs/outputs; subclassed ones don't."""
    try:
        return bool(model.inputs) and bool(model.outputs)
    except Exception:
        return False


def require_graph(model: keras.Model) -> None:
    """Raise ProbeError (a ValueError) unless ``model`` is Sequential or functional."""
    if not has_graph(model):
        raise ProbeError(
            f"Model {model.name!r} ({type(model).__name__}) has no symbolic graph: it is a "
            "subclassed model (or one that was never built). Layer-level views (FeatureMaps, "
            "GradCAM, DecisionBoundary mode='embedding') need a functional or Sequential model; "
            "FilterGrid, Saliency, ConfusionMatrix and DecisionBoundary mode='input'/'plane' "
            "work on any model."
        )


def iter_layers(model: keras.Model, prefix: str = "") -> Iterator[tuple[str, keras.layers.Layer]]:
    """Yield ``(path, layer)`` for every layer, depth first, nested models included.

    A path is the layer name, prefixed by the names of the models that contain
    it (``"resnet50/conv5_block3_out"``). Nested models are yielded themselves
    before their layers.
    """
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        yield path, layer
        if is_model(layer):
            yield from iter_layers(layer, prefix=f"{path}/")


def check_channels_last_input(model: keras.Model, who: str) -> None:
    """ValueError when the first layer of ``model`` with a ``data_format`` (a convolution or pooling
    layer, nested models searched in order) reads ``"channels_first"``: the views that draw their
    inputs (images, 1-D signals) read them as (batch, ..., channels), and a channels-first input would
    be drawn with its axes swapped (a 2-channel, 64-step signal as 2 steps of 64 channels)."""
    for path, layer in iter_layers(model):
        fmt = getattr(layer, "data_format", None)
        if fmt is None or is_model(layer):
            continue
        if fmt == "channels_first":
            raise ValueError(
                f"{who}: model {model.name!r} reads its input channels-first (layer {path!r} has "
                "data_format='channels_first'); this view draws inputs laid out (batch, ..., channels) only. "
                "Build the model with data_format='channels_last' (Keras' default), or leave this view out."
            )
        return


def all_layer_paths(model: keras.Model) -> list[str]:
    """Paths of every layer except the input layers, nested models included."""
    return [p for p, layer in iter_layers(model) if not isinstance(layer, keras.layers.InputLayer)]


def conv_layers(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """All convolution layers, nested models searched, in graph order."""
    return [(p, layer) for p, layer in iter_layers(model) if isinstance(layer, CONV_TYPES)]


def _short_names(model: keras.Model) -> dict[str, list[str]]:
    """Map a bare layer name to the full paths that end with it."""
    names: dict[str, list[str]] = {}
    for path, _ in iter_layers(model):
        names.setdefault(path.rsplit("/", 1)[-1], []).append(path)
    return names


def find_layer(model: keras.Model, name: str) -> tuple[str, keras.layers.Layer]:
    """Resolve a layer by full path or by bare name (if unique). Raises ValueError."""
    table = dict(iter_layers(model))
    if name in table:
        return name, table[name]
    matches = _short_names(model).get(name, [])
    if len(matches) == 1:
        return matches[0], table[matches[0]]
    if len(matches) > 1:
        raise ValueError(f"Layer name {name!r} is ambiguous in model {model.name!r}: use one of {matches}.")
    convs = [p for p, _ in conv_layers(model)]
    hint = f"Conv layers: {convs}." if convs else f"Layers: {list(table)[:40]}."
    raise ValueError(f"No layer named {name!r} in model {model.name!r}. {hint}")


def spatial_output_layers(model: keras.Model) -> list[tuple[str, keras.layers.Layer]]:
    """Layers whose output has spatial dimensions (rank >= 3 with batch), nested searched."""
    result = []
    for path, layer in iter_layers(model):
        if is_model(layer) or isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            shape = layer.output.shape
        except Exception:
            continue
        if len(shape) >= 3:
            result.append((path, layer))
    return result


def image_input_index(model: keras.Model, name: str | None = None) -> int:
    """Index of the image input: the one called ``name``, else the first 4-D input."""
    inputs = model.inputs
    if name is not None:
        names = [t.name for t in inputs]
        # KerasTensor names are unique ids; the Input layer's name is what users set.
        layer_names = [getattr(getattr(t, "_keras_history", [None])[0], "name", None) for t in inputs]
        for i, (a, b) in enumerate(zip(names, layer_names, strict=True)):
            if name in (a, b):
                return i
        raise ValueError(f"No model input named {name!r}; inputs are {layer_names}.")
    for i, t in enumerate(inputs):
        if len(t.shape) == 4:
            return i
    return 0


# --------------------------------------------------------------------------- the output layer

_SQUASHING = {"softmax", "sigmoid"}


def _activation_name(fn: Any) -> str | None:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else None


def _symbolic_outputs(model: keras.Model) -> list[Any] | None:
    try:
        outs = list(model.outputs)
    except Exception:
        return None
    return outs or None


def output_names(model: keras.Model) -> list[str]:
    """The names of the model's outputs, in order: the name of the layer producing each
    (the names ``model.fit`` keys losses and labels by). Empty for a model without symbolic outputs."""
    outs = _symbolic_outputs(model)
    if outs is None:
        return []
    names = []
    for i, t in enumerate(outs):
        history = getattr(t, "_keras_history", None)
        names.append(getattr(history[0], "name", f"output_{i}") if history else f"output_{i}")
    return names


def describe_outputs(model: keras.Model) -> str:
    """``0 'box' (None, 1), 1 'class' (None, 3) softmax``: each output's index, name, shape and squashing."""
    outs = _symbolic_outputs(model) or []
    parts = []
    for i, (name, t) in enumerate(zip(output_names(model), outs, strict=True)):
        try:
            squash = final_squashing(model, i)
        except Exception:
            squash = None
        parts.append(f"{i} {name!r} {tuple(t.shape)}{' ' + squash if squash else ''}")
    return ", ".join(parts)


def output_index(model: keras.Model, output: Any = None) -> int:
    """The index of the output ``output`` names: an index, an output name (the output layer's name).

    ``None`` is the only output of a single-output model; a model with several outputs
    must be told which one (ValueError listing them). A model without symbolic outputs
    (subclassed) takes an index (None: 0), applied to what its call returns.
    """
    if isinstance(output, bool):
        raise ValueError(f"output must be an output name or index, got {output!r}.")
    outs = _symbolic_outputs(model)
    if outs is None:
        if output is None:
            return 0
        if isinstance(output, int) or (hasattr(output, "__index__") and not isinstance(output, str)):
            return int(output)
        raise ValueError(
            f"output={output!r}: model {model.name!r} ({type(model).__name__}) has no symbolic outputs to "
            "look a name up in; pass the output's index in what the model returns."
        )
    n = len(outs)
    if output is None:
        if n == 1:
            return 0
        raise ValueError(
            f"Model {model.name!r} has {n} outputs: {describe_outputs(model)}. Pass output=<name or index> "
            "to choose the one this view explains."
        )
    if isinstance(output, str):
        names = output_names(model)
        tensor_names = [getattr(t, "name", None) for t in outs]
        for i, (a, b) in enumerate(zip(names, tensor_names, strict=True)):
            if output in (a, b):
                return i
        for i in range(n):  # a nested model's output layer, by its path or name
            path, layer = output_layer(model, i)
            if output in (path, layer.name):
                return i
        raise ValueError(f"Model {model.name!r} has no output named {output!r}; outputs: {describe_outputs(model)}.")
    try:
        i = int(output.__index__())
    except Exception:
        raise ValueError(f"output must be an output name or index, got {output!r}.") from None
    if not 0 <= i < n:
        raise ValueError(
            f"output={i} is out of range: model {model.name!r} has {n} output(s): {describe_outputs(model)}."
        )
    return i


def output_layer(model: keras.Model, output: int = 0) -> tuple[str, keras.layers.Layer]:
    """The layer that produces the model's output number ``output`` (default the first), nested models searched."""
    layer = model.layers[-1] if isinstance(model, keras.Sequential) else None
    inner_index = 0
    if layer is None:
        try:
            outputs = model.outputs
        except (AttributeError, ValueError):  # a subclassed model has no symbolic outputs
            outputs = None
        history = getattr(outputs[output], "_keras_history", None) if outputs else None
        layer = history[0] if history else model.layers[-1]
        inner_index = int(history[2]) if history else 0
    if is_model(layer):
        path, inner = output_layer(layer, inner_index if len(layer.outputs) > inner_index else 0)
        return f"{layer.name}/{path}", inner
    return layer.name, layer


def final_squashing(model: keras.Model, output: int = 0) -> str | None:
    """'softmax' or 'sigmoid' when the layer of output number ``output`` squashes logits, else None."""
    _, layer = output_layer(model, output)
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.Activation):
        name = _activation_name(layer.activation)
        return name if name in _SQUASHING else None
    name = _activation_name(getattr(layer, "activation", None))
    return name if name in _SQUASHING else None
