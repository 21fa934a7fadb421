"""The Grad-CAM family: class activation maps of a conv layer, weighted by gradients.

A CAM method is one base computation plus one small function, an entry of the
method table `CAM_METHODS` (``explain/cam_methods.py``). The base runs the
model once, split at the chosen layer (`keras_vizcallbacks.layers.split_at`),
and returns the layer's activations ``A`` (N, h, w, K) and the gradients
``G = d score / d A`` of the target class's logit, on any backend; a method then turns ``(A, G)`` into a map (N, h, w):

* ``gradcam``   (Selvaraju et al. 2017): channel weights = spatial mean of G;
  map = ReLU(sum_k w_k A_k).
* ``gradcam++`` (Chattopadhyay et al. 2018): channel weights = sum over cells
  of ReLU(G) times alpha = G² / (2 G² + sum(A) G³) (the closed form that
  assumes an exponential of the score).
* ``hirescam``  (Draelos & Carin 2020): map = ReLU(sum_k G_k * A_k), the
  element-wise product, no spatial averaging.
* ``layercam``  (Jiang et al. 2021): map = ReLU(sum_k ReLU(G_k) * A_k).
* ``scorecam``  (Wang et al. 2020): gradient free. Each channel, min-max
  scaled and placed on the input, masks the image; the channel's weight is the
  softmax over channels of the target logit for that masked image. Costs one
  forward pass per channel and image (batched). Its entry gets a
  `MaskedScorer` instead of G.
* a callable ``fn(A, G)`` of your own: A and G float32 (N, *spatial, K),
  returning the map before the final ReLU, (N, *spatial); titled by its ``__name__``.

1-D signals (Conv1D models, inputs (N, steps, C)) work the same way: their maps lie on the
sequence, computed as maps one row high (a method and a callable get A and G as (N, 1, steps, K)).
Other input ranks (Conv3D volumes) raise a ValueError naming the rank.

Maps are placed on the input by receptive-field geometry: cell (r, c) is
centred on input pixel ``offset + stride * (r, c)`` (see
`keras_vizcallbacks.layers.geometry` and ``explain/_placement.py``), and pixels
between centres are interpolated bilinearly (clamped at the borders). A plain
resize would shift the peak by several pixels on small inputs.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain import _targets
from keras_vizcallbacks.explain._memory import check_batch_size, chunks, resolve_batch_size, run_chunked
from keras_vizcallbacks.explain._outputs import logits_to_probabilities, n_classes
from keras_vizcallbacks.explain._placement import normalize_maps, place_on_input
from keras_vizcallbacks.explain.cam_methods import SCORECAM_CHANNELS, CAMMethod, cam_method

Method = str | Callable[[np.ndarray, np.ndarray], np.ndarray]


# --------------------------------------------------------------------------- layer choice


def _output_rank(layer: keras.layers.Layer) -> int | None:
    try:
        return len(layer.output.shape)
    except Exception:
        return None


def _input_rank(model: keras.Model, image_input: str | int | None = None) -> int:
    """Spatial axes of the image input: 2 for images (N, H, W, C), 1 for signals (N, steps, C)."""
    idx = _targets.split_inputs(model, [None] * len(model.inputs), image_input)[0]
    return len(model.inputs[idx].shape) - 2


def _candidates(model: keras.Model, rank: int = 2) -> list[tuple[str, keras.layers.Layer]]:
    """Layers with a ``rank``-D spatial output ((N, h, w, C) or (N, steps, C)), nested models searched."""
    return [(p, layer) for p, layer in L.spatial_output_layers(model) if _output_rank(layer) == rank + 2]


def _axes(rank: int) -> str:
    return "(batch, steps, channels)" if rank == 1 else "(batch, height, width, channels)"


def cam_layer(model: keras.Model, rank: int | None = None) -> tuple[str, keras.layers.Layer]:
    """The default Grad-CAM layer: the last layer with a spatial output of the input's rank (2-D
    for images, 1-D for signals) that is a conv layer or an elementwise layer after one (its
    activation, batch norm, residual add); never a pooling layer. Nested models are searched."""
    rank = _input_rank(model) if rank is None else rank
    found = _candidates(model, rank)
    chosen = [(p, layer) for p, layer in found if isinstance(layer, L.CONV_TYPES + L.ELEMENTWISE_TYPES)]
    if not chosen:
        spatial = [p for p, _ in found]
        raise ValueError(
            f"Model {model.name!r} has no convolution layer with a {rank}-D spatial output to explain. "
            f"Layers with spatial outputs: {spatial or 'none'}; pass layer=<name>."
        )
    return chosen[-1]


def resolve_layer(model: keras.Model, layer: str | None, rank: int | None = None) -> tuple[str, keras.layers.Layer]:
    """``layer`` (a name, a nested path, or None for `cam_layer`) -> ``(path, layer)``; ``rank``: the
    spatial axes of the maps (default: the image input's).

    Raises ValueError naming the layers that can be used.
    """
    _require_graph(model)
    rank = _input_rank(model) if rank is None else rank
    if layer is None:
        return cam_layer(model, rank)
    usable = [p for p, _ in _candidates(model, rank)]
    try:
        path, found = L.find_layer(model, layer)
    except ValueError as e:
        raise ValueError(f"{e} Layers with a spatial output: {_short(usable)}.") from None
    if path not in usable:
        try:
            shape = tuple(found.output.shape)
        except Exception:
            shape = "unknown"
        raise ValueError(
            f"Layer {path!r} ({type(found).__name__}, output shape {shape}) has no {rank}-D spatial output, "
            f"so there is no map to draw. Layers with a spatial output {_axes(rank)}: {_short(usable)}."
        )
    return path, found


def check_rank(shape: tuple, what: str, where: str) -> int:
    """The spatial axes (1 or 2) of an input of ``shape``; a ValueError naming the rank and what is
    supported for any other (a Conv3D volume, a flat vector)."""
    rank = len(shape) - 2
    if rank not in (1, 2):
        raise ValueError(
            f"{what} draws maps on an image (batch, height, width, channels) or a 1-D signal (batch, steps, "
            f"channels); {where} has shape {tuple(shape)}, rank {len(shape)} ({max(rank, 0)} spatial axes), "
            "which it does not support. FilterGrid and FeatureMaps draw layers of any rank (Conv3D included)."
        )
    return rank


def _require_graph(model: keras.Model) -> None:
    """ProbeError (a ValueError) for subclassed models, which have no layer graph to tap."""
    if not L.has_graph(model):
        raise L.ProbeError(
            f"Grad-CAM needs a Sequential or functional model to reach a layer's output; model "
            f"{model.name!r} ({type(model).__name__}) has no symbolic graph (a subclassed or never-built "
            "model). kv.Saliency works on any model."
        )


def _short(items: list[str], limit: int = 30) -> str:
    shown = ", ".join(items[-limit:])
    return ("…, " if len(items) > limit else "") + shown if items else "none"


# --------------------------------------------------------------------------- explainer


@dataclasses.dataclass
class CAMResult:
    """What one call of `GradCAMExplainer` returns (numpy, float32 maps)."""

    maps: np.ndarray  # (N, H, W) placed on the input (or raw, with upsample=False); (N, steps) for 1-D signals
    raw: np.ndarray  # (N, h, w) at the layer's resolution, ReLU applied, not normalized; (N, cells) for 1-D
    classes: np.ndarray  # int (N,): the class each map explains (-1 for a callable target)
    logits: np.ndarray  # (N, K)
    probabilities: np.ndarray  # (N, classes); (N, 0) for an output that is not (batch, classes)
    scores: np.ndarray | None = None  # float32 (N,): the differentiated score of each image


class GradCAMExplainer:
    """Grad-CAM (or a sibling method) for one model, layer and method, built once.

    The split of the model at the layer (layer output + logits, nested models
    and a final softmax handled without touching the user's model) and the
    compiled gradient function are built in the constructor; every call reuses them, so a fixed
    sample batch is traced once (``self.fn.traces``; `compiled_functions`).

    Args:
        model: a Sequential or functional Keras model ending in a classifier.
        layer: layer name or nested path (``"resnet50/conv5_block3_out"``);
            ``None`` for `cam_layer`.
        method: a name in `CAM_METHODS` (``"gradcam"``, ``"gradcam++"``, ``"hirescam"``,
            ``"layercam"``, ``"scorecam"``) or a callable ``fn(A, G)`` returning the map
            before the final ReLU (see the module docstring).
        image_input: for multi-input models, the image input's name or index
            (default: the first 4-D input). The other inputs are held fixed.
        batch_size: images per backend call (the images themselves, Score-CAM's masked copies);
            ``None`` derives it from the layer shapes so that one call's activations and gradients
            stay under ``explain._memory.MEMORY_BUDGET`` (256 MiB), at most 64.
        max_channels: Score-CAM scores only this many channels per image, the most active ones
            (largest mean activation); ``None`` scores every channel (one forward pass each).
        output: for multi-output models, the output explained (its name or index; the
            output layer's name works). Required when the model has several outputs.
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | None = None,
        method: Method = "gradcam",
        *,
        image_input: str | int | None = None,
        batch_size: int | None = None,
        max_channels: int | None = SCORECAM_CHANNELS,
        output: str | int | None = None,
    ) -> None:
        if max_channels is not None and (
            isinstance(max_channels, (bool, np.bool_))
            or not isinstance(max_channels, (int, np.integer))
            or max_channels < 1
        ):
            raise ValueError(f"max_channels must be a positive integer or None (every channel), got {max_channels!r}.")
        self.max_channels = None if max_channels is None else int(max_channels)
        self.model = model
        self.entry: CAMMethod = cam_method(method)
        self.method = method
        _require_graph(model)
        self.output = L.output_index(model, output)
        self.output_name = L.output_names(model)[self.output]
        self.image_index, _ = _targets.split_inputs(model, [None] * len(model.inputs), image_input)
        self.input_shape = tuple(model.inputs[self.image_index].shape)
        self.rank = check_rank(self.input_shape, "Grad-CAM", f"input {self.image_index} of model {model.name!r}")
        self.path, self.layer = resolve_layer(model, layer, self.rank)
        self.channels_first = getattr(self.layer, "data_format", "channels_last") == "channels_first"
        self.geometry = L.geometry(model, self.path)
        # 1-D maps are placed (and computed) as maps one row high: (N, 1, steps)
        g = self.geometry
        self._geometry_2d = g if self.rank == 2 else L.Geometry((1.0, *g.stride), (0.0, *g.offset), (1.0, *g.size))
        self.map_size = tuple(self.input_shape[1:3]) if self.rank == 2 else (1, self.input_shape[1])
        self.split = L.split_at(model, self.path, self.output)
        self.squash = L.final_squashing(model, self.output)
        self.output_shape = tuple(self.split.model.outputs[1].shape)
        try:
            self.n_classes: int | None = n_classes(self.output_shape)
        except ValueError:  # not (batch, classes): only a callable target can score it
            self.n_classes = None
        k = self.split.activation_shape[0 if self.channels_first else -1]
        self.channels = None if k is None else int(k)  # the layer's channels (Score-CAM's description)
        self.batch_size = resolve_batch_size(model, batch_size)
        self._multi = len(model.inputs) > 1
        self._functions: dict[Any, tuple[Any, Any]] = {}
        self.fn, self.score_fn = self._compiled(None)

    def _compiled(self, target: Any) -> tuple[Any, Any]:
        """The compiled functions for class targets (``target`` None) or a score function, built once each."""
        key = None if not _targets.is_score_function(target) else target
        if key in self._functions:
            return self._functions[key]
        split, idx, model = self.split, self.image_index, self.model
        scorer = _targets.score_with(key, self.squash)

        def run(xs: list[Any], delta: Any = None) -> Any:
            return split(list(xs) if self._multi else xs[idx], delta)

        def with_gradients(xs: list[Any], delta: Any, target: Any) -> Any:
            # d score / d delta at delta = 0 is d score / d A (layers.split_at): only delta is differentiated
            def fn(ws: list[Any], xs: list[Any], target: Any) -> Any:
                a, logits = run(xs, ws[0])
                s, cls = scorer(logits, target)
                return s, (a, logits, cls)

            s, (a, logits, cls), (g,) = _backend.value_and_grads(fn, [delta], xs, target)
            return keras.ops.cast(a, "float32"), g, keras.ops.cast(logits, "float32"), cls, s

        def forward(xs: list[Any], target: Any) -> Any:
            a, logits = run(xs)
            s, cls = scorer(logits, target)
            return keras.ops.cast(a, "float32"), keras.ops.cast(logits, "float32"), cls, s

        def masked_scores(xs: list[Any], target: Any) -> Any:
            _, logits = run(xs)
            s, _ = scorer(logits, target)
            return s

        name = self.entry.name if key is None else f"{self.entry.name}_custom"
        # state=model: on JAX the weights are arguments read at every call (the split shares the model's layers)
        if self.entry.gradients:
            fns = (_backend.compile_function(with_gradients, name=f"{name}_gradients", state=model), None)
        else:
            fns = (
                _backend.compile_function(forward, name=f"{name}_forward", state=model),
                _backend.compile_function(masked_scores, name=f"{name}_scores", state=model),
            )
        self._functions[key] = fns
        return fns

    # ------------------------------------------------------------------ public
    @property
    def title(self) -> str:
        return self.entry.title

    def compiled_functions(self) -> list[_backend.TracedFunction]:
        """The compiled functions this explainer calls (each counts its traces in ``.traces``)."""
        return [f for pair in self._functions.values() for f in pair if f is not None]

    def prepare_inputs(self, x: Any) -> list[np.ndarray]:
        """Inputs as a list of numpy arrays in the model's order, the image as float32."""
        _, xs = _targets.split_inputs(self.model, x, self.image_index)
        xs = [np.asarray(_backend.to_numpy(v)) for v in xs]
        img = xs[self.image_index]
        if not np.issubdtype(img.dtype, np.floating) or img.dtype == np.float64:
            xs[self.image_index] = img.astype(np.float32)
        return xs

    def explain(self, x: Any, class_index: Any = None, *, upsample: bool = True, normalize: bool = True) -> CAMResult:
        """Maps for a batch ``x`` (array, or list/dict for multi-input models).

        ``class_index``: None (each image's predicted class), an int, or one int per image;
        or a callable ``score(outputs) -> (N,)`` written with ``keras.ops`` (see `_targets`).
        """
        xs = self.prepare_inputs(x)
        n = len(xs[self.image_index])
        fn, score_fn = self._compiled(class_index)
        if _targets.is_score_function(class_index):
            target = np.full(n, _targets.PREDICTED, dtype=np.int32)
        else:
            if self.n_classes is None:
                n_classes(self.output_shape)  # raises: a class target needs (batch, classes)
            target = _targets.resolve(class_index, n, self.n_classes)
        if self.entry.gradients:
            a, g, logits, cls, s = run_chunked(lambda b, t: fn(b, self.split.zeros(b), t), xs, target, self.batch_size)
            a = self._channels_last(a).astype(np.float32)
            g = self._channels_last(g).astype(np.float32)
            cls = cls.astype(np.int32)
            if self.rank == 1:  # (N, steps, K) -> (N, 1, steps, K): every method works on 2-D maps
                a, g = a[:, None], g[:, None]
            pre = self.entry.fn(a, g)
        else:
            a, logits, cls, s = run_chunked(fn, xs, target, self.batch_size)
            a = self._channels_last(a)
            a = a[:, None] if self.rank == 1 else a
            cls = cls.astype(np.int32)
            pre = self.entry.fn(a, _Masked(self, xs, cls, score_fn))
        pre = np.asarray(pre)
        if pre.shape != a.shape[:-1]:
            raise ValueError(
                f"CAM method {self.entry.name!r} returned shape {pre.shape}; expected {a.shape[:-1]} "
                "(the activations' shape without the channel axis)."
            )
        raw = np.maximum(np.nan_to_num(pre, nan=0.0, posinf=0.0, neginf=0.0), 0.0).astype(np.float32)
        maps = place_on_input(raw, self._geometry_2d, self.map_size) if upsample else raw
        if self.rank == 1:
            raw, maps = raw[:, 0], maps[:, 0]
        if normalize:
            maps = normalize_maps(maps)
        logits = np.asarray(logits).astype(np.float32)
        if logits.ndim == 2:
            probs = logits_to_probabilities(logits, self.squash).astype(np.float32)
        else:
            probs = np.zeros((n, 0), dtype=np.float32)
        scores = np.asarray(s).astype(np.float32)
        return CAMResult(maps.astype(np.float32), raw, cls, logits, probs, scores)

    def __call__(self, x: Any, class_index: Any = None, **kwargs: Any) -> np.ndarray:
        return self.explain(x, class_index, **kwargs).maps

    # ------------------------------------------------------------------ helpers
    def _channels_last(self, a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, 1, -1) if self.channels_first else a


class _Masked:
    """The `MaskedScorer` a gradient-free method gets: placement on the input, and the target
    class's score of masked copies of image ``i`` in calls of at most ``batch_size``, all of one size
    (one trace); ``max_channels``: how many channels a method should score per image (None: all)."""

    def __init__(
        self, explainer: GradCAMExplainer, xs: list[np.ndarray], classes: np.ndarray, score_fn: Any = None
    ) -> None:
        self.ex, self.xs, self.classes = explainer, xs, classes
        self.score_fn = explainer.score_fn if score_fn is None else score_fn
        self.size = explainer.map_size
        self.max_channels = explainer.max_channels

    def place(self, maps: np.ndarray) -> np.ndarray:
        return place_on_input(maps, self.ex._geometry_2d, self.size)

    def scores(self, i: int, masks: np.ndarray) -> np.ndarray:
        ex, xs, size = self.ex, self.xs, self.size
        k = len(masks)
        bs, spans = chunks(k, ex.batch_size)
        scores = np.empty(k, dtype=np.float64)
        for start, stop in spans:
            m = np.zeros((bs, *size), dtype=np.float32)  # one size for every call: one trace
            m[: stop - start] = masks[start:stop]
            batch = [np.repeat(v[i : i + 1], bs, axis=0) for v in xs]
            m = m.reshape((bs, *ex.input_shape[1:-1]))  # a 1-D map (1, steps) masks the signal's steps
            batch[ex.image_index] = (batch[ex.image_index] * m[..., None]).astype(np.float32)
            target = np.full(bs, self.classes[i], dtype=np.int32)
            s = _backend.to_numpy(self.score_fn(batch, target))
            scores[start:stop] = s[: stop - start]
        return scores


# --------------------------------------------------------------------------- function API

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def explainer(
    model: keras.Model,
    layer: str | None = None,
    method: Method = "gradcam",
    image_input: str | int | None = None,
    *,
    batch_size: int | None = None,
    max_channels: int | None = SCORECAM_CHANNELS,
    output: str | int | None = None,
) -> GradCAMExplainer:
    """A `GradCAMExplainer` for ``(model, layer, method, image_input, ...)``, cached per model."""
    check_batch_size(batch_size)
    key = (layer, method, image_input, batch_size, max_channels, output)
    kw = {"image_input": image_input, "batch_size": batch_size, "max_channels": max_channels, "output": output}
    try:
        per_model = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable
        return GradCAMExplainer(model, layer, method, **kw)
    if key not in per_model:
        per_model[key] = GradCAMExplainer(model, layer, method, **kw)
    return per_model[key]


def grad_cam(
    model: keras.Model,
    images: Any,
    *,
    layer: str | None = None,
    class_index: Any = None,
    method: Method = "gradcam",
    upsample: bool = True,
    normalize: bool = True,
    image_input: str | int | None = None,
    batch_size: int | None = None,
    max_channels: int | None = SCORECAM_CHANNELS,
    output: str | int | None = None,
) -> np.ndarray:
    """Class activation maps for ``images``: float32 (N, H, W), or (N, h, w) with ``upsample=False``;
    for 1-D signals (Conv1D models, inputs (N, steps, C)) (N, steps), or (N, cells).

    Args:
        model: a Sequential or functional classifier (nested base models allowed).
        images: a batch (N, H, W, C), or of 1-D signals (N, steps, C); for multi-input models a list or dict of
            arrays (the other inputs are held fixed).
        layer: layer name or nested path; ``None`` picks the last conv layer (or its
            activation) with a spatial output, searching nested models.
        class_index: None (each image's predicted class), an int, or one int per image; or a
            callable ``score(outputs) -> (N,)`` written with ``keras.ops``, which gets the chosen
            output (as ``model.predict`` returns it) inside the differentiated function, e.g.
            ``lambda y: y[:, 0]`` for one regression unit.
        method: ``"gradcam"``, ``"gradcam++"``, ``"hirescam"``, ``"layercam"`` or ``"scorecam"``
            (the entries of `CAM_METHODS`), or a callable ``fn(A, G)``: A and G float32
            (N, *spatial, K), returning the map before the final ReLU, (N, *spatial).
        upsample: place the map on the input by receptive-field geometry (else the
            layer's resolution).
        normalize: scale each map to [0, 1] (a constant map becomes zeros); with
            ``normalize=False`` the values are the method's own (ReLU applied).
        image_input: the image input's name or index for multi-input models.
        batch_size: images per backend call; ``None`` derives it from the layer shapes (one call's
            activations and gradients under 256 MiB, at most 64).
        max_channels: Score-CAM scores this many channels per image, the most active ones (default
            32; ``None``: every channel).
        output: the output explained, by name or index (required for multi-output models).

    The score is the target class's logit (pre-softmax), for a single sigmoid
    output the logit for class 1 and its negative for class 0. The explainer
    (probe model and compiled function) is built once per (model, layer,
    method) and cached while the model lives.
    """
    ex = explainer(model, layer, method, image_input, batch_size=batch_size, max_channels=max_channels, output=output)
    return ex.explain(images, class_index, upsample=upsample, normalize=normalize).maps
