"""Composite images of the foundation views: filter grids and feature-map grids.

Inputs are plain arrays; outputs uint8 RGB images sized for a TensorBoard card
(roughly 256-1024 px on the long side), each under a header that names it, with text and
marks that stay legible once the image is shown about 330 px wide (render/legibility.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from keras_vizcallbacks.render.color import MARKER, heatmap, levels, lut, normalize, to_rgb
from keras_vizcallbacks.render.grid import filled, grid_shape, resize_nearest, tile, upscale
from keras_vizcallbacks.render.legibility import CARD_WIDTH, MIN_MARK_PX, note_mark, note_text
from keras_vizcallbacks.render.text import (
    HEADER_BG,
    HEADER_FG,
    _caption_strip,
    _label_strip,
    header,
    label_strip,
    legible_size,
    text_size,
)

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


FILTER_CARD_MARK = 1.15 * MIN_MARK_PX  # a kernel weight at card size, with a margin for TensorBoard's rounding
_BORDER, _GAP = 6, 6  # px around the filter grid and between its blocks


def filter_grid(
    kernels: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    rgb: bool = False,
    cmap: str = "RdBu_r",
    scale: float | None = None,
    title: str | Sequence[str] = "",
    subtitle: str | Sequence[str] = "",
    scale_label: str = "",
    target: int = 520,
) -> np.ndarray:
    """Kernels ``(filters, in, *spatial)`` as a grid of blocks, one per filter, under a header,
    each block under its label (e.g. the filter's index), with a scale bar at the bottom.

    One scale for the whole grid, centred on zero: ``scale`` (default ``max |kernels|`` over the
    finite values) is the end of the colour range, written at the scale bar's ends. ``rgb=True``
    (3 input channels) draws each filter as a colour image: channel value ``v`` -> ``0.5 + 0.5 v /
    scale`` (grey = 0); otherwise each filter is a block of per-input-channel heatmaps on the
    diverging ``cmap`` (its centre = 0). Sized for TensorBoard's card: the blocks are as many per
    row as keep a kernel weight at least ``MIN_MARK_PX`` across at card width, the text legible
    there. NaN/Inf weights are magenta.
    """
    k = kernels_2d(kernels)
    n, cin, h, w = k.shape
    if rgb and cin != 3:
        raise ValueError(f"rgb=True needs 3 input channels, got {cin}")
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} filters")
    s = _absmax(k) if scale is None else abs(float(scale))
    vmax = s if s > 0 and np.isfinite(s) else None
    if rgb:
        scaled, invalid = normalize(k, symmetric=True, vmax=vmax)
        tiles = np.round(scaled.transpose(0, 2, 3, 1) * 255.0).astype(np.uint8)[:, None]  # (n, 1, h, w, 3)
        tiles[invalid.transpose(0, 2, 3, 1).any(axis=-1)[:, None]] = MARKER
        bc_rows, bc_cols = 1, 1
    else:
        tiles = heatmap(k, cmap, symmetric=True, vmax=vmax)  # (n, cin, h, w, 3)
        bc_rows, bc_cols = grid_shape(cin)
    chars = max((len(x) for x in labels), default=0) if labels is not None else 0
    cols, f, size, width = _filter_layout(n, bc_rows, bc_cols, h, w, chars, int(target))
    note_mark("kernel weight", f)
    blocks = upscale(tiles, f)
    if blocks.shape[1] > 1 or bc_cols > 1:
        blocks = tile(blocks, cols=bc_cols, pad=1, pad_value=TILE_BG)  # (n, bh, bw, 3)
    else:
        blocks = blocks[:, 0]
    bh, bw = blocks.shape[1:3]
    cell_w = (width - 2 * _BORDER - (cols - 1) * _GAP) // cols
    label_h = round(size * 1.25) if labels is not None else 0
    rows = -(-n // cols)
    grid = filled((2 * _BORDER + rows * (label_h + bh) + (rows - 1) * _GAP, width, 3), GRID_BG)
    for r in range(rows):
        y = _BORDER + r * (label_h + bh + _GAP)
        first, last = r * cols, min(n, (r + 1) * cols)
        if labels is not None:
            centres = [_BORDER + j * (cell_w + _GAP) + cell_w / 2 for j in range(last - first)]
            strip = label_strip(labels[first:last], centres, width, size, bg=GRID_BG, what="filter label")
            grid[y : y + label_h] = strip[:label_h]
        for j, i in enumerate(range(first, last)):
            x = _BORDER + j * (cell_w + _GAP) + (cell_w - bw) // 2
            grid[y + label_h : y + label_h + bh, x : x + bw] = blocks[i]
    bar = _scale_bar(width, size, s, "gray" if rgb else cmap, scale_label)
    return header(np.concatenate([grid, bar], axis=0), title, subtitle, bg=HEADER_BG)


@functools.lru_cache(maxsize=64)
def _filter_layout(n: int, bc_rows: int, bc_cols: int, h: int, w: int, chars: int, target: int):
    """``(columns, upscaling factor, font px, width)`` of a filter grid: the most columns (up to a
    near-square grid) that keep one kernel weight ``FILTER_CARD_MARK`` px across at card width."""
    _, cols0 = grid_shape(n, aspect=1.0 + 0.35 * (chars > 0) * bc_cols * w / max(bc_rows * h, 1))
    result = None
    for cols in range(cols0, 0, -1):
        f = max(1, min(32, int((target / cols - _GAP) // max(bc_cols * (w + 1), 1))))
        size = legible_size(target)
        for _ in range(6):  # the font follows the width, the width the labels
            block_w = bc_cols * (w * f + 1) - 1
            label_w = text_size("8" * chars, size)[0] + size // 2 if chars else 0
            width = 2 * _BORDER + cols * max(block_w, label_w) + (cols - 1) * _GAP
            new = legible_size(width)
            if new == size:
                break
            size = new
        result = (cols, f, size, width)
        if f * CARD_WIDTH / width >= FILTER_CARD_MARK:
            return result
    return result


def _scale_bar(width: int, size: int, scale: float, cmap: str, label: str) -> np.ndarray:
    """The colour scale of a symmetric range: a ramp from -scale to +scale, its ends and 0 written under it."""
    bar_h = max(6, -(-2 * MIN_MARK_PX * width // CARD_WIDTH))
    note_mark("scale bar", bar_h)
    # The signs in bold with a true minus (U+2212): a thin hyphen vanishes when the card scales the image down.
    lo, hi = (f"\u2212{_num(scale)}", f"+{_num(scale)}") if scale > 0 and np.isfinite(scale) else ("0", "0")
    mid = f"0 {label}".strip()
    for text in (lo, mid, hi):
        note_text("scale label", size, True, text)
    return _scale_bar_pixels(width, size, bar_h, cmap, lo, mid, hi, _BORDER)


def _num(v: float) -> str:
    return f"{v:.2g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.1e}"


@functools.lru_cache(maxsize=64)
def _scale_bar_pixels(width: int, size: int, bar_h: int, cmap: str, lo: str, mid: str, hi: str, m: int) -> np.ndarray:
    ramp = np.take(lut(cmap), np.round(np.linspace(0, 255, width - 2 * m)).astype(np.intp), axis=0)
    out = filled((bar_h + m, width, 3), GRID_BG)
    out[m // 2 : m // 2 + bar_h, m : width - m] = ramp[None]
    lo_w, hi_w = text_size(lo, size, True)[0], text_size(hi, size, True)[0]
    centres = (m + lo_w / 2, width / 2, width - m - hi_w / 2)
    labels = _label_strip((lo, mid, hi), centres, width, size, HEADER_FG, GRID_BG, True)
    arr = np.concatenate([out, labels, filled((m // 2, width, 3), GRID_BG)], axis=0)
    arr.flags.writeable = False
    return arr


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
    captions: Sequence[str] | None = None,
    channel_labels: Sequence[str] | None = None,
    title: str | Sequence[str] = "",
    subtitle: str | Sequence[str] = "",
    cols: int = 8,
) -> np.ndarray:
    """One row per sample: the input image, then that sample's channels, ``cols`` to a line.

    ``maps`` is (N, h, w, C) (already restricted to the channels to show, in the order shown);
    each channel tile is normalized on its own (a constant tile is mid-colour, an all-zero tile,
    e.g. a dead ReLU channel, is the lowest colour; NaN/Inf magenta) and drawn at the integer
    factor that brings it nearest ``tile_px``. The input thumbnail is as tall as the sample's
    tiles (no empty area under it). Above the rows: the header (``title``, ``subtitle``) and, with
    ``channel_labels``, a key that labels each tile position (the same for every sample); above
    each row its caption. Text is sized to stay legible in TensorBoard's card.
    """
    m = maps_2d(maps)
    n, h, w, c = m.shape
    f = max(1, round(tile_px / max(h, w, 1)))
    cols = max(1, min(int(cols), c))
    channels = np.moveaxis(m, -1, 1)  # (N, C, h, w): every tile of every sample normalized in one pass
    # Tiled as colormap levels (one uint16 per pixel, 3x less to move than RGB), coloured once at the end.
    idx, invalid = levels(channels, per=2)
    idx = idx.astype(np.uint16)
    dead = ~np.any(channels, axis=(2, 3))  # a channel that is exactly zero everywhere (dead ReLU)
    idx[dead] = 0  # is drawn as "low", not as the mid-colour of other constant tiles
    if invalid is not None:
        idx[invalid] = _MARKER_LEVEL
    idx = upscale(idx[..., None], f)  # (N, C, h*f, w*f, 1)
    blocks = tile(idx, cols=cols, pad=1, pad_value=_BG_LEVEL)[..., 0]  # (N, gh, gw): every sample's grid at once
    blocks = np.take(_palette(cmap), blocks, axis=0)  # ~4x faster than fancy indexing
    note_mark("feature-map tile", min(h, w) * f)
    gh, gw = blocks.shape[1:3]
    x0, thumbs = 0, None  # where the tiles start in a row; the input thumbnails
    if inputs is not None:
        thumbs = to_rgb(np.asarray(inputs), per=1)
        th, tw = thumbs.shape[1:3]
        thumb_w = max(1, round(gh * tw / max(th, 1)))
        note_mark("input thumbnail", min(gh, thumb_w))
        fy, fx = gh / th, thumb_w / tw
        exact = fy == fx == int(fy)
        thumbs = upscale(thumbs, int(fy)) if exact else resize_nearest(thumbs, gh, thumb_w)
        x0 = thumb_w + _GAP
    rw = x0 + gw
    width = rw + 2 * _MARGIN
    size = legible_size(width)
    strips = []  # (row offset, pixels) of the text strips and the sample rows, written into one canvas
    y = 0
    if channel_labels is not None:
        if len(channel_labels) != c:
            raise ValueError(f"{len(channel_labels)} channel labels for {c} channels")
        for r in range(0, c, cols):
            names = list(channel_labels[r : r + cols])
            centres = [_MARGIN + x0 + j * (w * f + 1) + w * f / 2 for j in range(len(names))]
            if r == 0 and x0 and text_size("channel", size)[0] <= x0:
                names.append("channel")
                centres.append(_MARGIN + (x0 - _GAP) / 2)
            strip = label_strip(names, centres, width, size, bg=GRID_BG, what="channel label")
            strips.append((y, strip))
            y += strip.shape[0]
    rows_at = []
    for i in range(n):
        if captions is not None:
            note_text("caption", size, False, captions[i])
            strip = _caption_strip((str(captions[i]),), width, size, HEADER_FG, GRID_BG)
            strips.append((y, strip))
            y += strip.shape[0]
        rows_at.append(y)
        y += gh + _GAP
    body = filled((y, width, 3), GRID_BG)
    for at, strip in strips:
        body[at : at + strip.shape[0]] = strip
    for i, at in enumerate(rows_at):
        if thumbs is not None:
            body[at : at + gh, _MARGIN : _MARGIN + x0 - _GAP] = thumbs[i]
        body[at : at + gh, _MARGIN + x0 : _MARGIN + rw] = blocks[i]
    return header(body, title, subtitle) if (title or subtitle) else body


_MARGIN = 4  # px left and right of the feature-map rows
_MARKER_LEVEL, _BG_LEVEL = 256, 257  # palette entries after the colormap's 256 levels


@functools.lru_cache(maxsize=16)
def _palette(cmap: str) -> np.ndarray:
    """The colormap's 256 levels, then MARKER (NaN/Inf) and the grid background: (258, 3) uint8."""
    table = np.concatenate([lut(cmap), MARKER[None], np.array([GRID_BG], dtype=np.uint8)])
    table.flags.writeable = False
    return table
