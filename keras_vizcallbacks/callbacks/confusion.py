"""ConfusionMatrix: counts and rates of (true, predicted) class pairs on fixed data, per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _checks, render
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.callbacks._samples import check_classes, fixed_labelled_data
from keras_vizcallbacks.callbacks.base import Frame, Scalar, VizCallback
from keras_vizcallbacks.explain import (
    CONFUSION_NORMALIZE,
    Predictor,
    SharedView,
    check_classifier,
    check_one_output,
    classes_and_confidence,
    confusion_matrix,
    n_outputs,
    normalize_confusion,
    shared_pass,
    to_probabilities,
)
from keras_vizcallbacks.render.confusion import RATE_WORDS, ConfusionFigure


class ConfusionMatrix(VizCallback):
    """Draw the confusion matrix on fixed labelled data, tag ``confusion_matrix`` (or ``tag=...``).

    One compiled prediction pass per epoch (built once, fixed batch shape) over
    at most ``max_points`` examples chosen once. Row = true class, column =
    predicted class; each cell shows its rate (by ``normalize``) over its count.
    The picture's subtitle gives the epoch's accuracy; scalars in the same run:
    ``<tag>/accuracy`` and, up to `SCALAR_CLASSES` classes, ``<tag>/recall/<class>``
    and ``<tag>/precision/<class>``.

    Args:
        log_dir: TensorBoard log directory.
        data: ``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` (integer or one-hot labels).
        class_names: one name per class, in class-index order.
        normalize: what the colour and percentages show: ``"true"`` (rows sum to 1: recall on the
            diagonal), ``"pred"`` (columns: precision), ``"all"``, or ``None`` (counts only).
        max_points: at most this many examples (evenly spaced from arrays, the first from a dataset).
        batch_size: rows per compiled call (default: about 2**21 input values per batch, fewer when a layer's
            output for the batch would exceed 32 MiB).
        cmap: a sequential matplotlib colormap.
        output: the classifier output counted (its name or index), required for a model with several
            outputs; labels given as a list or dict (one entry per output) follow it. A regression
            output is refused.
        **options: the options every view takes (``every_n_epochs``, ``run_name``, ``on_error``, ...).
    """

    view = "confusion_matrix"
    SCALAR_CLASSES = 10  # per-class recall and precision scalars up to this many classes

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
        output: str | int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(log_dir, **options)
        if normalize not in CONFUSION_NORMALIZE:
            raise ValueError(f"normalize must be one of {CONFUSION_NORMALIZE}, got {normalize!r}.")
        max_points = _checks.integer(max_points, "max_points")
        render.lut(cmap)
        self.data = data
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.normalize = normalize
        self.max_points = max_points
        self.batch_size = _checks.optional_integer(batch_size, "batch_size")
        self.cmap = cmap
        if isinstance(output, bool) or not (output is None or isinstance(output, (str, int, np.integer))):
            raise ValueError(f"output must be None, an output name or an output index, got {output!r}.")
        self.output = output
        self.output_index = 0
        self.predictor: Predictor | None = None
        self.shared: SharedView | None = None
        self.counts: np.ndarray | None = None  # the last epoch's matrix
        self._data_note = ""
        self._support = np.zeros(0, dtype=np.int64)  # examples per true class (fixed data)
        self._figure = ConfusionFigure()  # built on the first draw, kept for the fit, dropped at its end

    def prepare(self, model: keras.Model) -> None:
        name = "ConfusionMatrix data"
        try:
            index = L.output_index(model, self.output)
            check_classifier(model, index, "ConfusionMatrix")
        except ValueError as e:
            raise ValueError(f"ConfusionMatrix: {e}") from None
        self.output_index = index
        x, y, n_total, chosen = fixed_labelled_data(self.data, model, self.max_points, name, index, self.output)
        check_one_output(model, x, self.output, "ConfusionMatrix")  # a subclassed model returning several
        self.n_classes = check_classes("ConfusionMatrix", y, n_outputs(model, output=index), self.class_names)
        self.x, self.y = x, y
        self.predictor = Predictor(model, batch_size=self.batch_size, name="confusion_predict", output=index)
        try:  # one data pass per epoch with the other views on the same model and data
            self.shared = shared_pass(model, x, batch_size=self.predictor.batch_size_for(x), outputs=[index])
        except ValueError:  # a subclassed model (layers.ProbeError): its own prediction pass
            self.shared = None
        self._support = np.bincount(np.asarray(y, dtype=np.int64), minlength=self.n_classes)  # fixed: labels
        kept = len(y)
        self._data_note = (
            f"{kept} fixed examples" if chosen is None else f"{kept} of {n_total} examples (evenly spaced)"
        )

    def compute(self, epoch: int) -> np.ndarray:
        """One prediction pass -> the counts (on the training thread)."""
        assert self.predictor is not None
        if self.shared is not None:
            probs = to_probabilities(self.shared.outputs(epoch)[L.output_key(self.output_index)], self.predictor.squash)
        else:
            probs = self.predictor.probabilities(self.x)
        pred, _ = classes_and_confidence(probs)
        n = max(self.n_classes, probs.shape[1])
        self.counts = confusion_matrix(self.y, pred, n)
        return self.counts

    def draw(self, counts: np.ndarray, epoch: int) -> list[Frame | Scalar]:
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
        frames: list[Frame | Scalar] = [Frame(self.view, image, self.describe(len(counts)))]
        return frames + self.scalars(counts, acc)

    def tags(self) -> list[str]:
        return [self.view]

    def scalars(self, counts: np.ndarray, acc: float) -> list[Scalar]:
        """``<tag>/accuracy`` and, up to `SCALAR_CLASSES` classes, each class's recall and precision."""
        out = [Scalar(f"{self.view}/accuracy", acc, f"Accuracy on the ConfusionMatrix's {self._data_note}.")]
        n = len(counts)
        if n > self.SCALAR_CLASSES:
            return out
        names = self._names(n)
        recall = normalize_confusion(counts, "true").diagonal()
        precision = normalize_confusion(counts, "pred").diagonal()
        for k in range(n):
            key = names[k].replace("/", "_")
            out.append(
                Scalar(
                    f"{self.view}/recall/{key}",
                    recall[k],
                    f"Recall of class {names[k]}: the share of its examples predicted as it ({self._data_note}).",
                )
            )
            out.append(
                Scalar(
                    f"{self.view}/precision/{key}",
                    precision[k],
                    f"Precision of class {names[k]}: the share of the examples predicted as it that are it "
                    f"({self._data_note}; 0 while nothing is predicted as it).",
                )
            )
        return out

    def _names(self, n: int) -> list[str]:
        return self.class_names if self.class_names and len(self.class_names) == n else [f"class {k}" for k in range(n)]

    def on_close(self) -> None:
        self._figure.close()  # every frame is drawn: the figure is rebuilt on the next fit's first draw

    def explainers(self) -> list[Any]:
        return [self.predictor, self.shared]

    def describe(self, n: int) -> str:
        """What the picture shows; only what stays fixed over the run (TensorBoard shows the first step's
        description at every step): the per-epoch numbers are in the picture and the scalars."""
        names = self._names(n)
        support = np.zeros(n, dtype=np.int64)
        support[: min(n, len(self._support))] = self._support[:n]
        rows = "\n".join(f"| {names[k]} | {int(support[k])} |" for k in range(n))
        shown = "the count" if self.normalize is None else f"the {RATE_WORDS[self.normalize]} over the count"
        per_class = (
            f", `{self.view}/recall/<class>` and `{self.view}/precision/<class>`" if n <= self.SCALAR_CLASSES else ""
        )
        names_out = L.output_names(self.predictor.model) if self.predictor is not None else []
        of = f" of output {self.output_index} `{names_out[self.output_index]}`" if len(names_out) > 1 else ""
        return (
            f"**Confusion matrix**{of} on {self._data_note}: row = true class, column = predicted class; each cell "
            f"shows {shown}. The subtitle gives the epoch's accuracy (correct/total). Scalars in this run: "
            f"`{self.view}/accuracy`{per_class}. Step = epoch.\n\n"
            f"| class | examples |\n|---|---|\n{rows}"
        )
