"""Decision regions as a picture: a class map over a 2-D grid with the data points on top.

Takes plain arrays (no model, no package imports beyond render/) and draws
with matplotlib's object API on an Agg canvas: no pyplot, no global state.

:class:`BoundaryFigure` keeps one figure (axes, legend, text and scatter
artists) across calls and only updates the data, so a callback pays for the
layout once; :func:`decision_boundary_image` is the one-shot form. The region
map is one RGB image at the axes' pixel size: the class probabilities are
interpolated (bilinear) to every pixel, coloured by the winning class with
alpha = its probability, and the pixels where the winning class changes are
darkened — the class boundaries, drawn without contour lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.lines import Line2D

from keras_vizcallbacks.render.color import class_colors
from keras_vizcallbacks.render.figure import DPI, Blitter, ReusedFigure, axes_pixels, new_figure
from keras_vizcallbacks.render.legibility import CARD_WIDTH, MIN_MARK_PX
from keras_vizcallbacks.render.text import text_size

REGION_ALPHA = 0.6  # region opacity at confidence 1 (white at 0), so the points stay readable on top
BOUNDARY_RGB = (0x22, 0x22, 0x22)  # the line where the predicted class changes
SIZE = (480, 540)  # default (width, height) px: text and points sized to read in TensorBoard's ~330 px card


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


def _sample_axis(coords: np.ndarray, lo: float, hi: float, n_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel centres of ``[lo, hi]`` in ``n_px`` pixels -> (left index, right index, weight of the right)
    into the grid ``coords`` (increasing; clamped at its ends)."""
    g = len(coords)
    centres = lo + (np.arange(n_px) + 0.5) * ((hi - lo) / n_px)
    if g < 2 or not coords[-1] > coords[0]:
        zero = np.zeros(n_px, dtype=np.intp)
        return zero, zero, np.zeros(n_px, dtype=np.float32)
    u = np.clip((centres - coords[0]) / (coords[-1] - coords[0]) * (g - 1), 0.0, g - 1)
    i0 = np.minimum(np.floor(u).astype(np.intp), g - 2)
    return i0, i0 + 1, (u - i0).astype(np.float32)


def region_pixels(
    classes: np.ndarray,
    confidence: np.ndarray,
    xx: np.ndarray,
    yy: np.ndarray,
    colors: np.ndarray,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    size: tuple[int, int],
    *,
    probabilities: np.ndarray | None = None,
    max_alpha: float = REGION_ALPHA,
) -> np.ndarray:
    """The region map as uint8 (H, W, 3) pixels over ``xlim`` × ``ylim`` (row 0 at the top).

    With ``probabilities`` (G, G, C), each pixel takes the bilinear interpolation of the grid's
    class probabilities: the class is their argmax, the opacity their max, so the boundaries are
    smooth at any resolution. Without, the nearest grid point's class and confidence. Pixels whose
    class differs from the pixel to the right or below are the boundary line.
    """
    w, h = size
    xx = np.asarray(xx, dtype=np.float64)
    yy = np.asarray(yy, dtype=np.float64)
    x0, x1, wx = _sample_axis(xx, xlim[0], xlim[1], w)
    y0, y1, wy = _sample_axis(yy, ylim[1], ylim[0], h)  # top row first
    if probabilities is not None and probabilities.ndim == 3 and probabilities.shape[-1] >= 1:
        p = np.moveaxis(np.nan_to_num(np.asarray(probabilities, dtype=np.float32), nan=0.0), -1, 0)  # (C, G, G)
        rows = p[:, y0] * (1.0 - wy)[None, :, None] + p[:, y1] * wy[None, :, None]  # (C, h, G)
        ux, vx = (1.0 - wx)[None, :], wx[None, :]
        # argmax over the classes one (h, w) plane at a time: no (h, w, C) array, no argmax over a short last axis
        conf = rows[0][:, x0] * ux + rows[0][:, x1] * vx
        cls = np.zeros(conf.shape, dtype=np.intp)
        for k in range(1, len(rows)):
            pk = rows[k][:, x0] * ux + rows[k][:, x1] * vx
            better = pk > conf  # strict: ties keep the lower class, as argmax does
            cls[better] = k
            np.maximum(conf, pk, out=conf)
        nan_cells = ~np.isfinite(np.asarray(confidence, dtype=np.float64))
        if nan_cells.any():  # a NaN grid point stays white around it
            near = nan_cells[np.where(wy >= 0.5, y1, y0)][:, np.where(wx >= 0.5, x1, x0)]
            conf = np.where(near, np.nan, conf)
    else:
        ri = np.where(wy >= 0.5, y1, y0)
        ci = np.where(wx >= 0.5, x1, x0)
        cls = np.asarray(classes)[ri][:, ci]
        conf = np.asarray(confidence, dtype=np.float64)[ri][:, ci]
    # colour through a (classes, 256 opacity levels) table: the same as region_rgb, rounded to 1/255
    levels = np.linspace(0.0, 1.0, 256)
    table = region_rgb(np.repeat(np.arange(len(colors)), 256).reshape(-1, 256), np.tile(levels, (len(colors), 1)),
                       colors, max_alpha)  # fmt: skip
    table = np.round(table * 255.0).astype(np.uint8)
    q = np.nan_to_num(np.asarray(conf, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    q = (np.clip(q, 0.0, 1.0) * 255.0 + 0.5).astype(np.intp)
    cls = np.clip(np.asarray(cls, dtype=np.intp), 0, len(colors) - 1)
    out = np.take(table.reshape(-1, 3), cls * 256 + q, axis=0)
    edge = np.zeros(cls.shape, dtype=bool)
    edge[:, :-1] |= cls[:, :-1] != cls[:, 1:]
    edge[:-1, :] |= cls[:-1, :] != cls[1:, :]
    out[edge] = BOUNDARY_RGB
    return out


class BoundaryFigure(ReusedFigure):
    """One decision-region figure reused across calls: the layout (axes, legend, artists) is
    built once per set of classes and names, each call only updates data, texts and limits.

    Not thread-safe: one figure per callback (its draws are sequential). :meth:`close` drops
    the figure (it is rebuilt on the next call).
    """

    def __init__(self, width: int = SIZE[0], height: int = SIZE[1]) -> None:
        super().__init__(width, height)
        # the smallest point (area in pt^2) that is MIN_MARK_PX across (plus a margin) at card width
        self.min_point = ((MIN_MARK_PX + 0.6) * self.width / CARD_WIDTH * 72.0 / DPI) ** 2

    def _build(self, key, colors, names, shown, hues, misclassified, sub_lines, equal_aspect) -> None:
        self.close()
        width, height = self.width, self.height
        fp, pt = self.font_px, self.font_pt
        entries = [names[k] for k in shown] + (["misclassified"] if misclassified else [])
        legend_cols = _legend_columns([text_size(e, fp)[0] for e in entries], fp, width - fp)
        legend_rows = -(-len(entries) // legend_cols)
        bottom_px = round(2.9 * fp) + 10 + round(1.55 * fp) * legend_rows
        top_px = self.title_height(sub_lines)
        left_px, right_px = round(4.3 * fp) + 12, round(1.3 * fp)
        # a long legend makes the figure taller rather than the plot flat: at least 0.6 as tall as wide
        height = max(self.height, top_px + bottom_px + round(0.6 * (width - left_px - right_px)))
        fig = new_figure(width, height, dpi=DPI)
        box = (left_px / width, bottom_px / height, 1 - (left_px + right_px) / width, 1 - (bottom_px + top_px) / height)
        ax = fig.add_axes(box)
        ax.set_aspect("equal" if equal_aspect else "auto", adjustable="box")
        # the points: marker lines per (round, class), right ones then misclassified ones. Agg rasterizes a
        # line's marker once and stamps it at every point, several times faster than a scatter's per-point
        # paths; each class's points are dealt into `rounds` lines drawn round by round, so where classes
        # overlap the last class drawn does not cover the others (a scatter draws in data order)
        rounds = _rounds(len(hues))
        right = {
            (r, k): ax.plot([], [], linestyle="", marker="o", markerfacecolor=colors[k] / 255.0,
                            markeredgecolor="black", markeredgewidth=0.6, zorder=3)[0]
            for r in range(rounds) for k in hues
        }  # fmt: skip
        bad = {
            (r, k): ax.plot([], [], linestyle="", marker="X", markerfacecolor=colors[k] / 255.0,
                            markeredgecolor="black", markeredgewidth=0.9, zorder=4)[0]
            for r in range(rounds) for k in hues
        }  # fmt: skip
        ax.tick_params(labelsize=pt)
        xlabel = ax.set_xlabel("", fontsize=pt, labelpad=2)
        ylabel = ax.set_ylabel("", fontsize=pt, labelpad=2)
        handles = [
            Line2D([], [], marker="s", linestyle="", markersize=pt, markerfacecolor=colors[k] / 255.0,
                   markeredgecolor="black", label=names[k])
            for k in shown
        ]  # fmt: skip
        if misclassified:
            handles.append(
                Line2D([], [], marker="X", linestyle="", markersize=pt * 0.9, markerfacecolor="white",
                       markeredgecolor="black", label="misclassified")
            )  # fmt: skip
        if handles:
            fig.legend(
                handles=_row_major(handles, legend_cols),
                loc="lower center",
                ncol=legend_cols,
                fontsize=pt,
                frameon=False,
                bbox_to_anchor=(0.5, 0.0),
                handlelength=1.2,
                handletextpad=0.4,
                columnspacing=1.0,
                borderaxespad=0.3,
            )
        self._fig, self._key = fig, key
        # the region image, points, spines (over the image) and titles (stamped with Pillow) are drawn every
        # call; the axes (ticks and labels) once per limits and label text (matplotlib takes ~9 ms a label;
        # they lie outside the plot, under nothing drawn later, so the pixels equal a full draw's); the
        # legend once. The embedding's labels are fixed: its variance shares are in the subtitle.
        dynamic = [*right.values(), *bad.values(), *ax.spines.values()]
        blit = Blitter(fig, dynamic, cached=[ax.xaxis, ax.yaxis])
        self._a = {"ax": ax, "right": right, "bad": bad, "rounds": rounds, "xlabel": xlabel, "ylabel": ylabel,
                   "box": box, "extra": [], "blit": blit, "label_places": {}}  # fmt: skip

    def image(
        self,
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
        max_alpha: float = REGION_ALPHA,
    ) -> np.ndarray:
        """Draw decision regions; return uint8 (height, width, 3). See :func:`decision_boundary_image`."""
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
        shown = tuple(
            sorted({int(c) for c in np.unique(classes)} | ({int(c) for c in labels} if labels is not None else set()))
        )
        misclassified = points is not None and labels is not None and predictions is not None
        sub_lines = tuple(len(x) for x in self.title_lines(title, subtitle))
        pts = np.zeros((0, 2)) if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        hue = labels if labels is not None else predictions
        hue = np.zeros(len(pts), dtype=np.int64) if hue is None else np.asarray(hue, dtype=np.int64).reshape(-1)
        hue = np.clip(hue, 0, n - 1)
        hues = tuple(int(k) for k in np.unique(hue)) if len(pts) else ()
        key = (n, tuple(names), shown, hues, misclassified, sub_lines, bool(equal_aspect))
        if key != self._key:
            self._build(key, colors, names, shown, hues, misclassified, sub_lines, equal_aspect)
        a = self._a
        ax = a["ax"]
        for artist in a["extra"]:
            artist.remove()
        a["extra"] = []

        if len(pts):
            ok = np.all(np.isfinite(pts), axis=1)
            wrong = np.asarray(labels) != np.asarray(predictions) if misclassified else np.zeros(len(pts), bool)
            # marker area in pt^2 as a scatter's size (at most 60, at least legible): diameter sqrt(area)
            s = float(np.clip(3000.0 / max(len(pts), 1), self.min_point, max(60.0, self.min_point)))
            rounds = a["rounds"]
            # each point's round: its rank within its class, dealt evenly into `rounds` (data order kept)
            rank = np.zeros(len(pts), dtype=np.int64)
            for k in hues:
                mine = np.flatnonzero(hue == k)
                rank[mine] = np.arange(len(mine)) * rounds // max(len(mine), 1)
            for name, sel, scale in (("right", ok & ~wrong, 1.0), ("bad", ok & wrong, 2.2)):
                for (r, k), line in a[name].items():
                    mine = sel & (hue == k) & (rank == r)
                    line.set_data(pts[mine, 0], pts[mine, 1])
                    line.set_markersize(float(np.sqrt(s * scale)))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        if anchors is not None:  # after the limits: each label's side is chosen from the star's place in the axes
            anchors = np.asarray(anchors, dtype=np.float64)
            a["extra"] = _draw_anchors(
                ax, anchors, anchor_labels, anchor_predictions, colors, names, self.font_pt, a["label_places"]
            )
        a["xlabel"].set_text(xlabel)
        a["ylabel"].set_text(ylabel)
        axes_key = (x0, x1, y0, y1, xlabel, ylabel)  # ticks and labels: redrawn only when one of these changes
        canvas = a["blit"].begin((x0, x1, y0, y1) if equal_aspect else None, cached_key=axes_key)
        # the region map goes straight into the canvas at the axes' pixel size (under points and spines)
        left, top, w, h = axes_pixels(ax)
        probs = None if probabilities is None else np.asarray(probabilities)
        canvas[top : top + h, left : left + w, :3] = region_pixels(
            classes, confidence, xx, yy, colors, (x0, x1), (y0, y1), (w, h), probabilities=probs, max_alpha=max_alpha
        )
        out = a["blit"].finish(extra=tuple(a["extra"]))
        self.stamp_titles(out, title, subtitle)
        self.note_drawn()
        return out


def decision_boundary_image(
    classes: np.ndarray,
    confidence: np.ndarray,
    xx: np.ndarray,
    yy: np.ndarray,
    *,
    width: int = SIZE[0],
    height: int = SIZE[1],
    **kwargs: Any,
) -> np.ndarray:
    """Draw decision regions; return uint8 (height, width, 3) (taller when a long legend needs it).

    ``classes[r, c]`` / ``confidence[r, c]`` belong to the point ``(xx[c], yy[r])``.
    Regions take their class's tab10 hue with alpha = confidence, and thin dark
    lines mark where the predicted class changes. Data ``points`` are coloured by
    true ``labels`` (by ``predictions`` when there are no labels); a point whose
    prediction differs from its label is drawn as a bold ✕. ``anchors`` (plane
    mode) are numbered stars with their class names. Keyword arguments: those of
    :meth:`BoundaryFigure.image`. A callback keeps a :class:`BoundaryFigure` instead.
    """
    fig = BoundaryFigure(width, height)
    try:
        return fig.image(classes, confidence, xx, yy, **kwargs)
    finally:
        fig.close()


def _rounds(n_hues: int) -> int:
    """Marker lines per class and kind of point: 3 up to 4 classes, fewer for more (each line costs a
    fixed ~0.25 ms to draw; 3 rounds look like the data-order scatter where classes overlap)."""
    return int(np.clip(12 // max(n_hues, 1), 1, 3))


def _legend_columns(text_widths: list[int], font_px: int, width: int) -> int:
    """The most legend columns (up to 5) whose entries (handle, gap, text; matplotlib fills columns
    first, so the entries are given row-major) fit ``width`` px side by side."""
    n = len(text_widths)
    entry = [w + 1.6 * font_px for w in text_widths]  # handlelength 1.2 + handletextpad 0.4 (em)
    for cols in range(min(n, 5), 1, -1):
        column = [max(entry[i] for i in range(j, n, cols)) for j in range(cols)]
        if sum(column) + (cols - 1) * 1.0 * font_px + font_px <= width:
            return cols
    return 1


def _row_major(items: list, ncol: int) -> list:
    """Reorder ``items`` so a legend that fills columns first reads row by row."""
    nrow = -(-len(items) // ncol)
    slots = [[None] * ncol for _ in range(nrow)]
    for i, item in enumerate(items):
        slots[i // ncol][i % ncol] = item
    return [slots[r][c] for c in range(ncol) for r in range(nrow) if slots[r][c] is not None]


# an anchor label's offset from its star (points) and its horizontal alignment ("right": the text ends left of the star)
_LABEL_PLACES = {"right": ((-12, 12), "right"), "left": ((12, 12), "left"), "center": ((0, 16), "center")}


def _draw_anchors(ax, anchors, labels, predictions, colors, names, fontsize: float = 14.0, memo=None) -> list:
    """Numbered stars with their class names; returns the artists (removed on the next call).

    Each label goes above its star, on the side away from the anchors' middle; a label that would
    leave the axes takes the other side, or is centred above its star when neither side has room, and
    a label that would cover a later anchor's label goes below its star instead (anchors 1 and 2 of
    the plane mode always share a height). Sizes are the texts' measured extents; ``memo`` (a dict the
    figure keeps) holds the last placement, reused while the texts, stars and limits stay the same."""
    artists = []
    finite = anchors[np.all(np.isfinite(anchors), axis=1)]
    mid_x = float(np.mean(finite[:, 0])) if len(finite) else 0.0
    notes = []
    for i, (ax_x, ax_y) in enumerate(anchors):
        if not (np.isfinite(ax_x) and np.isfinite(ax_y)):
            continue
        right = ax_x > mid_x
        true = None if labels is None else int(labels[i])
        pred = None if predictions is None else int(predictions[i])
        hue = true if true is not None else (pred if pred is not None else 0)
        artists.append(ax.scatter([ax_x], [ax_y], s=420, marker="*", c=[colors[hue] / 255.0], edgecolors="black",
                                  linewidths=1.3, zorder=5))  # fmt: skip
        text = f"{i + 1}"
        if true is not None:
            text += f": {names[true]}"
            if pred is not None and pred != true:
                text += f" (→ {names[pred]})"
        elif pred is not None:
            text += f": → {names[pred]}"
        offset, ha = _LABEL_PLACES["right" if right else "left"]
        note = ax.annotate(
            text,
            (ax_x, ax_y),
            xytext=offset,
            textcoords="offset points",
            ha=ha,
            fontsize=fontsize,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "edgecolor": "#444444", "alpha": 0.9},
            zorder=6,
        )
        artists.append(note)
        notes.append(note)
    key = (tuple((n.get_text(), tuple(n.xy)) for n in notes), ax.get_xlim(), ax.get_ylim())
    if memo is not None and memo.get("key") == key:  # the plane's anchors and limits are fixed for a fit
        for note, (xyann, ha, va) in zip(notes, memo["places"]):
            note.xyann = xyann
            note.set_horizontalalignment(ha)
            note.set_verticalalignment(va)
        return artists
    _place_labels(ax, notes, fontsize)
    if memo is not None:
        memo["key"] = key
        memo["places"] = [(n.xyann, n.get_horizontalalignment(), n.get_verticalalignment()) for n in notes]
    return artists


def _place_labels(ax, notes: list, fontsize: float) -> None:
    """Move anchor labels that leave the axes or cover another label (see `_draw_anchors`)."""
    if not notes:
        return
    renderer = ax.figure.canvas.get_renderer()
    ax.apply_aspect()  # an equal-aspect axes takes its final box at draw time: take it now
    box = ax.get_window_extent(renderer)
    pad = 0.25 * fontsize * ax.figure.dpi / 72.0 + 1.0  # the label box's padding, in pixels

    def extent(note):
        e = note.get_window_extent(renderer)
        return e.x0 - pad, e.x1 + pad, e.y0 - pad, e.y1 + pad

    def place(note, where):
        offset, ha = _LABEL_PLACES[where]
        note.xyann = offset
        note.set_horizontalalignment(ha)

    for note in notes:
        first = note.get_horizontalalignment()
        for where in (first, "left" if first == "right" else "right", "center"):
            place(note, where)
            x0, x1, _, _ = extent(note)
            if x0 >= box.x0 and x1 <= box.x1:
                break
    for k, note in enumerate(notes):
        a = extent(note)
        if any(a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3] for b in map(extent, notes[k + 1 :])):
            note.xyann = (note.xyann[0], -16)  # under its star
            note.set_verticalalignment("top")


__all__ = ["REGION_ALPHA", "SIZE", "BoundaryFigure", "decision_boundary_image", "region_pixels", "region_rgb"]
