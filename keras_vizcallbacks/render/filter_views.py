"""Composites of the filter views: activation maximization and top-activating examples.

Plain arrays in, uint8 RGB out. Every composite names itself (a header line)
and is drawn for TensorBoard's image card, about 330 px wide: text is sized
from the composite's width so that it is at least ``MIN_TEXT_PX`` tall once
the image is scaled to ``CARD_WIDTH`` (`legible_size`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from keras_vizcallbacks.render.color import MARKER
from keras_vizcallbacks.render.grid import filled, grid_shape, tile, upscale
from keras_vizcallbacks.render.legibility import CARD_WIDTH, MIN_TEXT_PX, note_mark
from keras_vizcallbacks.render.text import ink_height, legible_size, stamp_text, text_coverage

BG = (32, 32, 32)
FG = (235, 235, 235)
HATCH = ((70, 70, 70), (150, 150, 150))  # outside the image: diagonal stripes
BOX = (255, 210, 0)


def text_width(text: str, size_px: int) -> int:
    return int(text_coverage(text, int(size_px)).shape[1])


def to_display(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Images (N, H, W, C) of values in ``value_range`` -> uint8 RGB (N, H, W, 3), one fixed scale
    (the range maps to black..white, outside values clip; NaN/Inf magenta). One channel is grey,
    three are RGB, four drop the fourth; any other count shows the channel mean in grey."""
    x = np.asarray(images, dtype=np.float32)
    lo, hi = float(value_range[0]), float(value_range[1])
    bad = ~np.isfinite(x).all(axis=-1)
    c = x.shape[-1]
    if c == 3:
        rgb = x
    elif c == 4:
        rgb = x[..., :3]
    elif c == 1:
        rgb = np.repeat(x, 3, axis=-1)
    else:
        rgb = np.repeat(np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=-1, keepdims=True), 3, axis=-1)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.clip((np.nan_to_num(rgb, nan=lo, posinf=hi, neginf=lo) - lo) * scale + 0.5, 0, 255).astype(np.uint8)
    out[bad] = MARKER
    return out


def fit(images: np.ndarray, target: int) -> np.ndarray:
    """Scale (..., h, w, C) images by an integer factor to about ``target`` px on the long side:
    up by nearest neighbour, down by block means. Masks (bool) are scaled the same way."""
    h, w = images.shape[-3], images.shape[-2]
    side = max(h, w)
    if side <= target:
        return upscale(images, max(1, target // side))
    f = math.ceil(side / target)
    hh, ww = h // f * f, w // f * f
    x = images[..., :hh, :ww, :]
    x = x.reshape(*x.shape[:-3], hh // f, f, ww // f, f, x.shape[-1])
    if images.dtype == bool:
        return x.all(axis=(-4, -2))
    return (x.mean(axis=(-4, -2), dtype=np.float32) + 0.5).astype(images.dtype)


def hatch(tiles: np.ndarray, inside: np.ndarray, period: int = 6) -> np.ndarray:
    """``tiles`` (..., h, w, 3) uint8 with the pixels where ``inside`` (..., h, w) is False drawn as
    diagonal stripes (a window clipped at the image border: that part was not in the image)."""
    out = np.array(tiles, copy=True)
    h, w = out.shape[-3], out.shape[-2]
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = ((yy + xx) // max(1, period // 2)) % 2 == 0
    pattern = np.where(stripes[..., None], np.array(HATCH[0], np.uint8), np.array(HATCH[1], np.uint8))
    outside = ~np.asarray(inside, bool)
    out[outside] = np.broadcast_to(pattern, out.shape)[outside]
    return out


def draw_boxes(images: np.ndarray, boxes: np.ndarray, color: Sequence[int] = BOX, width: int = 2) -> np.ndarray:
    """Rectangle outlines ``[top, left, bottom, right)`` (..., 4) on images (..., H, W, 3), in place
    and returned; each outline lies inside its box."""
    flat = images.reshape(-1, *images.shape[-3:])
    for img, (t, left, b, r) in zip(flat, np.asarray(boxes).reshape(-1, 4).tolist(), strict=True):
        if b <= t or r <= left:
            continue
        lw = max(1, min(width, (b - t) // 2, (r - left) // 2))
        img[t : t + lw, left:r] = color
        img[b - lw : b, left:r] = color
        img[t:b, left : left + lw] = color
        img[t:b, r - lw : r] = color
    return images


def header(width: int, text: str, size: int) -> np.ndarray:
    """A strip ``width`` px wide with ``text`` (one line, left aligned, shortened to fit)."""
    pad = max(2, size // 4)
    strip = filled((ink_height("Ag0", size) + 2 * pad + size // 3, width, 3), BG)
    text = _fit(text, width - 2 * pad, size)
    stamp_text(strip, text, (pad + text_width(text, size) / 2, pad), FG, size, anchor="top")
    return strip


def _fit(text: str, width: int, size: int) -> str:
    if text_width(text, size) <= width:
        return text
    while len(text) > 1 and text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _label(width: int, height: int, lines: Sequence[str], size: int, align: str = "center") -> np.ndarray:
    """A ``height`` x ``width`` block with ``lines`` stacked and centred vertically."""
    block = filled((height, width, 3), BG)
    line_h = ink_height("Ag0", size) + max(2, size // 4)
    y = (height - line_h * len(lines)) / 2
    for line in lines:
        line = _fit(line, width - 4, size)
        x = width / 2 if align == "center" else 2 + text_width(line, size) / 2
        stamp_text(block, line, (x, y), FG, size, anchor="top")
        y += line_h
    return block


def _parts(label: str | Sequence[str], width: int, size: int) -> str:
    """A label given as parts (e.g. the filter index, then a value): as many leading parts as fit."""
    parts = [label] if isinstance(label, str) else list(label)
    for n in range(len(parts), 0, -1):
        text = "  ".join(parts[:n])
        if text_width(text, size) <= width:
            return text
    return parts[0]


def activation_grid(
    images: np.ndarray,
    labels: Sequence[str | Sequence[str]],
    title: str,
    *,
    tile_px: int = 128,
    cols: int | None = None,
) -> np.ndarray:
    """One labelled tile per image (F, H, W, 3 uint8) in a near-square grid, under a ``title``.

    Tiles are scaled by an integer factor to about ``tile_px`` (never below the image's own size
    when upscaling); each has its label in a strip above it. A label given as parts (the filter
    index, a value) keeps as many leading parts as fit the tile; the first is always drawn.
    """
    tiles = fit(np.asarray(images), tile_px)
    n, th, tw = tiles.shape[:3]
    note_mark("tile", min(th, tw))
    _, cols = grid_shape(n, cols)
    pad = max(2, tw // 24)
    width = cols * (tw + pad) + pad
    size = legible_size(width)
    strip_h = ink_height("Ag0", size) + max(4, size // 3)
    blocks = np.stack(
        [
            np.concatenate([_label(tw, strip_h, [_parts(lab, tw - 4, size)], size), t], axis=0)
            for lab, t in zip(labels, tiles, strict=True)
        ]
    )
    grid = tile(blocks, cols=cols, pad=pad, pad_value=BG, border=True)
    return np.concatenate([header(grid.shape[1], title, size), grid], axis=0)


def rows_grid(tiles: np.ndarray, row_labels: Sequence[Sequence[str]], title: str, *, tile_px: int = 64) -> np.ndarray:
    """Rows of tiles (F, k, h, w, 3 uint8), each row led by its label lines, under a ``title``."""
    tiles = np.asarray(tiles)
    _, k, h, w = tiles.shape[:4]
    note_mark("tile", min(h, w))
    gap = max(2, w // 16)
    label_w = max(int(2.2 * w), 1)
    width = label_w + k * (w + gap) + gap
    size = legible_size(width)
    widest = max((text_width(line, size) for lines in row_labels for line in lines), default=0)
    label_w = max(label_w, widest + 8)
    width = label_w + k * (w + gap) + gap
    size = legible_size(width)
    line_h = ink_height("Ag0", size) + max(2, size // 4)
    row_h = max(h, line_h * max((len(lines) for lines in row_labels), default=1) + 4)
    rows = []
    for lines, row in zip(row_labels, tiles, strict=True):
        strip = tile(row, cols=k, pad=gap, pad_value=BG)
        if row_h > h:  # labels taller than the tiles: centre the tiles
            above = (row_h - h) // 2
            strip = np.concatenate(
                [filled((above, strip.shape[1], 3), BG), strip, filled((row_h - h - above, strip.shape[1], 3), BG)]
            )
        lab = _label(label_w, row_h, list(lines), size)
        rows.append(np.concatenate([lab, filled((row_h, gap, 3), BG), strip, filled((row_h, gap, 3), BG)], axis=1))
    body = tile(np.stack(rows), cols=1, pad=gap, pad_value=BG, border=True)
    return np.concatenate([header(body.shape[1], title, size), body], axis=0)


__all__ = [
    "CARD_WIDTH",
    "MIN_TEXT_PX",
    "activation_grid",
    "draw_boxes",
    "fit",
    "hatch",
    "header",
    "ink_height",
    "legible_size",
    "rows_grid",
    "to_display",
]
