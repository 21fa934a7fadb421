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
