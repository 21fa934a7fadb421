"""1-D signals (time series, audio, sensors: the inputs of Conv1D models) and what the views draw
on them.

Arrays in, uint8 RGB out, sized for TensorBoard's image card (about 330 px wide, see
render/legibility.py): one panel per sample, stacked, all as wide as the picture.

* `signal_map_grid`: per sample its caption, the signal's channels as lines (one colour per
  channel, a key above the panels) and, under them, a map on the sequence (Grad-CAM, saliency) as
  a heat band aligned step for step with the lines; a step axis at the bottom.
* `signal_feature_grid`: per sample its caption, the input signal as lines, then one heat row per
  channel of a 1-D layer's output, labelled with the channel's index.

Lines are drawn with Pillow; a signal's channels share one vertical scale per sample (its own
minimum to maximum), so their relative amplitudes show. NaN/Inf samples are left out of the lines;
in maps and rows they are magenta.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from keras_vizcallbacks.render.color import MARKER, class_colors, colorize, levels, lut
from keras_vizcallbacks.render.grid import filled, vstack
from keras_vizcallbacks.render.legibility import CARD_WIDTH, MIN_MARK_PX, note_mark
from keras_vizcallbacks.render.overlay import scale_maps
from keras_vizcallbacks.render.text import (
    HEADER_FG,
    caption,
    ink_height,
    label_strip,
    legible_size,
    stamp_text,
    text_size,
    wrap_parts,
)

BG = (32, 32, 32)  # between panels
PLOT_BG = (18, 18, 18)  # behind the lines
GUIDE = (70, 70, 70)  # the zero line, the frame
TEXT = (235, 235, 235)
GOOD = (140, 220, 140)  # caption of a correctly classified sample
BAD = (255, 140, 120)  # caption of a misclassified sample
WIDTH = 560  # px: the picture's width (about 0.59x in the card)
MAX_LINES = 8  # channels drawn as lines at most (evenly spaced beyond)
_M = 6  # px: margin left and right of the panels


def _mark_px(width: int) -> int:
    """Image pixels that are ``MIN_MARK_PX`` (with a margin for TensorBoard's rounding) at card size."""
    return int(np.ceil(1.5 * MIN_MARK_PX * max(width, CARD_WIDTH) / CARD_WIDTH))


def channel_colours(c: int) -> np.ndarray:
    """uint8 (c, 3): one colour per line, bright enough on the dark plot."""
    cols = class_colors(max(c, 1)).astype(np.int32)
    return np.clip(cols + (255 - cols) // 4, 0, 255).astype(np.uint8)[:c]


def shown_channels(c: int, max_lines: int = MAX_LINES) -> np.ndarray:
    """The input channels drawn as lines: all, or ``max_lines`` evenly spaced (first and last included)."""
    if c <= max_lines:
        return np.arange(c)
    return np.unique(np.round(np.linspace(0, c - 1, max_lines)).astype(np.intp))


def _columns(length: int, width: int) -> np.ndarray:
    """For each of ``width`` pixel columns the step (of ``length``) it shows (nearest)."""
    return np.minimum((np.arange(width) + 0.5) * length / width, length - 1).astype(np.intp)


def _edges(length: int, width: int) -> np.ndarray:
    """The first step of each of ``width`` columns over ``length > width`` steps (none empty)."""
    return np.floor(np.arange(width) * length / width).astype(np.intp)


def per_column(values: np.ndarray, width: int, centre: float = 0.0) -> np.ndarray:
    """``values`` (..., steps) shown on ``width`` pixel columns: the nearest step when each step
    gets a column or more; else, per column, the value of its steps farthest from ``centre`` (a
    one-step spike in a long signal is never dropped). NaN where a column has no finite value."""
    v = np.asarray(values, dtype=np.float64)
    steps = v.shape[-1]
    if steps <= width:
        return v[..., _columns(steps, width)]
    edges = _edges(steps, width)
    hi = np.fmax.reduceat(v, edges, axis=-1)
    lo = np.fmin.reduceat(v, edges, axis=-1)
    return np.where(np.abs(hi - centre) >= np.abs(lo - centre), hi, lo)


def plot_lines(signal: np.ndarray, width: int, height: int, colours: np.ndarray, line_px: int = 2) -> np.ndarray:
    """One signal (steps, c) as lines on a (height, width) plot, uint8 RGB. Step ``i`` sits at the
    centre of its ``width / steps`` columns; a signal with more than two steps per column is drawn
    as its envelope (each column's minimum and maximum joined). The channels share one vertical
    scale (their minimum at the bottom, their maximum at the top); a zero line where 0 is in
    range; NaN/Inf steps break the line."""
    s = np.asarray(signal, dtype=np.float64)
    s = np.where(np.isfinite(s), s, np.nan)
    steps = s.shape[0]
    img = Image.new("RGB", (width, height), PLOT_BG)
    draw = ImageDraw.Draw(img)
    finite = s[np.isfinite(s)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    span = hi - lo if hi > lo else 1.0
    top, bottom = line_px + 1, height - line_px - 2
    if lo < 0 < hi:
        y0 = bottom - (0.0 - lo) / span * (bottom - top)
        draw.line([(0, y0), (width - 1, y0)], fill=GUIDE, width=1)
    if steps > 2 * width:  # the envelope: per column its minimum, then its maximum
        edges = _edges(steps, width)
        mins, maxs = np.fmin.reduceat(s, edges, axis=0), np.fmax.reduceat(s, edges, axis=0)
        vals = np.stack([mins, maxs], axis=1).reshape(2 * width, -1)
        xs = np.repeat(np.arange(width) + 0.5, 2)
    else:
        vals, xs = s, (np.arange(steps) + 0.5) * width / steps
    ys = (bottom + top) / 2 + 0 * vals if hi <= lo else bottom - (vals - lo) / span * (bottom - top)
    for ch in range(vals.shape[1]):
        ok = np.isfinite(vals[:, ch])
        colour = tuple(int(v) for v in colours[ch])
        bounds = np.flatnonzero(np.diff(np.concatenate([[False], ok, [False]]).astype(np.int8)))
        for a, b in zip(bounds[::2], bounds[1::2], strict=True):  # one polyline per run of finite values
            pts = list(zip(xs[a:b].tolist(), ys[a:b, ch].tolist(), strict=True))
            draw.line(pts * 2 if len(pts) == 1 else pts, fill=colour, width=line_px, joint="curve")
    return np.asarray(img, dtype=np.uint8).copy()


def heat_band(
    scaled: np.ndarray, invalid: np.ndarray, width: int, height: int, cmap: str, centre: float = 0.0
) -> np.ndarray:
    """A map (steps,) already scaled to [0, 1] as a band (height, width, 3), aligned with the lines
    above (`per_column`: a long map shows each column's value farthest from ``centre``)."""
    col = per_column(np.where(invalid, np.nan, scaled), width, centre)
    bad = np.isnan(col)
    row = colorize(np.where(bad, 0.0, col), cmap, bad)
    return np.repeat(row[None], height, axis=0)


def _key(channels: np.ndarray, colours: np.ndarray, total: int, width: int, size: int) -> np.ndarray | None:
    """The line key above the panels: "channel" then a short line of each colour and the channel's index."""
    if total <= 1:
        return None
    height = round(size * 1.5)
    strip = filled((height, width, 3), BG)
    pil = Image.fromarray(strip)
    draw = ImageDraw.Draw(pil)
    label = "input channel" if len(channels) == total else f"input channel ({len(channels)} of {total})"
    x = _M + text_size(label, size)[0] + size // 2
    swatch = max(12, size)
    items = []
    for ch, colour in zip(channels.tolist(), colours, strict=True):
        w = swatch + 4 + text_size(str(ch), size)[0] + size // 2
        if x + w > width - _M:
            break
        draw.line([(x, height / 2), (x + swatch, height / 2)], fill=tuple(int(v) for v in colour), width=3)
        items.append((str(ch), x + swatch + 4 + text_size(str(ch), size)[0] / 2, colour))
        x += w
    out = np.asarray(pil, dtype=np.uint8).copy()
    stamp_text(out, label, (_M + text_size(label, size)[0] / 2, height / 2), TEXT, size)
    for text, cx, colour in items:
        stamp_text(out, text, (cx, height / 2), tuple(int(v) for v in colour), size)
    note_mark("line key swatch", 3 * swatch / 3)
    return out


def _axis(steps: int, width: int, size: int, what: str = "step") -> np.ndarray:
    """Step numbers under the panels: 0, the middle, the last, and ``what``."""
    plot_w = width - 2 * _M
    ticks = sorted({0, (steps - 1) // 2, steps - 1})
    centres = [_M + (t + 0.5) * plot_w / steps for t in ticks]
    labels = [str(t) for t in ticks]
    lw = text_size(labels[0], size)[0]
    centres[0] = max(centres[0], _M + lw / 2)
    rw = text_size(labels[-1], size)[0]
    centres[-1] = min(centres[-1], width - _M - rw / 2)
    mid = (centres[0] + centres[len(centres) // 2]) / 2 if len(centres) > 2 else width / 2
    return label_strip([*labels, what], [*centres, mid], width, size, bg=BG, what="step axis")


def _caption_lines(lines: Sequence[str], width: int, size: int) -> list[str]:
    return wrap_parts([str(x) for x in lines if str(x)], width - 2 * _M, size, sep="  ·  ")


def signal_map_grid(
    signals: np.ndarray,
    maps: np.ndarray,
    captions: Sequence[Sequence[str]] | None = None,
    *,
    correct: Sequence[bool | None] | None = None,
    cmap: str = "jet",
    symmetric: bool = False,
    percentile: float | None = None,
    width: int = WIDTH,
    plot_px: int = 88,
    max_lines: int = MAX_LINES,
) -> np.ndarray:
    """Signals (N, steps, C) with a map each (N, steps): one panel per sample, stacked.

    Per panel: its caption (``captions[i]``, lines joined with " · " as fits; green for
    ``correct[i] is True``, red for ``False``), the signal's channels as lines (at most
    ``max_lines``, evenly spaced; a key above the first panel), and under them the map as a heat
    band, each map scaled on its own (`scale_maps`: ``symmetric``, ``percentile``). A step axis
    closes the picture. Text is legible at TensorBoard's card size for ``width``.
    """
    x = np.asarray(signals, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None]
    m = np.asarray(maps)
    if x.ndim != 3 or m.shape != x.shape[:2]:
        raise ValueError(f"signals (N, steps, C) and maps (N, steps) expected, got {x.shape} and {m.shape}")
    n, steps, c = x.shape
    size = legible_size(width)
    band_px = max(_mark_px(width) * 2, 16)
    line_px = max(2, round(width / CARD_WIDTH * 1.2))
    channels = shown_channels(c, max_lines)
    colours = channel_colours(len(channels))
    scaled, invalid = scale_maps(m, symmetric=symmetric, percentile=percentile)
    note_mark("heat band", band_px)
    note_mark("signal plot", plot_px)
    plot_w = width - 2 * _M
    parts = []
    key = _key(channels, colours, c, width, size)
    if key is not None:
        parts.append(key)
    for i in range(n):
        plot = plot_lines(x[i][:, channels], plot_w, plot_px, colours, line_px)
        band = heat_band(scaled[i], invalid[i], plot_w, band_px, cmap, 0.5 if symmetric else 0.0)
        body = np.concatenate([plot, filled((2, plot_w, 3), BG), band], axis=0)
        body = np.pad(body, ((0, 0), (_M, _M), (0, 0)), constant_values=BG[0])
        if captions is not None:
            ok = None if correct is None else correct[i]
            fg = TEXT if ok is None else (GOOD if ok else BAD)
            body = caption(body, _caption_lines(captions[i], width, size), size=size, fg=fg, bg=BG)
        parts.append(body)
    parts.append(_axis(steps, width, size))
    return vstack(parts, pad=6, pad_value=BG[0])


def signal_feature_grid(
    maps: np.ndarray,
    inputs: np.ndarray | None = None,
    *,
    cmap: str = "viridis",
    captions: Sequence[str] | None = None,
    channel_labels: Sequence[str] | None = None,
    width: int = 640,
    cols: int = 2,
    plot_px: int = 48,
    max_lines: int = MAX_LINES,
) -> np.ndarray:
    """A 1-D layer's outputs (N, cells, K) (restricted to the channels shown, in order): the samples
    side by side, ``cols`` to a line; per sample its caption, the input signal (N, steps, C) as
    lines, then one heat row per channel. The rows are labelled once per line of samples, at the
    left, with ``channel_labels`` (the same order for every sample). Each row is min-max scaled on
    its own (an all-zero, dead channel is the lowest colour, another constant row mid-colour,
    NaN/Inf magenta) and stretched to the width of the lines (cell ``j`` of ``cells`` over the
    columns ``j / cells`` of it, not placed by receptive field); a column that covers several cells
    shows the largest of them (`per_column`)."""
    a = np.asarray(maps, dtype=np.float32)
    if a.ndim != 3:
        raise ValueError(f"1-D feature maps (N, cells, channels) expected, got shape {a.shape}")
    n, _, k = a.shape
    labels = [str(j) for j in range(k)] if channel_labels is None else [str(v) for v in channel_labels]
    if len(labels) != k:
        raise ValueError(f"{len(labels)} channel labels for {k} channels")
    size = legible_size(width)
    gap = 2 * _M
    label_w = max(text_size(v, size)[0] for v in [*labels, "in"]) + size // 2
    cols = max(1, min(int(cols), n))
    col_w = (width - 2 * _M - label_w - cols * gap) // cols
    row_h = max(_mark_px(width), ink_height("0123456789", size) + 3)  # a label fits each row
    note_mark("feature-map row", row_h - 1)
    rows = np.moveaxis(a, -1, 1)  # (N, K, cells)
    idx, invalid = levels(rows, per=2)
    shown = per_column(np.where(invalid, np.nan, idx) if invalid is not None else idx, col_w)  # (N, K, col_w)
    bad = np.isnan(shown)
    rgb = np.take(lut(cmap), np.where(bad, 0, shown).astype(np.intp), axis=0)  # (N, K, col_w, 3)
    rgb[~np.any(rows, axis=2)] = lut(cmap)[0]  # a dead channel is "low"
    rgb[bad] = MARKER
    x, channels, colours = None, None, None
    if inputs is not None:
        x = np.asarray(inputs, dtype=np.float64)
        x = x[..., None] if x.ndim == 2 else x
        channels = shown_channels(x.shape[-1], max_lines)
        colours = channel_colours(len(channels))
        note_mark("signal plot", plot_px)
    plot_h = plot_px + 4 if x is not None else 0
    cap_lines = 1 if captions is not None else 0
    cap_h = caption(filled((1, col_w, 3), BG), "0", size=size, bg=BG).shape[0] - 1 if cap_lines else 0
    label_col = filled((cap_h + plot_h + k * row_h, label_w, 3), BG)
    cx = (label_w - size // 4) / 2
    if x is not None:
        stamp_text(label_col, "in", (cx, cap_h + plot_px / 2), TEXT, size)
    for j, text in enumerate(labels):
        stamp_text(label_col, text, (cx, cap_h + plot_h + j * row_h + (row_h - 1) / 2), HEADER_FG, size)
    parts = []
    if x is not None:
        key = _key(channels, colours, x.shape[-1], width, size)
        if key is not None:
            parts.append(key)
    for start in range(0, n, cols):
        line = filled((label_col.shape[0], width, 3), BG)
        line[:, _M : _M + label_w] = label_col
        for q, i in enumerate(range(start, min(start + cols, n))):
            block = filled((plot_h + k * row_h, col_w, 3), BG)
            if x is not None:
                block[:plot_px] = plot_lines(x[i][:, channels], col_w, plot_px, colours)
            for j in range(k):
                y = plot_h + j * row_h
                block[y : y + row_h - 1] = rgb[i, j][None]
            if captions is not None:
                block = caption(block, str(captions[i]), size=size, fg=TEXT, bg=BG)[-label_col.shape[0] :]
            x0 = _M + label_w + gap + q * (col_w + gap)
            line[:, x0 : x0 + col_w] = block
        parts.append(line)
    return vstack(parts, pad=8, pad_value=BG[0])


__all__ = ["channel_colours", "heat_band", "plot_lines", "shown_channels", "signal_feature_grid", "signal_map_grid"]
