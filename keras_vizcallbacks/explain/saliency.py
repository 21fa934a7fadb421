"""Saliency maps: gradients of a class score with respect to the input pixels.

Methods (all differentiate the target class's logit, pre-softmax):

* ``vanilla`` (Simonyan et al. 2014): ``d score / d x``.
* ``gradient_x_input``: ``x * d score / d x``.
* ``smoothgrad`` (Smilkov et al. 2017): the mean gradient over ``n_samples``
  noisy copies ``x + N(0, sigma²)``, ``sigma = noise * (max(x) - min(x))`` per
  image. The noise is drawn from ``seed``, so every epoch sees the same noise.
* ``integrated_gradients`` (Sundararajan et al. 2017):
  ``(x - baseline) * mean gradient along the straight path baseline -> x``,
  trapezoidal rule over ``steps`` intervals (``steps + 1`` gradient
  evaluations). Completeness: the attributions sum to
  ``score(x) - score(baseline)`` up to the integration error, which
  `SaliencyResult` reports as ``delta``.

Each method is one entry of the method table `SALIENCY_METHODS`
(``explain/saliency_methods.py``). The copies of SmoothGrad and Integrated
Gradients are evaluated in fixed-size
batches (the last one padded) so one compiled function, traced once, serves
every call.

``reduce`` turns the per-channel attribution (N, H, W, C) into one map per
image: ``"max_abs"`` (default, the original saliency map), ``"mean_abs"``,
``"sum"`` (signed; e.g. Integrated Gradients' per-pixel share of the score),
``"l2"``, or ``None`` for the raw (N, H, W, C) array. 1-D signals (N, steps, C) give maps
(N, steps) the same way.

Integer image inputs (``keras.Input(dtype="uint8")`` then a Rescaling layer) are differentiated
as the input cast to float (``explain/_float_input.py``): the maps equal those of the same model
built with a float input, where a model's own cast to the integer dtype would give zeros.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain import _targets
from keras_vizcallbacks.explain._float_input import float_input
from keras_vizcallbacks.explain._memory import check_batch_size, resolve_batch_size, run_chunked
from keras_vizcallbacks.explain._outputs import check_one_output, logits_to_probabilities, n_classes
from keras_vizcallbacks.explain.saliency_methods import (
    Gradients,
    SaliencyMethod,
    saliency_method,
    saliency_options,
)

REDUCTIONS: tuple[str | None, ...] = ("max_abs", "mean_abs", "sum", "l2", None)


def reduce_channels(attributions: np.ndarray, reduce: str | None) -> np.ndarray:
    """(N, H, W, C) -> (N, H, W) by ``reduce`` (see the module docstring); ``None`` keeps it."""
    a = np.asarray(attributions, dtype=np.float32)
    if reduce is None:
        return a
    if reduce == "max_abs":
        return np.abs(a).max(axis=-1)
    if reduce == "mean_abs":
        return np.abs(a).mean(axis=-1)
    if reduce == "sum":
        return a.sum(axis=-1)
    if reduce == "l2":
        return np.sqrt(np.square(a).sum(axis=-1))
    raise ValueError(f"Unknown reduce {reduce!r}; use one of {list(REDUCTIONS)}.")


@dataclasses.dataclass
class SaliencyResult:
    """What one call of `SaliencyExplainer` returns (numpy)."""

    maps: np.ndarray  # (N, H, W) reduced, or (N, H, W, C) with reduce=None
    attributions: np.ndarray  # (N, H, W, C) float32, per channel
    classes: np.ndarray  # int (N,): the class each map explains (-1 for a callable target)
    logits: np.ndarray  # (N, K) of the images themselves
    probabilities: np.ndarray  # (N, classes); (N, 0) for an output that is not (batch, classes)
    delta: np.ndarray | None = None  # IG: sum(attributions) - (score(x) - score(baseline)), per image
    scores: np.ndarray | None = None  # float32 (N,): the differentiated score of each image


class SaliencyExplainer:
    """Input-gradient attributions for one model and method, built once.

    The logits model (pre-softmax, the user's model untouched) and the compiled
    gradient function are built in the constructor; every call reuses them
    (``self.fn.traces`` counts traces).

    Args:
        model: a Keras classifier. Sequential and functional models are
            differentiated at their logits; a subclassed model at its output.
        method: a name in `SALIENCY_METHODS` (``"vanilla"``, ``"smoothgrad"``,
            ``"integrated_gradients"``, ``"gradient_x_input"``).
        image_input: for multi-input models, the image input's name or index
            (default: the first 4-D input); the other inputs are held fixed.
        batch_size: images per gradient call (the images themselves, and the noisy / interpolated
            copies); ``None`` derives it from the layer shapes so that one call's activations and
            gradients stay under ``explain._memory.MEMORY_BUDGET`` (256 MiB), at most 64.
        output: for multi-output models, the output explained (its name or index; the
            output layer's name works). Required when the model has several outputs.
        **options: the method's options: SmoothGrad ``n_samples`` (25), ``noise``
            (0.15 of each image's value range), ``seed`` (0); Integrated
            Gradients ``baseline`` (0.0: a number, or an array broadcastable to
            the images) and ``steps`` (64).
    """

    def __init__(
        self,
        model: keras.Model,
        method: str = "vanilla",
        *,
        image_input: str | int | None = None,
        batch_size: int | None = None,
        output: str | int | None = None,
        **options: Any,
    ) -> None:
        self.model = model
        self.output = L.output_index(model, output)
        names = L.output_names(model)
        self.output_name = names[self.output] if names else None
        self.entry: SaliencyMethod = saliency_method(method)
        self.method = method
        self.options = saliency_options(method, options)
        self.batch_size = resolve_batch_size(model, batch_size)
        n_in = len(model.inputs) if L.has_graph(model) else 1
        self._multi = n_in > 1
        self.image_index = _targets.split_inputs(model, [None] * n_in, image_input)[0] if L.has_graph(model) else 0
        self.output_shape: tuple | None = None
        if L.has_graph(model):
            probe = L.build_probe(model, [], logits=True, output_index=self.output)
            net = float_input(probe.model, self.image_index)  # an integer image input: d score / d float(x)
            self.squash = L.final_squashing(model, self.output)
            self.differentiates = "logits" if self.squash else "output"
            self.output_shape = tuple(net.outputs[-1].shape)
            try:
                self.n_classes: int | None = n_classes(self.output_shape)
            except ValueError:  # not (batch, classes): only a callable target can score it
                self.n_classes = None
        else:  # subclassed: no graph to take the logits from
            net = model
            self.squash = None
            self.differentiates = "output"
            self.n_classes = None
        idx = self.image_index
        out_index = self.output
        self._net = net

        def logits_of(xs: list[Any], image: Any) -> Any:
            inputs = list(xs)
            inputs[idx] = image
            out = net(inputs if self._multi else inputs[0], training=False)
            if isinstance(out, (list, tuple, dict)):
                out = out[-1] if net is not model else keras.tree.flatten(out)[out_index]
            return out

        self._logits_of = logits_of
        self._functions: dict[Any, tuple[Any, Any]] = {}
        self.fn, self.copies_fn = self._compiled(None)

    def _compiled(self, target: Any) -> tuple[Any, Any]:
        """The compiled functions for class targets (``target`` None) or a score function, built once each."""
        key = None if not _targets.is_score_function(target) else target
        if key in self._functions:
            return self._functions[key]
        logits_of, idx = self._logits_of, self.image_index
        scorer = _targets.score_with(key, self.squash)

        def with_gradients(xs: list[Any], target: Any) -> Any:
            def fn(ws: list[Any], xs: list[Any], target: Any) -> Any:
                logits = logits_of(xs, ws[0])
                s, cls = scorer(logits, target)
                return s, (logits, cls)

            s, (logits, cls), (g,) = _backend.value_and_grads(fn, [xs[idx]], xs, target)
            return s, g, keras.ops.cast(logits, "float32"), cls

        # One function for the images themselves, one for batches of copies: each is
        # called with one shape only, so each traces once. state=model: on JAX the
        # weights are arguments read at every call (subclassed models included).
        name = self.method if key is None else f"{self.method}_custom"
        fns = (
            _backend.compile_function(with_gradients, name=f"{name}_gradients", state=self.model),
            _backend.compile_function(with_gradients, name=f"{name}_copies", state=self.model),
        )
        self._functions[key] = fns
        return fns

    @property
    def title(self) -> str:
        return self.entry.title

    def compiled_functions(self) -> list[_backend.TracedFunction]:
        """The compiled functions this explainer calls (each counts its traces in ``.traces``)."""
        return [f for pair in self._functions.values() for f in pair]

    def _output_of(self, xs: list[np.ndarray]) -> Any:
        out = self.model(xs if self._multi else xs[0], training=False)
        return keras.tree.flatten(out)[self.output] if isinstance(out, (list, tuple, dict)) else out

    def count_classes(self, x: Any) -> int:
        """The number of classes; a subclassed model (no graph) is asked once, on the inputs ``x``."""
        if self.n_classes is None:
            if self.output_shape is not None:
                n_classes(self.output_shape)  # raises: not a (batch, classes) output
            self.n_classes = n_classes(tuple(np.shape(self._output_of(self.prepare_inputs(x)))))
        return self.n_classes

    # ------------------------------------------------------------------ public
    def prepare_inputs(self, x: Any) -> list[np.ndarray]:
        if L.has_graph(self.model):
            _, xs = _targets.split_inputs(self.model, x, self.image_index)
        else:
            xs = list(x) if isinstance(x, (list, tuple)) else [x]
        xs = [np.asarray(_backend.to_numpy(v)) for v in xs]
        img = xs[self.image_index]
        if img.dtype != np.float32:
            xs[self.image_index] = img.astype(np.float32)
        return xs

    def explain(self, x: Any, class_index: Any = None, *, reduce: str | None = "max_abs") -> SaliencyResult:
        """Attributions for a batch ``x``; ``class_index`` None (predicted), an int, or one per image,
        or a callable ``score(outputs) -> (N,)`` written with ``keras.ops`` (see `_targets`)."""
        if reduce not in REDUCTIONS:
            raise ValueError(f"Unknown reduce {reduce!r}; use one of {list(REDUCTIONS)}.")
        xs = self.prepare_inputs(x)
        img = xs[self.image_index]
        n = len(img)
        fn, copies_fn = self._compiled(class_index)
        if _targets.is_score_function(class_index):
            target = np.full(n, _targets.PREDICTED, dtype=np.int32)
        else:
            self.count_classes(xs if self._multi else xs[0])  # subclassed: learn the output size from one call
            target = _targets.resolve(class_index, n, self.n_classes)
        # The images themselves: scores, gradients, logits and the resolved classes.
        s, g, logits, cls = run_chunked(fn, xs, target, self.batch_size)
        cls = cls.astype(np.int32)

        def copies(owners: np.ndarray, make: Any) -> tuple[np.ndarray, np.ndarray]:
            return self._run_copies(xs, owners, make, cls, copies_fn)

        attr, delta = self.entry.attribute(Gradients(img, g, s, cls, copies), self.options)
        attr = np.nan_to_num(attr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        logits = logits.astype(np.float32)
        if logits.ndim == 2:
            probs = logits_to_probabilities(logits, self.squash).astype(np.float32)
        else:
            probs = np.zeros((n, 0), dtype=np.float32)
        scores = np.asarray(s, dtype=np.float32)
        return SaliencyResult(reduce_channels(attr, reduce), attr, cls, logits, probs, delta, scores)

    def __call__(self, x: Any, class_index: Any = None, **kwargs: Any) -> np.ndarray:
        return self.explain(x, class_index, **kwargs).maps

    # ------------------------------------------------------------------ batched calls
    def _run_copies(
        self, xs: list[np.ndarray], owners: np.ndarray, make: Any, cls: np.ndarray, copies_fn: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gradients and scores of copies ``make(start, stop)`` of images ``owners``.

        Copies are evaluated ``batch_size`` at a time; the last batch is padded,
        so every call has the same shape (one trace). A single batch smaller
        than ``batch_size`` is evaluated at its own size.
        """
        total = len(owners)
        bs = total if total <= self.batch_size else self.batch_size
        img = xs[self.image_index]
        grads = np.empty((total, *img.shape[1:]), dtype=np.float32)
        scores = np.empty(total, dtype=np.float64)
        for start in range(0, total, bs):
            stop = min(start + bs, total)
            own = owners[start:stop]
            copies = make(start, stop)
            pad = bs - (stop - start)
            if pad:
                own = np.concatenate([own, np.full(pad, own[-1])])
                copies = np.concatenate([copies, np.repeat(copies[-1:], pad, axis=0)])
            batch = [v[own] for v in xs]
            batch[self.image_index] = copies.astype(np.float32)
            s, g, _, _ = (copies_fn or self.copies_fn)(batch, cls[own].astype(np.int32))
            grads[start:stop] = _backend.to_numpy(g)[: stop - start]
            scores[start:stop] = _backend.to_numpy(s)[: stop - start]
        return grads, scores


# --------------------------------------------------------------------------- function API

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def explainer(
    model: keras.Model,
    method: str = "vanilla",
    image_input: str | int | None = None,
    output: str | int | None = None,
    *,
    batch_size: int | None = None,
    **options: Any,
) -> SaliencyExplainer:
    """A `SaliencyExplainer`, cached per model for hashable options."""
    check_batch_size(batch_size)
    kw = {"image_input": image_input, "batch_size": batch_size, "output": output}
    try:
        key = (method, image_input, output, batch_size, tuple(sorted(options.items())))
        hash(key)
        per_model = _CACHE.setdefault(model, {})
    except TypeError:  # an array baseline, or a model that cannot be weakly referenced
        return SaliencyExplainer(model, method, **kw, **options)
    if key not in per_model:
        per_model[key] = SaliencyExplainer(model, method, **kw, **options)
    return per_model[key]


def saliency(
    model: keras.Model,
    images: Any,
    *,
    class_index: Any = None,
    method: str = "vanilla",
    reduce: str | None = "max_abs",
    image_input: str | int | None = None,
    output: str | int | None = None,
    batch_size: int | None = None,
    **method_options: Any,
) -> np.ndarray:
    """Saliency maps for ``images``: float32 (N, H, W), or (N, H, W, C) with ``reduce=None``.

    Args:
        model: a Keras classifier.
        images: a batch (N, H, W, C); for multi-input models a list or dict of arrays.
        class_index: None (each image's predicted class), an int, or one int per image; or a
            callable ``score(outputs) -> (N,)`` written with ``keras.ops``, which gets the chosen
            output (as ``model.predict`` returns it) inside the differentiated function.
        method: ``"vanilla"``, ``"smoothgrad"``, ``"integrated_gradients"`` or ``"gradient_x_input"``
            (the entries of `SALIENCY_METHODS`).
        reduce: ``"max_abs"``, ``"mean_abs"``, ``"sum"``, ``"l2"`` or ``None`` (raw per channel).
        image_input: the image input's name or index for multi-input models.
        output: the output explained, by name or index (required for multi-output models).
        batch_size: images (and copies) per backend call; ``None`` derives it from the layer
            shapes (one call's activations and gradients under 256 MiB, at most 64).
        **method_options: SmoothGrad ``n_samples``, ``noise``, ``seed``; Integrated
            Gradients ``baseline``, ``steps``.

    Maps are not normalized: the values are gradients (or attributions) of the
    target class's logit.
    """
    check_one_output(model, images, output, "saliency")  # a subclassed model returning several: say so
    ex = explainer(model, method, image_input, output, batch_size=batch_size, **method_options)
    return ex.explain(images, class_index, reduce=reduce).maps
