"""Legible at card size: what every picture is drawn for, and a record of what it drew.

TensorBoard shows an image card about ``CARD_WIDTH`` px wide whatever the image's size. Once an
image is scaled to that width, its text should be at least ``MIN_TEXT_PX`` tall (the ink height
of the digits, about a capital letter's height) and its marks at least ``MIN_MARK_PX`` across:
a marker (a scatter point, a kernel weight, a confusion cell) or a map tile (one feature-map
channel, one Grad-CAM or saliency panel).

The drawing functions of render/ note here each text and mark they draw, with the size they
draw it at; nothing is kept unless a caller asks, inside ``with recording() as drawn:``
(a context variable: one list per thread or task, no global state)::

    with recording() as drawn:
        image = feature_map_grid(maps, inputs, captions=names)
    assert not problems(drawn, image.shape[1])
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

CARD_WIDTH = 330  # px: TensorBoard 2.21 draws an image card about this wide
MIN_TEXT_PX = 9  # px at card size: ink height of the digits (about the cap height)
MIN_MARK_PX = 4  # px at card size: a marker or a map tile, across


@dataclass(frozen=True)
class Drawn:
    """One text or mark drawn: ``kind`` is ``"text"`` (``px`` = font size, px per em) or
    ``"mark"`` (``px`` = its size across, in image pixels)."""

    kind: str
    what: str
    px: float
    bold: bool = False
    text: str = ""


_DRAWN: contextvars.ContextVar[list[Drawn] | None] = contextvars.ContextVar("kv_render_drawn", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[Drawn]]:
    """Collect what the drawing functions called inside the block draw (this thread only)."""
    drawn: list[Drawn] = []
    token = _DRAWN.set(drawn)
    try:
        yield drawn
    finally:
        _DRAWN.reset(token)


def active() -> bool:
    return _DRAWN.get() is not None


def note_text(what: str, size_px: float, bold: bool = False, text: str = "") -> None:
    """A text drawn at ``size_px`` pixels per em (DejaVu Sans, the font of render/)."""
    drawn = _DRAWN.get()
    if drawn is not None:
        drawn.append(Drawn("text", what, float(size_px), bool(bold), str(text)))


def note_mark(what: str, px: float) -> None:
    """A marker or map tile drawn ``px`` image pixels across (its smaller side)."""
    drawn = _DRAWN.get()
    if drawn is not None:
        drawn.append(Drawn("mark", what, float(px)))


def at_card(px: float, width: int, card: int = CARD_WIDTH) -> float:
    """``px`` image pixels once an image ``width`` px wide is shown ``card`` px wide."""
    return float(px) * card / max(int(width), 1)


def card_size(d: Drawn, width: int, card: int = CARD_WIDTH) -> float:
    """What ``d`` measures at card size: the digits' ink height of a text, the size of a mark."""
    if d.kind == "text":
        from keras_vizcallbacks.render.text import ink_height

        return at_card(ink_height("0123456789", round(d.px), d.bold), width, card)
    return at_card(d.px, width, card)


def problems(
    drawn: list[Drawn],
    width: int,
    *,
    card: int = CARD_WIDTH,
    min_text: float = MIN_TEXT_PX,
    min_mark: float = MIN_MARK_PX,
) -> list[str]:
    """What would not read at card size, one line each (empty: everything reads)."""
    out = []
    for d in drawn:
        size = card_size(d, width, card)
        need = min_text if d.kind == "text" else min_mark
        if size < need:
            name = f"{d.what} {d.text!r}" if d.text else d.what
            out.append(f"{d.kind} {name}: {size:.1f} px at {card} px wide (image {width} px), needs {need:g}")
    return out


__all__ = [
    "CARD_WIDTH",
    "MIN_MARK_PX",
    "MIN_TEXT_PX",
    "Drawn",
    "active",
    "at_card",
    "card_size",
    "note_mark",
    "note_text",
    "problems",
    "recording",
]
