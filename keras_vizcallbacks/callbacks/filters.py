"""FilterGrid: every conv layer's kernels as a grid, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from keras_vizcallbacks import layers as L
from keras_vizcallbacks import render
from keras_vizcallbacks.callbacks._format import fmt_choice, fmt_list
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import conv_kernels
from keras_vizcallbacks.render.views import heatmap_filters, rgb_filters


class FilterGrid(VizCallback):
    """Draw conv kernels (weights) as image grids, tag ``filters/<layer>``.

    The first conv layer, when it has 3 input channels, is drawn as colour
    filters (one shared scale, grey = 0). Other layers are drawn as one block
    per filter of per-input-channel heatmaps on a diverging colormap centred on
    zero (one shared scale per layer). At most ``max_filters`` filters and
    ``max_channels`` input channels are drawn, chosen evenly spaced (first and
    last included) so the same ones are shown at every epoch; the description
    lists them.

    Args:
        log_dir: TensorBoard log directory (the images go to ``<log_dir>/<run_name>``).
        layers: conv layer names or paths (``"base/conv1"`` inside a nested
            model); ``None`` for every conv layer.
        max_filters: filters drawn per layer.
        max_channels: input channels drawn per filter.
        cmap: diverging matplotlib colormap for the heatmaps.
        **options: the options every view takes (``every_n_epochs``, ``run_name``,
            ``on_error``, ...): see `VizCallback`.
    """

    view = "filters"

    def __init__(
        self,
        log_dir: str,
        layers: Sequence[str] | None = None,
        *,
        max_filters: int = 64,
        max_channels: int = 16,
        cmap: str = "RdBu_r",
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if isinstance(layers, str):
            layers = [layers]
        if max_filters < 1 or max_channels < 1:
            raise ValueError("max_filters and max_channels must be >= 1.")
        render.lut(cmap)  # unknown colormap: ValueError now
        self.layers = None if layers is None else list(layers)
        self.max_filters = max_filters
        self.max_channels = max_channels
        self.cmap = cmap
        self._chosen: list[tuple[str, keras.layers.Layer]] = []
        self._first: keras.layers.Layer | None = None

    def prepare(self, model: keras.Model) -> None:
        available = L.conv_layers(model)
        if not available:
            names = fmt_list([f"{p} ({type(layer).__name__})" for p, layer in L.iter_layers(model)])
            raise ValueError(
                f"FilterGrid: model {model.name!r} has no convolution layer (Conv1D/2D/3D, Separable, "
                f"Depthwise, ConvTranspose), so there are no kernels to draw. Its layers: {names}."
            )
        if self.layers is None:
            chosen = available
        else:
            chosen = []
            conv_names = [p for p, _ in available]
            for name in self.layers:
                try:
                    path, layer = L.find_layer(model, name)
                except ValueError as e:
                    raise ValueError(f"FilterGrid: {e} Conv layers available: {conv_names}.") from None
                if not isinstance(layer, L.CONV_TYPES):
                    raise ValueError(
                        f"FilterGrid: layer {path!r} is a {type(layer).__name__}, not a convolution layer. "
                        f"Conv layers available: {conv_names}."
                    )
                chosen.append((path, layer))
        self._chosen = chosen
        self._first = available[0][1]

    def tags(self) -> list[str]:
        return [f"{self.view}/{path}" for path, _ in self._chosen]

    def compute(self, epoch: int) -> list[tuple[str, keras.layers.Layer, Any]]:
        """Training thread: copy the kernels out of the layers."""
        return [(path, layer, conv_kernels(layer)) for path, layer in self._chosen]

    def draw(self, computed: list[tuple[str, keras.layers.Layer, Any]], epoch: int) -> list[Frame]:
        frames = []
        for path, layer, k in computed:
            n_out, n_in = k.shape[:2]
            fi = render.spread(n_out, self.max_filters)
            spatial = "×".join(str(s) for s in k.shape[2:])
            head = f"**{type(layer).__name__} `{path}`**, kernels {spatial}, {n_out} filters × {n_in} input channels."
            if layer is self._first and n_in == 3:
                image, scale = rgb_filters(k[fi])
                how = (
                    "Drawn as colour images (input channels as RGB), one scale for the layer centred on "
                    f"zero: grey = 0, full colour = ±{scale:.3g}."
                )
                shown = f"Filters shown: {fmt_choice(fi, n_out)}."
            else:
                ci = render.spread(n_in, self.max_channels)
                image, scale = heatmap_filters(k[fi][:, ci], cmap=self.cmap)
                how = (
                    f"One block per filter, one tile per input channel, colormap {self.cmap} centred on "
                    f"zero (shared scale for the layer: ±{scale:.3g})."
                )
                shown = f"Filters shown: {fmt_choice(fi, n_out)}; input channels: {fmt_choice(ci, n_in)}."
            extra = (
                " Depthwise part only (the 1×1 pointwise mixing is not drawn)."
                if "Separable" in type(layer).__name__
                else ""
            )
            frames.append(
                Frame(f"{self.view}/{path}", image, f"{head} {how}{extra} {shown} Magenta = NaN/Inf. Step = epoch.")
            )
        return frames
