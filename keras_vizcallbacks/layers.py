"""Layer discovery, probe models and receptive-field geometry.

Keras 3 makes two things harder than they look:

* ``Sequential.output`` / ``.input`` raise on a model that was never called
  symbolically, even after ``fit``; ``.inputs`` / ``.outputs`` work.
* A layer inside a nested model (a ResNet base used as a layer) lives in the
  inner model's graph: ``keras.Model(outer.inputs, inner_layer.output)`` fails
  with "not connected". The outer graph has to be rebuilt on top of the inner
  model's tensors.

Everything here is built on one mechanism, `replay`: the model's graph is
re-run symbolically on fresh inputs, layer by layer, and a visitor may replace
any call (tap a nested model, take a pre-activation, track geometry). The user's
model and its weights are shared, never copied or mutated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np

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
ELEMENTWISE_TYPES: tuple[type, ...] = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.ELU,
    keras.layers.PReLU,
    keras.layers.Softmax,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.Add,
)


class ProbeError(ValueError):
    """A model whose layers cannot be reached symbolically (e.g. subclassed)."""


def is_model(layer: Any) -> bool:
    return isinstance(layer, keras.Model)


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


def describe_layer(path: str, layer: keras.layers.Layer) -> str:
    return f"{type(layer).__name__} `{path}`"


# --------------------------------------------------------------------------- replay

Visitor = Callable[[keras.layers.Layer, str, tuple, dict], Any]


def require_graph(model: keras.Model) -> None:
    """Raise ProbeError (a ValueError) unless ``model`` is Sequential or functional."""
    if not _has_symbolic_io(model):
        raise ProbeError(
            f"Model {model.name!r} ({type(model).__name__}) has no symbolic graph: it is a "
            "subclassed model (or one that was never built). Layer-level views (FeatureMaps, "
            "GradCAM, DecisionBoundary mode='embedding') need a functional or Sequential model; "
            "FilterGrid, Saliency, ConfusionMatrix and DecisionBoundary mode='input'/'plane' "
            "work on any model."
        )


def replay(
    model: keras.Model,
    inputs: Sequence[Any] | None = None,
    visit: Visitor | None = None,
    prefix: str = "",
) -> tuple[list[Any], list[Any]]:
    """Re-run ``model``'s graph symbolically and return ``(inputs, outputs)``.

    ``visit(layer, path, args, kwargs)`` is called instead of every layer call
    and must return that call's output; by default the layer is called. A
    visitor may recurse into a nested model with ``replay(layer, args, visit,
    prefix=path + "/")``. The weights are the model's own: nothing is cloned.
    """
    require_graph(model)
    if inputs is None:
        inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype) for t in model.inputs]
    inputs = list(inputs)
    visit = visit or (lambda layer, path, args, kwargs: layer(*args, **kwargs))

    if isinstance(model, keras.Sequential):
        x = inputs[0]
        for layer in model.layers:
            x = visit(layer, prefix + layer.name, (x,), {})
        return inputs, [x]

    produced: dict[int, list[Any]] = {}

    def call_function(layer, *args, **kwargs):
        result = visit(layer, prefix + layer.name, args, kwargs)
        produced.setdefault(id(layer), []).append(result)
        return result

    clone = keras.models.clone_model(
        model,
        input_tensors=inputs if len(inputs) > 1 else inputs[0],
        clone_function=lambda layer: layer,
        call_function=call_function,
    )
    # When ``inputs`` are not Input tensors (a nested model called on an earlier layer's
    # output), the clone's outputs are re-created on fresh inputs and disconnected from
    # ``inputs``; take the tensors the output layers actually produced instead.
    outputs = []
    for out in model.outputs:
        history = getattr(out, "_keras_history", None)
        calls = produced.get(id(history[0])) if history else None
        if not calls or len(calls) != 1:
            return inputs, list(clone.outputs)
        flat = calls[0] if isinstance(calls[0], (list, tuple)) else [calls[0]]
        outputs.append(flat[history[2]])
    return inputs, outputs


def _has_symbolic_io(model: keras.Model) -> bool:
    """Sequential and functional models have symbolic inputs/outputs; subclassed ones don't."""
    try:
        return bool(model.inputs) and bool(model.outputs)
    except Exception:
        return False


def _any_under(paths: set[str], prefix: str) -> bool:
    return any(p.startswith(prefix) for p in paths)


@dataclasses.dataclass
class Probe:
    """A model returning the outputs of chosen layers (and optionally logits).

    ``outputs(x)`` returns ``{path: array}`` for the requested layers plus
    ``"__logits__"`` / ``"__output__"`` when asked for.
    """

    model: keras.Model
    names: list[str]

    def __call__(self, x: Any, training: bool = False) -> dict[str, Any]:
        values = self.model(x, training=training)
        if not isinstance(values, (list, tuple)):
            values = [values]
        return dict(zip(self.names, values, strict=True))


LOGITS = "__logits__"
OUTPUT = "__output__"

_SQUASHING = {"softmax", "sigmoid"}


def _activation_name(fn: Any) -> str | None:
    name = getattr(fn, "__name__", None)
    return name if isinstance(name, str) else None


def output_layer(model: keras.Model) -> tuple[str, keras.layers.Layer]:
    """The layer that produces the model's (first) output, nested models searched."""
    layer = model.layers[-1] if isinstance(model, keras.Sequential) else None
    if layer is None:
        history = getattr(model.outputs[0], "_keras_history", None)
        layer = history[0] if history else model.layers[-1]
    if is_model(layer):
        path, inner = output_layer(layer)
        return f"{layer.name}/{path}", inner
    return layer.name, layer


def final_squashing(model: keras.Model) -> str | None:
    """'softmax' or 'sigmoid' when the model's output layer squashes logits, else None."""
    _, layer = output_layer(model)
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.layers.Activation):
        name = _activation_name(layer.activation)
        return name if name in _SQUASHING else None
    name = _activation_name(getattr(layer, "activation", None))
    return name if name in _SQUASHING else None


class _PreActivation(keras.layers.Layer):
    """Calls ``layer`` with its activation replaced by the identity.

    The wrapped layer's variables are used directly (shared, never copied): the
    logits follow training without any synchronisation.
    """

    def __init__(self, layer: keras.layers.Layer, **kwargs: Any) -> None:
        super().__init__(name=f"{layer.name}_logits", dtype=layer.dtype_policy, **kwargs)
        self.wrapped = layer

    def call(self, x: Any) -> Any:
        layer = self.wrapped
        if isinstance(layer, keras.layers.Dense):
            kernel = keras.ops.cast(layer.kernel, x.dtype)
            y = keras.ops.matmul(x, kernel)
            if layer.use_bias:
                y = y + keras.ops.cast(layer.bias, x.dtype)
            return y
        saved = layer.activation
        layer.activation = keras.activations.linear
        try:
            return layer.call(x)
        finally:
            layer.activation = saved

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.wrapped.compute_output_shape(input_shape)


def build_probe(
    model: keras.Model,
    paths: Sequence[str] = (),
    *,
    logits: bool = False,
    output: bool = False,
    inputs_of: Sequence[str] = (),
) -> Probe:
    """One model that returns several layers' outputs from a single forward pass.

    ``paths`` are layer paths as given by `iter_layers` (nested models
    allowed). ``inputs_of`` taps the *input* of those layers instead of their
    output (key ``"<path>:input"``). ``logits=True`` adds the pre-softmax /
    pre-sigmoid value of the model's output under ``LOGITS``; ``output=True``
    adds the model's output under ``OUTPUT``.
    """
    require_graph(model)
    wanted = set(paths) | set(inputs_of)
    table = dict(iter_layers(model))
    for p in wanted:
        if p not in table:
            raise ValueError(f"No layer path {p!r} in model {model.name!r}.")
    out_path, _out_layer = output_layer(model)
    squash = final_squashing(model) if logits else None

    # Fast path: every tapped layer is top level and no logits surgery is needed.
    need_replay = bool(squash) or any("/" in p for p in wanted)
    taps: dict[str, Any] = {}
    if not need_replay:
        try:
            for p in paths:
                taps[p] = table[p].output
            for p in inputs_of:
                taps[f"{p}:input"] = table[p].input
            inputs, outs = list(model.inputs), list(model.outputs)
        except (AttributeError, ValueError):  # a layer called twice has no single output
            need_replay = True
    if need_replay:
        taps.clear()

        def visit(layer, path, args, kwargs):
            if path in inputs_of:
                taps[f"{path}:input"] = args[0]
            if is_model(layer) and (_any_under(wanted, path + "/") or (squash and out_path.startswith(path + "/"))):
                _, result = replay(layer, list(args), visit, prefix=path + "/")
                result = result[0] if len(result) == 1 else result
            elif squash and path == out_path:
                if isinstance(layer, (keras.layers.Activation, keras.layers.Softmax)):
                    taps[LOGITS] = args[0]
                else:
                    taps[LOGITS] = _PreActivation(layer)(args[0])
                result = layer(*args, **kwargs)
            else:
                result = layer(*args, **kwargs)
            if path in paths:
                taps[path] = result
            return result

        inputs, outs = replay(model, visit=visit)
    names: list[str] = []
    values: list[Any] = []
    for p in paths:
        names.append(p)
        values.append(taps[p])
    for p in inputs_of:
        names.append(f"{p}:input")
        values.append(taps[f"{p}:input"])
    if logits:
        names.append(LOGITS)
        values.append(taps.get(LOGITS, outs[0]))
    if output:
        names.append(OUTPUT)
        values.append(outs[0])
    probe_model = keras.Model(inputs if len(inputs) > 1 else inputs[0], values, name=f"{model.name}_probe")
    return Probe(probe_model, names)


# --------------------------------------------------------------------------- geometry


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where the cells of a layer's spatial output sit on the model input.

    Along each spatial axis, cell ``i`` is centred on input coordinate
    ``offset + i * stride`` (pixel centres are integers, pixel 0 at 0.0) and
    sees ``size`` input pixels.
    """

    stride: tuple[float, ...]
    offset: tuple[float, ...]
    size: tuple[float, ...]

    def centres(self, shape: Sequence[int]) -> list[np.ndarray]:
        """Input coordinates of the cell centres of a map of ``shape``."""
        return [o + s * np.arange(n) for o, s, n in zip(self.offset, self.stride, shape, strict=True)]


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _layer_window(layer: keras.layers.Layer, n: int) -> tuple[tuple, tuple, tuple, str] | None:
    """(kernel, stride, dilation, padding) of a conv or pooling layer, else None."""
    if isinstance(layer, CONV_TYPES):
        k = _tuple(layer.kernel_size, n)
        s = _tuple(layer.strides, n)
        d = _tuple(getattr(layer, "dilation_rate", 1), n)
        return k, s, d, layer.padding
    if isinstance(layer, POOL_TYPES):
        return _tuple(layer.pool_size, n), _tuple(layer.strides, n), (1,) * n, layer.padding
    return None


_PAD_TYPES = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D)
_CROP_TYPES = (keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D)


def _layer_shift(layer: keras.layers.Layer, n: int) -> tuple[int, ...] | None:
    """Pixels added before each spatial axis by zero padding (cropping removes: negative), else None."""
    if isinstance(layer, _PAD_TYPES):
        spec, sign = layer.padding, 1
    elif isinstance(layer, _CROP_TYPES):
        spec, sign = layer.cropping, -1
    else:
        return None
    left = (spec[0],) if n == 1 else tuple(p[0] for p in spec)
    return tuple(sign * int(v) for v in left)


def _spatial_dims(shape: Sequence[Any], data_format: str = "channels_last") -> tuple:
    dims = tuple(shape[1:-1]) if data_format == "channels_last" else tuple(shape[2:])
    return dims


def geometry(model: keras.Model, path: str) -> Geometry:
    """Receptive-field geometry of layer ``path``'s output on the model's input.

    Computed once from the layer stack (kernel sizes, strides, dilations,
    padding) by replaying the graph; merges take their widest branch.
    """
    in_shape = model.inputs[image_input_index(model)].shape
    n = len(in_shape) - 2
    start = Geometry((1.0,) * n, (0.0,) * n, (1.0,) * n)
    geo: dict[int, Geometry] = {}
    found: dict[str, Geometry] = {}

    def first_tensor(obj: Any) -> list[Any]:
        if isinstance(obj, (list, tuple)):
            return [t for o in obj for t in first_tensor(o)]
        return [obj] if hasattr(obj, "shape") else []

    def visit(layer, lpath, args, kwargs):
        ins = first_tensor(args)
        known = [geo[id(t)] for t in ins if id(t) in geo]
        g = max(known, key=lambda q: q.size) if known else start
        if is_model(layer) and path.startswith(lpath + "/"):
            inner_inputs = list(args) if len(args) > 1 else [args[0]]
            for t in first_tensor(inner_inputs):
                geo[id(t)] = g
            _, outs = replay(layer, inner_inputs, visit, prefix=lpath + "/")
            result = outs[0] if len(outs) == 1 else outs
        else:
            result = layer(*args, **kwargs)
        window = _layer_window(layer, n)
        if window is not None and ins:
            k, s, d, pad = window
            in_dims = _spatial_dims(ins[0].shape, getattr(layer, "data_format", "channels_last"))
            stride, offset, size = [], [], []
            for ax in range(n):
                keff = (k[ax] - 1) * d[ax] + 1
                if pad == "same" and in_dims[ax] is not None:
                    out_n = -(-in_dims[ax] // s[ax])
                    pad_left = max((out_n - 1) * s[ax] + keff - in_dims[ax], 0) // 2
                else:
                    pad_left = 0
                offset.append(g.offset[ax] + ((keff - 1) / 2 - pad_left) * g.stride[ax])
                size.append(g.size[ax] + (keff - 1) * g.stride[ax])
                stride.append(g.stride[ax] * s[ax])
            g = Geometry(tuple(stride), tuple(offset), tuple(size))
        shift = _layer_shift(layer, n)
        if shift is not None:  # ZeroPadding / Cropping move the grid, not its stride
            g = Geometry(g.stride, tuple(o - p * s for o, p, s in zip(g.offset, shift, g.stride)), g.size)
        for t in first_tensor(result):
            geo[id(t)] = g
        if lpath == path:
            found[path] = g
        return result

    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype) for t in model.inputs]
    for t in inputs:
        geo[id(t)] = start
    replay(model, inputs, visit)
    if path not in found:
        raise ValueError(f"Layer {path!r} was not reached while replaying model {model.name!r}.")
    return found[path]


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
