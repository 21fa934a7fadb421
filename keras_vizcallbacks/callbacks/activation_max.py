"""ActivationMaximization: the input each chosen filter responds to most, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _checks
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.callbacks import _samples
from keras_vizcallbacks.callbacks._format import fmt_list
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import (
    ActivationMaximizer,
    LayerStats,
    check_filters,
    check_input_range,
    choose_filters,
    conv_kernels,
)
from keras_vizcallbacks.render.filter_views import activation_grid, to_display


class ActivationMaximization(VizCallback):
    """Draw, for a few filters of a layer, the input that excites each most; tag
    ``activation_maximization/<layer>``.

    Gradient ascent on the input from faint noise (fixed by ``seed``), all
    chosen filters at once in one compiled function built at train begin (see
    `keras_vizcallbacks.explain.ActivationMaximizer` for the method and its
    regularizers). The filters are chosen once, at the first render, and kept:
    the most active on ``data`` when given, else the largest by weight norm.
    Each tile is labelled with its filter index and the mean pre-activation
    its image reaches. Costs ``steps`` forward and backward passes of a batch
    of ``filters`` images per render, hence ``every_n_epochs=5`` by default.

    Args:
        log_dir: TensorBoard log directory.
        layer: a layer name or nested path with a 2-D spatial output; ``None`` for the last
            conv layer (nested models searched).
        filters: how many filters (chosen as above), or a list of channel indices.
        data: optional inputs (an array, ``(x, y)`` or a dataset; at most ``max_points`` are
            read) to choose the most active filters and, without ``input_range``, the range.
        steps: gradient-ascent steps per render.
        image_size: ``(height, width)`` of the optimized images, only for models whose input
            size is free (fully convolutional).
        input_range: ``(low, high)`` of the model's inputs: the starting noise, the clipping and
            the display. Default: the range of ``data`` when given, else ``(0, 1)``.
        every_n_epochs: render at epochs 0, n, 2n, ... and at the last epoch.
        seed: fixes the starting noise and the jitter (the same every render).
        step_size: RMS change per step, as a fraction of the input range.
        regularization: ``"default"`` (jitter, a smoothed gradient, a light blur), ``"tv"``,
            ``"none"`` or a dict (`keras_vizcallbacks.explain.Regularization`).
        max_points: at most this many examples of ``data`` are used.
        **options: the options every view takes (``run_name``, ``on_error``, ...): see `VizCallback`.
    """

    view = "activation_maximization"

    def __init__(
        self,
        log_dir: str,
        layer: str | None = None,
        filters: int | Sequence[int] = 16,
        data: Any = None,
        steps: int = 30,
        image_size: Sequence[int] | None = None,
        input_range: Sequence[float] | None = None,
        every_n_epochs: int = 5,
        seed: int = 0,
        *,
        step_size: float = 0.05,
        regularization: Any = "default",
        max_points: int = 1000,
        **options: Any,
    ) -> None:
        super().__init__(log_dir, every_n_epochs=every_n_epochs, **options)
        if layer is not None and not isinstance(layer, str):
            raise ValueError(f"layer must be a layer name or path (a string) or None, got {layer!r}.")
        check_filters(filters)
        steps = _checks.integer(steps, "steps")
        if input_range is not None:
            input_range = check_input_range(input_range)
        max_points = _checks.integer(max_points, "max_points")
        self.layer = layer
        self.filters = filters
        self.data = data
        self.steps = steps
        self.image_size = None if image_size is None else tuple(image_size)
        self.input_range = input_range
        self.seed = int(seed)
        self.step_size = step_size
        self.regularization = regularization
        self.max_points = max_points
        self.maximizer: ActivationMaximizer | None = None
        self.chosen: np.ndarray | None = None  # the filters, fixed at the first render
        self.how = ""
        self._x: Any = None
        self._stats: LayerStats | None = None
        self._range_note = ""

    def prepare(self, model: keras.Model) -> None:
        L.check_channels_last_input(model, "ActivationMaximization")  # it draws the optimized inputs (h, w, channels)
        input_range = self.input_range
        self._range_note = "given" if input_range is not None else "default"
        if self.data is not None:
            x, _ = _samples.materialize(self.data, model, limit=self.max_points, name="ActivationMaximization data")
            if isinstance(x, (list, dict)):
                raise ValueError("ActivationMaximization: data must be images for a model with one image input.")
            self._x = np.asarray(x)
            if input_range is None:
                finite = self._x[np.isfinite(self._x)]
                lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
                input_range = (lo, hi) if hi > lo else (lo, lo + 1.0)
                self._range_note = "from the data"
        try:
            self.maximizer = ActivationMaximizer(
                model,
                self.layer,
                steps=self.steps,
                step_size=self.step_size,
                image_size=self.image_size,
                input_range=input_range,
                regularization=self.regularization,
                seed=self.seed,
            )
        except ValueError as e:
            raise ValueError(f"ActivationMaximization: {e}") from None
        check_filters(self.filters, self.maximizer.n_channels)
        if self._x is not None:
            self._stats = LayerStats(model, self.maximizer.path)
        self.chosen = None

    def _choose(self) -> np.ndarray:
        """The filters, chosen at the first render and kept (see the class docstring)."""
        m = self.maximizer
        assert m is not None
        if self.chosen is None:
            activations = kernels = None
            if self._stats is not None and isinstance(self.filters, int):
                activations = self._stats(self._x).mean
            elif isinstance(self.filters, int) and isinstance(m.layer, L.CONV_TYPES):
                kernels = conv_kernels(m.layer)
            self.chosen, self.how = choose_filters(self.filters, m.n_channels, activations=activations, kernels=kernels)
        return self.chosen

    def compute(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Training thread: the gradient ascent for every chosen filter at once."""
        assert self.maximizer is not None
        chosen = self._choose()
        images, scores = self.maximizer.optimize(chosen)
        return chosen, images, scores

    def draw(self, computed: tuple[np.ndarray, np.ndarray, np.ndarray], epoch: int) -> list[Frame]:
        m = self.maximizer
        assert m is not None
        chosen, images, scores = computed
        labels = [(f"#{int(f)}", f"{0.0 if abs(s) < 0.005 else s:.2f}") for f, s in zip(chosen, scores, strict=True)]
        tile_px = 128 if max(images.shape[1:3]) <= 64 else 160
        image = activation_grid(
            to_display(images, m.input_range),
            labels,
            f"activation maximization · {m.path} · epoch {epoch}",
            tile_px=tile_px,
        )
        return [Frame(f"{self.view}/{m.path}", image, self.describe())]

    def describe(self) -> str:
        m = self.maximizer
        assert m is not None
        lo, hi = m.input_range
        return (
            f"**Activation maximization of {type(m.layer).__name__} `{m.path}`**: for each filter, the input "
            f"({m.shape[0]}×{m.shape[1]}×{m.shape[2]}) that excites it most, found by {m.describe()}. "
            f"Filters: {self.how} ({fmt_list(self.chosen.tolist() if self.chosen is not None else [])}), chosen "
            f"at the first render and kept. Each tile is labelled with its filter index and the mean "
            f"pre-activation its image reaches (this epoch). Shown on one fixed scale: [{lo:g}, {hi:g}] "
            f"({self._range_note}) maps to black..white. Step = epoch."
        )
