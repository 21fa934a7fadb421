"""GradCAM: where a conv layer looks for the target class, for fixed samples, per epoch.

Also holds the part shared with `Saliency`: samples,
labels, the target class, class names and the captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import render
from keras_vizcallbacks.callbacks import _samples
from keras_vizcallbacks.callbacks.base import Frame, VizCallback, fmt_list
from keras_vizcallbacks.explain import GradCAMExplainer, cam_method, split_inputs
from keras_vizcallbacks.render import overlay as ov

TARGETS = ("predicted", "true")


class _AttributionView(VizCallback):
    """Samples, labels, target and captions for the gradient views."""

    def __init__(
        self,
        log_dir: str,
        samples: Any,
        labels: Any = None,
        *,
        target: str | int = "predicted",
        class_names: Sequence[str] | None = None,
        max_samples: int = 8,
        image_input: str | int | None = None,
        cmap: str = "jet",
        alpha: float = 0.5,
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if isinstance(target, str):
            if target not in TARGETS:
                raise ValueError(f"target must be 'predicted', 'true' or a class index, got {target!r}.")
        elif isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            raise ValueError(f"target must be 'predicted', 'true' or a class index, got {target!r}.")
        if not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f"max_samples must be an integer >= 1, got {max_samples!r}.")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
        render.lut(cmap)  # unknown colormap: ValueError now
        self.samples = samples
        self.labels = labels
        self.target = target
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.max_samples = max_samples
        self.image_input = image_input
        self.cmap = cmap
        self.alpha = float(alpha)
        self.x: Any = None
        self.y: np.ndarray | None = None

    # ------------------------------------------------------------ preparation
    def _load_samples(self, model: keras.Model) -> None:
        name = type(self).__name__
        self.x, self.y = _samples.materialize(
            self.samples, model, labels=self.labels, limit=self.max_samples, name=f"{name} samples"
        )

    def _check_targets(self, n_classes: int) -> None:
        """ValueError naming the fix for labels, target and class_names that do not fit the model."""
        name = type(self).__name__
        if self.y is not None:
            y = np.asarray(self.y)
            if not np.issubdtype(y.dtype, np.number) or np.any(np.mod(y, 1) != 0):
                raise ValueError(f"{name}: labels must be integer class indices (or one-hot), got {y[:4]!r}.")
            self.y = y.astype(np.int64)
            bad = self.y[(self.y < 0) | (self.y >= n_classes)]
            if bad.size:
                raise ValueError(
                    f"{name}: label {int(bad[0])} is out of range: the model has {n_classes} classes "
                    f"(0..{n_classes - 1})."
                )
        if self.target == "true" and self.y is None:
            raise ValueError(
                f"{name}: target='true' needs the true labels: pass labels=..., or samples as an (x, y) tuple "
                "or a dataset of (x, y); or use target='predicted' or a class index."
            )
        if not isinstance(self.target, str) and not 0 <= int(self.target) < n_classes:
            raise ValueError(
                f"{name}: target class {int(self.target)} is out of range: the model has {n_classes} classes "
                f"(0..{n_classes - 1})."
            )
        if self.class_names is not None and len(self.class_names) != n_classes:
            more = "more" if len(self.class_names) > n_classes else "fewer"
            raise ValueError(
                f"{name}: {len(self.class_names)} class_names ({fmt_list(self.class_names, 6)}) but the model has "
                f"{n_classes} classes ({more} names than outputs); pass one name per class."
            )

    def _class_index(self) -> Any:
        if self.target == "predicted":
            return None
        if self.target == "true":
            return self.y
        return int(self.target)

    def _target_text(self) -> str:
        if self.target == "predicted":
            return "each sample's predicted class"
        if self.target == "true":
            return "each sample's true class"
        return f"class {self._name(int(self.target))}"

    # ------------------------------------------------------------ drawing helpers
    @property
    def _image_index(self) -> int:
        return self.explainer.image_index  # type: ignore[attr-defined]

    def _name(self, k: int) -> str:
        return self.class_names[k] if self.class_names else str(k)

    def _display_images(self) -> np.ndarray:
        x = self.x
        if isinstance(x, (list, dict)):
            _, xs = split_inputs(self.model, x, self._image_index)
            x = xs[self._image_index]
        return render.to_rgb(np.asarray(x, dtype=np.float32), per=1)

    def _captions(self, classes: np.ndarray, probs: np.ndarray) -> tuple[list[list[str]], list[bool | None]]:
        predicted = np.argmax(probs, axis=1)
        captions, correct = [], []
        for i, (cls, pred) in enumerate(zip(classes, predicted, strict=True)):
            lines = [f"#{i}  true: {self._name(int(self.y[i]))}" if self.y is not None else f"#{i}"]
            lines.append(f"pred: {self._name(int(pred))}  p={probs[i, pred]:.2f}")
            if int(cls) != int(pred):
                lines.append(f"map of: {self._name(int(cls))}  p={probs[i, cls]:.2f}")
            captions.append(lines)
            correct.append(None if self.y is None else bool(int(self.y[i]) == int(pred)))
        return captions, correct


class GradCAM(_AttributionView):
    """Grad-CAM (or a sibling method) for fixed samples, tag ``grad_cam/<layer>``.

    Per sample: the input, and the class activation map overlaid on it
    (``cmap`` with ``alpha``), labelled with the true class, the predicted class
    and its probability (green when right, red when wrong). The probe model and
    the compiled gradient function are built once in ``on_train_begin``; the
    fixed sample batch traces once.

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
        target: ``"predicted"`` (default), ``"true"`` (needs labels) or a class index.
        class_names: one name per class, for the captions.
        max_samples: at most this many samples.
        image_input: the image input's name or index for multi-input models.
        cmap: matplotlib colormap of the heatmap; ``alpha`` its opacity.
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
        target: str | int = "predicted",
        class_names: Sequence[str] | None = None,
        *,
        max_samples: int = 8,
        image_input: str | int | None = None,
        cmap: str = "jet",
        alpha: float = 0.45,
        **options: Any,
    ) -> None:
        super().__init__(
            log_dir,
            samples,
            labels,
            target=target,
            class_names=class_names,
            max_samples=max_samples,
            image_input=image_input,
            cmap=cmap,
            alpha=alpha,
            **options,
        )
        self.layer = layer
        cam_method(method)  # unknown method: ValueError now
        self.method = method
        self.explainer: GradCAMExplainer | None = None

    def prepare(self, model: keras.Model) -> None:
        try:
            self.explainer = GradCAMExplainer(model, self.layer, self.method, image_input=self.image_input)
        except ValueError as e:
            raise ValueError(f"GradCAM: {e}") from None
        self._load_samples(model)
        self._check_targets(self.explainer.n_classes)
        self.explainer.prepare_inputs(self.x)  # wrong input structure: ValueError now

    def compute(self, epoch: int) -> dict[str, np.ndarray]:
        assert self.explainer is not None
        r = self.explainer.explain(self.x, self._class_index())
        return {"maps": r.maps, "classes": r.classes, "probabilities": r.probabilities, "raw": r.raw}

    def draw(self, computed: dict[str, np.ndarray], epoch: int) -> list[Frame]:
        ex = self.explainer
        assert ex is not None
        images = self._display_images()
        maps = computed["maps"]
        panels = [images, ov.overlay(images, maps, self.cmap, self.alpha)]
        captions, correct = self._captions(computed["classes"], computed["probabilities"])
        grid = ov.sample_grid(panels, captions, correct=correct)
        bar = ov.colour_bar(grid.shape[1], self.cmap, ("0 (no evidence)", f"map max  (epoch {epoch})"))
        image = np.concatenate([grid, bar], axis=0)
        h, w = computed["raw"].shape[1:3]
        geo = ex.geometry
        peak = [float(np.max(r)) for r in computed["raw"]]
        desc = (
            f"**{ex.title} of {type(ex.layer).__name__} `{ex.path}`** ({h}×{w} cells) for {len(maps)} fixed "
            f"samples: the input, then the map overlaid ({self.cmap}, alpha {self.alpha:g}).\n\n"
            f"- Target: {self._target_text()}; score = the class logit"
            f"{' (pre-' + ex.squash + ')' if ex.squash else ''}.\n"
            f"- Placement: cell (r, c) is centred on input pixel {geo.offset[0]:g} + {geo.stride[0]:g}·r, "
            f"{geo.offset[1]:g} + {geo.stride[1]:g}·c (receptive-field centres), bilinear in between.\n"
            f"- Normalization: ReLU, then each map min-max scaled on its own (blue = its minimum, red = its "
            f"maximum; an all-zero map stays blue). Raw maxima: {fmt_list([f'{p:.3g}' for p in peak], 8)}.\n"
            "- Caption: true class, predicted class and its probability (green = right, red = wrong). "
            "Step = epoch."
        )
        return [Frame(f"{self.view}/{ex.path}", image, desc)]
