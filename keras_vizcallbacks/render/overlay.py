"""Heatmaps over images: attribution maps (Grad-CAM, saliency) drawn on their inputs.

Arrays in, uint8 RGB out. A map is normalized per image (float64, so huge
values never wrap around in uint8), mapped through a matplotlib colormap's
lookup table and alpha-blended onto the input. Samples are laid out as cells
(the input, then the map panels side by side, a caption above), upscaled by an
integer factor before the text is drawn, so the labels stay readable in a
TensorBoard card about 320 px wide.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from keras_vizcallbacks.render.color import colorize, to_rgb
from keras_vizcallbacks.render.grid import block_mean, filled, upscale, vstack
from keras_vizcallbacks.render.legibility import CARD_WIDTH, MIN_MARK_PX, note_mark, note_text
from keras_vizcallbacks.render.text import draw_line, fit, fits, font, legible_size, text_size

BG = (32, 32, 32)
TEXT = (235, 235, 235)
GOOD = (140, 220, 140)  # caption of a correctly classified sample
BAD = (255, 140, 120)  # caption of a misclassified sample


def scale_maps(
    maps: np.ndarray, *, symmetric: bool = False, percentile: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each map (N, H, W) scaled to [0, 1] on its own; returns ``(scaled, invalid)``.

    Non-negative scaling maps each image's minimum to 0 and its maximum (or its
    ``percentile``, values above clipped) to 1; ``symmetric`` puts 0 at 0.5 and
    ``±max|x|`` (or the percentile of ``|x|``) at the ends. Monotonic in the
    values; a constant map is 0.5 (symmetric) or 0; NaN/Inf are flagged invalid.
    """
    m = np.asarray(maps, dtype=np.float64)
    invalid = ~np.isfinite(m)
    finite = np.where(invalid, 0.0, m)
    n = len(m)
    if symmetric:
        mag = np.abs(finite).reshape(n, -1)
        top = np.percentile(mag, percentile, axis=1) if percentile is not None else mag.max(axis=1)
        safe = np.where(top > 0, top, 1.0).reshape((n,) + (1,) * (m.ndim - 1))
        out = 0.5 + 0.5 * np.clip(finite / safe, -1.0, 1.0)
    else:
        flat_lo = np.where(invalid, np.inf, m).reshape(n, -1).min(axis=1)
        flat_lo = np.where(np.isfinite(flat_lo), flat_lo, 0.0)
        if percentile is not None:
            hi = np.percentile(finite.reshape(n, -1), percentile, axis=1)
        else:
            hi = np.where(invalid, -np.inf, m).reshape(n, -1).max(axis=1)
        span = hi - flat_lo
        ok = np.isfinite(span) & (span > 0)
        shape = (n,) + (1,) * (m.ndim - 1)
        out = np.where(
            ok.reshape(shape), (finite - flat_lo.reshape(shape)) / np.where(ok, span, 1.0).reshape(shape), 0.0
        )
        out = np.clip(out, 0.0, 1.0)
    return out.astype(np.float32), invalid


def attribution_image(
    maps: np.ndarray, cmap: str = "inferno", *, symmetric: bool = False, percentile: float | None = None
) -> np.ndarray:
    """Maps (N, H, W) -> uint8 (N, H, W, 3), each scaled on its own (see `scale_maps`).

    With ``cmap="gray"`` the grey level is monotonic in the value and spans 0..255.
    """
    scaled, invalid = scale_maps(maps, symmetric=symmetric, percentile=percentile)
    return colorize(scaled, cmap, invalid)


def overlay(
    images: np.ndarray,
    maps: np.ndarray,
    cmap: str = "jet",
    alpha: float = 0.5,
    *,
    symmetric: bool = False,
    percentile: float | None = None,
) -> np.ndarray:
    """Blend each map's colours onto its image: ``(1 - alpha) * image + alpha * colour``.

    ``images`` is uint8 (N, H, W, 3) or float (converted with `to_rgb`,
    each image scaled alone); ``maps`` (N, H, W) are scaled per image.
    """
    base = images if images.dtype == np.uint8 and images.shape[-1] == 3 else to_rgb(images, per=1)
    colours = attribution_image(maps, cmap, symmetric=symmetric, percentile=percentile)
    if colours.shape[1:3] != base.shape[1:3]:
        raise ValueError(f"maps {colours.shape[1:3]} and images {base.shape[1:3]} differ in size.")
    a = float(alpha)
    out = base.astype(np.float32) * (1.0 - a) + colours.astype(np.float32) * a
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=512)
def _caption_strip(lines: tuple[str, ...], width: int, size: int, colour: tuple[int, int, int]) -> np.ndarray:
    """Cached: the same samples get the same captions most epochs. A caption whose numbers changed
    re-renders only the lines that did (`_line_ink`; Pillow text is ~0.4 ms a line)."""
    from PIL import Image

    line_h = round(size * 1.2)
    strip = Image.new("RGB", (width, line_h * len(lines) + 6), BG)
    for i, line in enumerate(lines):
        ink = _line_ink(fit(line, width - 6, size), width, size)
        if ink is not None:
            mask, x, y = ink
            strip.paste(colour, (x, 3 + i * line_h + y), mask)  # Pillow clips what falls outside the strip
    arr = np.asarray(strip, dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


@functools.lru_cache(maxsize=512)
def _line_ink(line: str, width: int, size: int):
    """One caption line's coverage as drawn at x=4 on its line: ``(mask, x, y)``, a Pillow "L" image
    cropped to its ink and where its corner lies relative to the line's top left, or None for no ink.
    Pasting ``colour`` through it (`Image.paste`) blends exactly as ``ImageDraw.text`` does, so a strip
    assembled from cached lines equals one drawn in a piece, ink that crosses into the next line's rows
    included."""
    from PIL import Image

    above = size  # room for ink above the line's top and, with the band's height, below its bottom
    mask = Image.new("L", (width, 3 * size), 0)
    draw_line(mask, (4, above), line, 255, size)  # from its words' cached ink when it can: the same pixels
    box = mask.getbbox()
    if box is None:
        return None
    return mask.crop(box), box[0], box[1] - above


# The sample views' panel size (Grad-CAM, Saliency): a 32-px input is upscaled 3x. The grid of 16 samples
# is then scaled to TensorBoard's ~330-px card by about 0.8 (two cells a row), so a panel shows at ~77 px
# there, as 128-px panels did at 0.62, with half the pixels to draw and encode (docs/performance.md).
SAMPLE_PANEL_PX = 96


def panel_factor(height: int, width: int, panel_px: int = 128) -> int:
    """Integer upscaling factor that brings an image near ``panel_px`` on its long side."""
    return max(1, round(panel_px / max(height, width, 1)))


def shrink_factor(height: int, width: int, panel_px: int = 128) -> int:
    """Integer downscaling factor for an image larger than ``panel_px`` on its long side: the smallest
    that brings it to at most ``panel_px`` (224 px -> 2 for 128 px panels, 3 for 96 px); 1 otherwise."""
    side = max(height, width, 1)
    return 1 if side <= panel_px else -(-side // panel_px)


def shrink_panels(images: np.ndarray, maps: np.ndarray, panel_px: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, C) and their maps (N, H, W) shrunk by `shrink_factor` (block means) before
    they are coloured and blended, so a 224-px sample costs a 112-px tile's work; unchanged (the same
    arrays) when the samples are no larger than ``panel_px``."""
    d = shrink_factor(images.shape[1], images.shape[2], panel_px)
    if d == 1:
        return images, maps
    m = np.asarray(maps)
    small = block_mean(m[..., None] if m.ndim == 3 else m, d)
    return block_mean(np.asarray(images), d), small[..., 0] if m.ndim == 3 else small


def _captions_fit(captions: Sequence[Sequence[str]], width: int, size: int) -> bool:
    return all(fits(line, width - 6, size) for lines in captions for line in lines)


def sample_grid(
    panels: Sequence[np.ndarray],
    captions: Sequence[Sequence[str]] | None = None,
    *,
    correct: Sequence[bool | None] | None = None,
    panel_px: int = 128,
    max_width: int = 720,
    font_size: int | None = None,
    gap: int = 4,
) -> np.ndarray:
    """One cell per sample: its panels side by side under a caption, cells in a grid.

    ``panels`` is a list of uint8 arrays (N, H, W, 3), one per kind of panel
    (e.g. the input, the overlay). Each is upscaled by the same integer factor
    (nearest neighbour) to about ``panel_px``; panels larger than ``panel_px`` are
    shrunk instead by the smallest integer factor that brings them to at most
    ``panel_px`` (`shrink_factor`: the mean of each block of pixels), so a
    224-px input is a 112-px tile, not a row of its own. The caption is drawn afterwards
    at ``font_size`` (default: legible in TensorBoard's card for the grid's width), in green
    for ``correct[i] is True``, red for ``False``. As many cells as fit ``max_width`` go in a
    row (at least one); beyond two a row, no more than let every caption line fit its cell at
    the legible size (lines too long end in an ellipsis).
    """
    n, h, w = panels[0].shape[:3]
    d = shrink_factor(h, w, panel_px)
    if d > 1:
        panels = [block_mean(np.asarray(p, dtype=np.uint8), d) for p in panels]
        h, w = panels[0].shape[1:3]
    f = panel_factor(h, w, panel_px)
    big = [upscale(np.asarray(p, dtype=np.uint8), f) for p in panels]
    cell_w = len(big) * w * f + (len(big) - 1) * gap
    cols = max(1, min(n, (max_width + 2 * gap) // (cell_w + 2 * gap)))
    if font_size is None and captions is not None:
        # text grows with the grid's width: beyond two cells a row, fewer cells if the captions would not fit
        while cols > 2 and not _captions_fit(captions, cell_w, legible_size(cols * cell_w + (cols + 1) * 2 * gap)):
            cols -= 1
    if font_size is None:
        font_size = legible_size(cols * cell_w + (cols + 1) * 2 * gap)
    note_mark("panel", min(h, w) * f)
    n_lines = max((len(c) for c in captions), default=0) if captions is not None else 0
    for lines in captions if captions is not None else []:
        for line in lines:
            note_text("caption", font_size, False, line)
    cells = []
    for i in range(n):
        row = filled((h * f, cell_w, 3), BG)
        for j, p in enumerate(big):
            x0 = j * (w * f + gap)
            row[:, x0 : x0 + w * f] = p[i]
        if captions is not None:
            ok = None if correct is None else correct[i]
            colour = TEXT if ok is None else (GOOD if ok else BAD)
            lines = list(captions[i]) + [""] * (n_lines - len(captions[i]))  # panels of a row align
            row = np.concatenate([_caption_strip(tuple(lines), cell_w, font_size, colour), row], axis=0)
        cells.append(row)
    rows = []
    for start in range(0, n, cols):
        chunk = cells[start : start + cols]
        height = max(c.shape[0] for c in chunk)
        line = filled((height, cols * cell_w + (cols - 1) * 2 * gap, 3), BG)
        for j, c in enumerate(chunk):
            x0 = j * (cell_w + 2 * gap)
            line[: c.shape[0], x0 : x0 + cell_w] = c
        rows.append(line)
    grid = vstack(rows, pad=2 * gap, pad_value=BG[0])
    return np.pad(grid, ((gap, gap), (gap, gap), (0, 0)), constant_values=BG[0])


def colour_bar(
    width: int, cmap: str, labels: tuple[str, str], *, height: int | None = None, font_size: int | None = None
) -> np.ndarray:
    """A horizontal colour bar with a label at each end (uint8); by default as tall, and its labels as
    large, as reads in TensorBoard's card for an image ``width`` px wide."""
    font_size = legible_size(width) if font_size is None else int(font_size)
    height = max(8, -(-2 * MIN_MARK_PX * width // CARD_WIDTH)) if height is None else int(height)
    note_mark("colour bar", height)
    for label in labels:
        note_text("colour bar label", font_size, False, label)
    return _colour_bar(int(width), cmap, tuple(labels), height, font_size)


@functools.lru_cache(maxsize=64)
def _colour_bar(width: int, cmap: str, labels: tuple[str, str], height: int, font_size: int) -> np.ndarray:
    ramp = colorize(np.tile(np.linspace(0.0, 1.0, max(width - 8, 2))[None, :], (height, 1)), cmap)
    bar = filled((height + round(font_size * 1.3) + 8, width, 3), BG)
    bar[2 : 2 + height, 4 : 4 + ramp.shape[1]] = ramp
    from PIL import Image, ImageDraw

    pil = Image.fromarray(bar)
    draw = ImageDraw.Draw(pil)
    left, right = labels
    draw.text((4, height + 4), left, fill=TEXT, font=font(font_size))
    rw = text_size(right, font_size)[0]
    draw.text((width - rw - 6, height + 4), right, fill=TEXT, font=font(font_size))
    arr = np.asarray(pil, dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


__all__ = [
    "attribution_image",
    "colour_bar",
    "overlay",
    "panel_factor",
    "sample_grid",
    "scale_maps",
    "shrink_factor",
    "shrink_panels",
]
