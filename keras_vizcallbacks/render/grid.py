"""Tiling and nearest-neighbour scaling of uint8 images, vectorized."""

from __future__ import annotations

import math

import numpy as np


def grid_shape(n: int, cols: int | None = None, aspect: float = 1.0) -> tuple[int, int]:
    """(rows, cols) of a near-square grid for n tiles (cols fixed if given)."""
    if n <= 0:
        return 0, 0
    if cols is None:
        cols = max(1, math.ceil(math.sqrt(n * aspect)))
    cols = min(cols, n)
    return math.ceil(n / cols), cols


def filled(shape: tuple[int, ...], value: int | tuple[int, ...] | np.ndarray, dtype=np.uint8) -> np.ndarray:
    """``np.full(shape, value)`` for a per-channel ``value`` (the last axis), fast.

    numpy broadcasts a 3-vector into an (..., 3) array with an inner loop of 3
    elements (about 3 ms per Mpx); filling whole rows at once is ~20x faster.
    """
    out = np.empty(shape, dtype=dtype)
    v = np.asarray(value, dtype=dtype).reshape(-1)
    if out.size == 0:
        return out
    if v.size == 1 or bool(np.all(v == v[0])):
        out.fill(v[0])
        return out
    c = shape[-1]
    width = shape[-2] if len(shape) >= 2 else 1
    row = np.tile(np.broadcast_to(v, (c,)), width)  # one image row: the fill is a copy of long rows
    out.reshape(-1, width * c)[...] = row
    return out


def tile(
    tiles: np.ndarray,
    cols: int | None = None,
    pad: int = 1,
    pad_value: int | tuple[int, int, int] = 0,
    border: bool = False,
) -> np.ndarray:
    """Arrange ``tiles`` (N, h, w, C) into one (H, W, C) image, row-major.

    Tiles are separated by ``pad`` pixels of ``pad_value``; empty cells of the
    last row are filled with ``pad_value``. ``border`` also pads the outside.
    Leading batch axes are kept: (B, N, h, w, C) gives B grids (B, H, W, C)
    in one vectorized pass.
    """
    tiles = np.asarray(tiles)
    if tiles.ndim == 3:
        tiles = tiles[..., None]
    *lead, n, h, w, c = tiles.shape
    rows, cols = grid_shape(n, cols)
    fill = np.broadcast_to(np.asarray(pad_value, dtype=tiles.dtype), (c,))
    b = border * pad
    height, width = rows * (h + pad) - pad + 2 * b, cols * (w + pad) - pad + 2 * b
    out = filled((*lead, height, width, c), fill, dtype=tiles.dtype)
    for k in range(n):  # one vectorized copy per tile (over the batch axes, if any)
        r, q = divmod(k, cols)
        y, x = b + r * (h + pad), b + q * (w + pad)
        out[..., y : y + h, x : x + w, :] = tiles[..., k, :, :, :]
    return out


def upscale(image: np.ndarray, factor: int | tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upscaling by integer factors of the two axes before the last."""
    fy, fx = (factor, factor) if isinstance(factor, int) else factor
    if fy == 1 and fx == 1:
        return image
    axis = image.ndim - 3
    return np.repeat(np.repeat(image, fy, axis=axis), fx, axis=axis + 1)


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Downscaling by an integer factor of the two axes before the last: each output pixel is the
    mean of a ``factor`` x ``factor`` block (rounded half up, same dtype). Sizes that are no multiple of
    ``factor`` are first padded by repeating the last row / column."""
    f = int(factor)
    if f <= 1:
        return image
    a = np.asarray(image)
    ax = a.ndim - 3
    h, w = a.shape[ax], a.shape[ax + 1]
    pad = [(0, 0)] * a.ndim
    pad[ax], pad[ax + 1] = (0, -h % f), (0, -w % f)
    if any(p[1] for p in pad):
        a = np.pad(a, pad, mode="edge")
    hh, ww = a.shape[ax] // f, a.shape[ax + 1] // f
    blocks = a.reshape(*a.shape[:ax], hh, f, ww, f, a.shape[-1])
    if a.dtype == np.uint8:  # integer sums, rounded half up: 3-4x faster than a float64 mean
        total = blocks.sum(axis=(ax + 1, ax + 3), dtype=np.uint32)
        return ((total + (f * f) // 2) // (f * f)).astype(np.uint8)
    mean = blocks.mean(axis=(ax + 1, ax + 3), dtype=np.float64)
    if np.issubdtype(a.dtype, np.integer):
        info = np.iinfo(a.dtype)
        return np.clip(np.floor(mean + 0.5), info.min, info.max).astype(a.dtype)
    return mean.astype(a.dtype)


def scale_factor(size: int, target: int, max_factor: int = 32) -> int:
    """Largest integer factor f >= 1 with size * f <= target (at most max_factor)."""
    if size <= 0:
        return 1
    return int(max(1, min(max_factor, target // size)))


def resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (..., H, W, C) to any size (index arithmetic)."""
    h, w = image.shape[-3], image.shape[-2]
    rows = np.minimum((np.arange(height) + 0.5) * h / height, h - 1).astype(np.intp)
    cols = np.minimum((np.arange(width) + 0.5) * w / width, w - 1).astype(np.intp)
    return image[..., rows[:, None], cols[None, :], :]


def vstack(images: list[np.ndarray], pad: int = 2, pad_value: int = 0) -> np.ndarray:
    """Stack images vertically (widths may differ, left aligned), separated by ``pad``."""
    width = max(im.shape[1] for im in images)
    c = images[0].shape[2]
    parts = []
    for i, im in enumerate(images):
        block = filled((im.shape[0], width, c), pad_value)
        block[:, : im.shape[1]] = im
        parts.append(block)
        if pad and i < len(images) - 1:
            parts.append(filled((pad, width, c), pad_value))
    return np.concatenate(parts, axis=0)


def spread(n: int, k: int | None) -> np.ndarray:
    """Deterministic choice of at most k of n indices, evenly spaced, 0 and n-1 included."""
    if k is None or k >= n:
        return np.arange(n)
    if k <= 1:
        return np.zeros(1, dtype=np.intp)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.intp))
