"""Decision regions: the class a model predicts over a 2-D slice of its input or feature space.

Three ways to choose the slice (``mode``):

* ``"input"`` — the model reads 2 features (or 2 chosen ``features`` of a flat
  vector, the others held at their mean over the data): a grid over the data
  with margin ``eps``, as scikit-learn's ``DecisionBoundaryDisplay`` draws it.
* ``"plane"`` — for image models (Somepalli et al., "Can Neural Nets Learn the
  Same Model Twice?", CVPR 2022): the plane through three images of three
  different classes, with an orthonormal basis from Gram-Schmidt on
  ``x2 - x1`` and ``x3 - x1``; every grid point is an image on that plane.
* ``"embedding"`` — PCA (numpy SVD) of a feature layer's outputs (default: the
  input to the last ``Dense`` layer) down to 2-D. Grid points are mapped back
  through the PCA inverse (``mean + z · components``) and through the layers
  after the feature layer, so the regions are exact for the head on that 2-D
  slice of feature space. The data points do not lie on the slice; how many of
  them the model predicts as the class of the region they are drawn in is
  reported (``agreement``).

:class:`DecisionRegionExplainer` builds the compiled functions once and keeps
what must persist across epochs (axis limits, the previous epoch's plane, to
which ``"embedding"`` turns its axes); :func:`decision_regions` is the one-shot notebook form. Each
mode is one small class (``explain/_slices.py``) picked from a table by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _checks
from keras_vizcallbacks import layers as L
from keras_vizcallbacks._backend import TracedFunction
from keras_vizcallbacks.explain._batches import Predictor, n_rows
from keras_vizcallbacks.explain._outputs import check_classifier, check_one_output, n_outputs
from keras_vizcallbacks.explain._regions import DecisionRegions, Slice
from keras_vizcallbacks.explain._shared import SharedView
from keras_vizcallbacks.explain._slices import SLICES

MODES = ("auto", *SLICES)


def _is_array(x: Any) -> bool:
    return not isinstance(x, (list, tuple, dict))


def _per_example_shape(model: keras.Model, x: Any) -> tuple:
    try:
        return tuple(model.inputs[0].shape[1:])
    except Exception:
        return tuple(np.shape(x)[1:])


class DecisionRegionExplainer:
    """Decision regions of ``model`` for fixed data ``x`` (and labels ``y``), epoch after epoch.

    Everything that can be checked or built once is done here (``ValueError``
    for a bad configuration): the mode, the compiled forward pass (and, for
    ``"embedding"``, the feature probe and the head after the feature layer),
    the grid. Calling the explainer computes a :class:`DecisionRegions` for
    the model's current weights.

    Args:
        model: a Keras classifier (softmax, sigmoid or logits output).
        x: the data: one array (a list/dict of arrays for a multi-input model in ``"embedding"`` mode).
        y: integer labels (or one-hot), optional.
        mode: ``"auto"``, ``"input"``, ``"plane"`` or ``"embedding"`` (see the module docstring).
        layer: ``"embedding"``: the feature layer (name or path); its output is projected.
            Default: the input to the last ``Dense`` layer.
        features: ``"input"``: the two feature indices on the axes of a flat input with more than 2.
        grid_resolution: grid points per axis (default 100; for ``"plane"`` 50 up to 32x32x3 examples, fewer
            for larger ones, at least 16: `PlaneSlice.resolution_for`).
        eps: margin added around the data (``"input"``/``"embedding"``) or the anchors
            (``"plane"``) in axis units; default 10% of the span (20% for ``"plane"``).
        anchors: ``"plane"``: indices of 3 examples of ``x``; default the first example of each of
            the first three classes present in ``y`` (or in the predictions when ``y`` is None).
        batch_size: rows per compiled call (default: about 2**21 input values per batch, fewer when a layer's
            output for the batch would exceed 32 MiB; `explain._batches.batch_size_for`).
        fixed_axes: keep axis limits across calls. ``"embedding"``: each axis spans ±L standard
            deviations, L on a 1, 1.5, 2, 3, 4, 6, … ladder that changes only when a point leaves it
            or all fit in half of it; other modes: widened only when points leave them.
        align_signs: ``"embedding"``: turn the principal plane's axes within the plane to match the
            previous call's (orthogonal Procrustes); False: the principal components, largest entry
            positive.
        share_pass: ``"embedding"``: read the data pass shared with the other views registered on the
            same model and data (one forward pass per epoch for all of them); joined in `start`.
        output: for multi-output models, the classifier output whose regions are drawn (its name or
            index; required when the model has several outputs). A regression output is refused.
    """

    def __init__(
        self,
        model: keras.Model,
        x: Any,
        y: Any = None,
        *,
        mode: str = "auto",
        layer: str | None = None,
        features: Sequence[int] | None = None,
        grid_resolution: int | None = None,
        eps: float | None = None,
        anchors: Sequence[int] | None = None,
        batch_size: int | None = None,
        fixed_axes: bool = True,
        align_signs: bool = True,
        share_pass: bool = False,
        output: str | int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        grid_resolution = _checks.optional_integer(grid_resolution, "grid_resolution", 2)
        if eps is not None and not (np.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
        self.model = model
        self.output = L.output_index(model, output)
        check_classifier(model, self.output, "Decision regions")
        self.x = x if not _is_array(x) else np.asarray(x)
        self.y = None if y is None else self._labels(y)
        if self.y is not None and len(self.y) != n_rows(self.x):
            raise ValueError(f"{n_rows(self.x)} inputs but {len(self.y)} labels; pass one label per example.")
        self.eps = eps
        self.fixed_axes = fixed_axes
        self.align_signs = align_signs
        self.share_pass = share_pass
        self.batch_size = batch_size
        self.predictor = Predictor(model, batch_size=batch_size, output=self.output)
        self.mode = self._resolve_mode(mode, layer, features)
        kind = SLICES[self.mode]
        example = tuple(np.shape(self.x)[1:]) if _is_array(self.x) else ()
        self.grid_resolution = grid_resolution or kind.resolution_for(example)
        self.n_classes = n_outputs(model, output=self.output)
        self.slice: Slice = kind(self, layer, features, anchors)

    # ----------------------------------------------------------------- setup
    @staticmethod
    def _labels(y: Any) -> np.ndarray:
        a = np.asarray(y)
        if a.ndim == 2 and a.shape[1] > 1:
            a = np.argmax(a, axis=1)
        return a.reshape(len(a), -1)[:, 0].astype(np.int64) if a.ndim > 1 else a.astype(np.int64)

    def _resolve_mode(self, mode: str, layer: str | None, features: Sequence[int] | None) -> str:
        shape = _per_example_shape(self.model, self.x)
        flat = _is_array(self.x) and len(shape) == 1
        if mode == "auto":
            if layer is not None:
                return "embedding"
            return "input" if flat and (shape[0] == 2 or features is not None) else "embedding"
        if layer is not None and mode != "embedding":
            raise ValueError(f"layer={layer!r} applies to mode='embedding' only (mode={mode!r}).")
        if features is not None and mode != "input":
            raise ValueError(f"features={tuple(features)!r} applies to mode='input' only (mode={mode!r}).")
        if mode == "input" and not flat:
            kind = "an image model" if len(shape) == 3 else f"a model with per-example input shape {shape}"
            if not _is_array(self.x):
                kind = "a model with several inputs"
            raise ValueError(
                f"mode='input' needs a model that reads a flat vector of features (shape (N, D)), but this is "
                f"{kind}. Use mode='plane' (a plane through three images) or mode='embedding' (PCA of a "
                "feature layer) instead."
            )
        if mode == "plane" and not _is_array(self.x):
            raise ValueError("mode='plane' needs a single-input model (one array of examples).")
        return mode

    # ----------------------------------------------------------------- what callbacks read
    @property
    def layer(self) -> str | None:
        """``"embedding"``: the feature layer's path (``"<path>:input"`` for the input to a layer); else None."""
        return self.slice.layer

    @property
    def layer_path(self) -> str | None:
        """``"embedding"``: the path of the layer whose output (or input) is projected; else None."""
        return self.slice.layer_path

    @property
    def shared(self) -> SharedView | None:
        """The shared data pass this explainer reads (``share_pass=True``, mode ``"embedding"``, after `start`)."""
        return self.slice.shared

    @property
    def data_batch_size(self) -> int:
        """Rows per compiled call over the data ``x``: ``batch_size``, else `batch_size_for` of the data and model."""
        return self.predictor.batch_size_for(self.x)

    @property
    def started(self) -> bool:
        return self.slice.started

    def compiled_functions(self) -> list[TracedFunction]:
        """The compiled functions this explainer calls (each counts its traces in ``.traces``)."""
        return self.slice.compiled_functions()

    # ----------------------------------------------------------------- per call
    def start(self) -> None:
        """Fix the axis limits (``"embedding"``: join the shared pass if ``share_pass``, then one
        forward pass and PCA now). A callback calls it at train begin; otherwise the first call does."""
        self.slice.start()

    def __call__(self, epoch: int | None = None) -> DecisionRegions:
        """The regions for the current weights; ``epoch`` lets a shared data pass (``share_pass``)
        serve several views of the same epoch."""
        if not self.slice.started:
            self.slice.start()
        return self.slice(epoch)


def decision_regions(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    mode: str = "auto",
    layer: str | None = None,
    features: Sequence[int] | None = None,
    grid_resolution: int | None = None,
    eps: float | None = None,
    anchors: Sequence[int] | None = None,
    batch_size: int | None = None,
    output: str | int | None = None,
) -> DecisionRegions:
    """The decision regions of ``model`` on a 2-D slice chosen by ``mode`` (see the module docstring).

    One-shot form of :class:`DecisionRegionExplainer` (which a callback keeps
    across epochs); the arguments are the same.
    """
    check_one_output(model, x, output, "decision_regions")  # a subclassed model returning several: say so
    return DecisionRegionExplainer(
        model,
        x,
        y,
        mode=mode,
        layer=layer,
        features=features,
        grid_resolution=grid_resolution,
        eps=eps,
        anchors=anchors,
        batch_size=batch_size,
        output=output,
    )()


__all__ = ["MODES", "DecisionRegionExplainer", "DecisionRegions", "decision_regions"]
