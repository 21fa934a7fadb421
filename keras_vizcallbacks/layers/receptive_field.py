"""Receptive-field geometry: where the cells of a layer's spatial output sit on the model input.

Computed once from the layer stack (kernel sizes, strides, dilations, padding,
zero padding and cropping) by replaying the graph; shared by everything that
places a layer's map on the input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks.layers.discovery import CONV_TYPES, POOL_TYPES, image_input_index, is_model
from keras_vizcallbacks.layers.probes import replay


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
