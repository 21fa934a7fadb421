"""Convolution kernels as plain arrays."""

from __future__ import annotations

import keras
import numpy as np

from keras_vizcallbacks import layers as L

_TRANSPOSE = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
_DEPTHWISE = (
    keras.layers.DepthwiseConv1D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv1D,
    keras.layers.SeparableConv2D,
)


def conv_kernels(layer: keras.layers.Layer) -> np.ndarray:
    """A conv layer's kernel as float32 ``(filters, in_channels, *spatial)``.

    * Conv1D/2D/3D ``(*k, in, out)`` -> ``(out, in, *k)``.
    * ConvNDTranspose ``(*k, out, in)`` -> ``(out, in, *k)``.
    * Depthwise / the depthwise part of Separable ``(*k, in, mult)`` ->
      ``(in * mult, 1, *k)``: one spatial filter per output channel
      (a Separable layer's 1x1 pointwise mixing is not shown).
    """
    if not isinstance(layer, L.CONV_TYPES):
        raise ValueError(f"{type(layer).__name__} `{layer.name}` is not a convolution layer.")
    if isinstance(layer, _DEPTHWISE):
        var = layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel  # Depthwise: .kernel
        k = np.asarray(keras.ops.convert_to_numpy(var), dtype=np.float32)
        n = k.ndim - 2
        k = np.moveaxis(k, (n, n + 1), (0, 1))  # (in, mult, *k)
        return np.ascontiguousarray(k.reshape((-1, 1, *k.shape[2:])))
    k = np.asarray(keras.ops.convert_to_numpy(layer.kernel), dtype=np.float32)
    n = k.ndim - 2
    if isinstance(layer, _TRANSPOSE):
        return np.ascontiguousarray(np.moveaxis(k, (n, n + 1), (0, 1)))
    return np.ascontiguousarray(np.moveaxis(k, (n + 1, n), (0, 1)))


def filters(model: keras.Model, layers: list[str] | None = None) -> dict[str, np.ndarray]:
    """``{layer path: conv_kernels(layer)}`` for the given (default: all) conv layers."""
    chosen = L.conv_layers(model) if layers is None else [L.find_layer(model, n) for n in layers]
    return {path: conv_kernels(layer) for path, layer in chosen}
