"""TopActivations: for a few filters of a layer, the data (or input patches) that excite each most, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _checks, render
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.callbacks import _samples
from keras_vizcallbacks.callbacks._format import fmt_list
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import (
    SharedView,
    TopActivationResult,
    batch_size_for,
    channel_stats,
    check_filters,
    check_input_range,
    choose_filters,
    cut_patches,
    filter_layer,
    rank_activations,
    shared_pass,
    take_index,
)
from keras_vizcallbacks.render.filter_views import draw_boxes, fit, hatch, rows_grid, to_display


class TopActivations(VizCallback):
    """Draw, for a few filters of a layer, the ``top_k`` examples of fixed data that excite each
    most; tag ``top_activations/<layer>``.

    One row per filter, strongest example first. A filter's activation on an
    example is its largest output over positions (after the layer's
    activation). With ``patches=True`` each tile is the input patch under the
    receptive field of that strongest cell (from the layer stack's kernels,
    strides, padding and dilation; the geometry Grad-CAM uses); a window that
    reaches past the image border is drawn at full size with the part outside
    the image striped. With ``patches=False`` each tile is the whole image with
    the window outlined. The filters are chosen once, at the first render (the
    most active on the data, or the ones given), and kept.

    The data pass is shared with ConfusionMatrix, DecisionBoundary and the
    other views that read the same model and data (one forward pass per
    epoch); it holds the layer's outputs for every example
    (``max_points`` × the layer's output size).

    Args:
        log_dir: TensorBoard log directory.
        data: images (an array, an ``(x, y)`` tuple or a dataset); at most ``max_points`` are
            kept (evenly spaced from arrays, the first from a dataset), fixed for the run.
        layer: a layer name or nested path with a 2-D spatial output; ``None`` for the last
            conv layer (nested models searched).
        filters: how many filters (the most active on the data), or a list of channel indices.
        top_k: examples per filter.
        patches: draw receptive-field patches (True) or whole images with the window outlined.
        max_points: at most this many examples.
        input_range: ``(low, high)`` shown as black..white; default: the data's range.
        batch_size: rows per compiled call of the data pass (default: about 2**21 input values, fewer when
            a layer's output for the batch would exceed 32 MiB).
        **options: the options every view takes (``every_n_epochs``, ``run_name``, ...).
    """

    view = "top_activations"

    def __init__(
        self,
        log_dir: str,
        data: Any,
        layer: str | None = None,
        filters: int | Sequence[int] = 16,
        top_k: int = 8,
        patches: bool = True,
        max_points: int = 1000,
        *,
        input_range: Sequence[float] | None = None,
        batch_size: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if data is None:
            raise ValueError("TopActivations needs data: images (an array, an (x, y) tuple or a dataset).")
        if layer is not None and not isinstance(layer, str):
            raise ValueError(f"layer must be a layer name or path (a string) or None, got {layer!r}.")
        check_filters(filters)
        top_k = _checks.integer(top_k, "top_k")
        max_points = _checks.integer(max_points, "max_points")
        if input_range is not None:
            input_range = check_input_range(input_range)
        self.data = data
        self.layer = layer
        self.filters = filters
        self.top_k = top_k
        self.patches = bool(patches)
        self.max_points = max_points
        self.input_range = input_range
        self.batch_size = _checks.optional_integer(batch_size, "batch_size")
        self.path = ""
        self.shared: SharedView | None = None
        self.chosen: np.ndarray | None = None
        self.how = ""
        self.x: np.ndarray | None = None
        self._data_note = ""
        self._layer: keras.layers.Layer | None = None
        self._geometry: L.Geometry | None = None
        self._channels_first = False
        self._range = (0.0, 1.0)

    def prepare(self, model: keras.Model) -> None:
        name = "TopActivations data"
        L.check_channels_last_input(model, "TopActivations")  # its patches are cut from (batch, h, w, channels)
        try:
            self.path, self._layer = filter_layer(model, self.layer, view="TopActivations")
        except ValueError as e:
            raise ValueError(str(e)) from None
        if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
            raise ValueError(
                f"TopActivations: model {model.name!r} must have one 2-D image input (batch, height, width, "
                f"channels); its inputs are {[tuple(t.shape) for t in model.inputs]}."
            )
        is_stream = _samples._is_dataset(self.data) or not isinstance(self.data, (tuple, list, dict, np.ndarray))
        x, _ = _samples.materialize(self.data, model, limit=self.max_points if is_stream else None, name=name)
        x = np.asarray(x)
        n = len(x)
        if n > self.max_points:
            x = take_index(x, render.spread(n, self.max_points))
            self._data_note = f"{len(x)} of {n} examples (evenly spaced)"
        else:
            self._data_note = f"{n} fixed examples"
        self.x = x
        self._channels_first = getattr(self._layer, "data_format", "channels_last") == "channels_first"
        spec = L.build_probe(model, [self.path]).model.compute_output_spec(
            keras.KerasTensor((1, *x.shape[1:]), dtype="float32")
        )
        shape = tuple((spec[0] if isinstance(spec, (list, tuple)) else spec).shape)
        n_channels = int(shape[1] if self._channels_first else shape[-1])
        check_filters(self.filters, n_channels)
        self._geometry = L.geometry(model, self.path, x.shape[1:3])
        finite = x[np.isfinite(x)]
        if self.input_range is not None:
            self._range = self.input_range
        elif finite.size and float(finite.max()) > float(finite.min()):
            self._range = (float(finite.min()), float(finite.max()))
        self.shared = shared_pass(model, x, paths=[self.path], batch_size=batch_size_for(x, self.batch_size, model))
        self.chosen = None

    def compute(self, epoch: int) -> tuple[TopActivationResult, np.ndarray]:
        """Training thread: the shared data pass, the ranking and the tiles' pixels (numpy)."""
        assert self.shared is not None and self.x is not None and self._geometry is not None
        maps = self.shared.outputs(epoch)[self.path]
        if self._channels_first:
            maps = np.moveaxis(maps, 1, -1)
        if self.chosen is None:
            self.chosen, self.how = choose_filters(self.filters, maps.shape[-1], activations=maps)
        stats = channel_stats(maps[..., self.chosen])  # only the chosen channels: one pass over them
        result = rank_activations(
            stats, np.arange(len(self.chosen)), self.top_k, geometry=self._geometry, input_size=self.x.shape[1:3]
        )
        result.filters = self.chosen
        result.how = self.how
        if self.patches:
            patches, inside = cut_patches(self.x, result)
            return result, (patches, inside)
        return result, self.x[result.indices]

    def draw(self, computed: tuple[TopActivationResult, Any], epoch: int) -> list[Frame]:
        result, pixels = computed
        if self.patches:
            patches, inside = pixels
            tiles = to_display(patches.reshape(-1, *patches.shape[2:]), self._range)
            side = max(patches.shape[2:4])
            target = min(96, max(48, side * 4))
            tiles = fit(tiles, target)
            mask = fit(inside.reshape(-1, *inside.shape[2:], 1), target)[..., 0]
            tiles = hatch(tiles, mask)
            tiles = tiles.reshape(*patches.shape[:2], *tiles.shape[1:])
        else:
            images = pixels
            tiles = to_display(images.reshape(-1, *images.shape[2:]), self._range)
            side = max(images.shape[2:4])
            target = min(96, max(48, side * 2))
            scaled = fit(tiles, target)
            factor = scaled.shape[1] / tiles.shape[1]
            boxes = np.rint(result.boxes.reshape(-1, 4) * factor).astype(np.int64)
            tiles = draw_boxes(scaled, boxes, width=max(1, round(factor)))
            tiles = tiles.reshape(*images.shape[:2], *tiles.shape[1:])
        labels = [(f"#{int(f)}", f"{row[0]:.3g}" if len(row) else "") for f, row in zip(result.filters, result.values)]
        image = rows_grid(tiles, labels, f"top activations · {self.path} · epoch {epoch}")
        return [Frame(f"{self.view}/{self.path}", image, self.describe())]

    def describe(self) -> str:
        geo = self._geometry
        size = "×".join(str(int(s)) for s in geo.size) if geo is not None else "?"
        what = (
            f"the input patch under the receptive field ({size} px) of the filter's strongest cell; a window "
            "that reaches past the image border is drawn at full size, the part outside the image striped"
            if self.patches
            else f"the whole image, the receptive field ({size} px) of the filter's strongest cell outlined"
        )
        lo, hi = self._range
        return (
            f"**Top activations of {type(self._layer).__name__} `{self.path}`** on {self._data_note}: one row "
            f"per filter, its {self.top_k} strongest examples left to right (an example's activation is the "
            f"filter's largest output over positions). Each tile is {what}. Row labels: filter index and the "
            f"strongest activation this epoch. Filters: {self.how} "
            f"({fmt_list(self.chosen.tolist() if self.chosen is not None else [])}), chosen at the first render "
            f"and kept. Pixels on one scale, [{lo:g}, {hi:g}] = black..white. Step = epoch."
        )
