"""FilterGrid: every conv layer's kernels as a grid, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import layers as L
from keras_vizcallbacks import render
from keras_vizcallbacks.callbacks import _signal_views
from keras_vizcallbacks.callbacks._format import fmt_list
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import channel_summary, conv_kernels, largest_norm
from keras_vizcallbacks.render.views import filter_grid

SHOWS = ("weights", "change")
CHANNELS = ("summary", "all")


class FilterGrid(VizCallback):
    """Draw conv kernels as image grids, tag ``filters/<layer>``.

    Each picture names itself (``filters · <layer> · epoch N``) and shows one tile (or block) per
    filter under its index, ordered by the filters' L2 norm (largest first), with a scale bar: one
    colour scale for the layer, centred on zero, whose range is written at its ends.

    * ``show="weights"``: the kernels; ``show="change"``: each kernel minus its value at the first
      rendered epoch (kept in memory from that render; the first frame is all zero).
    * The first conv layer, when it has 3 input channels, is drawn as colour images (input
      channels as RGB, grey = 0). Other layers are summarized per filter
      (``channels="summary"``): the norm-weighted mean over its input channels,
      ``sum_i |K_i| K_i / sum_i |K_i|`` (`kv.explain.channel_summary`), on a diverging colormap;
      ``channels="all"`` draws a block of per-input-channel tiles instead (at most ``max_channels``,
      evenly spaced).
    * The filters shown (at most ``max_filters``) and their order are chosen at the first render,
      by norm, and kept for the run, so every frame shows the same filters in the same place.

    Args:
        log_dir: TensorBoard log directory (the images go to ``<log_dir>/<run_name>``).
        layers: conv layer names or paths (``"base/conv1"`` inside a nested
            model); ``None`` for every conv layer.
        show: ``"weights"`` or ``"change"`` (since the first rendered epoch).
        channels: ``"summary"`` (one tile per filter) or ``"all"`` (one tile per input channel).
        max_filters: filters drawn per layer (those with the largest norm at the first render).
        max_channels: input channels drawn per filter with ``channels="all"``.
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
        show: str = "weights",
        channels: str = "summary",
        max_filters: int = 64,
        max_channels: int = 16,
        cmap: str = "RdBu_r",
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if isinstance(layers, str):
            layers = [layers]
        if show not in SHOWS:
            raise ValueError(
                f"FilterGrid: show must be 'weights' (the kernels) or 'change' (each kernel minus its value at "
                f"the first rendered epoch), got {show!r}."
            )
        if channels not in CHANNELS:
            raise ValueError(
                "FilterGrid: channels must be 'summary' (one tile per filter: the norm-weighted mean over its "
                f"input channels) or 'all' (one tile per input channel), got {channels!r}."
            )
        for name, value in (("max_filters", max_filters), ("max_channels", max_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"FilterGrid: {name} must be an integer >= 1, got {value!r}.")
        render.lut(cmap)  # unknown colormap: ValueError now
        self.layers = None if layers is None else list(layers)
        self.show = show
        self.channels = channels
        self.max_filters = int(max_filters)
        self.max_channels = int(max_channels)
        self.cmap = cmap
        self._chosen: list[tuple[str, keras.layers.Layer]] = []
        self._first: keras.layers.Layer | None = None
        self._order: dict[str, np.ndarray] = {}  # per layer: the filters shown, chosen at the first render
        self._since: dict[str, int] = {}  # per layer: the epoch of the first render
        self._reference: dict[str, np.ndarray] = {}  # per layer: the kernels at the first render ("change")

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
        self._order, self._since, self._reference = {}, {}, {}  # a new model: chosen again at its first render

    def tags(self) -> list[str]:
        return [f"{self.view}/{path}" for path, _ in self._chosen]

    def compute(self, epoch: int) -> list[tuple[str, keras.layers.Layer, Any]]:
        """Training thread: copy the kernels out of the layers."""
        return [(path, layer, conv_kernels(layer)) for path, layer in self._chosen]

    def draw(self, computed: list[tuple[str, keras.layers.Layer, Any]], epoch: int) -> list[Frame]:
        frames = []
        for path, layer, k in computed:
            if path not in self._order:  # the first render: the filters and their order are fixed for the run
                self._order[path] = largest_norm(np.moveaxis(k, 0, -1), self.max_filters)
                self._since[path] = epoch
                if self.show == "change":
                    self._reference[path] = np.array(k, copy=True)
            frames.append(self._frame(path, layer, k, epoch))
        return frames

    def _frame(self, path: str, layer: keras.layers.Layer, k: np.ndarray, epoch: int) -> Frame:
        fi, since = self._order[path], self._since[path]
        n_out, n_in = k.shape[:2]
        shown = k[fi] if self.show == "weights" else k[fi] - self._reference[path][fi]
        rgb = layer is self._first and n_in == 3 and k.ndim != 3
        what = "weights" if self.show == "weights" else f"change since epoch {since}"
        if k.ndim == 3:  # Conv1D: each filter a heat row per input channel (or one summary row)
            how, tiles, _ = _signal_views.kernel_rows(shown, self.channels, self.max_channels, self.cmap)
        elif rgb:
            how, tiles = "RGB = input channels", shown
        elif n_in == 1:
            how, tiles = "one input channel", shown
        elif self.channels == "summary":
            how, tiles = f"norm-weighted mean over {n_in} input channels", channel_summary(shown)
        else:
            ci = render.spread(n_in, self.max_channels)
            how, tiles = f"{len(ci)} of {n_in} input channels per filter", shown[:, ci]
        count = f"all {n_out} filters" if len(fi) == n_out else f"{len(fi)} of {n_out} filters"
        image = filter_grid(
            tiles,
            labels=[str(i) for i in fi],
            rgb=rgb,
            cmap=self.cmap,
            title=["filters", path, f"epoch {epoch}"],
            subtitle=[what, how, f"{count}, by norm"],
            scale_label="(grey)" if rgb else "",
        )
        return Frame(f"{self.view}/{path}", image, self._describe_layer(path, layer, k, rgb))

    def _describe_layer(self, path: str, layer: keras.layers.Layer, k: np.ndarray, rgb: bool) -> str:
        """Only what stays fixed over the run (TensorBoard shows the first step's description at every step);
        the colour range of each epoch is written on the picture's scale bar."""
        fi, since = self._order[path], self._since[path]
        n_out, n_in = k.shape[:2]
        spatial = "×".join(str(s) for s in k.shape[2:])
        what = (
            "the kernels (weights)"
            if self.show == "weights"
            else f"the change of each kernel since epoch {since} (the first rendered epoch; that frame is zero)"
        )
        if k.ndim == 3:
            how = _signal_views.kernel_rows(k[:1], self.channels, self.max_channels, self.cmap)[2]
        elif rgb:
            how = "Each filter is a colour image, its 3 input channels as red, green and blue: grey = 0"
        elif n_in == 1:
            how = f"Each filter is one tile, colormap {self.cmap} (centre = 0)"
        elif self.channels == "summary":
            how = (
                f"Each filter is one tile: the norm-weighted mean of its {n_in} per-input-channel kernels "
                f"(sum_i |K_i| K_i / sum_i |K_i|, so the strongest input channels dominate), colormap {self.cmap} "
                "(centre = 0)"
            )
        else:
            ci = render.spread(n_in, self.max_channels)
            how = (
                f"Each filter is a block of one tile per input channel ({fmt_list(ci.tolist(), 8)}; "
                f"{len(ci)} of {n_in}, evenly spaced), colormap {self.cmap} (centre = 0)"
            )
        extra = (
            " Depthwise part only (the 1×1 pointwise mixing is not drawn)."
            if "Separable" in type(layer).__name__
            else ""
        )
        return (
            f"**{type(layer).__name__} `{path}`**, kernels {spatial}, {n_out} filters × {n_in} input channels: "
            f"{what}. {how}; one colour scale for the layer per epoch, centred on zero, its range written at the "
            f"ends of the scale bar.{extra}\n\n"
            f"Filters shown: {len(fi)} of {n_out}, those with the largest L2 norm at epoch {since} (the first "
            f"render), largest first, kept for the run; each tile is labelled with its filter index "
            f"({fmt_list(fi.tolist(), 16)}). Magenta = NaN/Inf. Step = epoch."
        )
