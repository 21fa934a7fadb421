"""The confusion matrix as an annotated heatmap (matplotlib object API, Agg canvas, no pyplot)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np

from keras_vizcallbacks.render.figure import figure, figure_to_array

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
    its count, or the count alone, up to ``annotate_up_to`` classes.
    """
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
    colormap = matplotlib.colormaps[cmap]
    longest = max((len(s) for s in names), default=1)
    rotate = n > 4 or longest > 8
    label_px = int(min(150, 12 + 8.5 * longest))
    with figure(width, height, dpi=100) as fig:
        left_px = int(label_px * 1.05) + 60
        bottom_px = (label_px * 0.7 if rotate else 30) + 48
        top_px = 72 if subtitle else 46
        side = min(width - left_px - 24, height - bottom_px - top_px)
        left_px += max(0, (width - left_px - 24 - side) // 2)
        ax = fig.add_axes((left_px / width, bottom_px / height, side / width, side / height))
        ax.imshow(value, cmap=colormap, vmin=0.0, vmax=vmax, interpolation="nearest", aspect="auto")
        fs = _font_size(n)
        if n <= annotate_up_to:
            for i in range(n):
                for j in range(n):
                    level = value[i, j] / vmax
                    color = "white" if level > 0.55 else "#111111"
                    both = rates is not None and c[i, j] != 0
                    text = f"{value[i, j]:.0%}\n{int(c[i, j])}" if both else f"{int(c[i, j])}"
                    weight = "bold" if i == j else "normal"
                    ax.text(j, i, text, ha="center", va="center", color=color, fontsize=fs, fontweight=weight)
        tick_fs = 14 if n <= 6 else (11 if n <= 10 else 8)
        ax.set_xticks(range(n))
        ax.set_yticks(range(n))
        ax.set_xticklabels(names, fontsize=tick_fs, rotation=40 if rotate else 0, ha="right" if rotate else "center")
        ax.set_yticklabels(names, fontsize=tick_fs)
        ax.set_xlabel("predicted class", fontsize=14)
        ax.set_ylabel("true class", fontsize=14)
        ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        if title:
            fig.text(0.5, 1 - 8 / height, title, ha="center", va="top", fontsize=17, fontweight="bold")
        if subtitle:
            fig.text(0.5, 1 - 36 / height, subtitle, ha="center", va="top", fontsize=13, color="#333333")
        return figure_to_array(fig)


__all__ = ["RATE_WORDS", "confusion_image"]
