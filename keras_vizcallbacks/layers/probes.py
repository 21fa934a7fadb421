"""Probe models: the model's graph re-run symbolically, with chosen tensors tapped.

Keras 3 pitfall handled here: a layer inside a nested model (a ResNet base used
as a layer) lives in the inner model's graph, so
``keras.Model(outer.inputs, inner_layer.output)`` fails with "not connected".
The outer graph has to be rebuilt on top of the inner model's tensors.

Everything is built on one mechanism, `replay`: the model's graph is re-run
symbolically on fresh inputs, layer by layer, and a visitor may replace any
call (tap a nested model, take a pre-activation, track geometry). The user's
model and its weights are shared, never copied or mutated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras

from keras_vizcallbacks.layers.discovery import (
    ACTIVATION_TYPES,
    final_squashing,
    is_model,
    iter_layers,
    output_layer,
    require_graph,
)

Visitor = Callable[[keras.layers.Layer, str, tuple, dict], Any]


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

    # clone_model copies a compiled model's compile config onto the clone, serializing it, and Keras'
    # serializer imports TensorFlow whenever it is installed (to check for a TensorShape), even under
    # JAX or PyTorch. A functional model over the same graph (the same layers and nodes), never
    # compiled, replays exactly the same calls.
    source = model
    if getattr(model, "compiled", False):
        ins, outs = list(model.inputs), list(model.outputs)
        source = keras.Model(ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0], name=model.name)
    clone = keras.models.clone_model(
        source,
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


def output_key(index: int) -> str:
    """A probe's name for the model's output number ``index``: `OUTPUT` for the first, ``"__output_<i>__"``
    for the others (`build_probe`'s ``outputs``)."""
    return OUTPUT if int(index) == 0 else f"__output_{int(index)}__"


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


def pre_activation(layer: keras.layers.Layer, x: Any) -> Any:
    """``layer``'s output on the symbolic tensor ``x`` before its activation.

    A layer with a non-linear ``activation`` (``Conv2D(..., activation="relu")``)
    is called with the identity in its place (weights shared); an activation
    layer (``ReLU``, ``Activation``, ...) gives its input; any other layer
    (linear conv, batch norm, pooling) its own output.
    """
    if isinstance(layer, ACTIVATION_TYPES):
        return x
    activation = getattr(layer, "activation", None)
    if activation is None or activation is keras.activations.linear or not hasattr(layer, "call"):
        return layer(x)
    return _PreActivation(layer)(x)


def build_probe(
    model: keras.Model,
    paths: Sequence[str] = (),
    *,
    logits: bool = False,
    output: bool = False,
    inputs_of: Sequence[str] = (),
    pre_activation_of: Sequence[str] = (),
    around: Mapping[str, Callable[[Any], Any]] | None = None,
    output_index: int = 0,
    outputs: Sequence[int] = (),
) -> Probe:
    """One model that returns several layers' outputs from a single forward pass.

    ``paths`` are layer paths as given by `iter_layers` (nested models
    allowed). ``inputs_of`` taps the *input* of those layers instead of their
    output (key ``"<path>:input"``). ``pre_activation_of`` taps those layers'
    output before their activation (key ``"<path>:pre"``, see
    `pre_activation`). ``logits=True`` adds the pre-softmax / pre-sigmoid
    value of the model's output under ``LOGITS``; ``output=True`` adds the
    model's output under ``OUTPUT``. ``output_index`` says which of a multi-output
    model's outputs ``logits`` and ``output`` take (default the first); ``outputs``
    adds the outputs with these indices under `output_key` names. Outputs come in
    that order: ``paths``, ``inputs_of``, ``pre_activation_of``, logits, output, outputs.

    ``around`` maps layer paths to functions of a tensor: the output of layer
    ``path`` goes through ``around[path]`` before the rest of the graph uses it
    (the tap under ``path`` is still the layer's own output). `split_at` puts a
    layer's output through its delta slot this way. It is called once per call
    of the layer in the graph.
    """
    require_graph(model)
    wanted = set(paths) | set(inputs_of) | set(pre_activation_of)
    table = dict(iter_layers(model))
    for p in wanted:
        if p not in table:
            raise ValueError(f"No layer path {p!r} in model {model.name!r}.")
    out_path, _out_layer = output_layer(model, output_index)
    squash = final_squashing(model, output_index) if logits else None

    # Fast path: every tapped layer is top level and no logits surgery is needed.
    around = dict(around or {})
    need_replay = bool(squash) or bool(around) or bool(pre_activation_of) or any("/" in p for p in wanted)
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
            if path in pre_activation_of:
                taps[f"{path}:pre"] = pre_activation(layer, args[0])
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
            if path in around:
                result = around[path](result)
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
    for p in pre_activation_of:
        names.append(f"{p}:pre")
        values.append(taps[f"{p}:pre"])
    if logits:
        names.append(LOGITS)
        values.append(taps.get(LOGITS, outs[output_index]))
    if output:
        names.append(OUTPUT)
        values.append(outs[output_index])
    for i in outputs:
        names.append(output_key(i))
        values.append(outs[i])
    probe_model = keras.Model(inputs if len(inputs) > 1 else inputs[0], values, name=f"{model.name}_probe")
    return Probe(probe_model, names)
