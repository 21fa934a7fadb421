"""DecisionBoundary: the model's decision regions on a 2-D slice, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _checks
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.callbacks._samples import check_classes, fixed_labelled_data
from keras_vizcallbacks.callbacks.base import Frame, Scalar, VizCallback
from keras_vizcallbacks.explain import (
    BOUNDARY_MODES,
    DecisionRegionExplainer,
    DecisionRegions,
    check_classifier,
    check_one_output,
)
from keras_vizcallbacks.render.boundary import BoundaryFigure


class DecisionBoundary(VizCallback):
    """Draw the model's decision regions on a 2-D slice, tag ``decision_boundary/<mode or layer>``.

    The data (``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)``; at most
    ``max_points`` examples, chosen once) stays fixed, so the frames form an
    animation of the boundary moving while the model learns. Regions take the
    predicted class's tab10 hue with alpha = confidence; points are coloured by
    their true label, a bold ✕ marks a misclassified point. The subtitle gives the
    epoch's accuracy and agreement; they are also scalars in the same run
    (``<tag>/accuracy``, ``<tag>/agreement`` as a fraction).

    Modes (see :mod:`keras_vizcallbacks.explain.boundary`):

    * ``"input"``: a model that reads 2 features (or ``features=(i, j)`` of a flat vector).
    * ``"plane"``: the plane through three images of three different classes (Somepalli et al., 2022).
    * ``"embedding"``: PCA of a feature layer (``layer``; default the input to the last Dense
      layer), the grid mapped back through the layers after it.
    * ``"auto"``: ``"input"`` for 2-feature inputs, ``"embedding"`` otherwise.

    Args:
        log_dir: TensorBoard log directory.
        data: labelled data: ``(x, y)`` or a ``tf.data.Dataset``.
        mode: ``"auto"``, ``"input"``, ``"plane"`` or ``"embedding"``.
        layer: the feature layer for ``"embedding"`` (name or path).
        features: the two feature indices for ``"input"`` on a flat input with more than 2.
        grid_resolution: grid points per axis (default 100; for ``"plane"`` 50 up to 32x32x3 examples, fewer
            for larger ones, at least 16).
        eps: margin around the data / anchors in axis units (default 10% of the span; 20% for ``"plane"``).
        class_names: one name per class, for the legend and anchors.
        anchors: ``"plane"``: indices (into the kept data) of the three anchor images.
        max_points: at most this many examples are kept (evenly spaced from arrays, the first from a dataset).
        batch_size: rows per compiled call.
        fixed_axes: keep the axis limits from epoch to epoch: they change only when points leave
            them (``"embedding"``: also when all points fit in half, on a 1, 1.5, 2, 3, 4, 6, … ladder
            of standard deviations).
        output: the classifier output drawn (its name or index), required for a model with several
            outputs; labels given as a list or dict (one entry per output) follow it. A regression
            output is refused.
        **options: the options every view takes (``every_n_epochs``, ``run_name``, ``on_error``, ...).
    """

    view = "decision_boundary"

    def __init__(
        self,
        log_dir: str,
        data: Any,
        mode: str = "auto",
        layer: str | None = None,
        *,
        features: Sequence[int] | None = None,
        grid_resolution: int | None = None,
        eps: float | None = None,
        class_names: Sequence[str] | None = None,
        anchors: Sequence[int] | None = None,
        max_points: int = 1000,
        batch_size: int | None = None,
        fixed_axes: bool = True,
        output: str | int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if mode not in BOUNDARY_MODES:
            raise ValueError(f"mode must be one of {BOUNDARY_MODES}, got {mode!r}.")
        max_points = _checks.integer(max_points, "max_points")
        grid_resolution = _checks.optional_integer(grid_resolution, "grid_resolution", 2)
        self.data = data
        self.mode = mode
        self.layer = layer
        self.features = None if features is None else tuple(features)
        self.grid_resolution = grid_resolution
        self.eps = eps
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.anchors = None if anchors is None else tuple(anchors)
        self.max_points = max_points
        self.batch_size = _checks.optional_integer(batch_size, "batch_size")
        self.fixed_axes = fixed_axes
        if isinstance(output, bool) or not (output is None or isinstance(output, (str, int, np.integer))):
            raise ValueError(f"output must be None, an output name or an output index, got {output!r}.")
        self.output = output
        self.explainer: DecisionRegionExplainer | None = None
        self.tag = f"{self.view}/{mode}"
        self.last: DecisionRegions | None = None
        self._data_note = ""
        self._figure = BoundaryFigure()  # built on the first draw, kept for the fit, dropped at its end

    def prepare(self, model: keras.Model) -> None:
        name = "DecisionBoundary data"
        try:
            index = L.output_index(model, self.output)
            check_classifier(model, index, "DecisionBoundary")
        except ValueError as e:
            raise ValueError(f"DecisionBoundary: {e}") from None
        x, y, n_total, chosen = fixed_labelled_data(self.data, model, self.max_points, name, index, self.output)
        check_one_output(model, x, self.output, "DecisionBoundary")  # a subclassed model returning several
        try:
            explainer = DecisionRegionExplainer(
                model,
                x,
                y,
                mode=self.mode,
                layer=self.layer,
                features=self.features,
                grid_resolution=self.grid_resolution,
                eps=self.eps,
                anchors=self.anchors,
                batch_size=self.batch_size,
                fixed_axes=self.fixed_axes,
                share_pass=True,  # the data pass is shared with other views on the same data
                output=index,
            )
        except ValueError as e:
            raise ValueError(f"DecisionBoundary: {e}") from None
        self.n_classes = check_classes("DecisionBoundary", y, explainer.n_classes, self.class_names)
        explainer.start()  # fixes the axis limits now ("embedding": joins the shared pass, one forward pass and PCA)
        self.explainer = explainer
        mode = explainer.mode
        self.tag = (
            f"{self.view}/{explainer.layer_path}" if mode == "embedding" and self.layer else f"{self.view}/{mode}"
        )
        kept = len(y)
        self._data_note = (
            f"{kept} fixed examples" if chosen is None else f"{kept} of {n_total} examples (evenly spaced)"
        )

    def compute(self, epoch: int) -> DecisionRegions:
        """The regions for the current weights (on the training thread)."""
        assert self.explainer is not None
        self.last = self.explainer(epoch)
        return self.last

    def draw(self, r: DecisionRegions, epoch: int) -> list[Frame | Scalar]:
        """Regions -> one frame (no model access; may run on the background thread)."""
        names = self.class_names
        acc = r.accuracy
        mode = r.mode
        parts = [] if acc is None else [f"accuracy {acc:.1%}"]
        if self._off_slice(r):
            parts.append(f"agreement {r.agreement}/{len(r.predictions)}")
        title = {"input": "input space", "plane": "plane through 3 images", "embedding": "PCA of features"}[mode]
        plane = mode == "plane"
        if plane:
            names_of = names or [f"class {k}" for k in range(self.n_classes)]
            # one part per anchor, so the subtitle wraps between them instead of cutting the last one off
            parts = [
                f"anchor {k + 1} → {names_of[int(p)]} {c:.0%}"
                for k, (p, c) in enumerate(zip(r.predictions, r.point_confidence))
            ]
        if mode == "embedding":
            if r.explained_variance_ratio is not None:
                v1, v2 = (float(v) for v in r.explained_variance_ratio[:2])
                parts.append(f"axes {v1:.0%} + {v2:.0%} of variance")
            if r.nonfinite:
                parts.append(f"{r.nonfinite} non-finite → 0")
        image = self._figure.image(
            r.classes,
            r.confidence,
            r.xx,
            r.yy,
            probabilities=r.probabilities,
            n_classes=self.n_classes,
            points=None if plane else r.points,
            labels=None if plane else r.labels,
            predictions=None if plane else r.predictions,
            anchors=r.anchors if plane else None,
            anchor_labels=r.labels if plane else None,
            anchor_predictions=r.predictions if plane else None,
            class_names=names,
            xlabel=r.xlabel,
            ylabel=r.ylabel,
            title=f"decision boundary · {title} · epoch {epoch}",
            subtitle=" · ".join(parts),
            xlim=r.xlim,
            ylim=r.ylim,
            equal_aspect=plane,
        )
        return [Frame(self.tag, image, self.describe(r)), *self.scalars(r)]

    def tags(self) -> list[str]:
        return [self.tag]

    def scalars(self, r: DecisionRegions) -> list[Scalar]:
        """``<tag>/accuracy`` (with labels) and ``<tag>/agreement`` (where the points lie off the slice)."""
        out = []
        if r.accuracy is not None:
            out.append(
                Scalar(f"{self.tag}/accuracy", r.accuracy, f"Accuracy on the DecisionBoundary's {self._data_note}.")
            )
        if self._off_slice(r):
            out.append(
                Scalar(
                    f"{self.tag}/agreement",
                    r.agreement / max(len(r.predictions), 1),
                    f"Share of the DecisionBoundary's {self._data_note} that the model predicts as the class of the "
                    "region they are drawn in (1 = the 2-D picture does not mislead about any of them).",
                )
            )
        return out

    @staticmethod
    def _off_slice(r: DecisionRegions) -> bool:
        """True when the points lie off the drawn slice (their agreement with the regions says something)."""
        return r.mode == "embedding" or (r.mode == "input" and r.mean is not None and len(r.mean) > 2)

    def on_close(self) -> None:
        self._figure.close()  # every frame is drawn: the figure is rebuilt on the next fit's first draw

    def explainers(self) -> list[Any]:
        return [self.explainer]

    def describe(self, r: DecisionRegions) -> str:
        """What the picture shows; only what stays fixed over the run (TensorBoard shows the first step's
        description at every step): accuracy, agreement, variance shares and axis limits are in the picture."""
        g = len(r.xx)
        lines = [
            f"**Decision regions, mode `{r.mode}`**: the class the model predicts at each point of a "
            f"{g}×{g} grid (colour = predicted class, opacity = its probability; black lines = where the "
            f"prediction changes). Axes: {r.axes}."
        ]
        if r.mode == "plane":
            names = self.class_names

            def label(i: int, c: Any) -> str:
                return f" ({names[int(c)] if names else f'class {int(c)}'})" if c is not None else ""

            true = r.labels if r.labels is not None else [None] * len(r.anchor_index)
            anchors = ", ".join(
                f"{k + 1} = example #{int(i)}{label(i, c)}" for k, (i, c) in enumerate(zip(r.anchor_index, true))
            )
            lines.append(
                f"Every grid point is an image on the plane through the three anchor images (stars: {anchors}), "
                f"evaluated in batches ({g * g} images per epoch). The subtitle gives each anchor's predicted class "
                "and probability at this epoch (anchor k → class p%)."
            )
        else:
            lines.append(
                f"Points: {self._data_note}, coloured by true label; a bold ✕ is misclassified. The subtitle gives "
                f"the epoch's accuracy on them (scalar `{self.tag}/accuracy`)."
            )
        if r.mode == "embedding":
            lines.append(
                f"The grid is mapped back through the PCA inverse (mean + coordinates·components) and the layers "
                f"after `{r.layer}`, so the regions are exact on this 2-D slice of feature space. The examples "
                "themselves lie off the slice: **agreement** (subtitle; scalar "
                f"`{self.tag}/agreement`) counts those predicted as the class of the region they are drawn in; "
                "the others are where the 2-D picture misleads. The subtitle also gives each axis's share of the "
                "variance at this epoch (axes 1 + 2)."
            )
        elif self._off_slice(r):
            lines.append(
                "The other features are held at their mean, so the points lie off the slice: **agreement** "
                f"(subtitle; scalar `{self.tag}/agreement`) counts those predicted (with all their features) as the "
                "region they are drawn in."
            )
        if r.mode == "embedding":
            lines.append("Non-finite feature values (NaN, Inf) are replaced by 0 before the projection.")
        elif r.nonfinite:
            lines.append(f"{r.nonfinite} non-finite values in the data were replaced by 0.")
        lines.append("Step = epoch.")
        return "\n\n".join(lines)
