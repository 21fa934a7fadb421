"""FeatureMaps: the outputs of conv layers for a few fixed samples, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import layers as L
from keras_vizcallbacks import render
from keras_vizcallbacks.callbacks import _samples, _signal_views
from keras_vizcallbacks.callbacks._format import fmt_list
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import ActivationProbe, most_active, n_outputs
from keras_vizcallbacks.render.views import feature_map_grid

SELECT = ("most_active", "evenly_spaced")


class FeatureMaps(VizCallback):
    """Draw layer outputs for fixed samples, tag ``feature_maps/<layer>``.

    One forward pass per epoch of a probe model (built once, nested models
    supported) feeds every chosen layer. Each picture names itself
    (``feature maps · <layer> · epoch N``); each sample is a row: the input image (as
    tall as its tiles), then ``max_channels`` channels, each tile min-max normalized on
    its own. By default the channels are the most active ones (largest mean activation
    over the samples, `kv.explain.most_active`), chosen once at the first render and
    kept for the run, most active first; a key above the rows gives their indices.

    Args:
        log_dir: TensorBoard log directory.
        samples: the inputs: an array, an ``(x, y)`` tuple, or a
            ``tf.data.Dataset`` from which the first ``max_samples`` are taken once.
        layers: layer names or paths with spatial outputs; ``None`` for every conv layer.
        labels: optional labels (overrides ``y`` from ``samples``), for captions.
        class_names: one name per class, in class-index order, for the captions (labels are class indices).
        max_samples: at most this many samples are drawn.
        max_channels: channels drawn per layer and sample (default 16).
        select: how the channels are chosen, once, at the first render: ``"most_active"``
            (default) or ``"evenly_spaced"`` (first and last included).
        cmap: matplotlib colormap of the tiles.
        **options: the options every view takes (``every_n_epochs``, ``run_name``,
            ``on_error``, ...): see `VizCallback`.
    """

    view = "feature_maps"

    def __init__(
        self,
        log_dir: str,
        samples: Any,
        layers: Sequence[str] | None = None,
        *,
        labels: Any = None,
        class_names: Sequence[str] | None = None,
        max_samples: int = 8,
        max_channels: int = 16,
        select: str = "most_active",
        cmap: str = "viridis",
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if isinstance(layers, str):
            layers = [layers]
        for name, value in (("max_samples", max_samples), ("max_channels", max_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"FeatureMaps: {name} must be an integer >= 1, got {value!r}.")
        if select not in SELECT:
            raise ValueError(
                "FeatureMaps: select must be 'most_active' (the channels with the largest mean activation on the "
                f"samples, chosen at the first render) or 'evenly_spaced', got {select!r}."
            )
        render.lut(cmap)
        self.samples = samples
        self.labels = labels
        self.layers = None if layers is None else list(layers)
        self.class_names = None if class_names is None else list(class_names)
        self.max_samples = max_samples
        self.max_channels = int(max_channels)
        self.select = select
        self.cmap = cmap
        self._channels: dict[str, np.ndarray] = {}  # per layer: the channels shown, chosen at the first render
        self._since: dict[str, int] = {}  # per layer: the epoch of that render
        self._thumbs: np.ndarray | None = None  # the samples as uint8 RGB, converted at the first render
        self.x: Any = None
        self.y: np.ndarray | None = None
        self.probe: ActivationProbe | None = None
        self._layers: list[tuple[str, keras.layers.Layer]] = []

    def prepare(self, model: keras.Model) -> None:
        L.check_channels_last_input(model, "FeatureMaps")  # its input thumbnails read (batch, ..., channels)
        spatial = L.spatial_output_layers(model)
        if self.layers is None:
            chosen = L.conv_layers(model)
            if not chosen:
                raise ValueError(
                    f"FeatureMaps: model {model.name!r} has no convolution layer. Pass layers=[...] with "
                    f"layers that have spatial outputs: {fmt_list([p for p, _ in spatial]) or 'none'}."
                )
        else:
            chosen = []
            names = [p for p, _ in spatial]
            for name in self.layers:
                try:
                    path, layer = L.find_layer(model, name)
                except ValueError as e:
                    raise ValueError(f"FeatureMaps: {e} Layers with spatial outputs: {fmt_list(names, 30)}.") from None
                if path not in names:
                    raise ValueError(
                        f"FeatureMaps: layer {path!r} ({type(layer).__name__}) has no spatial output to draw. "
                        f"Layers with spatial outputs: {fmt_list(names, 30)}."
                    )
                chosen.append((path, layer))
        self.x, self.y = _samples.materialize(
            self.samples, model, labels=self.labels, limit=self.max_samples, name="FeatureMaps samples"
        )
        n_classes = n_outputs(model, infer_shape=True)
        _samples.check_classes("FeatureMaps samples", self.y, n_classes, self.class_names)
        self._layers = chosen
        self._channels, self._since, self._thumbs = {}, {}, None  # a new model: chosen again at its first render
        self.probe = ActivationProbe(model, [p for p, _ in chosen])

    def explainers(self) -> list[Any]:
        return [self.probe]

    def tags(self) -> list[str]:
        return [f"{self.view}/{path}" for path, _ in self._layers]

    def _display_inputs(self) -> np.ndarray | None:
        x = self.x
        if isinstance(x, (list, dict)):
            idx = L.image_input_index(self.model)
            x = list(x.values())[idx] if isinstance(x, dict) else x[idx]
        x = np.asarray(x)
        return x if x.ndim == 4 and x.shape[-1] in (1, 3, 4) else None

    def compute(self, epoch: int) -> dict[str, np.ndarray]:
        """Training thread: one forward pass of the probe model."""
        assert self.probe is not None
        return self.probe(self.x)

    def draw(self, values: dict[str, np.ndarray], epoch: int) -> list[Frame]:
        if self._thumbs is None:
            inputs = self._display_inputs()
            self._thumbs = None if inputs is None else render.to_rgb(inputs, per=1)  # the same samples every epoch
        inputs = self._thumbs
        captions = None
        if self.y is not None:
            names = self.class_names
            captions = [f"#{i}  {names[int(t)] if names else f'class {int(t)}'}" for i, t in enumerate(self.y)]
        frames = []
        for path, layer in self._layers:
            maps = values[path]
            channels_last = getattr(layer, "data_format", "channels_last") != "channels_first"
            if not channels_last:
                maps = np.moveaxis(maps, 1, -1)
            n_ch = maps.shape[-1]
            if path not in self._channels:  # the first render: the channels shown are fixed for the run
                k = min(self.max_channels, n_ch)
                self._channels[path] = (
                    most_active(maps, k) if self.select == "most_active" else render.spread(n_ch, k).astype(np.int64)
                )
                self._since[path] = epoch
            ci = self._channels[path]
            if maps.ndim == 3:  # a 1-D layer: the input signal as lines, one heat row per channel under it
                image = _signal_views.feature_rows(
                    maps[..., ci],
                    _signal_views.signal_inputs(self.model, self.x),
                    captions,
                    [str(i) for i in ci],
                    self.cmap,
                    ["feature maps", path, f"epoch {epoch}"],
                    [self._chosen_text(path, n_ch, short=True), "each row min-max"],
                )
            else:
                image = feature_map_grid(
                    maps[..., ci],
                    inputs,
                    cmap=self.cmap,
                    captions=captions,
                    channel_labels=[str(i) for i in ci],
                    title=["feature maps", path, f"epoch {epoch}"],
                    subtitle=[self._chosen_text(path, n_ch, short=True), "each tile min-max"],
                )
            shape = "×".join(str(s) for s in maps.shape[1:])
            desc = (
                f"**Outputs of {type(layer).__name__} `{path}`** (per sample {shape}) for {len(maps)} fixed "
                f"samples, one row each: the input, then {len(ci)} channels: {self._chosen_text(path, n_ch)}, "
                f"labelled in the key above the rows ({fmt_list(ci.tolist(), 16)}). Each tile is "
                f"min-max normalized on its own ({self.cmap}: dark = low, bright = high; an all-zero "
                "(dead) channel is dark, another constant tile mid-colour; magenta = NaN/Inf). Step = epoch."
            )
            if maps.ndim == 3:
                desc = _signal_views.feature_rows_text(
                    layer, path, shape, len(maps), self._chosen_text(path, n_ch), self.cmap
                )
            frames.append(Frame(f"{self.view}/{path}", image, desc))
        return frames

    def _chosen_text(self, path: str, n_ch: int, short: bool = False) -> str:
        k, since = len(self._channels[path]), self._since[path]
        if self.select == "evenly_spaced":
            return f"{k} of {n_ch} channels, evenly spaced" if k < n_ch else f"all {n_ch} channels"
        if short:
            return f"{k} most active of {n_ch} channels" if k < n_ch else f"all {n_ch} channels, most active first"
        return (
            f"the {k} of {n_ch} with the largest mean activation on these samples at epoch {since} (the first "
            "render), most active first, kept for the run"
        )
