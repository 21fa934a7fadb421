"""The confusion matrix as an annotated heatmap (matplotlib object API, Agg canvas, no pyplot).

:class:`ConfusionFigure` keeps one figure (axes, ticks, cell texts) across calls and redraws only
the cells, their texts and the titles; :func:`confusion_image` is the one-shot form.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np

from keras_vizcallbacks.render.figure import DPI, Blitter, ReusedFigure, axes_pixels, new_figure
from keras_vizcallbacks.render.legibility import note_mark
from keras_vizcallbacks.render.text import stamp_text, text_coverage, text_size

RATE_WORDS = {
    "true": "share of each true class (rows sum to 100%)",
    "pred": "share of each predicted class (columns sum to 100%)",
    "all": "share of all examples",
    None: "counts",
}
SIZE = (480, 480)  # default (width, height) px: text sized to read in TensorBoard's ~330 px card


class ConfusionFigure(ReusedFigure):
    """One confusion-matrix figure reused across calls: the layout (axes, tick labels, one text
    per cell) is built once per class count and names; each call paints the cells straight into
    the canvas and updates the texts. Not thread-safe (one per callback); :meth:`close` drops it."""

    def __init__(self, width: int = SIZE[0], height: int = SIZE[1], annotate_up_to: int = 20) -> None:
        super().__init__(width, height)
        self.annotate_up_to = int(annotate_up_to)

    def _build(self, key: Any, n: int, names: list[str], sub_lines: tuple[int, int], rates: bool) -> None:
        self.close()
        width, height = self.width, self.height
        fp, pt = self.font_px, self.font_pt
        longest = max((text_size(s, fp)[0] for s in names), default=fp)
        fig = new_figure(width, height, dpi=DPI)
        top_px = self.title_height(sub_lines)
        left_px = min(longest, width // 3) + round(1.3 * fp) + 20  # tick labels, the axis label, pads
        side = min(width - left_px - 16, height - top_px - round(2.6 * fp) - 16)
        rotate = longest > side / n - 6  # the names do not fit under their columns: slanted
        bottom_px = round((min(longest, width // 3) * 0.72 + 0.7 * fp) if rotate else 1.3 * fp) + round(1.3 * fp) + 14
        side = min(width - left_px - 16, height - bottom_px - top_px)
        left_px += max(0, (width - left_px - 16 - side) // 2)
        ax = fig.add_axes((left_px / width, bottom_px / height, side / width, side / height))
        ax.set_xlim(-0.5, n - 0.5)
        ax.set_ylim(n - 0.5, -0.5)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(names, fontsize=pt, rotation=40 if rotate else 0, ha="right" if rotate else "center")
        ax.set_yticklabels(names, fontsize=pt)
        # the cell values: legible, larger if there is room; rates as "97%" (over the count when it fits),
        # as "97" (the unit in the axis label) where "100%" does not fit a cell, else the colours alone
        cell_px = max(fp, min(round(1.25 * fp), round(side / n * 0.3)))
        room = (0.92 * side / n, 0.92 * side / n)
        percent = rates and not _fits("100%", cell_px, True, room) and _fits("100", cell_px, True, room)
        ax.set_xlabel("predicted class" + (" (cells: %)" if percent else ""), fontsize=pt, labelpad=2)
        ax.set_ylabel("true class", fontsize=pt, labelpad=2)
        self._fig, self._key = fig, key
        # Axes, ticks and labels are drawn once (the blitted background); the cells are painted and the
        # texts that change (cell values, titles) stamped with Pillow in matplotlib's font every call.
        self._a = {"ax": ax, "font_px": cell_px, "blit": Blitter(fig, [*ax.spines.values()])}

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
        sub_lines = tuple(len(x) for x in self.title_lines(title, subtitle))
        key = (n, tuple(names), sub_lines, rates is not None)
        if key != self._key:
            self._build(key, n, names, sub_lines, rates is not None)
        a = self._a
        canvas = a["blit"].begin(None)
        left, top, w, h = axes_pixels(a["ax"])
        level = value / vmax
        canvas[top : top + h, left : left + w, :3] = cell_pixels(level, (w, h), cmap)
        out = a["blit"].finish()
        self.stamp_titles(out, title, subtitle)
        note_mark("confusion cell", min(w, h) / n)
        fs, room = a["font_px"], (0.92 * w / n, 0.92 * h / n)
        widest = str(int(c.max())) if c.size else "0"
        if rates is None:  # one format for every cell: the one that fits the widest value (else colours alone)
            form = "count" if _fits(widest, fs, True, room) else None
        elif _fits(f"100%\n{widest}", fs, True, room):
            form = "both"
        else:
            form = "rate" if _fits("100%", fs, True, room) else ("percent" if _fits("100", fs, True, room) else None)
        if n <= self.annotate_up_to and form is not None:
            for i in range(n):
                for j in range(n):
                    rate, count = f"{value[i, j]:.0%}", f"{int(c[i, j])}"
                    text = {"count": count, "both": f"{rate}\n{count}" if c[i, j] else count, "rate": rate,
                            "percent": f"{100 * value[i, j]:.0f}"}[form]  # fmt: skip
                    ink = (255, 255, 255) if level[i, j] > 0.55 else (0x11, 0x11, 0x11)
                    centre = (left + (j + 0.5) * w / n, top + (i + 0.5) * h / n)
                    stamp_text(out, text, centre, ink, fs, bold=i == j)
        self.note_drawn()
        return out


def _fits(text: str, size_px: int, bold: bool, room: tuple[float, float]) -> bool:
    """Whether ``text`` at ``size_px`` fits ``room`` (width, height): a cell's value is written only where
    it stays legible (a smaller font would not read in TensorBoard's card); the cell's colour still shows it."""
    h, w = text_coverage(text, int(size_px), bool(bold)).shape
    return w <= room[0] and h <= room[1]


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
    width: int = SIZE[0],
    height: int = SIZE[1],
    annotate_up_to: int = 20,
) -> np.ndarray:
    """Draw a confusion matrix; return uint8 (height, width, 3).

    Row = true class, column = predicted class. Cells are coloured by ``rates``
    (in [0, 1]; e.g. row-normalized) or, without rates, by the counts scaled to
    the largest one. Each cell is annotated with its rate (as a percentage) over
    its count, or the count alone, up to ``annotate_up_to`` classes, at a size that reads in
    TensorBoard's card: where the two lines do not fit a cell, the rate alone; then the rate without
    its % sign (the axis label says "cells: %"); where that does not fit either, the colours alone. A callback
    keeps a :class:`ConfusionFigure` instead.
    """
    fig = ConfusionFigure(width, height, annotate_up_to)
    try:
        return fig.image(counts, rates, class_names=class_names, title=title, subtitle=subtitle, cmap=cmap)
    finally:
        fig.close()


__all__ = ["RATE_WORDS", "SIZE", "ConfusionFigure", "cell_pixels", "confusion_image"]
