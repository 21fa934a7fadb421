"""Top-activating examples: for each filter, the inputs (and input patches) that excite it most.

For filter ``f`` of a layer and each example, the filter's *strongest cell* is
the position where the layer's output (after its activation, as the layer
gives it) is largest; its value is the example's activation for ``f``. The
``top_k`` examples with the largest values, largest first (ties: the lower
example index), are the filter's top activations. The input patch of a cell
is its receptive-field window (`layers.geometry`: kernel sizes, strides,
padding and dilation of the layer stack, nested models included, the
geometry Grad-CAM uses to place its maps); near a padded border the pixels
that actually reach the cell (its field) are fewer: the box is the field and
``clipped`` flags the cells where it is smaller than the window.

`top_activations` runs the data through the model in batches and keeps only
per-channel maxima and their positions; `rank_activations` does the same on
layer outputs already computed (a view reading the shared data pass).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain._batches import batch_size_for, run_over
from keras_vizcallbacks.explain.selection import check_filters, filter_layer, most_active


@dataclasses.dataclass
class ChannelStats:
    """Per example and channel: the largest value over positions, its cell, and the mean.

    ``max`` (N, C) float32, ``argmax`` (N, C) int64 flat cell index into ``map_shape``
    (the first largest in row-major order), ``mean`` (N, C) float32.
    """

    max: np.ndarray
    argmax: np.ndarray
    mean: np.ndarray
    map_shape: tuple[int, ...]

    def channel_means(self) -> np.ndarray:
        """Mean activation per channel (C,) over every example and position."""
        return self.mean.mean(axis=0, dtype=np.float64)


def channel_stats(maps: np.ndarray, *, channels_last: bool = True) -> ChannelStats:
    """`ChannelStats` of layer outputs ``maps`` (N, *spatial, C), in numpy. NaN counts as -inf.

    Pass only the channels you rank (``maps[..., chosen]``): the cost is one pass over them."""
    m = np.asarray(maps, dtype=np.float32)
    if not channels_last:
        m = np.moveaxis(m, 1, -1)
    n, spatial, c = m.shape[0], m.shape[1:-1], m.shape[-1]
    flat = np.ascontiguousarray(np.moveaxis(m.reshape(n, -1, c), 1, 2))  # (N, C, cells): reductions on rows
    mean = flat.mean(axis=2, dtype=np.float64).astype(np.float32)
    if not np.isfinite(mean).all():  # NaN somewhere: it must not win the argmax
        flat = np.where(np.isnan(flat), -np.inf, flat)
    arg = flat.argmax(axis=2)
    top = np.take_along_axis(flat, arg[..., None], axis=2)[..., 0]
    return ChannelStats(top, arg.astype(np.int64), mean, spatial)


class LayerStats:
    """`ChannelStats` of one layer over data, in batches of a compiled pass (built once).

    Only the per-channel reductions leave the compiled function, so memory
    stays ``O(examples x channels)`` whatever the layer's size.
    """

    def __init__(self, model: keras.Model, layer: str | None = None, *, batch_size: int | None = None) -> None:
        self.path, self.layer = filter_layer(model, layer, view="top_activations")
        self.model = model
        self.batch_size = batch_size
        self.channels_first = getattr(self.layer, "data_format", "channels_last") == "channels_first"
        probe_model = L.build_probe(model, [self.path]).model
        channels_first = self.channels_first

        def stats(x: Any) -> Any:
            ops = keras.ops
            z = probe_model(x, training=False)
            if isinstance(z, (list, tuple)):
                z = z[0]
            z = ops.cast(z, "float32")
            if channels_first:
                z = ops.moveaxis(z, 1, -1)
            flat = ops.reshape(z, (ops.shape(z)[0], -1, ops.shape(z)[-1]))
            flat = ops.where(ops.isnan(flat), -np.inf, flat)
            return ops.max(flat, axis=1), ops.argmax(flat, axis=1), ops.mean(flat, axis=1)

        self._map_shape: tuple[int, ...] | None = None
        self._probe = probe_model
        self.fn = _backend.compile_function(stats, name="top_activations_stats", state=model)

    def map_shape(self, x: Any) -> tuple[int, ...]:
        spec = self._probe.compute_output_spec(keras.KerasTensor((1, *np.shape(x)[1:]), dtype="float32"))
        shape = tuple(spec[0].shape if isinstance(spec, (list, tuple)) else spec.shape)[1:]
        return tuple(shape[1:]) if self.channels_first else tuple(shape[:-1])

    def __call__(self, x: Any) -> ChannelStats:
        x = np.asarray(x)
        top, arg, mean = run_over(self.fn, x, batch_size_for(x, self.batch_size, self.model))
        return ChannelStats(top.astype(np.float32), arg.astype(np.int64), mean.astype(np.float32), self.map_shape(x))

    def compiled_functions(self) -> list[_backend.TracedFunction]:
        return [self.fn]


@dataclasses.dataclass
class TopActivationResult:
    """The top activations of a few filters: row ``i`` belongs to ``filters[i]``, column ``j`` is
    its ``j``-th strongest example.

    ``indices`` (F, k) example indices; ``values`` (F, k) float32 their activations (the filter's
    largest output over positions); ``cells`` (F, k, 2) the strongest cell (row, column);
    ``windows`` (F, k, 4) its receptive-field window ``[top, left, bottom, right)`` on the input
    (the regular grid, not clipped); ``boxes`` (F, k, 4) its field, the hull of the input pixels
    that reach the cell (the window clipped at the image border and where it reads padding);
    ``clipped`` (F, k) True where the two differ. ``how`` says how the filters were chosen.
    """

    filters: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    cells: np.ndarray
    windows: np.ndarray
    boxes: np.ndarray
    clipped: np.ndarray
    how: str = "the filters given"


def rank_activations(
    stats: ChannelStats,
    filters: Sequence[int],
    top_k: int,
    *,
    geometry: L.Geometry,
    input_size: Sequence[int],
) -> TopActivationResult:
    """The ``top_k`` examples per filter from `ChannelStats`, with their receptive-field windows."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ValueError(f"top_k must be an integer >= 1, got {top_k!r}.")
    filters = np.asarray(filters, dtype=np.int64)
    values = stats.max[:, filters].T  # (F, N)
    k = min(int(top_k), values.shape[1])
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(values, order, axis=1)
    flat = stats.argmax[order, filters[:, None]]  # (F, k)
    cells = np.stack(np.unravel_index(flat, stats.map_shape), axis=-1)
    lo, hi = geometry.windows(cells)
    blo, bhi = geometry.fields(cells)
    if geometry.bounds is None:  # input size unknown to the geometry: clip to this input
        blo, bhi, _ = L.clip_windows(lo, hi, input_size)
    clipped = np.any((blo != lo) | (bhi != hi), axis=-1)
    return TopActivationResult(
        filters=filters,
        indices=order.astype(np.int64),
        values=top.astype(np.float32),
        cells=cells.astype(np.int64),
        windows=np.concatenate([lo, hi], axis=-1),
        boxes=np.concatenate([blo, bhi], axis=-1),
        clipped=clipped,
    )


def cut_patches(images: np.ndarray, result: TopActivationResult) -> tuple[np.ndarray, np.ndarray]:
    """The receptive-field windows of ``result`` cut out of ``images`` (N, H, W, C), each at the
    window's full size: ``(patches (F, k, h, w, C) float32, inside (F, k, h, w) bool)``; only
    the field (``boxes``) is copied: elsewhere (outside the image, or pixels that do not reach
    the cell) the patch is 0 and ``inside`` False."""
    images = np.asarray(images)
    f, k = result.indices.shape
    h, w = (result.windows[0, 0, 2:] - result.windows[0, 0, :2]).tolist() if f and k else (1, 1)
    c = images.shape[-1]
    patches = np.zeros((f, k, h, w, c), np.float32)
    inside = np.zeros((f, k, h, w), bool)
    for i in range(f):
        for j in range(k):
            top, left, bottom, right = result.boxes[i, j].tolist()
            y0, x0 = top - result.windows[i, j, 0], left - result.windows[i, j, 1]
            patches[i, j, y0 : y0 + bottom - top, x0 : x0 + right - left] = images[
                result.indices[i, j], top:bottom, left:right
            ]
            inside[i, j, y0 : y0 + bottom - top, x0 : x0 + right - left] = True
    return patches, inside


def top_activations(
    model: keras.Model,
    x: Any,
    layer: str | None,
    filters: Any,
    *,
    top_k: int = 8,
    batch_size: int | None = None,
) -> TopActivationResult:
    """For each filter of ``layer``, the ``top_k`` examples of ``x`` that excite it most, with the
    receptive-field window of the strongest cell: a `TopActivationResult` (indices, values,
    boxes; see the module docstring).

    ``filters`` is a list of channel indices or a count (the most active on ``x``: the highest
    mean activation). ``layer=None`` is the last conv layer (nested models searched). For a
    notebook; the `TopActivations` view reads the shared data pass instead.
    """
    x = np.asarray(x)
    stats_pass = LayerStats(model, layer, batch_size=batch_size)  # checks the layer first
    if len(model.inputs) != 1 or x.ndim != 4:
        raise ValueError(
            f"top_activations takes a model with one 2-D image input and images (N, H, W, C); got "
            f"{len(model.inputs)} input(s) and data of shape {x.shape}."
        )
    check_filters(filters)
    stats = stats_pass(x)
    n_channels = stats.max.shape[1]
    chosen = check_filters(filters, n_channels)
    if isinstance(chosen, int):
        idx = most_active(stats.mean, min(chosen, n_channels))
        how = f"the {len(idx)} most active of {n_channels} on the data (highest mean activation), most active first"
    else:
        idx, how = np.asarray(chosen, np.int64), "the filters given"
    geometry = L.geometry(model, stats_pass.path, x.shape[1:3])
    result = rank_activations(stats, idx, top_k, geometry=geometry, input_size=x.shape[1:3])
    result.how = how
    return result


__all__ = [
    "ChannelStats",
    "LayerStats",
    "TopActivationResult",
    "channel_stats",
    "cut_patches",
    "rank_activations",
    "top_activations",
]
