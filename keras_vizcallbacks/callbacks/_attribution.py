"""What the gradient views (`GradCAM`, `Saliency`) share: samples, labels, the target class,
class names and the captions. Both views import it; neither imports the other."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _checks, render
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.callbacks._samples import check_classes, materialize
from keras_vizcallbacks.callbacks.base import Frame, Scalar, VizCallback
from keras_vizcallbacks.explain import (
    check_classifier,
    check_score_function,
    is_score_function,
    score_name,
    split_inputs,
)

TARGETS = ("predicted", "true")
TARGET_HELP = "'predicted', 'true', a class index or a callable score(outputs) -> (N,)"


class AttributionView(VizCallback):
    """Samples, labels, target and captions for the gradient views (`GradCAM`, `Saliency`)."""

    def __init__(
        self,
        log_dir: str,
        samples: Any,
        labels: Any = None,
        *,
        target: Any = "predicted",
        class_names: Sequence[str] | None = None,
        max_samples: int = 8,
        image_input: str | int | None = None,
        cmap: str = "jet",
        alpha: float = 0.5,
        output: str | int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if isinstance(target, str):
            if target not in TARGETS:
                raise ValueError(f"target must be {TARGET_HELP}, got {target!r}.")
        elif is_score_function(target):
            pass
        elif isinstance(target, bool) or not isinstance(target, (int, np.integer)):
            raise ValueError(f"target must be {TARGET_HELP}, got {target!r}.")
        if isinstance(output, bool) or not (output is None or isinstance(output, (str, int, np.integer))):
            raise ValueError(f"output must be None, an output name or an output index, got {output!r}.")
        max_samples = _checks.integer(max_samples, "max_samples")
        if not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
        render.lut(cmap)  # unknown colormap: ValueError now
        self.samples = samples
        self.labels = labels
        self.target = target
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.max_samples = max_samples
        self.image_input = image_input
        self.output = output
        self.cmap = cmap
        self.alpha = float(alpha)
        self.x: Any = None
        self.y: np.ndarray | None = None

    # ------------------------------------------------------------ preparation
    @property
    def custom_target(self) -> bool:
        """True when ``target`` is a callable score (captions show its value, not a class)."""
        return is_score_function(self.target)

    def _load_samples(self, model: keras.Model) -> None:
        name = type(self).__name__
        L.check_channels_last_input(model, name)  # a channels-first input would be drawn with its axes swapped
        self.x, self.y = materialize(
            self.samples,
            model,
            labels=self.labels,
            limit=self.max_samples,
            name=f"{name} samples",
            output=self.explainer.output,  # type: ignore[attr-defined]
            output_alias=self.output,
        )

    def _check_targets(self, n_classes: int | None) -> None:
        """ValueError naming the fix for labels, target and class_names that do not fit the model."""
        name = type(self).__name__
        if self.custom_target:  # a score, not a class: labels are only shown
            shape = getattr(self.explainer, "output_shape", None)
            if shape is not None:
                check_score_function(self.target, shape, name)
            return
        if len(getattr(self.explainer.model, "outputs", None) or []) > 1:
            try:
                check_classifier(self.explainer.model, self.explainer.output, name)  # type: ignore[attr-defined]
            except ValueError as e:
                raise ValueError(f"{e} For a regression output pass a callable target=score(outputs).") from None
        n_classes = check_classes(name, self.y, n_classes, self.class_names)
        if self.y is not None:
            self.y = np.asarray(self.y).astype(np.int64)
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

    def _class_index(self) -> Any:
        if self.custom_target:
            return self.target
        if self.target == "predicted":
            return None
        if self.target == "true":
            return self.y
        return int(self.target)

    def _output_text(self) -> str:
        """`` of output 'name'`` for a multi-output model, else empty."""
        ex = self.explainer  # type: ignore[attr-defined]
        if len(getattr(self.explainer.model, "outputs", None) or []) > 1 and getattr(ex, "output_name", None):
            return f" of output {ex.output} `{ex.output_name}`"
        return ""

    def _title(self, parts: list[str], epoch: int) -> list[str]:
        """The header's parts: the view's, then the output of a multi-output model (``→ area``), then the epoch."""
        ex = self.explainer  # type: ignore[attr-defined]
        if len(getattr(ex.model, "outputs", None) or []) > 1 and getattr(ex, "output_name", None):
            parts = [*parts, f"→ {ex.output_name}"]
        return [*parts, f"epoch {epoch}"]

    def _score_text(self, what: str = "logit") -> str:
        """``; score = the class logit (pre-softmax) of output 'x'`` (what is differentiated)."""
        ex = self.explainer  # type: ignore[attr-defined]
        if self.custom_target:
            return f"{self._output_text() or ' of the model output'} (as the model returns it)"
        squash = f" (pre-{ex.squash})" if ex.squash else ""
        return f"; score = the class {what}{squash}{self._output_text()}"

    def _caption_text(self) -> str:
        if self.custom_target:
            return "the true label (when given) and the score's value"
        return "true class, predicted class and its probability (green = right, red = wrong)"

    def _target_text(self) -> str:
        if self.custom_target:
            return f"{score_name(self.target)}, a score function"
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

    def _label_text(self, i: int) -> str:
        v = self.y[i]  # type: ignore[index]
        if np.issubdtype(np.asarray(v).dtype, np.integer):
            return self._name(int(v))
        return f"{float(v):.3g}"

    def _frames_with_gap(self, tag: str, image: np.ndarray, desc: str, gaps: np.ndarray | None, n: int) -> list[Any]:
        """The picture (``desc`` ends with its caption sentence), and for methods with a completeness gap
        (Integrated Gradients) the sentence about it and the per-epoch scalar ``<tag>/completeness_gap``."""
        if gaps is None:
            return [Frame(tag, image, desc + ". Step = epoch.")]
        what = "the completeness gap |sum(attributions) - (F(x) - F(baseline))|"
        desc += f", and {what} (small = the attributions account for the score). Step = epoch."
        gap = Scalar(
            f"{tag}/completeness_gap",
            float(np.max(gaps)) if len(gaps) else 0.0,
            f"The largest {what} over the {n} fixed samples of `{tag}`, per epoch.",
        )
        return [Frame(tag, image, desc), gap]

    def _captions(
        self,
        classes: np.ndarray,
        probs: np.ndarray,
        extra: list[str] | None = None,
        scores: np.ndarray | None = None,
    ) -> tuple[list[list[str]], list[bool | None]]:
        """Per sample: true class, predicted class and probability, the explained class when it differs,
        and ``extra[i]`` (a per-epoch number of the view) as the last line. With a callable target:
        the label (if any) and the score's value instead of classes."""
        if self.custom_target:
            captions = []
            for i in range(len(classes)):
                lines = [f"#{i}  true: {self._label_text(i)}" if self.y is not None else f"#{i}"]
                lines.append("score: " + ("?" if scores is None else f"{float(scores[i]):.3g}"))
                if extra is not None:
                    lines.append(extra[i])
                captions.append(lines)
            return captions, [None] * len(classes)
        predicted = np.argmax(probs, axis=1)
        captions, correct = [], []
        for i, (cls, pred) in enumerate(zip(classes, predicted, strict=True)):
            lines = [f"#{i}  true: {self._name(int(self.y[i]))}" if self.y is not None else f"#{i}"]
            lines.append(f"pred: {self._name(int(pred))}  p={probs[i, pred]:.2f}")
            if int(cls) != int(pred):
                lines.append(f"map of: {self._name(int(cls))}  p={probs[i, cls]:.2f}")
            if extra is not None:
                lines.append(extra[i])
            captions.append(lines)
            correct.append(None if self.y is None else bool(int(self.y[i]) == int(pred)))
        return captions, correct
