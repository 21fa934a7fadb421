"""Text on images (Pillow, in matplotlib's DejaVu Sans). TensorBoard shows a card about 330 px
wide, so text is drawn at its final size on an image that has already been upscaled, at a size
chosen from the image's width (`legible_size`) so that it still reads on the card."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from keras_vizcallbacks.render.legibility import CARD_WIDTH, MIN_TEXT_PX, note_text

HEADER_BG = (24, 24, 24)
HEADER_FG = (240, 240, 240)
SUBTITLE_FG = (185, 185, 185)


def font(size: int = 12, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (matplotlib's font, so figures and images read alike) at ``size`` px per em."""
    return figure_font(int(size), bool(bold))


@functools.lru_cache(maxsize=4096)
def text_size(text: str, size: int = 12, bold: bool = False) -> tuple[int, int]:
    """(width, height) in pixels of ``text`` at ``size`` px per em (cached: labels repeat every epoch)."""
    left, top, right, bottom = font(size, bold).getbbox(text)
    return int(right - left), int(bottom - min(top, 0))


def fits(text: str, width: int, size: int, bold: bool = False) -> bool:
    """``text_size(text, size, bold)[0] <= width``, without measuring the text when its words' ink
    (`line_pieces`, cached per word) shows it is narrower by a clear margin: captions and titles whose
    numbers change every epoch are measured by FreeType only when they come near ``width``."""
    span = _span(text, int(size), bool(bold))
    if span is not None and span + _FIT_MARGIN <= width:
        return True
    return text_size(text, size, bold)[0] <= width


@functools.lru_cache(maxsize=4096)
def _span(text: str, size: int, bold: bool) -> int | None:
    """From the origin (or the ink left of it) to the pen's end (or the ink right of it), in px, from
    cached words: what `text_size` measures (Pillow's box spans the advance, spaces included)."""
    pieces = line_pieces(text, size, bold)
    if pieces is None:
        return None
    stripped = text.rstrip(" ")
    last = stripped.rfind(" ") + 1
    pen = _advance64(text[:last], size, bold) if last else 0  # to the last word
    pen += _advance64(stripped[last:], size, bold) if stripped else 0  # over it
    pen += (len(text) - len(stripped)) * _advance64(" ", size, bold)  # and the spaces after it
    left = min([0, *(x for _, x, _ in pieces)])
    right = max([-(-pen // 64), *(x + mask.size[0] for mask, x, _ in pieces)])
    return right - left


# `text_size` (Pillow's box: the glyphs' outline boxes and the advance) is within a pixel of `_span`;
# tests/test_text_words.py checks that over many lines, so a span this much narrower than ``width`` fits.
_FIT_MARGIN = 4

# Bidirectional classes whose characters lay out left to right word by word (no reordering across spaces).
_LTR_CLASSES = frozenset({"L", "EN", "ES", "ET", "CS", "ON", "WS", "NSM", "BN"})


def _word_by_word(line: str, size: int, bold: bool) -> bool:
    """Whether ``line`` draws the same word by word: FreeType text, one line, left to right only."""
    if not isinstance(font(size, bold), ImageFont.FreeTypeFont):  # Pillow's bitmap font (no FreeType)
        return False
    if line.isascii():
        return "\n" not in line and "\r" not in line
    return all(unicodedata.bidirectional(c) in _LTR_CLASSES and c not in "\n\r\u2028\u2029" for c in line)


@functools.lru_cache(maxsize=8192)
def _advance64(text: str, size: int, bold: bool) -> int:
    """The pen's advance over ``text`` (kerning inside it included) in 1/64 px, Pillow's layout unit."""
    return round(font(size, bold).getlength(text) * 64)


@functools.lru_cache(maxsize=4096)
def _word_ink(word: str, size: int, bold: bool, frac64: int):
    """``word``'s coverage drawn by Pillow with its origin ``frac64``/64 px right of a pixel edge:
    ``(mask, dx, dy)`` (an "L" image cropped to the ink, its corner relative to the origin), or None."""
    f = font(size, bold)
    pad = size + 2  # room for ink left of the origin, above the line and below it
    mask = Image.new("L", (int(f.getlength(word)) + 2 * pad + 2, 3 * size + 4), 0)
    ImageDraw.Draw(mask).text((pad + frac64 / 64, pad), word, fill=255, font=f)
    box = mask.getbbox()
    if box is None:
        return None
    return mask.crop(box), box[0] - pad, box[1] - pad


@functools.lru_cache(maxsize=1024)
def line_pieces(line: str, size: int, bold: bool = False) -> tuple | None:
    """One line of text as Pillow draws it, in words: ``((mask, dx, dy), ...)``, each word's ink
    ("L" image) with its corner relative to the point ``ImageDraw.text`` would be given. None for a
    line that must be drawn in one piece (several lines, right-to-left text).

    Pillow places each glyph at the pen position rounded to a pixel, the pen moving by the layout's
    advances in 1/64 px; a word drawn alone at its pen position's fraction of a pixel therefore gets
    the same pixels as in the whole line, and words never share a pixel across the space between them
    (tests/test_text_words.py compares whole lines). Words repeat from epoch to epoch ("pred:", class
    names, "epoch"); only the changed numbers are rasterized again (~0.3 ms a line in one piece)."""
    size, bold = int(size), bool(bold)
    if not _word_by_word(line, size, bold):
        return None
    pieces = []
    start = 0
    for word in line.split(" "):
        if word:
            pen = _advance64(line[:start], size, bold) if start else 0
            ink = _word_ink(word, size, bold, pen % 64)
            if ink is not None:
                pieces.append((ink[0], pen // 64 + ink[1], ink[2]))
        start += len(word) + 1
    return tuple(pieces)


def draw_line(image: Image.Image, xy: tuple[int, int], line: str, fill, size: int, bold: bool = False) -> None:
    """``ImageDraw.Draw(image).text(xy, line, fill=fill, font=font(size, bold))`` at integer ``xy``, drawn
    from cached words (`line_pieces`) when the line allows: the same pixels."""
    pieces = line_pieces(line, size, bold)
    if pieces is None:
        ImageDraw.Draw(image).text(xy, line, fill=fill, font=font(size, bold))
        return
    x0, y0 = int(xy[0]), int(xy[1])
    for mask, dx, dy in pieces:
        image.paste(fill, (x0 + dx, y0 + dy), mask)  # clipped by Pillow at the image's edges


@functools.lru_cache(maxsize=256)
def ink_height(text: str, size_px: int, bold: bool = False) -> int:
    """Height in pixels of the inked rows of ``text`` at ``size_px`` (coverage above one half)."""
    cov = text_coverage(text, int(size_px), bool(bold))
    rows = np.flatnonzero((cov > 127).any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


@functools.lru_cache(maxsize=256)
def legible_size(width: int, bold: bool = False, min_px: float = MIN_TEXT_PX, card: int = CARD_WIDTH) -> int:
    """The font size (px per em) whose digits stay ``min_px`` tall when an image ``width`` px wide is
    shown ``card`` px wide (a narrower image is sized as if it were ``card`` wide: never smaller)."""
    need = min_px * max(int(width), card) / card
    size = max(8, int(need))
    while ink_height("0123456789", size, bold) < need:
        size += 1
    return size


def caption(
    image: np.ndarray,
    lines: str | list[str],
    *,
    size: int | None = None,
    fg: tuple[int, int, int] = (235, 235, 235),
    bg: tuple[int, int, int] = (24, 24, 24),
    where: str = "top",
) -> np.ndarray:
    """Return ``image`` (H, W, 3 uint8) with a strip of text lines above (or below) it, at ``size``
    px per em (default: `legible_size` of the image's width). Lines too long end in an ellipsis."""
    lines = (lines,) if isinstance(lines, str) else tuple(lines)
    size = legible_size(image.shape[1]) if size is None else int(size)
    for line in lines:
        note_text("caption", size, False, line)
    strip_arr = _caption_strip(lines, image.shape[1], size, tuple(fg), tuple(bg))
    parts = [strip_arr, image] if where == "top" else [image, strip_arr]
    return np.concatenate(parts, axis=0)


@functools.lru_cache(maxsize=256)
def _caption_strip(
    lines: tuple[str, ...], width: int, size: int, fg: tuple[int, int, int], bg: tuple[int, int, int]
) -> np.ndarray:
    """The text strip of `caption`, cached: views caption the same samples every epoch."""
    line_h = round(size * 1.25)
    pad = max(2, size // 4)
    strip = Image.new("RGB", (width, line_h * len(lines) + 2 * pad - (line_h - size) // 2), bg)
    for i, line in enumerate(lines):
        draw_line(strip, (pad, pad + i * line_h), fit(line, width - 2 * pad, size), fg, size)
    arr = np.asarray(strip, dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


def fit(text: str, width: int, size: int, bold: bool = False) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if fits(text, width, size, bold):
        return text
    while len(text) > 1 and text_size(text + "…", size, bold)[0] > width:
        text = text[:-1]
    return text + "…"


def wrap_parts(parts: Sequence[str], width: int, size: int, bold: bool = False, sep: str = " · ") -> list[str]:
    """Join ``parts`` with ``sep`` into as few lines as fit ``width`` pixels (a part never splits;
    one too long for a line alone ends in an ellipsis)."""
    lines: list[str] = []
    for part in parts:
        if lines and fits(lines[-1] + sep + part, width, size, bold):
            lines[-1] += sep + part
        else:
            lines.append(fit(part, width, size, bold))
    return lines


def header(
    image: np.ndarray,
    title: str | Sequence[str],
    subtitle: str | Sequence[str] = "",
    *,
    bg: tuple[int, int, int] = HEADER_BG,
    fg: tuple[int, int, int] = HEADER_FG,
) -> np.ndarray:
    """``image`` (H, W, 3 uint8) under a header: the title in bold (what the picture is: view, layer
    or method, epoch), then a subtitle, each legible at card size and wrapped at " · " to the width.

    ``title``/``subtitle`` are strings (split at " · ") or lists of parts."""
    width = image.shape[1]
    t_parts = tuple(title.split(" · ") if isinstance(title, str) else title)
    s_parts = tuple(subtitle.split(" · ") if isinstance(subtitle, str) else subtitle)
    t_size, s_size = legible_size(width, True), legible_size(width)
    note_text("header", t_size, True, " · ".join(t_parts))
    if any(s_parts):
        note_text("subtitle", s_size, False, " · ".join(s_parts))
    strip = _header_strip(t_parts, tuple(p for p in s_parts if p), width, t_size, s_size, tuple(bg), tuple(fg))
    return np.concatenate([strip, np.asarray(image, dtype=np.uint8)], axis=0)


@functools.lru_cache(maxsize=256)
def _header_strip(
    title: tuple[str, ...],
    subtitle: tuple[str, ...],
    width: int,
    t_size: int,
    s_size: int,
    bg: tuple[int, int, int],
    fg: tuple[int, int, int],
) -> np.ndarray:
    pad = max(3, t_size // 3)
    t_lines = wrap_parts(title, width - 2 * pad, t_size, True) if title else []
    s_lines = wrap_parts(subtitle, width - 2 * pad, s_size) if subtitle else []
    t_h, s_h = round(t_size * 1.2), round(s_size * 1.2)
    height = 2 * pad + len(t_lines) * t_h + len(s_lines) * s_h
    strip = Image.new("RGB", (width, max(height, 1)), bg)
    y = pad
    for line in t_lines:
        draw_line(strip, (pad, y), line, fg, t_size, True)
        y += t_h
    for line in s_lines:
        draw_line(strip, (pad, y), line, SUBTITLE_FG if fg == HEADER_FG else fg, s_size)
        y += s_h
    arr = np.asarray(strip, dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


def label_strip(
    labels: Sequence[str],
    centres: Sequence[float],
    width: int,
    size: int,
    *,
    fg: tuple[int, int, int] = HEADER_FG,
    bg: tuple[int, int, int] = HEADER_BG,
    what: str = "label",
    bold: bool = False,
) -> np.ndarray:
    """A one-line strip ``width`` px wide with each label centred at its x in ``centres``."""
    for label in labels:
        note_text(what, size, bold, label)
    return _label_strip(
        tuple(labels), tuple(float(c) for c in centres), int(width), int(size), tuple(fg), tuple(bg), bool(bold)
    )


@functools.lru_cache(maxsize=256)
def _label_strip(
    labels: tuple[str, ...],
    centres: tuple[float, ...],
    width: int,
    size: int,
    fg: tuple[int, int, int],
    bg: tuple[int, int, int],
    bold: bool = False,
) -> np.ndarray:
    height = round(size * 1.25)
    strip = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(strip)
    f = font(size, bold)
    for label, x in zip(labels, centres, strict=True):
        draw.text((x, height / 2), label, fill=fg, font=f, anchor="mm")
    arr = np.asarray(strip, dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


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
    except (OSError, ValueError, ImportError):  # no FreeType: Pillow's own font
        try:
            return ImageFont.load_default(size=int(size_px))
        except TypeError:
            return ImageFont.load_default()


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
    note_text("stamped", size_px, bold, text)
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
