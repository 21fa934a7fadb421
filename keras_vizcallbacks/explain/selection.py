"""Which layer and which channels (filters) a view shows: chosen once, at the first render, and kept.

Views that show a few channels of a layer (activation maximization, top
activations, feature maps) pick them here, so frames of different epochs show
the same filters and compare:

* `most_active`: the channels with the highest mean activation on data;
* `largest_norm`: the filters with the largest weight (kernel) norm, when there is no data;
* `choose_filters`: a count or a list of indices -> ``(indices, how)``, ``how``
  a sentence for the view's description;
* `filter_layer`: the layer, by name or nested path, or the last conv layer.

All return channel indices (int64), strongest first; ties keep the lower index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import layers as L


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"the number of channels to choose must be an integer >= 1, got {k!r}.")
    return int(k)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest finite scores, largest first (stable: ties keep the lower index)."""
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    return np.argsort(-scores, kind="stable")[:k].astype(np.int64)


def channel_means(activations: np.ndarray, *, channels_last: bool = True) -> np.ndarray:
    """Mean activation per channel (C,) over every example and position, in float64."""
    a = np.asarray(activations)
    if not channels_last:
        a = np.moveaxis(a, 1, -1)
    return a.reshape(-1, a.shape[-1]).mean(axis=0, dtype=np.float64)


def most_active(activations: np.ndarray, k: int, *, channels_last: bool = True) -> np.ndarray:
    """The ``k`` channels of ``activations`` (N, *spatial, C) with the highest mean activation
    (over examples and positions), most active first."""
    return _top(channel_means(activations, channels_last=channels_last), _check_k(k))


def kernel_norms(kernels: np.ndarray) -> np.ndarray:
    """L2 norm per filter (out,) of ``kernels`` (out, in, *spatial) (`conv_kernels`' layout)."""
    k = np.asarray(kernels, dtype=np.float64)
    return np.sqrt(np.sum(k.reshape(len(k), -1) ** 2, axis=1))


def largest_norm(kernels: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` output filters (last axis, Keras' kernel layout ``(*kernel_size, in, out)``) of
    ``kernels`` with the largest L2 norm over every other axis, largest first."""
    w = np.asarray(kernels)
    if w.ndim < 1 or w.shape[-1] == 0:
        raise ValueError(f"kernels need an output-filter axis (the last), got shape {w.shape}.")
    return _top(kernel_norms(np.moveaxis(w, -1, 0)), _check_k(k))


def check_filters(filters: Any, n_channels: int | None = None, *, name: str = "filters") -> int | list[int]:
    """``filters`` as given to a view: a count (int >= 1) or a list of distinct channel indices
    (each in ``[0, n_channels)`` when ``n_channels`` is known). Returns it normalized; ValueError else."""
    if isinstance(filters, bool):
        raise ValueError(f"{name} must be a count (int >= 1) or a list of channel indices, got {filters!r}.")
    if isinstance(filters, (int, np.integer)):
        if filters < 1:
            raise ValueError(f"{name} must be a count >= 1 or a list of channel indices, got {filters!r}.")
        return int(filters)
    if isinstance(filters, (str, bytes)) or not isinstance(filters, (Sequence, np.ndarray)):
        raise ValueError(f"{name} must be a count (int >= 1) or a list of channel indices, got {filters!r}.")
    items = list(np.asarray(filters).reshape(-1).tolist()) if isinstance(filters, np.ndarray) else list(filters)
    if not items:
        raise ValueError(f"{name} is an empty list; pass at least one channel index (or a count).")
    if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in items):
        raise ValueError(f"{name} must hold integer channel indices, got {items!r}.")
    items = [int(i) for i in items]
    if len(set(items)) != len(items):
        twice = sorted({i for i in items if items.count(i) > 1})
        raise ValueError(f"{name} lists channels more than once: {twice[:12]}; pass each index once.")
    if n_channels is not None:
        bad = [i for i in items if not 0 <= i < n_channels]
        if bad:
            raise ValueError(
                f"{name} {bad[:12]} out of range: the layer has {n_channels} channels (indices 0..{n_channels - 1})."
            )
    return items


def choose_filters(
    filters: Any,
    n_channels: int,
    *,
    activations: np.ndarray | None = None,
    kernels: np.ndarray | None = None,
    channels_last: bool = True,
) -> tuple[np.ndarray, str]:
    """The channels a view shows and how they were chosen: ``(indices, how)``.

    ``filters`` is a list of indices (kept as given) or a count: with
    ``activations`` (N, *spatial, C) the most active channels on them, else
    with ``kernels`` (out, in, *spatial) the largest by weight norm, else
    evenly spaced channels (first and last included). A count above
    ``n_channels`` takes them all. ``how`` says which, for a description.
    """
    filters = check_filters(filters, n_channels)
    if not isinstance(filters, int):
        return np.asarray(filters, dtype=np.int64), "the filters given"
    k = min(filters, n_channels)
    if activations is not None:
        return most_active(activations, k, channels_last=channels_last), (
            f"the {k} most active of {n_channels} on the data (highest mean activation), most active first"
        )
    if kernels is not None:
        return _top(kernel_norms(kernels), k), f"the {k} of {n_channels} with the largest weight norm, largest first"
    if k == n_channels:
        return np.arange(n_channels, dtype=np.int64), f"all {n_channels}"
    idx = np.unique(np.round(np.linspace(0, n_channels - 1, k)).astype(np.int64))
    return idx, f"{len(idx)} of {n_channels}, evenly spaced"


def filter_layer(model: keras.Model, layer: str | None, *, view: str = "activation_maximization") -> tuple[str, Any]:
    """``(path, layer)`` of a layer with a 2-D spatial output: ``layer`` by name or nested path,
    or the last conv layer (nested models searched). ValueError naming the conv layers otherwise."""
    L.require_graph(model)
    convs = [p for p, _ in L.conv_layers(model)]
    if layer is None:
        if not convs:
            spatial = [p for p, _ in L.spatial_output_layers(model)]
            raise ValueError(
                f"{view}: model {model.name!r} has no convolution layer; pass layer=<name> with a layer "
                f"that has a spatial output: {spatial or 'none'}."
            )
        path, found = L.conv_layers(model)[-1]
    else:
        try:
            path, found = L.find_layer(model, layer)
        except ValueError as e:
            raise ValueError(f"{view}: {e} Conv layers: {convs}.") from None
    if L.is_model(found) or isinstance(found, keras.layers.InputLayer):
        raise ValueError(f"{view}: {path!r} is a {type(found).__name__}; pick a layer inside it. Conv layers: {convs}.")
    try:
        rank = len(found.output.shape)
    except Exception:  # called more than once: ask the replayed graph
        rank = len(L.build_probe(model, [path]).model.outputs[0].shape)
    if rank == 3:
        raise ValueError(
            f"{view}: layer {path!r} has a 1-D output (batch, steps, channels); this view supports 2-D "
            "layers (batch, height, width, channels) only for now."
        )
    if rank != 4:
        raise ValueError(
            f"{view}: layer {path!r} ({type(found).__name__}) has no 2-D spatial output (rank {rank}); "
            f"pick a layer with one, e.g. a conv layer: {convs}."
        )
    return path, found


__all__ = [
    "channel_means",
    "check_filters",
    "choose_filters",
    "filter_layer",
    "kernel_norms",
    "largest_norm",
    "most_active",
]
