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
what must persist across epochs (axis limits, the previous PCA components for
sign alignment); :func:`decision_regions` is the one-shot notebook form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L

MODES = ("auto", "input", "plane", "embedding")
DEFAULT_RESOLUTION = {"input": 100, "embedding": 100, "plane": 50}
MARGIN = 0.1  # default margin, as a fraction of the data's span on each axis (plane: 0.2 of the anchors' span)


# --------------------------------------------------------------------------- result


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


# --------------------------------------------------------------------------- probabilities


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - np.max(np.where(np.isfinite(x), x, -np.inf), axis=1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=1, keepdims=True)


def to_probabilities(out: Any, squash: str | None) -> np.ndarray:
    """Model outputs -> class probabilities (N, C), C >= 2.

    One output unit is a binary classifier (sigmoid, or a logit). Several units
    are used as they are when the model ends in softmax/sigmoid (or the values
    already look like probabilities), else passed through a softmax.
    """
    a = np.asarray(out, dtype=np.float64)
    a = a.reshape(len(a), -1)
    if a.shape[1] == 1:
        p = a[:, 0] if squash == "sigmoid" else _sigmoid(a[:, 0])
        return np.stack([1.0 - p, p], axis=1)
    if squash in ("softmax", "sigmoid"):
        return a
    finite = a[np.isfinite(a)]
    if finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        sums = np.sum(a, axis=1)
        if np.all(np.abs(sums[np.isfinite(sums)] - 1.0) < 1e-3):
            return a
    with np.errstate(invalid="ignore", over="ignore"):
        return _softmax(a)


def classes_and_confidence(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmax and max of probability rows; NaN rows give class 0 and confidence NaN."""
    p = np.asarray(probs, dtype=np.float64)
    cls = np.argmax(np.nan_to_num(p, nan=-np.inf), axis=1)
    conf = np.take_along_axis(p, cls[:, None], axis=1)[:, 0]
    return cls.astype(np.int64), conf.astype(np.float32)


def _squash(model: keras.Model) -> str | None:
    try:
        return L.final_squashing(model)
    except Exception:  # subclassed models: decided from the values
        return None


def n_outputs(model: keras.Model) -> int | None:
    """Number of classes the model scores (a 1-unit output is binary: 2), if its output shape is known."""
    try:
        last = model.outputs[0].shape[-1]
    except Exception:
        return None
    if last is None:
        return None
    return 2 if int(last) == 1 else int(last)


# --------------------------------------------------------------------------- batched calls


def _n(x: Any) -> int:
    if isinstance(x, dict):
        return len(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return len(x[0])
    return len(x)


def _take(x: Any, a: int, b: int) -> Any:
    if isinstance(x, dict):
        return {k: v[a:b] for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [v[a:b] for v in x]
    return x[a:b]


def _pad(x: Any, size: int) -> Any:
    """Pad a batch to ``size`` rows by repeating its last row (keeps one traced shape)."""

    def one(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v)
        if len(v) == size:
            return v
        return np.concatenate([v, np.repeat(v[-1:], size - len(v), axis=0)])

    if isinstance(x, dict):
        return {k: one(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [one(v) for v in x]
    return one(x)


def run_batches(fn: Callable[[Any], Any], n: int, get: Callable[[int, int], Any], batch_size: int) -> list[np.ndarray]:
    """Call ``fn`` on rows ``[a, b)`` from ``get(a, b)`` in batches of exactly ``batch_size``
    (the last one padded), and return its output(s) concatenated, one array per output."""
    parts: list[list[np.ndarray]] = []
    for a in range(0, n, batch_size):
        b = min(a + batch_size, n)
        out = fn(_pad(get(a, b), batch_size))
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        arrays = [_backend.to_numpy(o)[: b - a] for o in outs]
        if not parts:
            parts = [[] for _ in arrays]
        for store, arr in zip(parts, arrays):
            store.append(arr)
    return [np.concatenate(p) for p in parts]


def default_batch_size(values_per_example: int) -> int:
    """About 2**21 input values per batch: 4096 rows of a few features, 512 images of 32x32x3
    (a 1,000-image pass of the reference CNN: 72 ms in batches of 256, 64 ms in batches of 512)."""
    b = max(32, min(4096, (1 << 21) // max(1, int(values_per_example))))
    return 1 << (b.bit_length() - 1)


class Predictor:
    """A model's forward pass compiled once, run in fixed-size batches, returning probabilities."""

    def __init__(self, model: keras.Model, *, batch_size: int | None = None, name: str = "predict") -> None:
        self.model = model
        self.squash = _squash(model)
        self.batch_size = batch_size

        def forward(x: Any) -> Any:
            out = model(x, training=False)
            return out[0] if isinstance(out, (list, tuple)) else out

        self.fn = _backend.compile_function(forward, name=name)

    def _batch(self, x: Any) -> int:
        if self.batch_size:
            return int(self.batch_size)
        first = next(iter(x.values())) if isinstance(x, dict) else (x[0] if isinstance(x, (list, tuple)) else x)
        return default_batch_size(int(np.prod(np.shape(first)[1:], dtype=np.int64)))

    def probabilities(self, x: Any) -> np.ndarray:
        n = _n(x)
        (out,) = run_batches(self.fn, n, lambda a, b: _take(x, a, b), self._batch(x))
        return to_probabilities(out, self.squash)

    def generated(self, n: int, get: Callable[[int, int], np.ndarray], batch_size: int) -> np.ndarray:
        (out,) = run_batches(self.fn, n, get, batch_size)
        return to_probabilities(out, self.squash)


# --------------------------------------------------------------------------- geometry helpers


def _margin(lo: float, hi: float, eps: float | None, frac: float = MARGIN) -> float:
    if eps is not None:
        return float(eps)
    span = hi - lo
    return frac * span if np.isfinite(span) and span > 0 else 1.0


def _limits(values: np.ndarray, eps: float | None) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (-1.0, 1.0)
    lo, hi = float(v.min()), float(v.max())
    m = _margin(lo, hi, eps)
    return (lo - m, hi + m)


def _widen(lim: tuple[float, float] | None, values: np.ndarray, eps: float | None) -> tuple[float, float]:
    """``lim`` kept if every finite value is inside it, else widened to hold them (with margin)."""
    fresh = _limits(values, eps)
    if lim is None:
        return fresh
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or (v.min() >= lim[0] and v.max() <= lim[1]):
        return lim
    return (min(lim[0], fresh[0]), max(lim[1], fresh[1]))


def _grid(xlim: tuple[float, float], ylim: tuple[float, float], g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xx = np.linspace(xlim[0], xlim[1], g)
    yy = np.linspace(ylim[0], ylim[1], g)
    gx, gy = np.meshgrid(xx, yy)
    return xx, yy, np.stack([gx.ravel(), gy.ravel()], axis=1)


def pca2(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (D,), components (2, D) orthonormal, explained variance ratio (2,))`` by numpy SVD.

    Always returns two components: when the centred data has rank < 2 the
    missing ones are completed with orthonormal directions (variance 0).
    """
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    mean = f.mean(axis=0) if n else np.zeros(d)
    centred = f - mean
    if n >= 2 and d <= n:
        # eigenvectors of the (d, d) scatter matrix: the same components as the SVD of the data,
        # several times cheaper for many points of a few hundred features
        var_all, vecs = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(var_all)[::-1]
        s, vt = np.sqrt(np.clip(var_all[order], 0.0, None)), vecs[:, order].T
    elif n >= 2:
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
    else:
        s, vt = np.zeros(0), np.zeros((0, d))
    var = s**2
    total = float(var.sum())
    keep = [
        k for k in range(min(2, len(s))) if s[k] > 1e-7 * max(1.0, s[0])
    ]  # below: rounding noise of the eigen-solver
    comps = [vt[k] for k in keep]
    ratios = [var[k] / total if total > 0 else 0.0 for k in keep]
    basis = np.eye(d)
    for e in basis:
        if len(comps) == 2:
            break
        v = e - sum(np.dot(e, c) * c for c in comps) if comps else e.copy()
        norm = np.linalg.norm(v)
        if norm > 1e-6:
            comps.append(v / norm)
            ratios.append(0.0)
    return mean, np.stack(comps), np.asarray(ratios, dtype=np.float64)


def flip_signs(components: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Fix each component's sign: a positive dot product with ``previous`` (the last
    epoch's components), or, with no previous, a positive largest-magnitude entry."""
    c = np.array(components, dtype=np.float64, copy=True)
    for k in range(len(c)):
        aligned = previous is not None and k < len(previous)
        s = np.dot(c[k], previous[k]) if aligned else c[k][np.argmax(np.abs(c[k]))]
        if s < 0:
            c[k] = -c[k]
    return c


def gram_schmidt_plane(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plane through three points: ``(origin = x1, basis (2, D) orthonormal, coordinates (3, 2))``.

    ``basis[0]`` points from x1 to x2; ``basis[1]`` is the part of ``x3 - x1``
    orthogonal to it. Raises ``ValueError`` when the points are collinear.
    """
    o = np.asarray(x1, dtype=np.float64).reshape(-1)
    v1 = np.asarray(x2, dtype=np.float64).reshape(-1) - o
    v2 = np.asarray(x3, dtype=np.float64).reshape(-1) - o
    n1 = np.linalg.norm(v1)
    if not np.isfinite(n1) or n1 == 0:
        raise ValueError("plane: the first two anchor images are identical (or not finite); pick other anchors.")
    e1 = v1 / n1
    w = v2 - np.dot(v2, e1) * e1
    n2 = np.linalg.norm(w)
    if not np.isfinite(n2) or n2 <= 1e-9 * max(n1, 1.0):
        raise ValueError("plane: the three anchor images are collinear; pick other anchors.")
    e2 = w / n2
    coords = np.array([[0.0, 0.0], [n1, 0.0], [np.dot(v2, e1), n2]])
    return o, np.stack([e1, e2]), coords


# --------------------------------------------------------------------------- the head


def last_dense(model: keras.Model) -> tuple[str, keras.layers.Layer] | None:
    found = None
    for path, layer in L.iter_layers(model):
        if isinstance(layer, keras.layers.Dense):
            found = (path, layer)
    return found


def build_head(model: keras.Model, path: str, *, use_input: bool) -> keras.Model:
    """A model from layer ``path``'s output (or input, ``use_input=True``) to the model's output.

    It shares the model's layers (and weights). ``ValueError`` when the output
    does not depend on that tensor alone (a branch bypasses the layer).
    """
    holder: dict[str, Any] = {}

    def visit(layer, lpath, args, kwargs):
        if L.is_model(layer) and path.startswith(lpath + "/"):
            _, outs = L.replay(layer, list(args), visit, prefix=lpath + "/")
            return outs[0] if len(outs) == 1 else outs
        result = layer(*args, **kwargs)
        if lpath == path:
            holder["input"] = args[0] if use_input else result
        return result

    _, outs = L.replay(model, visit=visit)
    if "input" not in holder:
        raise ValueError(f"layer {path!r} was not reached while replaying model {model.name!r}.")
    try:
        return keras.Model(holder["input"], outs[0], name=f"{model.name}_head")
    except Exception as e:
        raise ValueError(
            f"mode='embedding': the model's output does not depend on layer {path!r} alone (a branch "
            f"bypasses it), so the layers after it cannot be applied to its PCA slice ({e}). Pick a "
            "layer that every path to the output goes through."
        ) from None


# --------------------------------------------------------------------------- the explainer


def _is_array(x: Any) -> bool:
    return not isinstance(x, (list, tuple, dict))


def _per_example_shape(model: keras.Model, x: Any) -> tuple:
    try:
        return tuple(model.inputs[0].shape[1:])
    except Exception:
        return tuple(np.shape(x)[1:])


def _all_layer_paths(model: keras.Model) -> list[str]:
    return [p for p, layer in L.iter_layers(model) if not isinstance(layer, keras.layers.InputLayer)]


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
        grid_resolution: grid points per axis (default 100; 50 for ``"plane"``).
        eps: margin added around the data (``"input"``/``"embedding"``) or the anchors
            (``"plane"``) in axis units; default 10% of the span (20% for ``"plane"``).
        anchors: ``"plane"``: indices of 3 examples of ``x``; default the first example of each of
            the first three classes present in ``y`` (or in the predictions when ``y`` is None).
        batch_size: rows per compiled call (default: about 2**21 input values per batch).
        fixed_axes: keep axis limits across calls, widening them only when points leave them.
        align_signs: ``"embedding"``: flip each PCA component to agree in sign with the previous call's.
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
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if grid_resolution is not None and (not isinstance(grid_resolution, int) or grid_resolution < 2):
            raise ValueError(f"grid_resolution must be an integer >= 2, got {grid_resolution!r}.")
        if eps is not None and not (np.isfinite(eps) and eps >= 0):
            raise ValueError(f"eps must be a finite number >= 0, got {eps!r}.")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}.")
        self.model = model
        self.x = x if not _is_array(x) else np.asarray(x)
        self.y = None if y is None else self._labels(y)
        if self.y is not None and len(self.y) != _n(self.x):
            raise ValueError(f"{_n(self.x)} inputs but {len(self.y)} labels; pass one label per example.")
        self.eps = eps
        self.fixed_axes = fixed_axes
        self.align_signs = align_signs
        self.batch_size = batch_size
        self.predictor = Predictor(model, batch_size=batch_size)
        self.mode = self._resolve_mode(mode, layer, features)
        self.grid_resolution = grid_resolution or DEFAULT_RESOLUTION[self.mode]
        self.n_classes = n_outputs(model)
        self.xlim: tuple[float, float] | None = None
        self.ylim: tuple[float, float] | None = None
        self.previous: np.ndarray | None = None  # embedding: last components
        self.started = False
        getattr(self, f"_init_{self.mode}")(layer, features, anchors)

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

    def _init_input(self, layer, features, anchors) -> None:
        x = np.asarray(self.x, dtype=np.float64)
        d = x.shape[1]
        if features is None:
            if d != 2:
                raise ValueError(
                    f"mode='input': the model reads {d} features; pick the two on the axes with features=(i, j) "
                    "(the others are held at their mean), or use mode='embedding'."
                )
            features = (0, 1)
        feats = tuple(int(f) for f in features)
        if len(feats) != 2 or feats[0] == feats[1] or not all(0 <= f < d for f in feats):
            raise ValueError(f"features must be two different indices in [0, {d}), got {tuple(features)!r}.")
        self.features = feats
        finite = np.where(np.isfinite(x), x, np.nan)
        with np.errstate(all="ignore"):
            base = np.nanmean(finite, axis=0) if len(x) else np.zeros(d)
        self.nonfinite = int(np.sum(~np.isfinite(x)))
        self.base = np.nan_to_num(base, nan=0.0, posinf=0.0, neginf=0.0)
        self.xlim = _limits(x[:, feats[0]], self.eps)
        self.ylim = _limits(x[:, feats[1]], self.eps)
        self.dtype = np.asarray(self.x).dtype if np.issubdtype(np.asarray(self.x).dtype, np.floating) else np.float32
        self.started = True

    def _init_plane(self, layer, features, anchors) -> None:
        x = np.asarray(self.x)
        if anchors is None:
            y = self.y if self.y is not None else classes_and_confidence(self.predictor.probabilities(x))[0]
            present = list(dict.fromkeys(int(c) for c in y))  # first appearance order
            classes = sorted(present)
            if len(classes) < 3:
                source = "labels" if self.y is not None else "model's predictions (no labels given)"
                raise ValueError(
                    f"mode='plane' needs examples of 3 different classes for its anchors, but the {source} "
                    f"hold only {len(classes)} class(es) ({classes}). Pass data with at least 3 classes, or "
                    "anchors=(i, j, k)."
                )
            idx = [int(np.flatnonzero(y == c)[0]) for c in classes[:3]]
        else:
            idx = [int(i) for i in anchors]
            if len(idx) != 3 or len(set(idx)) != 3 or not all(0 <= i < len(x) for i in idx):
                raise ValueError(
                    f"anchors must be 3 different indices into the data (0..{len(x) - 1}), got {anchors!r}."
                )
        self.anchor_index = np.asarray(idx)
        a = np.nan_to_num(x[idx].astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        self.nonfinite = int(np.sum(~np.isfinite(x[idx].astype(np.float64))))
        self.origin, self.basis, self.anchor_coords = gram_schmidt_plane(a[0], a[1], a[2])
        self.image_shape = x.shape[1:]
        lo, hi = self.anchor_coords.min(axis=0), self.anchor_coords.max(axis=0)
        span = float(np.max(hi - lo))
        m = self.eps if self.eps is not None else 0.2 * span
        half = span / 2 + m  # a square window: both axes are distances in input space
        cx, cy = (lo + hi) / 2
        self.xlim, self.ylim = (cx - half, cx + half), (cy - half, cy + half)
        self.dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        self.started = True

    def _init_embedding(self, layer, features, anchors) -> None:
        model = self.model
        if layer is None:
            found = last_dense(model)
            if found is None:
                raise ValueError(
                    f"mode='embedding': model {model.name!r} has no Dense layer, so there is no default feature "
                    f"layer; pass layer=... (one of {_all_layer_paths(model)})."
                )
            path, use_input = found[0], True
        else:
            try:
                path, _ = L.find_layer(model, layer)
            except ValueError:
                raise ValueError(
                    f"mode='embedding': no layer {layer!r} in model {model.name!r}. Layers: {_all_layer_paths(model)}."
                ) from None
            use_input = False
            out_path, _ = L.output_layer(model)
            if path == out_path:
                raise ValueError(
                    f"mode='embedding': {path!r} is the output layer; pick a layer before it "
                    f"(layers: {_all_layer_paths(model)})."
                )
        self.layer = f"{path}:input" if use_input else path
        self.layer_path = path
        if use_input:
            probe = L.build_probe(model, inputs_of=[path], output=True)
        else:
            probe = L.build_probe(model, [path], output=True)
        self.head = build_head(model, path, use_input=use_input)
        self.feature_shape = tuple(int(d) for d in self.head.inputs[0].shape[1:])
        if int(np.prod(self.feature_shape)) < 2:
            raise ValueError(f"mode='embedding': layer {self.layer!r} has {self.feature_shape} features; need >= 2.")
        probe_model, head = probe.model, self.head
        self.probe_names = probe.names
        self.probe_fn = _backend.compile_function(lambda x: probe_model(x, training=False), name="features")
        self.head_fn = _backend.compile_function(lambda f: head(f, training=False), name="head")
        self.head_batch = self.batch_size or default_batch_size(int(np.prod(self.feature_shape)))
        self.shared = None  # a callback may set an explain._shared.SharedView: the data pass shared with other views
        self.dtype = np.dtype(self.head.inputs[0].dtype)

    def _data_batch(self) -> int:
        if self.batch_size:
            return int(self.batch_size)
        first = (
            next(iter(self.x.values()))
            if isinstance(self.x, dict)
            else (self.x[0] if not _is_array(self.x) else self.x)
        )
        return default_batch_size(int(np.prod(np.shape(first)[1:], dtype=np.int64)))

    # ----------------------------------------------------------------- per call
    def start(self) -> None:
        """Fix the axis limits (``"embedding"``: one forward pass and PCA now). Called by the
        callback at train begin; otherwise done by the first call."""
        if self.mode == "embedding":
            z = self._project()[3]
            self.xlim, self.ylim = _limits(z[:, 0], self.eps), _limits(z[:, 1], self.eps)
        self.started = True

    def __call__(self, epoch: int | None = None) -> DecisionRegions:
        """The regions for the current weights; ``epoch`` lets a shared data pass (see
        :mod:`keras_vizcallbacks.explain._shared`) serve several views of the same epoch."""
        if not self.started:
            self.start()
        if self.mode == "embedding":
            return self._call_embedding(epoch)
        return getattr(self, f"_call_{self.mode}")()

    def _finish(self, probs_grid: np.ndarray, xx, yy, **fields: Any) -> DecisionRegions:
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

    def _call_input(self) -> DecisionRegions:
        x = np.asarray(self.x)
        i, j = self.features
        xx, yy, grid = _grid(self.xlim, self.ylim, self.grid_resolution)
        n_grid, n = len(grid), len(x)
        d = x.shape[1]
        projected = np.broadcast_to(self.base, (n, d)).copy()
        projected[:, i], projected[:, j] = x[:, i], x[:, j]
        exact = d == 2
        rows = [grid, x if exact else projected]
        if not exact:
            rows.append(x)

        def get(a: int, b: int) -> np.ndarray:
            out = np.empty((b - a, d), dtype=self.dtype)
            out[:] = self.base
            ga, gb = max(a, 0), min(b, n_grid)
            if gb > ga:
                out[ga - a : gb - a, i] = grid[ga:gb, 0]
                out[ga - a : gb - a, j] = grid[ga:gb, 1]
            for k, block in enumerate(rows[1:]):
                start = n_grid + k * n
                ba, bb = max(a, start), min(b, start + n)
                if bb > ba:
                    out[ba - a : bb - a] = block[ba - start : bb - start]
            return out

        total = n_grid + n * (len(rows) - 1)
        probs = self.predictor.generated(total, get, self.batch_size or default_batch_size(d))
        region, _ = classes_and_confidence(probs[n_grid : n_grid + n])
        pred, pconf = classes_and_confidence(probs[-n:])
        names = (f"feature {i}", f"feature {j}")
        if exact:
            axes = "the model's two input features"
        else:
            axes = f"input features {i} and {j}; the other {d - 2} are held at their mean over the data"
        return self._finish(
            probs[:n_grid],
            xx,
            yy,
            points=np.stack([x[:, i], x[:, j]], axis=1).astype(np.float32),
            labels=self.y,
            predictions=pred,
            point_confidence=pconf,
            point_regions=region,
            xlabel=names[0],
            ylabel=names[1],
            axes=axes,
            features=(i, j),
            mean=self.base.astype(np.float32),
            nonfinite=self.nonfinite,
        )

    def _call_plane(self) -> DecisionRegions:
        xx, yy, grid = _grid(self.xlim, self.ylim, self.grid_resolution)
        coords = np.concatenate([grid, self.anchor_coords])
        anchors = np.asarray(self.x)[self.anchor_index]
        n_grid = len(grid)
        shape = self.image_shape

        m = len(coords)  # grid points and the anchors' plane coordinates; then the 3 anchor images themselves

        def get(a: int, b: int) -> np.ndarray:
            parts = []
            if a < m:
                stop = min(b, m)
                parts.append((self.origin + coords[a:stop] @ self.basis).reshape((stop - a, *shape)))
            if b > m:
                parts.append(anchors[max(a, m) - m : b - m])
            return np.concatenate(parts).astype(self.dtype, copy=False)

        total = m + 3
        batch = self.batch_size or default_batch_size(int(np.prod(shape)))
        probs = self.predictor.generated(total, get, batch)
        region, _ = classes_and_confidence(probs[n_grid : n_grid + 3])
        pred, pconf = classes_and_confidence(probs[-3:])
        labels = None if self.y is None else self.y[self.anchor_index]
        return self._finish(
            probs[:n_grid],
            xx,
            yy,
            points=self.anchor_coords.astype(np.float32),
            labels=labels,
            predictions=pred,
            point_confidence=pconf,
            point_regions=region,
            xlabel="along anchor 2 − anchor 1",
            ylabel="toward anchor 3 (orthogonal)",
            axes=(
                "an orthonormal basis (Gram-Schmidt) of the plane through three anchor images, in input units "
                "(L2 distance in pixel space); anchor 1 at the origin"
            ),
            components=self.basis.astype(np.float32),
            origin=self.origin.astype(np.float32),
            anchors=self.anchor_coords.astype(np.float32),
            anchor_index=self.anchor_index.copy(),
            nonfinite=self.nonfinite,
        )

    def _project(self, epoch: int | None = None):
        n = _n(self.x)
        if self.shared is not None:
            outs = self.shared.outputs(epoch)
            feats, out = outs[self.probe_names[0]], outs[L.OUTPUT]
        else:
            feats, out = run_batches(self.probe_fn, n, lambda a, b: _take(self.x, a, b), self._data_batch())
        f = feats.reshape(n, -1).astype(np.float64)
        bad = ~np.isfinite(f)
        nonfinite = int(bad.sum())
        if nonfinite:
            f = np.where(bad, 0.0, f)
        mean, comps, ratio = pca2(f)
        comps = flip_signs(comps, self.previous if self.align_signs else None)
        self.previous = comps
        z = (f - mean) @ comps.T
        return mean, comps, ratio, z, out, nonfinite

    def _call_embedding(self, epoch: int | None = None) -> DecisionRegions:
        mean, comps, ratio, z, out, nonfinite = self._project(epoch)
        if self.fixed_axes:
            self.xlim = _widen(self.xlim, z[:, 0], self.eps)
            self.ylim = _widen(self.ylim, z[:, 1], self.eps)
        else:
            self.xlim, self.ylim = _limits(z[:, 0], self.eps), _limits(z[:, 1], self.eps)
        xx, yy, grid = _grid(self.xlim, self.ylim, self.grid_resolution)
        coords = np.concatenate([grid, z])

        def get(a: int, b: int) -> np.ndarray:
            return (mean + coords[a:b] @ comps).reshape((b - a, *self.feature_shape)).astype(self.dtype)

        (head_out,) = run_batches(self.head_fn, len(coords), get, self.head_batch)
        probs = to_probabilities(head_out, self.predictor.squash)
        n_grid = len(grid)
        region, _ = classes_and_confidence(probs[n_grid:])
        pred, pconf = classes_and_confidence(to_probabilities(out, self.predictor.squash))
        dims = "×".join(str(d) for d in self.feature_shape)
        what = f"the input to `{self.layer_path}`" if self.layer.endswith(":input") else f"the output of `{self.layer}`"
        return self._finish(
            probs[:n_grid],
            xx,
            yy,
            points=z.astype(np.float32),
            labels=self.y,
            predictions=pred,
            point_confidence=pconf,
            point_regions=region,
            xlabel=f"PC1 ({ratio[0]:.0%} of variance)",
            ylabel=f"PC2 ({ratio[1]:.0%} of variance)",
            axes=(
                f"the first two principal components of {what} ({dims} features), fitted on these "
                f"{len(z)} examples at this epoch"
            ),
            layer=self.layer,
            mean=mean.astype(np.float32),
            components=comps.astype(np.float32),
            explained_variance_ratio=ratio.astype(np.float32),
            nonfinite=nonfinite,
        )


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
) -> DecisionRegions:
    """The decision regions of ``model`` on a 2-D slice chosen by ``mode`` (see the module docstring).

    One-shot form of :class:`DecisionRegionExplainer` (which a callback keeps
    across epochs); the arguments are the same.
    """
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
    )()


__all__ = [
    "MODES",
    "DecisionRegionExplainer",
    "DecisionRegions",
    "Predictor",
    "build_head",
    "decision_regions",
    "flip_signs",
    "gram_schmidt_plane",
    "pca2",
    "to_probabilities",
]
