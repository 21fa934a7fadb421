"""ConfusionMatrix: counts and rates of (true, predicted) class pairs on fixed data, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import layers as L
from keras_vizcallbacks import render
from keras_vizcallbacks.callbacks._samples import check_classes, fixed_labelled_data
from keras_vizcallbacks.callbacks.base import Frame, VizCallback
from keras_vizcallbacks.explain import (
    CONFUSION_NORMALIZE,
    Predictor,
    SharedView,
    classes_and_confidence,
    confusion_matrix,
    n_outputs,
    normalize_confusion,
    shared_pass,
    to_probabilities,
)
from keras_vizcallbacks.render.confusion import RATE_WORDS, ConfusionFigure


class ConfusionMatrix(VizCallback):
    """Draw the confusion matrix on fixed labelled data, tag ``confusion_matrix``.

    One compiled prediction pass per epoch (built once, fixed batch shape) over
    at most ``max_points`` examples chosen once. Row = true class, column =
    predicted class; each cell shows its rate (by ``normalize``) over its count.

    Args:
        log_dir: TensorBoard log directory.
        data: ``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` (integer or one-hot labels).
        class_names: one name per class, in class-index order.
        normalize: what the colour and percentages show: ``"true"`` (rows sum to 1: recall on the
            diagonal), ``"pred"`` (columns: precision), ``"all"``, or ``None`` (counts only).
        max_points: at most this many examples (evenly spaced from arrays, the first from a dataset).
        batch_size: rows per compiled call (default: about 2**21 input values per batch).
        cmap: a sequential matplotlib colormap.
        **options: the options every view takes (``every_n_epochs``, ``run_name``, ``on_error``, ...).
    """

    view = "confusion_matrix"

    def __init__(
        self,
        log_dir: str,
        data: Any,
        class_names: Sequence[str] | None = None,
        normalize: str | None = "true",
        *,
        max_points: int = 10000,
        batch_size: int | None = None,
        cmap: str = "Blues",
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if normalize not in CONFUSION_NORMALIZE:
            raise ValueError(f"normalize must be one of {CONFUSION_NORMALIZE}, got {normalize!r}.")
        if not isinstance(max_points, int) or max_points < 1:
            raise ValueError(f"max_points must be an integer >= 1, got {max_points!r}.")
        render.lut(cmap)
        self.data = data
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.normalize = normalize
        self.max_points = max_points
        self.batch_size = batch_size
        self.cmap = cmap
        self.predictor: Predictor | None = None
        self.shared: SharedView | None = None
        self.counts: np.ndarray | None = None  # the last epoch's matrix
        self._data_note = ""
        self._figure = ConfusionFigure()  # built on the first draw, kept for the fit, dropped at its end

    def prepare(self, model: keras.Model) -> None:
        name = "ConfusionMatrix data"
        x, y, n_total, chosen = fixed_labelled_data(self.data, model, self.max_points, name)
        self.n_classes = check_classes("ConfusionMatrix", y, n_outputs(model), self.class_names)
        self.x, self.y = x, y
        self.predictor = Predictor(model, batch_size=self.batch_size, name="confusion_predict")
        try:  # one data pass per epoch with the other views on the same model and data
            self.shared = shared_pass(model, x, batch_size=self.predictor.batch_size_for(x))
        except ValueError:  # a subclassed model (layers.ProbeError): its own prediction pass
            self.shared = None
        kept = len(y)
        self._data_note = (
            f"{kept} fixed examples" if chosen is None else f"{kept} of {n_total} examples (evenly spaced)"
        )

    def compute(self, epoch: int) -> np.ndarray:
        """One prediction pass -> the counts (on the training thread)."""
        assert self.predictor is not None
        if self.shared is not None:
            probs = to_probabilities(self.shared.outputs(epoch)[L.OUTPUT], self.predictor.squash)
        else:
            probs = self.predictor.probabilities(self.x)
        pred, _ = classes_and_confidence(probs)
        n = max(self.n_classes, probs.shape[1])
        self.counts = confusion_matrix(self.y, pred, n)
        return self.counts

    def draw(self, counts: np.ndarray, epoch: int) -> list[Frame]:
        """Counts -> one frame (no model access; may run on the background thread)."""
        rates = None if self.normalize is None else normalize_confusion(counts, self.normalize)
        total = int(counts.sum())
        correct = int(np.trace(counts))
        acc = correct / total if total else 0.0
        image = self._figure.image(
            counts,
            rates,
            class_names=self.class_names,
            title=f"confusion matrix · epoch {epoch}",
            subtitle=f"accuracy {acc:.1%} ({correct}/{total}) · colour: {RATE_WORDS[self.normalize].split(' (')[0]}",
            cmap=self.cmap,
        )
        return [Frame(self.view, image, self.describe(counts, acc, correct, total))]

    def on_close(self) -> None:
        self._figure.close()  # every frame is drawn: the figure is rebuilt on the next fit's first draw

    def explainers(self) -> list[Any]:
        return [self.predictor, self.shared]

    def describe(self, counts: np.ndarray, acc: float, correct: int, total: int) -> str:
        names = self.class_names or [f"class {k}" for k in range(len(counts))]
        recall = normalize_confusion(counts, "true").diagonal()
        precision = normalize_confusion(counts, "pred").diagonal()
        rows = "\n".join(
            f"| {names[k]} | {int(counts[k].sum())} | {recall[k]:.1%} | {precision[k]:.1%} |"
            for k in range(len(counts))
        )
        shown = "the count" if self.normalize is None else f"the {RATE_WORDS[self.normalize]} over the count"
        return (
            f"**Confusion matrix** on {self._data_note}: row = true class, column = predicted class; each cell "
            f"shows {shown}. Accuracy {acc:.1%} ({correct}/{total}). Step = epoch.\n\n"
            f"| class | examples | recall | precision |\n|---|---|---|---|\n{rows}"
        )
