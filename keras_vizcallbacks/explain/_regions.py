"""What the decision-regions modes share: the result (`DecisionRegions`), the 2-D window
(axis limits with a margin, the grid) and the base of the three modes (`Slice`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from keras_vizcallbacks.explain._outputs import classes_and_confidence

MARGIN = 0.1  # default margin, as a fraction of the data's span on each axis (plane: 0.2 of the anchors' span)


@dataclasses.dataclass
class DecisionRegions:
    """What :func:`decision_regions` computes (float32/int numpy arrays; no pixels).

    The grid has ``len(yy)`` rows and ``len(xx)`` columns: ``classes[r, c]``
    is the class predicted at ``(xx[c], yy[r])``.
    """

    mode: str
    xx: np.ndarray  # (G,) x coordinate of each grid column
    yy: np.ndarray  # (G,) y coordinate of each grid row
    classes: np.ndarray  # (G, G) int: predicted class at each grid point
    confidence: np.ndarray  # (G, G) float32: its probability
    probabilities: np.ndarray  # (G, G, C) float32: every class's probability (smooth boundary lines)
    points: np.ndarray  # (N, 2) the data points in the same 2-D coordinates
    labels: np.ndarray | None  # (N,) true classes, when known
    predictions: np.ndarray  # (N,) the model's predicted class for each (real) example
    point_confidence: np.ndarray  # (N,) probability of that prediction
    point_regions: np.ndarray  # (N,) class of the region each point is drawn in
    n_classes: int
    xlabel: str
    ylabel: str
    axes: str  # a sentence: what the two axes are
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    layer: str | None = None  # embedding: the feature layer (path, ":input" for a layer's input)
    features: tuple[int, int] | None = None  # input: the two features on the axes
    mean: np.ndarray | None = None  # embedding: PCA mean; input: the point the other features are held at
    components: np.ndarray | None = None  # embedding: (2, D) PCA components; plane: (2, D) orthonormal basis
    explained_variance_ratio: np.ndarray | None = None  # embedding: (2,)
    origin: np.ndarray | None = None  # plane: the first anchor (flattened)
    anchors: np.ndarray | None = None  # plane: (3, 2) anchor coordinates
    anchor_index: np.ndarray | None = None  # plane: indices of the anchors in the data
    nonfinite: int = 0  # values replaced by 0 before PCA / grid construction

    @property
    def grid_points(self) -> np.ndarray:
        """(G*G, 2) coordinates of the grid points, row by row (``classes.reshape(-1)`` order)."""
        gx, gy = np.meshgrid(self.xx, self.yy)
        return np.stack([gx.ravel(), gy.ravel()], axis=1)

    @property
    def agreement(self) -> int:
        """How many data points the model predicts as the class of the region they are drawn in."""
        return int(np.sum(self.point_regions == self.predictions))

    @property
    def accuracy(self) -> float | None:
        if self.labels is None or len(self.labels) == 0:
            return None
        return float(np.mean(self.labels == self.predictions))


# --------------------------------------------------------------------------- the 2-D window


def margin(lo: float, hi: float, eps: float | None, frac: float = MARGIN) -> float:
    if eps is not None:
        return float(eps)
    span = hi - lo
    return frac * span if np.isfinite(span) and span > 0 else 1.0


def limits(values: np.ndarray, eps: float | None) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    m = margin(lo, hi, eps)
    return (lo - m, hi + m)


def widen(lim: tuple[float, float] | None, values: np.ndarray, eps: float | None) -> tuple[float, float]:
    """``lim`` kept if every finite value is inside it, else widened to hold them (with margin)."""
    fresh = limits(values, eps)
    if lim is None:
        return fresh
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or (v.min() >= lim[0] and v.max() <= lim[1]):
        return lim
    return (min(lim[0], fresh[0]), max(lim[1], fresh[1]))


def grid(xlim: tuple[float, float], ylim: tuple[float, float], g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xx = np.linspace(xlim[0], xlim[1], g)
    yy = np.linspace(ylim[0], ylim[1], g)
    gx, gy = np.meshgrid(xx, yy)
    return xx, yy, np.stack([gx.ravel(), gy.ravel()], axis=1)


# --------------------------------------------------------------------------- the modes' base


class Slice:
    """One way of choosing the 2-D slice (a ``mode``): built once per explainer (``ValueError``
    for a bad configuration), then called once per epoch for the current weights.

    Subclasses set ``mode`` and ``default_resolution``, build what they need in
    ``__init__(explainer, layer, features, anchors)``, and implement ``__call__(epoch)``.
    The explainer gives them its data and settings: ``model``, ``x``, ``y``,
    ``eps``, ``batch_size``, ``grid_resolution``, ``predictor``, ``n_classes``.
    """

    mode = ""
    default_resolution = 100

    @classmethod
    def resolution_for(cls, example_shape: tuple) -> int:
        """The grid points per axis when ``grid_resolution`` is not given, for examples of ``example_shape``."""
        return cls.default_resolution

    def __init__(self, explainer: Any) -> None:
        self.model = explainer.model
        self.x = explainer.x
        self.y = explainer.y
        self.eps = explainer.eps
        self.batch_size = explainer.batch_size
        self.predictor = explainer.predictor
        self.output = explainer.output
        self.n_classes = explainer.n_classes
        self.grid_resolution = explainer.grid_resolution
        self.xlim: tuple[float, float] | None = None
        self.ylim: tuple[float, float] | None = None
        self.nonfinite = 0
        self.started = False

    # what the callbacks read (``"embedding"`` overrides)
    layer: str | None = None
    layer_path: str | None = None
    shared: Any = None

    def start(self) -> None:
        """Fix what must stay fixed across calls (axis limits); called once before the first call."""
        self.started = True

    def __call__(self, epoch: int | None = None) -> DecisionRegions:
        raise NotImplementedError

    def compiled_functions(self) -> list[Any]:
        return self.predictor.compiled_functions()

    def regions(self, probs_grid: np.ndarray, xx: np.ndarray, yy: np.ndarray, **fields: Any) -> DecisionRegions:
        """The result from the grid's class probabilities (G*G, C) and the per-mode ``fields``."""
        cls, conf = classes_and_confidence(probs_grid)
        g = (len(yy), len(xx))
        n_classes = max(self.n_classes or 0, probs_grid.shape[1])
        if self.y is not None and len(self.y):
            n_classes = max(n_classes, int(self.y.max()) + 1)
        return DecisionRegions(
            mode=self.mode,
            xx=xx.astype(np.float32),
            yy=yy.astype(np.float32),
            classes=cls.reshape(g),
            confidence=conf.reshape(g),
            probabilities=np.asarray(probs_grid, dtype=np.float32).reshape((*g, -1)),
            n_classes=n_classes,
            xlim=tuple(float(v) for v in self.xlim),
            ylim=tuple(float(v) for v in self.ylim),
            **fields,
        )
