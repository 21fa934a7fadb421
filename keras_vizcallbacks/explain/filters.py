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


def channel_summary(kernels: np.ndarray) -> np.ndarray:
    """Each filter of ``kernels`` ``(out, in, *spatial)`` summarized over its input channels:
    the norm-weighted mean ``sum_i |K_i| K_i / sum_i |K_i|`` of its per-channel kernels ``K_i``
    (``|K_i|`` the L2 norm), as ``(out, 1, *spatial)`` float32.

    The channels with the most weight dominate, so the tile shows the spatial pattern the filter
    applies to its strongest inputs; channels of opposite sign partly cancel (it is a summary,
    not the filter). A filter that is zero everywhere stays zero; NaN/Inf propagate.
    """
    k = np.asarray(kernels, dtype=np.float32)
    if k.ndim < 3:
        raise ValueError(f"kernels must have shape (out, in, *spatial), got {k.shape}")
    out, cin = k.shape[:2]
    flat = k.reshape(out, cin, -1).astype(np.float64)
    norms = np.sqrt(np.einsum("oik,oik->oi", flat, flat))
    total = norms.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(total > 0, norms / np.where(total > 0, total, 1.0), 1.0 / cin)
    summary = np.einsum("oi,oik->ok", weights, flat)
    return summary.astype(np.float32).reshape((out, 1, *k.shape[2:]))


def filters(model: keras.Model, layers: list[str] | None = None) -> dict[str, np.ndarray]:
    """``{layer path: conv_kernels(layer)}`` for the given (default: all) conv layers."""
    chosen = L.conv_layers(model) if layers is None else [L.find_layer(model, n) for n in layers]
    return {path: conv_kernels(layer) for path, layer in chosen}
