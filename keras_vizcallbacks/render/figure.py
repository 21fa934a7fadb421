"""matplotlib figures drawn with the object API on an Agg canvas (never pyplot).

No global state is touched: a figure made here is garbage once its pixels are
read, so repeated calls leak nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keras_vizcallbacks.render.legibility import active, note_mark, note_text
from keras_vizcallbacks.render.text import legible_size, stamp_text, wrap_parts

DPI = 100
TITLE_FG, SUBTITLE_FG = (0, 0, 0), (0x33, 0x33, 0x33)


def note_figure(fig: Figure) -> None:
    """Note (`legibility.note_text` / `note_mark`) each visible, non-empty text of ``fig`` at its font
    size, each scatter's smallest marker, each marker line's markers (data points in an axes, legend handles) at
    their size, in pixels."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.text import Text

    scale = fig.dpi / 72.0
    for t in fig.findobj(Text):
        if t.get_visible() and t.get_text().strip():
            weight = t.get_fontweight()
            bold = weight in ("bold", "heavy", "black", "semibold", "demibold") or (
                isinstance(weight, (int, float)) and weight >= 600
            )
            note_text("figure text", t.get_fontsize() * scale, bold, t.get_text())
    for c in fig.findobj(PathCollection):
        if c.get_visible() and len(c.get_offsets()) and len(c.get_sizes()):
            note_mark("marker", float(np.sqrt(np.min(c.get_sizes()))) * scale)
    for line in fig.findobj(Line2D):
        marker = line.get_marker()  # tick marks are lines with an integer marker (TICKDOWN, ...): not data
        if not (line.get_visible() and isinstance(marker, str) and marker not in ("None", "", " ")):
            continue
        if line.axes is None:  # a legend handle
            note_mark("legend marker", line.get_markersize() * scale)
        elif len(line.get_xdata()):  # data points drawn as a marker line
            note_mark("marker", line.get_markersize() * scale)


def new_figure(width_px: int = 512, height_px: int = 512, dpi: int = DPI) -> Figure:
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


class ReusedFigure:
    """Base of a figure kept across calls: subclasses build their layout once per ``key``
    (``self._fig``, artists in ``self._a``) and only update data afterwards.

    Not thread-safe: one per callback (its draws are sequential). ``close`` drops the
    figure; the next call builds it again.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = int(width), int(height)
        self._key: Any = None
        self._fig: Figure | None = None
        self._a: dict[str, Any] = {}
        # every text of the figure (ticks, axis labels, legend, subtitle) at the size that stays legible once
        # the figure is shown in TensorBoard's card (render/legibility.py); the title a little larger, bold
        self.font_px = legible_size(self.width)
        self.title_px = round(legible_size(self.width, True) * 1.2)

    @property
    def font_pt(self) -> float:
        """``font_px`` in points, for matplotlib (at ``DPI``)."""
        return self.font_px * 72.0 / DPI

    def title_lines(self, title: str, subtitle: str) -> tuple[list[str], list[str]]:
        """The title's and the subtitle's lines: each split at " · " into as few lines as fit the width."""
        t = wrap_parts(title.split(" · "), self.width - 16, self.title_px, True) if title else []
        s = wrap_parts(subtitle.split(" · "), self.width - 16, self.font_px) if subtitle else []
        return t, s

    def title_height(self, lines: tuple[int, int]) -> int:
        """Pixels the title and subtitle take at the top, for ``lines`` = (title lines, subtitle lines)."""
        return 8 + round(self.title_px * 1.25) * lines[0] + round(self.font_px * 1.25) * lines[1] + 6

    def stamp_titles(self, pixels: np.ndarray, title: str, subtitle: str) -> None:
        """The title (bold) and the subtitle centred at the top of ``pixels``, stamped with Pillow in
        matplotlib's font: they change every call, and matplotlib text costs ~1.5 ms a label."""
        t_lines, s_lines = self.title_lines(title, subtitle)
        y = 8
        for line in t_lines:
            stamp_text(pixels, line, (self.width / 2, y), TITLE_FG, self.title_px, bold=True, anchor="top")
            y += round(self.title_px * 1.25)
        for line in s_lines:
            stamp_text(pixels, line, (self.width / 2, y), SUBTITLE_FG, self.font_px, anchor="top")
            y += round(self.font_px * 1.25)

    def note_drawn(self) -> None:
        """With `legibility.recording` active: note every text, marker and legend handle of the figure
        (as matplotlib draws them: font size, marker size) for the legibility checks."""
        if self._fig is not None and active():
            note_figure(self._fig)

    def close(self) -> None:
        if self._fig is not None:
            self._fig.clear()
        self._fig = self._key = None
        self._a = {}


class Blitter:
    """Redraw only what changes on a figure reused across calls.

    ``dynamic`` artists (in drawing order) are left out of a full draw, whose
    pixels are kept as the background (redrawn when ``key`` changes); each call
    restores it and draws only them on top. ``cached`` artists (e.g. the axes'
    ticks, which change only with the limits) are drawn over the background once
    per value of ``cached_key`` and kept as a second background. Pixels are the
    same as a full draw as long as no static or cached artist is meant to sit
    above a dynamic one (put spines or grid lines in ``dynamic``). An axis may be
    dynamic or cached: its label position is still computed when it is drawn.
    """

    def __init__(self, fig: Figure, dynamic: list, cached: list = ()) -> None:
        self.fig = fig
        self.dynamic = list(dynamic)
        self.cached = list(cached)
        for artist in (*self.dynamic, *self.cached):
            artist.set_animated(True)
        self._background = None
        self._key: object = None
        self._cached_background = None
        self._cached_key: object = None

    def begin(self, key: object = None, cached_key: object = None) -> np.ndarray:
        """Start a frame: the background (redrawn when ``key`` changed) and the cached artists
        (redrawn when ``cached_key`` changed) in the canvas; returns the canvas pixels, uint8
        (H, W, 4) and writable, for pasting pixels under the dynamic artists."""
        canvas = self.fig.canvas
        if self._background is None or key != self._key:
            moving = (*self.dynamic, *self.cached)
            shown = [artist.get_visible() for artist in moving]
            for artist in moving:  # hidden too: an axis draws its label even when it is animated
                artist.set_visible(False)
            try:
                canvas.draw()
            finally:
                for artist, visible in zip(moving, shown):
                    artist.set_visible(visible)
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            self._key = key
            self._cached_background = None
        if self.cached and self._cached_background is not None and cached_key == self._cached_key:
            canvas.restore_region(self._cached_background)
        else:
            canvas.restore_region(self._background)
            if self.cached:
                renderer = canvas.get_renderer()
                shown = [artist.get_visible() for artist in self.dynamic]
                for artist in self.dynamic:  # an axis label is dynamic: the axis positions it, finish draws it
                    artist.set_visible(False)
                try:
                    for artist in self.cached:
                        if artist.get_visible():
                            artist.draw(renderer)
                finally:
                    for artist, visible in zip(self.dynamic, shown):
                        artist.set_visible(visible)
                self._cached_background = canvas.copy_from_bbox(self.fig.bbox)
                self._cached_key = cached_key
        return np.asarray(canvas.buffer_rgba())

    def finish(self, extra: tuple = ()) -> np.ndarray:
        """Draw the dynamic artists and ``extra`` ones on top; return the pixels uint8 (H, W, 3)."""
        renderer = self.fig.canvas.get_renderer()
        for artist in extra:
            artist.set_animated(True)
        for artist in (*self.dynamic, *extra):
            if artist.get_visible():
                artist.draw(renderer)
        return np.ascontiguousarray(np.asarray(self.fig.canvas.buffer_rgba())[..., :3])

    def render(self, key: object = None, extra: tuple = ()) -> np.ndarray:
        """:meth:`begin` then :meth:`finish`."""
        self.begin(key)
        return self.finish(extra)


def axes_pixels(ax) -> tuple[int, int, int, int]:
    """``(left, top, width, height)`` of ``ax``'s box in canvas pixels (row 0 at the top), after a draw."""
    fig = ax.figure
    bb = ax.get_window_extent(fig.canvas.get_renderer())
    h = round(fig.bbox.height)
    left, right = round(bb.x0), round(bb.x1)
    top, bottom = h - round(bb.y1), h - round(bb.y0)
    return left, top, max(right - left, 1), max(bottom - top, 1)
