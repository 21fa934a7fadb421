"""GradCAM: where a conv layer looks for the target class, for fixed samples, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks.callbacks import _signal_views
from keras_vizcallbacks.callbacks._attribution import AttributionView
from keras_vizcallbacks.callbacks.base import Frame
from keras_vizcallbacks.explain import SCORECAM_CHANNELS, GradCAMExplainer, cam_method, check_batch_size
from keras_vizcallbacks.render import header, overlay


class GradCAM(AttributionView):
    """Grad-CAM (or a sibling method) for fixed samples, tag ``grad_cam/<layer>`` (``tag=`` replaces ``grad_cam``).

    Per sample: the input, and the class activation map overlaid on it
    (``cmap`` with ``alpha``), labelled with the true class, the predicted class
    and its probability (green when right, red when wrong). The probe model and
    the compiled gradient function are built once in ``on_train_begin``; the
    fixed sample batch traces once.

    1-D signals (Conv1D models, samples (N, steps, channels)): per sample the signal's channels
    as lines and the map under them as a heat band, placed on the steps by receptive field.
    Other input ranks (Conv3D volumes) are a ValueError at train begin.

    Args:
        log_dir: TensorBoard log directory.
        samples: the inputs: an array, an ``(x, y)`` tuple, or a dataset from which
            the first ``max_samples`` are taken once.
        labels: true classes (integers or one-hot); override ``y`` from ``samples``.
        layer: conv layer name or nested path (``"resnet50/conv5_block3_out"``);
            ``None`` for the last conv layer (or its activation) with a spatial output.
        method: ``"gradcam"``, ``"gradcam++"``, ``"hirescam"``, ``"layercam"`` or ``"scorecam"``
            (`kv.explain.CAM_METHODS`), or a callable ``fn(A, G)`` returning the map before ReLU
            (its ``__name__`` titles the picture).
        target: ``"predicted"`` (default), ``"true"`` (needs labels), a class index, or a callable
            ``score(outputs) -> (N,)`` written with ``keras.ops`` (e.g. ``lambda y: y[:, 0]`` for a
            regression unit); it gets the chosen output inside the differentiated function, and the
            captions show its value.
        class_names: one name per class, for the captions.
        max_samples: at most this many samples.
        image_input: the image input's name or index for multi-input models.
        output: the output explained (its name or index), required for a model with several
            outputs; labels given as a list or dict (one entry per output) follow it.
        cmap: matplotlib colormap of the heatmap; ``alpha`` its opacity.
        batch_size: images per backend call (Score-CAM: masked copies per call); ``None`` derives
            it from the layer shapes, so one call's activations and gradients stay under 256 MiB
            (`kv.explain.MEMORY_BUDGET`), at most 64.
        max_channels: Score-CAM scores the ``max_channels`` most active channels of each image
            (largest mean activation; default 32, `kv.explain.SCORECAM_CHANNELS`); ``None`` scores
            every channel (one forward pass per channel and image). Other methods ignore it.
        **options: the options every view takes (``every_n_epochs``, ``run_name``,
            ``on_error``, ...): see `VizCallback`.
    """

    view = "grad_cam"

    def __init__(
        self,
        log_dir: str,
        samples: Any,
        labels: Any = None,
        layer: str | None = None,
        method: str = "gradcam",
        target: Any = "predicted",
        class_names: Sequence[str] | None = None,
        *,
        max_samples: int = 8,
        image_input: str | int | None = None,
        output: str | int | None = None,
        cmap: str = "jet",
        alpha: float = 0.45,
        batch_size: int | None = None,
        max_channels: int | None = SCORECAM_CHANNELS,
        **options: Any,
    ) -> None:
        batch_size = check_batch_size(batch_size)  # before super(): no side effects on a bad value
        super().__init__(
            log_dir,
            samples,
            labels,
            target=target,
            class_names=class_names,
            max_samples=max_samples,
            image_input=image_input,
            output=output,
            cmap=cmap,
            alpha=alpha,
            **options,
        )
        self.layer = layer
        cam_method(method)  # unknown method: ValueError now
        self.method = method
        self.batch_size = batch_size
        self.max_channels = max_channels
        self.explainer: GradCAMExplainer | None = None

    def prepare(self, model: keras.Model) -> None:
        try:
            self.explainer = GradCAMExplainer(
                model,
                self.layer,
                self.method,
                image_input=self.image_input,
                output=self.output,
                batch_size=self.batch_size,
                max_channels=self.max_channels,
            )
        except ValueError as e:
            raise ValueError(f"GradCAM: {e}") from None
        self._load_samples(model)
        self._check_targets(self.explainer.n_classes)
        self.explainer.prepare_inputs(self.x)  # wrong input structure: ValueError now

    def explainers(self) -> list[Any]:
        return [self.explainer]

    def tags(self) -> list[str]:
        assert self.explainer is not None
        return [f"{self.view}/{self.explainer.path}"]

    def compute(self, epoch: int) -> dict[str, np.ndarray]:
        assert self.explainer is not None
        r = self.explainer.explain(self.x, self._class_index())
        out = {"maps": r.maps, "classes": r.classes, "probabilities": r.probabilities, "raw": r.raw}
        if r.scores is not None:
            out["scores"] = r.scores
        return out

    def draw(self, computed: dict[str, np.ndarray], epoch: int) -> list[Frame]:
        ex = self.explainer
        assert ex is not None
        if ex.rank == 1:  # a 1-D signal: its channels as lines, the map as a heat band under them
            return [_signal_views.grad_cam_frame(self, _signal_views.signals(self), computed, epoch)]
        px = overlay.SAMPLE_PANEL_PX
        images, maps = overlay.shrink_panels(self._display_images(), computed["maps"], px)  # large inputs: tiles
        panels = [images, overlay.overlay(images, maps, self.cmap, self.alpha)]
        peak = [float(np.max(r)) if r.size else 0.0 for r in computed["raw"]]
        captions, correct = self._captions(
            computed["classes"], computed["probabilities"], [f"map max {p:.3g}" for p in peak], computed.get("scores")
        )
        grid = overlay.sample_grid(panels, captions, correct=correct, panel_px=px)
        bar = overlay.colour_bar(grid.shape[1], self.cmap, ("0 (no evidence)", f"map max  (epoch {epoch})"))
        image = header(np.concatenate([grid, bar], axis=0), self._title([ex.title, ex.path], epoch))
        h, w = computed["raw"].shape[1:3]
        geo = ex.geometry
        desc = (
            f"**{ex.title} of {type(ex.layer).__name__} `{ex.path}`** ({h}×{w} cells) for {len(maps)} fixed "
            f"samples: the input, then the map overlaid ({self.cmap}, alpha {self.alpha:g}).\n\n"
            f"- Target: {self._target_text()}{self._score_text()}.\n"
            f"- Placement: cell (r, c) is centred on input pixel {geo.offset[0]:g} + {geo.stride[0]:g}·r, "
            f"{geo.offset[1]:g} + {geo.stride[1]:g}·c (receptive-field centres), bilinear in between.\n"
            f"- Normalization: ReLU, then each map min-max scaled on its own (blue = its minimum, red = its "
            "maximum; an all-zero map stays blue).\n"
            f"- Caption: {self._caption_text()}, and the "
            "map's maximum before scaling (after ReLU), which says how strong the evidence is. Step = epoch."
        )
        d = overlay.shrink_factor(*computed["maps"].shape[1:3], px)
        if d > 1:
            desc += f"\n- Shown at 1/{d} scale: each pixel the mean of {d}×{d} input (and map) pixels."
        if not ex.entry.gradients:
            k = ex.channels
            scored = k if ex.max_channels is None or k is None else min(k, ex.max_channels)
            desc += (
                f"\n- Channels scored: {scored} of the layer's {k} per image (the most active: largest mean "
                "activation; `max_channels`), one masked forward pass each; the others weigh 0."
            )
        return [Frame(f"{self.view}/{ex.path}", image, desc)]
