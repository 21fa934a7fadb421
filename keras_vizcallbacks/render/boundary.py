"""Decision regions as a picture: a class map over a 2-D grid with the data points on top.

Takes plain arrays (no model, no package imports beyond render/) and draws
with matplotlib's object API on an Agg canvas: no pyplot, no global state, the
figure is garbage once its pixels are read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.lines import Line2D

from keras_vizcallbacks.render.color import class_colors
from keras_vizcallbacks.render.figure import figure, figure_to_array

REGION_ALPHA = 0.6  # region opacity at confidence 1 (white at 0), so the points stay readable on top


def region_rgb(classes: np.ndarray, confidence: np.ndarray, colors: np.ndarray, max_alpha: float = REGION_ALPHA):
    """(G, G) classes + confidences -> (G, G, 3) float RGB: the class hue over white with alpha =
    confidence (times ``max_alpha``). NaN confidence is drawn white."""
    c = np.asarray(colors, dtype=np.float64)[np.clip(np.asarray(classes, dtype=np.int64), 0, len(colors) - 1)]
    a = np.nan_to_num(np.asarray(confidence, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    a = np.clip(a, 0.0, 1.0)[..., None] * max_alpha
    return 1.0 - a * (1.0 - c / 255.0)


def _names(n: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is not None and len(class_names) >= n:
        return [str(c) for c in class_names[:n]]
    return [f"class {k}" for k in range(n)]


def _limits(lim, values) -> tuple[float, float]:
    if lim is not None:
        lo, hi = float(lim[0]), float(lim[1])
    else:
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        lo, hi = (float(v.min()), float(v.max())) if v.size else (-1.0, 1.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        mid = lo if np.isfinite(lo) else 0.0
        lo, hi = mid - 1.0, mid + 1.0
    return lo, hi


def decision_boundary_image(
    classes: np.ndarray,
    confidence: np.ndarray,
    xx: np.ndarray,
    yy: np.ndarray,
    *,
    probabilities: np.ndarray | None = None,
    n_classes: int | None = None,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    predictions: np.ndarray | None = None,
    anchors: np.ndarray | None = None,
    anchor_labels: np.ndarray | None = None,
    anchor_predictions: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    subtitle: str = "",
    xlim: Sequence[float] | None = None,
    ylim: Sequence[float] | None = None,
    equal_aspect: bool = False,
    width: int = 640,
    height: int = 700,
    max_alpha: float = REGION_ALPHA,
) -> np.ndarray:
    """Draw decision regions; return uint8 (height, width, 3).

    ``classes[r, c]`` / ``confidence[r, c]`` belong to the point ``(xx[c], yy[r])``.
    Regions take their class's tab10 hue with alpha = confidence, and thin black
    lines mark where the predicted class changes. Data ``points`` are coloured by
    true ``labels`` (by ``predictions`` when there are no labels); a point whose
    prediction differs from its label is drawn as a bold ✕. ``anchors`` (plane
    mode) are numbered stars with their class names.
    """
    classes = np.asarray(classes)
    confidence = np.asarray(confidence, dtype=np.float64)
    n = int(n_classes or 0)
    for arr in (classes, labels, predictions, anchor_labels, anchor_predictions):
        if arr is not None and np.size(arr):
            n = max(n, int(np.max(arr)) + 1)
    n = max(n, 1)
    colors = class_colors(n)
    names = _names(n, class_names)
    xx = np.asarray(xx, dtype=np.float64)
    yy = np.asarray(yy, dtype=np.float64)
    x0, x1 = _limits(xlim, xx)
    y0, y1 = _limits(ylim, yy)
    shown = sorted({int(c) for c in np.unique(classes)} | ({int(c) for c in labels} if labels is not None else set()))
    legend_cols = min(len(shown) + 1, 5)
    legend_rows = -(-(len(shown) + 1) // legend_cols)

    with figure(width, height, dpi=100) as fig:
        bottom_px = 62 + 26 * legend_rows
        top_px = 64 if subtitle else 42
        ax = fig.add_axes((92 / width, bottom_px / height, 1 - 106 / width, 1 - (bottom_px + top_px) / height))
        rgb = region_rgb(classes, confidence, colors, max_alpha)
        dx = (xx[-1] - xx[0]) / max(len(xx) - 1, 1) / 2 if len(xx) > 1 else 0.5
        dy = (yy[-1] - yy[0]) / max(len(yy) - 1, 1) / 2 if len(yy) > 1 else 0.5
        ax.imshow(
            rgb,
            origin="lower",
            extent=(xx[0] - dx, xx[-1] + dx, yy[0] - dy, yy[-1] + dy),
            interpolation="nearest",
            aspect="equal" if equal_aspect else "auto",
            zorder=0,
        )
        if len(np.unique(classes)) > 1 and len(xx) > 1 and len(yy) > 1:
            _draw_boundaries(ax, xx, yy, classes, probabilities)
        if points is not None and len(points):
            pts = np.asarray(points, dtype=np.float64)
            ok = np.all(np.isfinite(pts), axis=1)
            hue = labels if labels is not None else predictions
            hue = np.zeros(len(pts), dtype=np.int64) if hue is None else np.asarray(hue, dtype=np.int64)
            wrong = (
                np.asarray(labels) != np.asarray(predictions)
                if labels is not None and predictions is not None
                else np.zeros(len(pts), bool)
            )
            size = float(np.clip(3000.0 / max(len(pts), 1), 10.0, 60.0))
            right = ok & ~wrong
            ax.scatter(
                pts[right, 0],
                pts[right, 1],
                c=colors[hue[right]] / 255.0,
                s=size,
                marker="o",
                edgecolors="black",
                linewidths=0.6,
                zorder=3,
            )
            bad = ok & wrong
            ax.scatter(
                pts[bad, 0],
                pts[bad, 1],
                c=colors[hue[bad]] / 255.0,
                s=size * 2.2,
                marker="X",
                edgecolors="black",
                linewidths=0.9,
                zorder=4,
            )
        if anchors is not None:
            _draw_anchors(ax, np.asarray(anchors, dtype=np.float64), anchor_labels, anchor_predictions, colors, names)
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel(xlabel, fontsize=14)
        ax.set_ylabel(ylabel, fontsize=14)
        ax.tick_params(labelsize=11)
        if title:
            fig.text(0.5, 1 - 8 / height, title, ha="center", va="top", fontsize=17, fontweight="bold")
        if subtitle:
            fig.text(0.5, 1 - 36 / height, subtitle, ha="center", va="top", fontsize=13, color="#333333")
        handles = [
            Line2D([], [], marker="s", linestyle="", markersize=13, markerfacecolor=colors[k] / 255.0,
                   markeredgecolor="black", label=names[k])
            for k in shown
        ]  # fmt: skip
        if points is not None and labels is not None and predictions is not None:
            handles.append(
                Line2D([], [], marker="X", linestyle="", markersize=11, markerfacecolor="white",
                       markeredgecolor="black", label="misclassified")
            )  # fmt: skip
        if handles:
            fig.legend(
                handles=_row_major(handles, legend_cols),
                loc="lower center",
                ncol=legend_cols,
                fontsize=13,
                frameon=False,
                bbox_to_anchor=(0.5, 0.0),
                handletextpad=0.3,
                columnspacing=1.2,
            )
        return figure_to_array(fig)


def _row_major(items: list, ncol: int) -> list:
    """Reorder ``items`` so a legend that fills columns first reads row by row."""
    nrow = -(-len(items) // ncol)
    slots = [[None] * ncol for _ in range(nrow)]
    for i, item in enumerate(items):
        slots[i // ncol][i % ncol] = item
    return [slots[r][c] for c in range(ncol) for r in range(nrow) if slots[r][c] is not None]


def _draw_boundaries(ax, xx, yy, classes, probabilities) -> None:
    """One thin line where the predicted class changes. With probabilities, each class's zero
    level of ``p_k - max_{j != k} p_j`` (interpolated, so it is smooth; the two classes on either
    side of a boundary give the same line); without, the edges of each class's cells."""
    present = [int(k) for k in np.unique(classes)]
    for k in present:
        if probabilities is not None and k < probabilities.shape[-1]:
            p = np.nan_to_num(np.asarray(probabilities, dtype=np.float64), nan=0.0)
            others = np.delete(p, k, axis=-1)
            field = p[..., k] - (others.max(axis=-1) if others.shape[-1] else 0.0)
            field = np.where(classes == k, np.maximum(field, 1e-9), np.minimum(field, -1e-9))
        else:
            field = (classes == k).astype(np.float64) - 0.5
        if field.min() < 0 < field.max():
            ax.contour(xx, yy, field, levels=[0.0], colors="#222222", linewidths=1.0, zorder=1)


def _draw_anchors(ax, anchors, labels, predictions, colors, names) -> None:
    finite = anchors[np.all(np.isfinite(anchors), axis=1)]
    mid_x = float(np.mean(finite[:, 0])) if len(finite) else 0.0
    for i, (ax_x, ax_y) in enumerate(anchors):
        if not (np.isfinite(ax_x) and np.isfinite(ax_y)):
            continue
        right = ax_x > mid_x
        true = None if labels is None else int(labels[i])
        pred = None if predictions is None else int(predictions[i])
        hue = true if true is not None else (pred if pred is not None else 0)
        ax.scatter([ax_x], [ax_y], s=420, marker="*", c=[colors[hue] / 255.0], edgecolors="black",
                   linewidths=1.3, zorder=5)  # fmt: skip
        text = f"{i + 1}"
        if true is not None:
            text += f": {names[true]}"
            if pred is not None and pred != true:
                text += f" (→ {names[pred]})"
        elif pred is not None:
            text += f": → {names[pred]}"
        ax.annotate(
            text,
            (ax_x, ax_y),
            xytext=(-12 if right else 12, 12),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=14,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "#444444", "alpha": 0.9},
            zorder=6,
        )


__all__ = ["REGION_ALPHA", "decision_boundary_image", "region_rgb"]
