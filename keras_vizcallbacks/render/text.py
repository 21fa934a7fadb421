"""Text on images (Pillow). TensorBoard shows a card about 320 px wide, so text
is drawn at its final size on an image that has already been upscaled."""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@functools.lru_cache(maxsize=16)
def font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed bitmap font
        return ImageFont.load_default()


def text_size(text: str, size: int = 12) -> tuple[int, int]:
    left, top, right, bottom = font(size).getbbox(text)
    return int(right - left), int(bottom - min(top, 0))


def caption(
    image: np.ndarray,
    lines: str | list[str],
    *,
    size: int = 12,
    fg: tuple[int, int, int] = (235, 235, 235),
    bg: tuple[int, int, int] = (24, 24, 24),
    where: str = "top",
) -> np.ndarray:
    """Return ``image`` (H, W, 3 uint8) with a strip of text lines above (or below) it."""
    lines = (lines,) if isinstance(lines, str) else tuple(lines)
    strip_arr = _caption_strip(lines, image.shape[1], size, tuple(fg), tuple(bg))
    parts = [strip_arr, image] if where == "top" else [image, strip_arr]
    return np.concatenate(parts, axis=0)


@functools.lru_cache(maxsize=256)
def _caption_strip(
    lines: tuple[str, ...], width: int, size: int, fg: tuple[int, int, int], bg: tuple[int, int, int]
) -> np.ndarray:
    """The text strip of `caption`, cached: views caption the same samples every epoch."""
    line_h = size + 3
    strip = Image.new("RGB", (width, line_h * len(lines) + 4), bg)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((3, 2 + i * line_h), _fit(line, width - 6, size), fill=fg, font=font(size))
    arr = np.asarray(strip, dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


def _fit(text: str, width: int, size: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if text_size(text, size)[0] <= width:
        return text
    while len(text) > 1 and text_size(text + "…", size)[0] > width:
        text = text[:-1]
    return text + "…"


# --------------------------------------------------------------------------- text stamped on figures
# matplotlib lays out and rasterizes text at ~1.5 ms a label; a figure reused across epochs draws its
# changing labels (cell counts, titles) with these instead: the same font (matplotlib's DejaVu Sans),
# rasterized once per distinct string by Pillow and alpha-blended into the canvas.

POINTS_PER_INCH = 72.0


@functools.lru_cache(maxsize=32)
def figure_font(size_px: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """matplotlib's default font (DejaVu Sans) at ``size_px`` pixels per em, for Pillow."""
    from matplotlib import font_manager

    try:
        props = font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal")
        return ImageFont.truetype(font_manager.findfont(props, fallback_to_default=True), int(size_px))
    except (OSError, ValueError):  # no FreeType: Pillow's own font
        return font(int(size_px))


def points_to_px(points: float, dpi: float = 100.0) -> int:
    return max(1, round(points * dpi / POINTS_PER_INCH))


@functools.lru_cache(maxsize=4096)
def text_coverage(text: str, size_px: int, bold: bool = False, line_spacing: float = 1.2) -> np.ndarray:
    """Anti-aliased coverage (h, w) uint8 of ``text`` (lines centred), cached per string."""
    f = figure_font(size_px, bold)
    spacing = max(0, round(size_px * (line_spacing - 1.0)))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    box = probe.multiline_textbbox((0, 0), text, font=f, align="center", spacing=spacing)
    left, top = int(np.floor(box[0])), int(np.floor(box[1]))
    right, bottom = int(np.ceil(box[2])), int(np.ceil(box[3]))
    img = Image.new("L", (max(1, right - left + 2), max(1, bottom - top + 2)), 0)
    ImageDraw.Draw(img).multiline_text((1 - left, 1 - top), text, fill=255, font=f, align="center", spacing=spacing)
    arr = np.asarray(img, dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


def stamp_text(
    canvas: np.ndarray,
    text: str,
    xy: tuple[float, float],
    color: tuple[int, int, int] | np.ndarray,
    size_px: int,
    *,
    bold: bool = False,
    anchor: str = "center",
) -> None:
    """Blend ``text`` into ``canvas`` (H, W, >=3 uint8, in place) at ``xy``: its centre
    (``anchor="center"``) or the middle of its top edge (``"top"``). Clipped at the edges."""
    if not text:
        return
    cov = text_coverage(text, int(size_px), bool(bold))
    h, w = cov.shape
    x0 = round(xy[0] - w / 2)
    y0 = round(xy[1] - (h / 2 if anchor == "center" else 0))
    ya, yb, xa, xb = max(y0, 0), min(y0 + h, canvas.shape[0]), max(x0, 0), min(x0 + w, canvas.shape[1])
    if yb <= ya or xb <= xa:
        return
    a = cov[ya - y0 : yb - y0, xa - x0 : xb - x0, None].astype(np.float32) * np.float32(1 / 255)
    region = canvas[ya:yb, xa:xb, :3]
    ink = np.asarray(color, dtype=np.float32)[:3]
    region[...] = (region * (1 - a) + ink * a + 0.5).astype(np.uint8)
