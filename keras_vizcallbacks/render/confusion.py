"""The confusion matrix as an annotated heatmap (matplotlib object API, Agg canvas, no pyplot).

:class:`ConfusionFigure` keeps one figure (axes, ticks, cell texts) across calls and redraws only
the cells, their texts and the titles; :func:`confusion_image` is the one-shot form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

from keras_vizcallbacks.render.figure import Blitter, ReusedFigure, axes_pixels, new_figure
from keras_vizcallbacks.render.text import points_to_px, stamp_text

RATE_WORDS = {
    "true": "share of each true class (rows sum to 100%)",
    "pred": "share of each predicted class (columns sum to 100%)",
    "all": "share of all examples",
    None: "counts",
}


def _font_size(n: int) -> float:
    if n <= 4:
        return 17.0
    if n <= 6:
        return 14.0
    if n <= 10:
        return 10.0
    return 7.5


class ConfusionFigure(ReusedFigure):
    """One confusion-matrix figure reused across calls: the layout (axes, tick labels, one text
    per cell) is built once per class count and names; each call paints the cells straight into
    the canvas and updates the texts. Not thread-safe (one per callback); :meth:`close` drops it."""

    def __init__(self, width: int = 640, height: int = 640, annotate_up_to: int = 20) -> None:
        super().__init__(width, height)
        self.annotate_up_to = int(annotate_up_to)

    def _build(self, key: Any, n: int, names: list[str], subtitle: bool) -> None:
        self.close()
        width, height = self.width, self.height
        longest = max((len(s) for s in names), default=1)
        rotate = n > 4 or longest > 8
        label_px = int(min(150, 12 + 8.5 * longest))
        fig = new_figure(width, height, dpi=100)
        left_px = int(label_px * 1.05) + 60
        bottom_px = (label_px * 0.7 if rotate else 30) + 48
        top_px = 72 if subtitle else 46
        side = min(width - left_px - 24, height - bottom_px - top_px)
        left_px += max(0, (width - left_px - 24 - side) // 2)
        ax = fig.add_axes((left_px / width, bottom_px / height, side / width, side / height))
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        tick_fs = 14 if n <= 6 else (11 if n <= 10 else 8)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(names, fontsize=tick_fs, rotation=40 if rotate else 0, ha="right" if rotate else "center")
        ax.set_yticklabels(names, fontsize=tick_fs)
        ax.set_xlabel("predicted class", fontsize=14)
        ax.set_ylabel("true class", fontsize=14)
        self._fig, self._key = fig, key
        # Axes, ticks and labels are drawn once (the blitted background); the cells are painted and the
        # texts that change (cell values, titles) stamped with Pillow in matplotlib's font every call.
        self._a = {"ax": ax, "font_px": points_to_px(_font_size(n)), "blit": Blitter(fig, [*ax.spines.values()])}

    def image(
        self,
        counts: np.ndarray,
        rates: np.ndarray | None = None,
        *,
        class_names: Sequence[str] | None = None,
        title: str = "",
        subtitle: str = "",
        cmap: str = "Blues",
    ) -> np.ndarray:
        """Draw a confusion matrix; return uint8 (height, width, 3). See :func:`confusion_image`."""
        c = np.asarray(counts)
        n = c.shape[0]
        names = [str(s) for s in class_names] if class_names is not None and len(class_names) == n else [
            str(k) for k in range(n)
        ]  # fmt: skip
        if rates is not None:
            value = np.clip(np.nan_to_num(np.asarray(rates, dtype=np.float64), nan=0.0), 0.0, 1.0)
            vmax = 1.0
        else:
            value = c.astype(np.float64)
            vmax = max(float(value.max()) if value.size else 0.0, 1.0)
        key = (n, tuple(names), bool(subtitle))
        if key != self._key:
            self._build(key, n, names, bool(subtitle))
        a = self._a
        canvas = a["blit"].begin(None)
        left, top, w, h = axes_pixels(a["ax"])
        level = value / vmax
        canvas[top : top + h, left : left + w, :3] = cell_pixels(level, (w, h), cmap)
        out = a["blit"].finish()
        self.stamp_titles(out, title, subtitle)
        if n <= self.annotate_up_to:
            for i in range(n):
                for j in range(n):
                    both = rates is not None and c[i, j] != 0
                    text = f"{value[i, j]:.0%}\n{int(c[i, j])}" if both else f"{int(c[i, j])}"
                    ink = (255, 255, 255) if level[i, j] > 0.55 else (0x11, 0x11, 0x11)
                    centre = (left + (j + 0.5) * w / n, top + (i + 0.5) * h / n)
                    stamp_text(out, text, centre, ink, a["font_px"], bold=i == j)
        return out


def cell_pixels(level: np.ndarray, size: tuple[int, int], cmap: str = "Blues", line_px: float = 2.0) -> np.ndarray:
    """(n, n) levels in [0, 1] -> uint8 (h, w, 3): each cell in its colormap colour, white lines
    of ``line_px`` between the cells (as a 1.5 pt grid at 100 dpi)."""
    w, h = size
    n = level.shape[0]
    rgba = matplotlib.colormaps[cmap](np.clip(np.nan_to_num(level, nan=0.0), 0.0, 1.0))
    colors = np.round(np.asarray(rgba)[..., :3] * 255.0).astype(np.uint8)
    cols = np.minimum(((np.arange(w) + 0.5) * n / w).astype(np.intp), n - 1)
    rows = np.minimum(((np.arange(h) + 0.5) * n / h).astype(np.intp), n - 1)
    out = colors[rows][:, cols]
    half = line_px / 2
    for k in range(1, n):
        x, y = k * w / n, k * h / n
        out[:, max(round(x - half), 0) : round(x + half)] = 255
        out[max(round(y - half), 0) : round(y + half)] = 255
    return out


def confusion_image(
    counts: np.ndarray,
    rates: np.ndarray | None = None,
    *,
    class_names: Sequence[str] | None = None,
    title: str = "",
    subtitle: str = "",
    cmap: str = "Blues",
    width: int = 640,
    height: int = 640,
    annotate_up_to: int = 20,
) -> np.ndarray:
    """Draw a confusion matrix; return uint8 (height, width, 3).

    Row = true class, column = predicted class. Cells are coloured by ``rates``
    (in [0, 1]; e.g. row-normalized) or, without rates, by the counts scaled to
    the largest one. Each cell is annotated with its rate (as a percentage) over
    its count, or the count alone, up to ``annotate_up_to`` classes. A callback
    keeps a :class:`ConfusionFigure` instead.
    """
    fig = ConfusionFigure(width, height, annotate_up_to)
    try:
        return fig.image(counts, rates, class_names=class_names, title=title, subtitle=subtitle, cmap=cmap)
    finally:
        fig.close()


__all__ = ["RATE_WORDS", "ConfusionFigure", "cell_pixels", "confusion_image"]
