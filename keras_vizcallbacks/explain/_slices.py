"""The three decision-regions modes, one small class each, picked from `SLICES` by name.

* `InputSlice` (``"input"``): a grid over two input features of a flat input.
* `PlaneSlice` (``"plane"``): the plane through three images of three classes.
* `EmbeddingSlice` (``"embedding"``): PCA of a feature layer, the grid mapped back
  through the PCA inverse and the layers after the feature layer.

See `keras_vizcallbacks.explain.boundary` for what each shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain._batches import default_batch_size, n_rows, run_batches, run_over
from keras_vizcallbacks.explain._outputs import classes_and_confidence, to_probabilities
from keras_vizcallbacks.explain._regions import DecisionRegions, Slice, grid, limits
from keras_vizcallbacks.explain._shared import register
from keras_vizcallbacks.explain.projection import align_plane, flip_signs, gram_schmidt_plane, hold_half_width, pca2


class InputSlice(Slice):
    """A grid over two features of a flat input; the other features held at their mean over the data."""

    mode = "input"
    default_resolution = 100

    def __init__(self, explainer: Any, layer: Any, features: Sequence[int] | None, anchors: Any) -> None:
        super().__init__(explainer)
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
        self.xlim = limits(x[:, feats[0]], self.eps)
        self.ylim = limits(x[:, feats[1]], self.eps)
        self.dtype = np.asarray(self.x).dtype if np.issubdtype(np.asarray(self.x).dtype, np.floating) else np.float32
        self.started = True

    def __call__(self, epoch: int | None = None) -> DecisionRegions:
        x = np.asarray(self.x)
        i, j = self.features
        xx, yy, points = grid(self.xlim, self.ylim, self.grid_resolution)
        n_grid, n = len(points), len(x)
        d = x.shape[1]
        projected = np.broadcast_to(self.base, (n, d)).copy()
        projected[:, i], projected[:, j] = x[:, i], x[:, j]
        exact = d == 2
        rows = [points, x if exact else projected]
        if not exact:
            rows.append(x)

        def get(a: int, b: int) -> np.ndarray:
            out = np.empty((b - a, d), dtype=self.dtype)
            out[:] = self.base
            ga, gb = max(a, 0), min(b, n_grid)
            if gb > ga:
                out[ga - a : gb - a, i] = points[ga:gb, 0]
                out[ga - a : gb - a, j] = points[ga:gb, 1]
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
        return self.regions(
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


class PlaneSlice(Slice):
    """The plane through three anchor images (Gram-Schmidt basis); every grid point is an image."""

    mode = "plane"
    default_resolution = 50
    min_resolution = 16
    # Input values evaluated per render by default: 50 x 50 grid images of 32x32x3 (7.7 M). Larger images
    # get a coarser default grid (at least 16 x 16): 224x224x3 takes 256 images a render, not 2,500.
    values_budget = 50 * 50 * 32 * 32 * 3

    @classmethod
    def resolution_for(cls, example_shape: tuple) -> int:
        """50 points per axis up to 32x32x3 examples; fewer for larger ones, so the grid's images hold
        about `values_budget` input values (at least `min_resolution`)."""
        values = max(1, int(np.prod(example_shape, dtype=np.int64)))
        fit = int(np.sqrt(cls.values_budget / values))
        return int(min(cls.default_resolution, max(cls.min_resolution, fit)))

    def __init__(self, explainer: Any, layer: Any, features: Any, anchors: Sequence[int] | None) -> None:
        super().__init__(explainer)
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

    def __call__(self, epoch: int | None = None) -> DecisionRegions:
        xx, yy, points = grid(self.xlim, self.ylim, self.grid_resolution)
        coords = np.concatenate([points, self.anchor_coords])
        anchors = np.asarray(self.x)[self.anchor_index]
        n_grid = len(points)
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
        return self.regions(
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


class EmbeddingSlice(Slice):
    """PCA of a feature layer's outputs; the grid goes back through the PCA inverse and the head.

    The frame (see docs/views/decision_boundary.md, "A frame that holds still"): each call fits the
    principal plane of the current features, turns its two axes within the plane to match the last
    call's (`align_plane`, orthogonal Procrustes), and measures each axis in standard deviations of
    the data along it, so training that scales or spins the features does not move the picture. The
    window is ``[-L, L]`` on each axis in those units, ``L`` on a 1, 1.5, 2, 3, 4, 6, ... ladder, and
    changes only when points leave it or fit in half of it (`hold_half_width`).
    """

    mode = "embedding"
    default_resolution = 100

    def __init__(self, explainer: Any, layer: str | None, features: Any, anchors: Any) -> None:
        super().__init__(explainer)
        self.fixed_axes = explainer.fixed_axes
        self.align_signs = explainer.align_signs
        self.share_pass = explainer.share_pass
        self.previous: np.ndarray | None = None  # the last call's orthonormal axes (`align_plane`)
        self.shared = None  # the data pass shared with other views (``share_pass``), from `start`
        model = self.model
        if layer is None:
            found = L.last_dense(model)
            out_path, out_layer = L.output_layer(model, self.output)
            if len(L.output_names(model)) > 1 and isinstance(out_layer, keras.layers.Dense):
                found = (out_path, out_layer)  # several heads: the chosen output's own Dense layer
            if found is None:
                raise ValueError(
                    f"mode='embedding': model {model.name!r} has no Dense layer, so there is no default feature "
                    f"layer; pass layer=... (one of {L.all_layer_paths(model)})."
                )
            path, use_input = found[0], True
        else:
            try:
                path, _ = L.find_layer(model, layer)
            except ValueError:
                raise ValueError(
                    f"mode='embedding': no layer {layer!r} in model {model.name!r}. Layers: {L.all_layer_paths(model)}."
                ) from None
            use_input = False
            out_path, _ = L.output_layer(model, self.output)
            if path == out_path:
                raise ValueError(
                    f"mode='embedding': {path!r} is the output layer; pick a layer before it "
                    f"(layers: {L.all_layer_paths(model)})."
                )
        self.layer = f"{path}:input" if use_input else path
        self.layer_path = path
        self.use_input = use_input
        if use_input:
            probe = L.build_probe(model, inputs_of=[path], output=True, output_index=self.output)
        else:
            probe = L.build_probe(model, [path], output=True, output_index=self.output)
        self.head = L.build_head(model, path, use_input=use_input, output=self.output)
        self.feature_shape = tuple(int(d) for d in self.head.inputs[0].shape[1:])
        if int(np.prod(self.feature_shape)) < 2:
            raise ValueError(f"mode='embedding': layer {self.layer!r} has {self.feature_shape} features; need >= 2.")
        probe_model, head = probe.model, self.head
        self.probe_names = probe.names
        self.probe_fn = _backend.compile_function(
            lambda x: probe_model(x, training=False), name="features", state=model
        )
        self.head_fn = _backend.compile_function(lambda f: head(f, training=False), name="head", state=[model, head])
        self.head_batch = self.batch_size or default_batch_size(int(np.prod(self.feature_shape)))
        self.dtype = np.dtype(self.head.inputs[0].dtype)

    @property
    def data_batch_size(self) -> int:
        return self.predictor.batch_size_for(self.x)

    def start(self) -> None:
        """Join the shared data pass (``share_pass``), then one forward pass and PCA fix the axis limits."""
        if self.share_pass and self.shared is None:
            tap = {"inputs_of": [self.layer_path]} if self.use_input else {"paths": [self.layer_path]}
            tap["outputs"] = [self.output]
            self.shared = register(self.model, self.x, batch_size=self.data_batch_size, **tap)
        z = self.project()[3]
        if self.fixed_axes:
            self.xlim, self.ylim = self.hold(None, z[:, 0]), self.hold(None, z[:, 1])
        else:
            self.xlim, self.ylim = limits(z[:, 0], self.eps), limits(z[:, 1], self.eps)
        self.started = True

    def hold(self, lim: tuple[float, float] | None, z: np.ndarray) -> tuple[float, float]:
        """One axis's ``(-L, L)`` that `hold_half_width` keeps, with ``eps`` (default 5% of the farthest
        coordinate) to spare."""
        finite = np.abs(z[np.isfinite(z)])
        pad = float(self.eps) if self.eps is not None else 0.05 * (float(finite.max()) if finite.size else 0.0)
        half = hold_half_width(None if lim is None else lim[1], z, pad)
        return (-half, half)

    def compiled_functions(self) -> list[Any]:
        fns = [*self.predictor.compiled_functions(), self.probe_fn, self.head_fn]
        return fns + (self.shared.compiled_functions() if self.shared is not None else [])

    def project(self, epoch: int | None = None):
        """``(mean, axes (2, D), variance share of each axis (2,), coordinates (N, 2), model outputs,
        non-finite count)``: ``feature = mean + coordinates · axes``; each axis is a unit direction of
        the principal plane (turned to the last call's) times the data's standard deviation along it."""
        n = n_rows(self.x)
        if self.shared is not None:
            outs = self.shared.outputs(epoch)
            feats, out = outs[self.probe_names[0]], outs[L.output_key(self.output)]
        else:
            feats, out = run_over(self.probe_fn, self.x, self.data_batch_size)
        f = feats.reshape(n, -1).astype(np.float64)
        bad = ~np.isfinite(f)
        nonfinite = int(bad.sum())
        if nonfinite:
            f = np.where(bad, 0.0, f)
        mean, comps, _ = pca2(f)
        comps = align_plane(comps, self.previous) if self.align_signs else flip_signs(comps, None)
        self.previous = comps
        z = (f - mean) @ comps.T
        total = float(np.sum((f - mean) ** 2))
        sd = np.sqrt(np.mean(z**2, axis=0)) if len(z) else np.zeros(2)
        share = (len(z) * sd**2 / total) if total > 0 else np.zeros(2)
        sd = np.where(sd > 1e-12 * max(1.0, float(sd.max())), sd, 1.0)  # a flat axis keeps unit scale
        return mean, comps * sd[:, None], share, z / sd, out, nonfinite

    def axes_text(self, what: str, dims: str, n: int) -> str:
        """What the axes are (a sentence; the same at every call)."""
        turned = (
            "its two axes turned within the plane to match the previous epoch's (orthogonal Procrustes)"
            if self.align_signs
            else "its two axes the principal components (signs: largest entry positive)"
        )
        window = (
            "Each axis spans ±L, L one of 1, 1.5, 2, 3, 4, 6, 8, …, which changes only when a point leaves it "
            "or all fit in half of it"
            if self.fixed_axes
            else "The axis limits are refitted to the points each epoch"
        )
        return (
            f"the plane of the first two principal components of {what} ({dims} features) on these {n} "
            f"examples, refitted each epoch; {turned}, each measured in standard deviations of the examples "
            f"along it (SD units). {window}"
        )

    def __call__(self, epoch: int | None = None) -> DecisionRegions:
        mean, comps, ratio, z, out, nonfinite = self.project(epoch)
        if self.fixed_axes:
            self.xlim, self.ylim = self.hold(self.xlim, z[:, 0]), self.hold(self.ylim, z[:, 1])
        else:
            self.xlim, self.ylim = limits(z[:, 0], self.eps), limits(z[:, 1], self.eps)
        xx, yy, points = grid(self.xlim, self.ylim, self.grid_resolution)
        coords = np.concatenate([points, z])

        def get(a: int, b: int) -> np.ndarray:
            return (mean + coords[a:b] @ comps).reshape((b - a, *self.feature_shape)).astype(self.dtype)

        (head_out,) = run_batches(self.head_fn, len(coords), get, self.head_batch)
        probs = to_probabilities(head_out, self.predictor.squash)
        n_grid = len(points)
        region, _ = classes_and_confidence(probs[n_grid:])
        pred, pconf = classes_and_confidence(to_probabilities(out, self.predictor.squash))
        dims = "×".join(str(d) for d in self.feature_shape)
        what = f"the input to `{self.layer_path}`" if self.use_input else f"the output of `{self.layer}`"
        return self.regions(
            probs[:n_grid],
            xx,
            yy,
            points=z.astype(np.float32),
            labels=self.y,
            predictions=pred,
            point_confidence=pconf,
            point_regions=region,
            xlabel="PCA axis 1 (SD units)",  # fixed: the variance shares change every epoch (the subtitle has them)
            ylabel="PCA axis 2 (SD units)",
            axes=self.axes_text(what, dims, len(z)),
            layer=self.layer,
            mean=mean.astype(np.float32),
            components=comps.astype(np.float32),
            explained_variance_ratio=ratio.astype(np.float32),
            nonfinite=nonfinite,
        )


SLICES: dict[str, type[Slice]] = {s.mode: s for s in (InputSlice, PlaneSlice, EmbeddingSlice)}
