"""DecisionBoundary: the model's decision regions on a 2-D slice, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_vizcallbacks.callbacks._samples import check_classes, fixed_labelled_data
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import BOUNDARY_MODES, DecisionRegionExplainer, DecisionRegions
from keras_vizcallbacks.render.boundary import BoundaryFigure


class DecisionBoundary(VizCallback):
    """Draw the model's decision regions on a 2-D slice, tag ``decision_boundary/<mode or layer>``.

    The data (``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)``; at most
    ``max_points`` examples, chosen once) stays fixed, so the frames form an
    animation of the boundary moving while the model learns. Regions take the
    predicted class's tab10 hue with alpha = confidence; points are coloured by
    their true label, a bold ✕ marks a misclassified point.

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
        grid_resolution: grid points per axis (default 100; 50 for ``"plane"``).
        eps: margin around the data / anchors in axis units (default 10% of the span; 20% for ``"plane"``).
        class_names: one name per class, for the legend and anchors.
        anchors: ``"plane"``: indices (into the kept data) of the three anchor images.
        max_points: at most this many examples are kept (evenly spaced from arrays, the first from a dataset).
        batch_size: rows per compiled call.
        fixed_axes: keep the axis limits from train begin, widening only when points leave them.
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
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if mode not in BOUNDARY_MODES:
            raise ValueError(f"mode must be one of {BOUNDARY_MODES}, got {mode!r}.")
        if not isinstance(max_points, int) or max_points < 1:
            raise ValueError(f"max_points must be an integer >= 1, got {max_points!r}.")
        if grid_resolution is not None and (not isinstance(grid_resolution, int) or grid_resolution < 2):
            raise ValueError(f"grid_resolution must be an integer >= 2, got {grid_resolution!r}.")
        self.data = data
        self.mode = mode
        self.layer = layer
        self.features = None if features is None else tuple(features)
        self.grid_resolution = grid_resolution
        self.eps = eps
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.anchors = None if anchors is None else tuple(anchors)
        self.max_points = max_points
        self.batch_size = batch_size
        self.fixed_axes = fixed_axes
        self.explainer: DecisionRegionExplainer | None = None
        self.tag = f"{self.view}/{mode}"
        self.last: DecisionRegions | None = None
        self._data_note = ""
        self._figure = BoundaryFigure()  # built on the first draw, kept for the fit, dropped at its end

    def prepare(self, model: keras.Model) -> None:
        name = "DecisionBoundary data"
        x, y, n_total, chosen = fixed_labelled_data(self.data, model, self.max_points, name)
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

    def draw(self, r: DecisionRegions, epoch: int) -> list[Frame]:
        """Regions -> one frame (no model access; may run on the background thread)."""
        names = self.class_names
        acc = r.accuracy
        mode = r.mode
        parts = [] if acc is None else [f"accuracy {acc:.1%}"]
        if mode == "embedding" or (mode == "input" and r.mean is not None and len(r.mean) > 2):
            parts.append(f"agreement {r.agreement}/{len(r.predictions)}")
        title = {"input": "input space", "plane": "plane through 3 images", "embedding": "PCA of features"}[mode]
        plane = mode == "plane"
        if plane:
            names_of = names or [f"class {k}" for k in range(self.n_classes)]
            parts = [
                "anchors predicted: "
                + ", ".join(f"{names_of[int(p)]} {c:.0%}" for p, c in zip(r.predictions, r.point_confidence))
            ]
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
            title=f"{title} · epoch {epoch}",
            subtitle=" · ".join(parts),
            xlim=r.xlim,
            ylim=r.ylim,
            equal_aspect=plane,
        )
        return [Frame(self.tag, image, self.describe(r))]

    def on_close(self) -> None:
        self._figure.close()  # every frame is drawn: the figure is rebuilt on the next fit's first draw

    def explainers(self) -> list[Any]:
        return [self.explainer]

    def describe(self, r: DecisionRegions) -> str:
        g = len(r.xx)
        lines = [
            f"**Decision regions, mode `{r.mode}`**: the class the model predicts at each point of a "
            f"{g}×{g} grid (colour = predicted class, opacity = its probability; black lines = where the "
            f"prediction changes). Axes: {r.axes}."
        ]
        if r.mode == "plane":
            names = self.class_names
            anchors = ", ".join(
                f"{k + 1} = example #{int(i)} ({names[int(c)] if names else f'class {int(c)}'})"
                for k, (i, c) in enumerate(zip(r.anchor_index, r.labels if r.labels is not None else r.predictions))
            )
            lines.append(
                f"Every grid point is an image on the plane through the three anchor images (stars: {anchors}), "
                f"evaluated in batches ({g * g} images per epoch). Anchor predictions: "
                + ", ".join(
                    f"{k + 1} → {int(p)} ({c:.0%})" for k, (p, c) in enumerate(zip(r.predictions, r.point_confidence))
                )
                + "."
            )  # fmt: skip
        else:
            lines.append(
                f"Points: {self._data_note}, coloured by true label; a bold ✕ is misclassified. "
                f"Accuracy on them: {r.accuracy:.1%}."
            )
        if r.mode == "embedding":
            n = len(r.predictions)
            lines.append(
                f"The grid is mapped back through the PCA inverse (mean + z·components) and the layers after "
                f"`{r.layer}`, so the regions are exact on this 2-D slice of feature space. The examples themselves "
                f"lie off the slice: **agreement {r.agreement}/{n} ({r.agreement / max(n, 1):.1%})** are predicted "
                "as the class of the region they are drawn in; the others are where the 2-D picture misleads. "
                f"Component signs follow the previous epoch; PC1/PC2 explain "
                f"{r.explained_variance_ratio[0]:.1%}/{r.explained_variance_ratio[1]:.1%} of the variance."
            )
        elif r.mode == "input" and r.mean is not None and len(r.mean) > 2:
            n = len(r.predictions)
            lines.append(
                f"The other features are held at their mean, so the points lie off the slice: agreement "
                f"{r.agreement}/{n} are predicted (with all their features) as the region they are drawn in."
            )
        if r.nonfinite:
            lines.append(f"{r.nonfinite} non-finite values were replaced by 0.")
        lines.append(
            f"Axis limits: x {r.xlim[0]:.3g}..{r.xlim[1]:.3g}, y {r.ylim[0]:.3g}..{r.ylim[1]:.3g}. Step = epoch."
        )
        return "\n\n".join(lines)
