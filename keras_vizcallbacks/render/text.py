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


def draw_text(
    image: np.ndarray,
    xy: tuple[int, int],
    text: str,
    *,
    size: int = 12,
    fg: tuple[int, int, int] = (255, 255, 255),
    bg: tuple[int, int, int] | None = (0, 0, 0),
) -> np.ndarray:
    """Draw ``text`` at ``xy`` (top-left) on a copy of ``image``, on a filled box if ``bg``."""
    pil = Image.fromarray(np.ascontiguousarray(image))
    draw = ImageDraw.Draw(pil)
    if bg is not None:
        w, h = text_size(text, size)
        draw.rectangle([xy[0], xy[1], xy[0] + w + 3, xy[1] + h + 3], fill=bg)
    draw.text((xy[0] + 2, xy[1] + 1), text, fill=fg, font=font(size))
    return np.asarray(pil, dtype=np.uint8)
