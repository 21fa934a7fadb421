"""Saliency: which input pixels the target class's score is most sensitive to, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import render
from keras_vizcallbacks.callbacks import _signal_views
from keras_vizcallbacks.callbacks._attribution import AttributionView
from keras_vizcallbacks.callbacks.base import Frame, Scalar
from keras_vizcallbacks.explain import (
    SALIENCY_REDUCTIONS,
    SaliencyExplainer,
    check_batch_size,
    check_one_output,
    check_rank,
    saliency_method,
    saliency_options,
)
from keras_vizcallbacks.explain.saliency_methods import check_baseline
from keras_vizcallbacks.render import overlay


class Saliency(AttributionView):
    """Input-gradient maps for fixed samples, tag ``saliency/<method>`` (``tag=`` replaces ``saliency``).

    Per sample: the input, the map alone (``cmap``), and the map overlaid on the
    input (``alpha``), labelled with the true class, the predicted class and its
    probability. Each map is scaled on its own from its minimum to its
    ``percentile`` (values above are clipped, so a few extreme pixels do not
    leave the rest black); signed maps (``reduce="sum"``) are centred on zero.
    The compiled gradient functions are built once; SmoothGrad and Integrated
    Gradients evaluate their copies in fixed-size batches (one trace). Methods with
    a completeness check (Integrated Gradients) caption each sample with its gap and
    write the largest as the scalar ``<tag>/completeness_gap``.

    1-D signals (samples (N, steps, channels)): per sample the signal's channels as lines and
    the map under them as a heat band. Other input ranks (Conv3D volumes) are a ValueError at
    train begin. Integer inputs (uint8 then Rescaling) are differentiated as the input cast to float.

    Args:
        log_dir: TensorBoard log directory.
        samples: the inputs: an array, an ``(x, y)`` tuple, or a dataset.
        labels: true classes; override ``y`` from ``samples``.
        method: ``"vanilla"``, ``"smoothgrad"``, ``"integrated_gradients"`` or ``"gradient_x_input"``.
        target: ``"predicted"`` (default), ``"true"`` (needs labels), a class index, or a callable
            ``score(outputs) -> (N,)`` written with ``keras.ops`` (e.g. ``lambda y: y[:, 0]`` for a
            regression unit); it gets the chosen output inside the differentiated function, and the
            captions show its value.
        class_names: one name per class, for the captions.
        reduce: how channels become one map: ``"max_abs"`` (default), ``"mean_abs"``,
            ``"l2"`` or ``"sum"`` (signed, drawn on a diverging colormap).
        method_options: the method's options, e.g. ``{"n_samples": 25, "noise": 0.15}``
            (SmoothGrad) or ``{"steps": 64, "baseline": 0.0}`` (Integrated Gradients).
        percentile: the value drawn at full colour, per map (``None``: the maximum).
        max_samples: at most this many samples.
        image_input: the image input's name or index for multi-input models.
        output: the output explained (its name or index), required for a model with several
            outputs; labels given as a list or dict (one entry per output) follow it.
        cmap: colormap (default ``"inferno"``, ``"RdBu_r"`` for ``reduce="sum"``); ``alpha``
            the overlay's opacity.
        batch_size: images per gradient call (the samples, and SmoothGrad's / Integrated Gradients'
            copies); ``None`` derives it from the layer shapes, so one call's activations and gradients
            stay under 256 MiB (`kv.explain.MEMORY_BUDGET`), at most 64.
        **options: the options every view takes (``every_n_epochs``, ``run_name``,
            ``on_error``, ...): see `VizCallback`.
    """

    view = "saliency"

    def __init__(
        self,
        log_dir: str,
        samples: Any,
        labels: Any = None,
        method: str = "vanilla",
        target: Any = "predicted",
        class_names: Sequence[str] | None = None,
        *,
        reduce: str = "max_abs",
        method_options: dict[str, Any] | None = None,
        percentile: float | None = 99.0,
        max_samples: int = 8,
        image_input: str | int | None = None,
        output: str | int | None = None,
        cmap: str | None = None,
        alpha: float = 0.6,
        batch_size: int | None = None,
        **options: Any,
    ) -> None:
        batch_size = check_batch_size(batch_size)
        if reduce not in SALIENCY_REDUCTIONS or reduce is None:
            raise ValueError(f"reduce must be one of {[r for r in SALIENCY_REDUCTIONS if r]}, got {reduce!r}.")
        signed = reduce == "sum"
        super().__init__(
            log_dir,
            samples,
            labels,
            target=target,
            class_names=class_names,
            max_samples=max_samples,
            image_input=image_input,
            output=output,
            cmap=cmap or ("RdBu_r" if signed else "inferno"),
            alpha=alpha,
            **options,
        )
        self.method = saliency_method(method).name
        self.method_options = saliency_options(method, dict(method_options or {}))
        if percentile is not None and not 0 < float(percentile) <= 100:
            raise ValueError(f"percentile must be in (0, 100] or None, got {percentile!r}.")
        self.percentile = percentile
        self.reduce = reduce
        self.signed = signed
        self.batch_size = batch_size
        self.explainer: SaliencyExplainer | None = None
        self._rank = 2  # spatial axes of the samples: 2 (images) or 1 (signals), known in prepare

    def prepare(self, model: keras.Model) -> None:
        try:
            self.explainer = SaliencyExplainer(
                model,
                self.method,
                image_input=self.image_input,
                output=self.output,
                batch_size=self.batch_size,
                **self.method_options,
            )
        except ValueError as e:
            raise ValueError(f"Saliency: {e}") from None
        self._load_samples(model)
        check_one_output(model, self.x, self.output, "Saliency")  # a subclassed model returning several
        image = self.explainer.prepare_inputs(self.x)[self.explainer.image_index]  # wrong structure: ValueError now
        self._rank = check_rank(np.shape(image), "Saliency", "its image input (the samples)")  # 2-D or 1-D only
        if "baseline" in self.explainer.options:  # a baseline of the wrong shape: ValueError now, not at epoch end
            try:
                check_baseline(self.explainer.options["baseline"], np.shape(image))
            except ValueError as e:
                raise ValueError(f"Saliency: {e}") from None
        if self.custom_target:
            self._check_targets(None)
        else:
            self._check_targets(self.explainer.count_classes(self.x))  # a subclassed model is asked once

    def _display_images(self) -> np.ndarray:
        x = self.explainer.prepare_inputs(self.x)[self.explainer.image_index]  # type: ignore[union-attr]
        return render.to_rgb(np.asarray(x, dtype=np.float32), per=1)

    def explainers(self) -> list[Any]:
        return [self.explainer]

    def tags(self) -> list[str]:
        return [f"{self.view}/{self.method}"]

    def compute(self, epoch: int) -> dict[str, np.ndarray]:
        assert self.explainer is not None
        r = self.explainer.explain(self.x, self._class_index(), reduce=self.reduce)
        out = {"maps": r.maps, "classes": r.classes, "probabilities": r.probabilities}
        if r.scores is not None:
            out["scores"] = r.scores
        if r.delta is not None:
            out["delta"] = r.delta
        return out

    def draw(self, computed: dict[str, np.ndarray], epoch: int) -> list[Frame | Scalar]:
        ex = self.explainer
        assert ex is not None
        if self._rank == 1:  # a 1-D signal: its channels as lines, the map as a heat band under them
            return _signal_views.saliency_frames(self, _signal_views.signals(self), computed, epoch)
        px = overlay.SAMPLE_PANEL_PX
        images, maps = overlay.shrink_panels(self._display_images(), computed["maps"], px)  # large inputs: tiles
        kw = {"symmetric": self.signed, "percentile": self.percentile}
        panels = [
            images,
            overlay.attribution_image(maps, self.cmap, **kw),
            overlay.overlay(images, maps, self.cmap, self.alpha, **kw),
        ]
        gaps = np.abs(computed["delta"]).reshape(len(maps), -1).max(axis=1) if "delta" in computed else None
        extra = None if gaps is None else [f"gap {g:.2g}" for g in gaps]
        captions, correct = self._captions(
            computed["classes"], computed["probabilities"], extra, computed.get("scores")
        )
        grid = overlay.sample_grid(panels, captions, correct=correct, panel_px=px)
        pct = self.percentile
        top_label = "max" if pct is None else f"p{pct:g}"
        ends = ("-" + top_label, "+" + top_label) if self.signed else ("min", top_label)
        bar = overlay.colour_bar(grid.shape[1], self.cmap, (ends[0], f"{ends[1]}  (epoch {epoch})"))
        image = render.header(np.concatenate([grid, bar], axis=0), self._title(["saliency", ex.title], epoch))
        opts = ", ".join(f"{k}={v!r}" for k, v in self.method_options.items() if not isinstance(v, np.ndarray))
        top = "its maximum" if pct is None else f"its {pct:g}th percentile (clipped above)"
        if self.signed:
            scale = "centred on zero, ±" + ("max |value|" if pct is None else f"the {pct:g}th percentile of |value|")
        else:
            scale = f"from its minimum to {top}"
        desc = (
            f"**{ex.title}** ({self.method}{', ' + opts if opts else ''}; channels reduced by `{self.reduce}`) "
            f"for {len(maps)} fixed samples: the input, the map ({self.cmap}), the map overlaid (alpha "
            f"{self.alpha:g}).\n\n"
            f"- Target: {self._target_text()}{self._score_text(ex.differentiates)}, differentiated w.r.t. the "
            "input pixels.\n"
            f"- Normalization: each map on its own, {scale}.\n"
        )
        d = overlay.shrink_factor(*computed["maps"].shape[1:3], px)
        if d > 1:
            desc += f"- Shown at 1/{d} scale: each pixel the mean of {d}×{d} input (and map) pixels.\n"
        tag = f"{self.view}/{self.method}"
        desc += f"- Caption: {self._caption_text()}"
        return self._frames_with_gap(tag, image, desc, gaps, len(maps))
