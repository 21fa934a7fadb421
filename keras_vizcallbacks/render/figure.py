"""matplotlib figures drawn with the object API on an Agg canvas (never pyplot).

No global state is touched: a figure made here is garbage once its pixels are
read, so repeated calls leak nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(width_px: int = 512, height_px: int = 512, dpi: int = 100) -> Figure:
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render ``fig`` and return its pixels as uint8 (H, W, 3)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])


@contextmanager
def figure(width_px: int = 512, height_px: int = 512, dpi: int = 100) -> Iterator[Figure]:
    """``with figure() as fig: ...`` then ``figure_to_array(fig)`` inside the block."""
    fig = new_figure(width_px, height_px, dpi)
    try:
        yield fig
    finally:
        fig.clear()


class Blitter:
    """Redraw only what changes on a figure reused across calls.

    ``dynamic`` artists (in drawing order) are marked animated: a full draw
    leaves them out and its pixels are kept as the background; each later
    call restores that background and draws only them on top. The background
    is redrawn when ``key`` (what the static artists depend on: limits, labels)
    changes. Pixels are the same as a full draw as long as no static artist
    is meant to sit above a dynamic one (put spines or grid lines in ``dynamic``).
    """

    def __init__(self, fig: Figure, dynamic: list) -> None:
        self.fig = fig
        self.dynamic = list(dynamic)
        for artist in self.dynamic:
            artist.set_animated(True)
        self._background = None
        self._key: object = None

    def begin(self, key: object) -> np.ndarray:
        """Start a frame: the background (redrawn when ``key`` changed) in the canvas; returns the
        canvas pixels, uint8 (H, W, 4) and writable, for pasting pixels under the dynamic artists."""
        canvas = self.fig.canvas
        if self._background is None or key != self._key:
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            self._key = key
        else:
            canvas.restore_region(self._background)
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

    def render(self, key: object, extra: tuple = ()) -> np.ndarray:
        """`begin` then `finish`."""
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
