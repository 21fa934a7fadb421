"""FeatureMaps: the outputs of conv layers for a few fixed samples, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import layers as L
from keras_vizcallbacks import render
from keras_vizcallbacks.callbacks import _samples
from keras_vizcallbacks.callbacks._format import fmt_choice, fmt_list
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import ActivationProbe, n_outputs
from keras_vizcallbacks.render.views import feature_map_grid


class FeatureMaps(VizCallback):
    """Draw layer outputs for fixed samples, tag ``feature_maps/<layer>``.

    One forward pass per epoch of a probe model (built once, nested models
    supported) feeds every chosen layer. Each sample is a block: the input image,
    then up to ``max_channels`` channels (evenly spaced, the same every epoch),
    each tile min-max normalized on its own.

    Args:
        log_dir: TensorBoard log directory.
        samples: the inputs: an array, an ``(x, y)`` tuple, or a
            ``tf.data.Dataset`` from which the first ``max_samples`` are taken once.
        layers: layer names or paths with spatial outputs; ``None`` for every conv layer.
        labels: optional labels (overrides ``y`` from ``samples``), for captions.
        class_names: one name per class, in class-index order, for the captions (labels are class indices).
        max_samples: at most this many samples are drawn.
        max_channels: channels drawn per layer and sample.
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
        max_channels: int = 32,
        cmap: str = "viridis",
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if isinstance(layers, str):
            layers = [layers]
        if max_samples < 1 or max_channels < 1:
            raise ValueError("max_samples and max_channels must be >= 1.")
        render.lut(cmap)
        self.samples = samples
        self.labels = labels
        self.layers = None if layers is None else list(layers)
        self.class_names = None if class_names is None else list(class_names)
        self.max_samples = max_samples
        self.max_channels = max_channels
        self.cmap = cmap
        self.x: Any = None
        self.y: np.ndarray | None = None
        self.probe: ActivationProbe | None = None
        self._layers: list[tuple[str, keras.layers.Layer]] = []

    def prepare(self, model: keras.Model) -> None:
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
        inputs = self._display_inputs()
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
            ci = render.spread(maps.shape[-1], self.max_channels)
            image = feature_map_grid(maps[..., ci], inputs, cmap=self.cmap, captions=captions)
            shape = "×".join(str(s) for s in maps.shape[1:])
            desc = (
                f"**Outputs of {type(layer).__name__} `{path}`** (per sample {shape}) for {len(maps)} fixed "
                f"samples, one block each (row-major): the input, then channels "
                f"({fmt_choice(ci, maps.shape[-1])}). Each tile is "
                f"min-max normalized on its own ({self.cmap}: dark = low, bright = high; an all-zero "
                "(dead) channel is dark, another constant tile mid-colour; magenta = NaN/Inf). Step = epoch."
            )
            frames.append(Frame(f"{self.view}/{path}", image, desc))
        return frames
