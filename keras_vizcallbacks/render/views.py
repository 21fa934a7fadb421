"""Composite images of the foundation views: filter grids and feature-map grids.

Inputs are plain arrays; outputs uint8 RGB images sized for a TensorBoard card
(roughly 256-1024 px on the long side).
"""

from __future__ import annotations

import functools

import numpy as np

from keras_vizcallbacks.render.color import MARKER, heatmap, levels, lut, normalize, to_rgb
from keras_vizcallbacks.render.grid import filled, grid_shape, scale_factor, tile, upscale
from keras_vizcallbacks.render.text import caption

GRID_BG = (40, 40, 40)  # between filters / samples
TILE_BG = (128, 128, 128)  # between the channels of one filter


def kernels_2d(kernels: np.ndarray) -> np.ndarray:
    """(out, in, *spatial) -> (out, in, h, w): 1-D kernels become one row,
    3-D kernels show their depth slices side by side."""
    k = np.asarray(kernels)
    if k.ndim == 3:
        return k[:, :, None, :]
    if k.ndim == 5:
        out, cin, d, h, w = k.shape
        return k.transpose(0, 1, 3, 2, 4).reshape(out, cin, h, d * w)
    if k.ndim != 4:
        raise ValueError(f"kernels must have shape (out, in, *spatial) with 1-3 spatial axes, got {k.shape}")
    return k


def rgb_filters(kernels: np.ndarray, *, target: int = 384) -> tuple[np.ndarray, float]:
    """First-layer filters over 3 input channels drawn as colour images.

    One scale for the whole layer, centred on zero (grey = 0); returns
    ``(image, scale)`` where ``scale = max |w|``.
    """
    k = kernels_2d(kernels)
    if k.shape[1] != 3:
        raise ValueError(f"rgb_filters needs 3 input channels, got {k.shape[1]}")
    scaled, invalid = normalize(k, symmetric=True)
    img = np.round(scaled.transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)  # (out, h, w, 3)
    bad = invalid.transpose(0, 2, 3, 1).any(axis=-1)
    img[bad] = MARKER
    _, cols = grid_shape(len(img))
    f = scale_factor(max(img.shape[1:3]) + 1, max(8, target // max(cols, 1)))
    grid = tile(upscale(img, f), pad=max(1, f // 4), pad_value=GRID_BG, border=True)
    return grid, _absmax(k)


def heatmap_filters(kernels: np.ndarray, *, cmap: str = "RdBu_r", target: int = 512) -> tuple[np.ndarray, float]:
    """Each filter as a block of per-input-channel heatmaps on a diverging colormap.

    Shared symmetric scale for the layer (white/centre = 0). Blocks are laid
    out in a near-square grid. Returns ``(image, scale)``.
    """
    k = kernels_2d(kernels)
    out, cin, h, w = k.shape
    colored = heatmap(k, cmap, symmetric=True)  # (out, in, h, w, 3)
    _, block_cols = grid_shape(cin)
    _, grid_cols = grid_shape(out)
    per_tile = (target / max(grid_cols, 1) - 3) / max(block_cols, 1) - 1
    f = max(1, min(16, int(per_tile // max(h, w))))
    colored = upscale(colored, f)
    blocks = np.stack([tile(colored[i], pad=1, pad_value=TILE_BG) for i in range(out)])
    grid = tile(blocks, pad=3, pad_value=GRID_BG, border=True)
    return grid, _absmax(k)


def _absmax(k: np.ndarray) -> float:
    finite = np.abs(k[np.isfinite(k)])
    return float(finite.max()) if finite.size else 0.0


def maps_2d(maps: np.ndarray, channels_last: bool = True) -> np.ndarray:
    """Layer outputs (N, *spatial, C) -> (N, h, w, C) for drawing: 1-D maps become
    one row, 3-D maps show their middle depth slice."""
    m = np.asarray(maps)
    if not channels_last:
        m = np.moveaxis(m, 1, -1)
    if m.ndim == 3:
        return m[:, None, :, :]
    if m.ndim == 5:
        return m[:, m.shape[1] // 2]
    if m.ndim != 4:
        raise ValueError(f"feature maps must have 1-3 spatial axes, got shape {m.shape}")
    return m


def feature_map_grid(
    maps: np.ndarray,
    inputs: np.ndarray | None = None,
    *,
    cmap: str = "viridis",
    tile_px: int = 32,
    captions: list[str] | None = None,
) -> np.ndarray:
    """One block per sample: the input image, then that sample's channels as a grid.

    ``maps`` is (N, h, w, C) (already restricted to the channels to show);
    each channel tile is normalized on its own (a constant tile is mid-colour,
    an all-zero tile, e.g. a dead ReLU channel, is the lowest colour; NaN/Inf magenta).
    The blocks are laid out row-major in a near-square grid, so the composite
    stays near TensorBoard's card shape however many samples there are.
    """
    m = maps_2d(maps)
    n, h, w, _c = m.shape
    f = max(1, round(tile_px / max(h, w, 1)))
    channels = np.moveaxis(m, -1, 1)  # (N, C, h, w): every tile of every sample normalized in one pass
    # Tiled as colormap levels (one uint16 per pixel, 3x less to move than RGB), coloured once at the end.
    idx, invalid = levels(channels, per=2)
    idx = idx.astype(np.uint16)
    dead = ~np.any(channels, axis=(2, 3))  # a channel that is exactly zero everywhere (dead ReLU)
    idx[dead] = 0  # is drawn as "low", not as the mid-colour of other constant tiles
    if invalid is not None:
        idx[invalid] = _MARKER_LEVEL
    idx = upscale(idx[..., None], f)  # (N, C, h*f, w*f, 1)
    blocks = tile(idx, pad=1, pad_value=_BG_LEVEL)[..., 0]  # (N, gh, gw): every sample's grid at once
    blocks = np.take(_palette(cmap), blocks, axis=0)  # ~4x faster than fancy indexing
    if inputs is not None:
        thumbs = to_rgb(np.asarray(inputs), per=1)
        fi = max(1, min(4, blocks.shape[1] // (2 * thumbs.shape[1])))  # about half the grid's height
        thumbs = upscale(thumbs, fi)
        height = max(blocks.shape[1], thumbs.shape[1])
        gap = filled((n, height, 4, 3), GRID_BG)
        blocks = np.concatenate([_pad_height(thumbs, height), gap, _pad_height(blocks, height)], axis=2)
    if captions is not None:
        blocks = np.stack([caption(block, text) for block, text in zip(blocks, captions, strict=True)])
    _, cols = grid_shape(n, aspect=blocks.shape[1] / blocks.shape[2])
    return tile(blocks, cols=cols, pad=8, pad_value=GRID_BG)


_MARKER_LEVEL, _BG_LEVEL = 256, 257  # palette entries after the colormap's 256 levels


@functools.lru_cache(maxsize=16)
def _palette(cmap: str) -> np.ndarray:
    """The colormap's 256 levels, then MARKER (NaN/Inf) and the grid background: (258, 3) uint8."""
    table = np.concatenate([lut(cmap), MARKER[None], np.array([GRID_BG], dtype=np.uint8)])
    table.flags.writeable = False
    return table


def _pad_height(images: np.ndarray, height: int) -> np.ndarray:
    """(N, h, w, 3) -> (N, height, w, 3), filled below with the background."""
    extra = height - images.shape[1]
    if extra <= 0:
        return images
    fill = filled((images.shape[0], extra, images.shape[2], 3), GRID_BG)
    return np.concatenate([images, fill], axis=1)
