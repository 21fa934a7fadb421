"""Placing a layer's maps on the input by receptive-field geometry, and min-max scaling them.

Cell (r, c) is centred on input pixel ``offset + stride * (r, c)`` (see
`keras_vizcallbacks.layers.geometry`); pixels between centres are interpolated
bilinearly (clamped at the borders). A plain resize would shift the peak by
several pixels on small inputs.
"""

from __future__ import annotations

import numpy as np

from keras_vizcallbacks import layers as L


def _interp_matrix(centres: np.ndarray, n_out: int) -> np.ndarray:
    """(n_out, n_cells): bilinear weights of each output pixel on the cells whose
    centres are at ``centres`` (increasing), constant beyond the first/last centre."""
    n = len(centres)
    out = np.zeros((n_out, n), dtype=np.float64)
    if n == 1:
        out[:, 0] = 1.0
        return out
    t = np.interp(np.arange(n_out, dtype=np.float64), centres, np.arange(n, dtype=np.float64))
    i0 = np.clip(np.floor(t).astype(np.intp), 0, n - 2)
    frac = t - i0
    rows = np.arange(n_out)
    out[rows, i0] = 1.0 - frac
    out[rows, i0 + 1] += frac
    return out


def place_on_input(maps: np.ndarray, geometry: L.Geometry, size: tuple[int, int]) -> np.ndarray:
    """Upsample layer maps (N, h, w) to the input size (H, W) by receptive-field geometry.

    Cell (r, c) lands on input pixel ``geometry.offset + geometry.stride * (r, c)``;
    pixels between cell centres are interpolated bilinearly, pixels beyond the
    outermost centres take the border cell's value.
    """
    maps = np.asarray(maps, dtype=np.float64)
    cy, cx = geometry.centres(maps.shape[1:3])
    wy = _interp_matrix(cy, int(size[0]))
    wx = _interp_matrix(cx, int(size[1]))
    # separable: rows, then columns (two matrix products; an einsum over all five indices
    # costs n*H*W*h*w multiply-adds, this n*H*h*w + n*H*w*W)
    return ((wy @ maps) @ wx.T).astype(np.float32)


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Min-max scale each map to [0, 1]; a constant (or empty) map becomes zeros. NaN-safe."""
    m = np.nan_to_num(np.asarray(maps, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    axes = tuple(range(1, m.ndim))
    lo = m.min(axis=axes, keepdims=True)
    span = m.max(axis=axes, keepdims=True) - lo
    out = np.where(span > 0, (m - lo) / np.where(span > 0, span, 1.0), 0.0)
    return out.astype(np.float32)
