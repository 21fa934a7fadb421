"""Activation maximization: the input that excites a filter most, found by gradient ascent.

For each chosen filter ``f`` of a layer, starting from faint noise (fixed by
``seed``) around the middle of the input range, ``steps`` times:

1. jitter: the image is rolled by a random shift of up to ``jitter`` pixels
   along each axis (a fixed table drawn from ``seed``);
2. the objective is the mean, over the layer's cells away from the border, of
   the filter's *rectified pre-activation*: ``z`` is the layer's output before
   its activation (a ``Conv2D(..., activation="relu")`` is run without its
   ReLU), and each cell counts ``max(z, 0) + slope * min(z, 0)``
   (``slope = 0.1``). Cells that fire count fully, the others a little, so
   the ascent makes the filter fire in many places (the plain mean of ``z``
   would be a linear function of the previous layer's channel means and lose
   every spatial pattern), and never stalls where the filter is silent
   everywhere (a ReLU output of noise is often 0, with a zero gradient);
3. the gradient with respect to the image is smoothed (``smooth`` passes of a
   3x3 binomial blur: the step then has no pixel-level checkerboard, which the
   raw gradient of a network with strided layers is full of), normalized to
   unit RMS per image, and the image moves by ``step_size`` times the width of
   the input range;
4. total variation, when asked for, pulls the other way with weight ``tv``
   (its gradient normalized the same way);
5. a light blur: the image moves ``blur`` of the way to its 3x3 binomial blur;
6. the image is clipped to ``input_range``.

"Away from the border" means the cells whose receptive field lies entirely in
the image (`layers.geometry`): cells whose window reaches into the padding
would reward edges at the image border. When no cell qualifies (a receptive
field larger than the image), every cell counts.

All filters are optimized together as one batch (row ``i`` maximizes filter
``filters[i]``) in one compiled function that runs the whole loop
(``keras.ops.fori_loop``), built once: the weights are arguments on JAX, the
filters a one-hot argument, so every epoch and every filter set of the same
size reuse one trace.

The input space is the model's own: ``input_range`` (default ``(0, 1)``) sets
the starting noise, the step and the clipping; a model that rescales inside
(``Rescaling``, ``Normalization``) is optimized in its raw input range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend, _checks
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.explain.selection import check_filters, filter_layer

NEGATIVE_SLOPE = 0.1  # weight of a cell's negative pre-activation in the objective


@dataclasses.dataclass(frozen=True)
class Regularization:
    """What keeps the optimized images natural-looking (see the module docstring).

    Args:
        jitter: largest random shift per step, in pixels; ``None`` for
            ``max(1, round(min(height, width) / 16))`` (2 px at 32 px, 14 px at 224 px).
        smooth: passes of the 3x3 binomial blur over the gradient before each step (0 for
            none). One pass already removes the pixel-level checkerboard, which the raw gradient
            of a network with strided layers is full of.
        blur: fraction of the way to the 3x3 binomial blur the image moves after each step
            (0 for none).
        tv: weight of the total-variation direction against the filter's (0 for none).
    """

    jitter: int | None = None
    smooth: int = 2
    blur: float = 0.1
    tv: float = 0.0

    def __post_init__(self) -> None:
        if self.jitter is not None and (isinstance(self.jitter, bool) or not isinstance(self.jitter, int)):
            raise ValueError(f"jitter must be a number of pixels (int >= 0) or None, got {self.jitter!r}.")
        if self.jitter is not None and self.jitter < 0:
            raise ValueError(f"jitter must be >= 0, got {self.jitter!r}.")
        if isinstance(self.smooth, bool) or not isinstance(self.smooth, int) or self.smooth < 0:
            raise ValueError(f"smooth must be a number of blur passes (int >= 0), got {self.smooth!r}.")
        if not 0.0 <= float(self.blur) <= 1.0:
            raise ValueError(f"blur must be in [0, 1], got {self.blur!r}.")
        if not 0.0 <= float(self.tv) <= 1.0:
            raise ValueError(f"tv must be in [0, 1], got {self.tv!r}.")

    def jitter_for(self, size: Sequence[int]) -> int:
        return max(1, round(min(size) / 16)) if self.jitter is None else int(self.jitter)


REGULARIZATIONS: dict[str, Regularization] = {
    "default": Regularization(),  # jitter, a smoothed gradient and a light blur
    "tv": Regularization(smooth=0, blur=0.0, tv=0.3),  # jitter and total variation
    "none": Regularization(jitter=0, smooth=0, blur=0.0, tv=0.0),
}


def regularization_from(value: Any) -> Regularization:
    """``"default"``, ``"tv"``, ``"none"`` / None, a dict of `Regularization` fields, or one."""
    if value is None:
        return REGULARIZATIONS["none"]
    if isinstance(value, Regularization):
        return value
    if isinstance(value, str):
        if value not in REGULARIZATIONS:
            raise ValueError(f"Unknown regularization {value!r}; use one of {list(REGULARIZATIONS)} or a dict.")
        return REGULARIZATIONS[value]
    if isinstance(value, dict):
        fields = {f.name for f in dataclasses.fields(Regularization)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ValueError(f"Unknown regularization keys {unknown}; the keys are {sorted(fields)}.")
        return Regularization(**value)
    raise ValueError(f"regularization must be a name {list(REGULARIZATIONS)}, a dict or None, got {value!r}.")


def check_input_range(input_range: Any) -> tuple[float, float]:
    """``(lo, hi)``, two finite numbers with lo < hi; ValueError otherwise."""
    try:
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError):
        raise ValueError(f"input_range must be two numbers (low, high), got {input_range!r}.") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"input_range must be two finite numbers with low < high, got {input_range!r}.")
    return lo, hi


def image_shape(model: keras.Model, image_size: Sequence[int] | None = None) -> tuple[int, int, int]:
    """The model's (single, 2-D) image input as ``(height, width, channels)``; ``image_size`` only
    for models whose input size is free. ValueError otherwise."""
    if len(model.inputs) != 1:
        raise ValueError(
            f"activation_maximization optimizes the single image input of a model; model {model.name!r} "
            f"has {len(model.inputs)} inputs."
        )
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) == 2:
        raise ValueError(
            f"Model {model.name!r} takes 1-D inputs {shape}; activation maximization supports 2-D images only for now."
        )
    if len(shape) != 3:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {shape}, not 2-D images (height, width, channels)."
        )
    h, w, c = shape
    if c is None:
        raise ValueError(f"Model {model.name!r} takes images with an unknown number of channels {shape}.")
    free = h is None or w is None
    if image_size is not None:
        try:
            size = tuple(int(v) for v in image_size)
        except (TypeError, ValueError):
            raise ValueError(f"image_size must be (height, width), got {image_size!r}.") from None
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"image_size must be two sizes >= 1 (height, width), got {image_size!r}.")
        if not free and size != (h, w):
            raise ValueError(
                f"image_size={size} is only for models whose input size is free (fully convolutional); "
                f"model {model.name!r} takes a fixed {h}x{w} input. Leave image_size=None."
            )
        h = size[0] if h is None else h
        w = size[1] if w is None else w
        if (h, w) != size:
            raise ValueError(f"image_size={size} does not match the model's input {shape}.")
    elif free:
        raise ValueError(
            f"Model {model.name!r} takes images of any size {shape}: pass image_size=(height, width) to "
            "choose the size of the optimized images."
        )
    return int(h), int(w), int(c)


def _blur(x: Any) -> Any:
    """3x3 binomial blur of (N, H, W, C) with edge replication (slicing only: every backend)."""
    ops = keras.ops
    xp = ops.concatenate([x[:, :1], x, x[:, -1:]], axis=1)
    x = 0.25 * xp[:, :-2] + 0.5 * x + 0.25 * xp[:, 2:]
    xp = ops.concatenate([x[:, :, :1], x, x[:, :, -1:]], axis=2)
    return 0.25 * xp[:, :, :-2] + 0.5 * x + 0.25 * xp[:, :, 2:]


def _total_variation(x: Any) -> Any:
    """Mean absolute difference of neighbouring pixels, per image (N,)."""
    ops = keras.ops
    dy = ops.abs(x[:, 1:] - x[:, :-1])
    dx = ops.abs(x[:, :, 1:] - x[:, :, :-1])
    return ops.mean(dy, axis=(1, 2, 3)) + ops.mean(dx, axis=(1, 2, 3))


class ActivationMaximizer:
    """Activation maximization for one model and layer, built once (see the module docstring).

    Args:
        model: a Sequential or functional Keras model with one 2-D image input.
        layer: a layer name or nested path with a 2-D spatial output; ``None`` for the last
            conv layer (nested models searched).
        steps: gradient-ascent steps.
        step_size: RMS change of the image per step, as a fraction of the input range.
        image_size: ``(height, width)`` of the optimized images, only for models whose input
            size is free (fully convolutional).
        input_range: ``(low, high)`` of the model's input values (default ``(0, 1)``).
        regularization: ``"default"`` (jitter, a smoothed gradient and a light blur), ``"tv"``
            (jitter and total variation), ``"none"``/None, or a dict of `Regularization` fields.
        seed: fixes the starting noise and the jitter.
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | None = None,
        *,
        steps: int = 30,
        step_size: float = 0.05,
        image_size: Sequence[int] | None = None,
        input_range: Sequence[float] | None = None,
        regularization: Any = "default",
        seed: int = 0,
    ) -> None:
        steps = _checks.integer(steps, "steps")
        if not (isinstance(step_size, (int, float)) and np.isfinite(step_size) and step_size > 0):
            raise ValueError(f"step_size must be a number > 0 (a fraction of the input range), got {step_size!r}.")
        self.model = model
        self.steps = int(steps)
        self.step_size = float(step_size)
        self.input_range = (0.0, 1.0) if input_range is None else check_input_range(input_range)
        self.regularization = regularization_from(regularization)
        self.seed = int(seed)
        self.path, self.layer = filter_layer(model, layer)
        self.shape = image_shape(model, image_size)
        self.channels_first = getattr(self.layer, "data_format", "channels_last") == "channels_first"
        probe = L.build_probe(model, pre_activation_of=[self.path])
        self.probe_model = probe.model
        spec = self.probe_model.compute_output_spec(keras.KerasTensor((1, *self.shape), dtype="float32"))
        out = tuple(spec[0].shape[1:] if isinstance(spec, (list, tuple)) else spec.shape[1:])
        if self.channels_first:
            out = (*out[1:], out[0])
        self.map_shape: tuple[int, ...] = out[:-1]
        self.n_channels = int(out[-1])
        self.geometry = L.geometry(model, self.path, self.shape[:2])
        inside = self.geometry.inside(self.map_shape, self.shape[:2])
        self.border_excluded = bool(inside.any() and not inside.all())
        self.mask = (inside if inside.any() else np.ones(self.map_shape, bool)).astype(np.float32)
        self.jitter = self.regularization.jitter_for(self.shape[:2])
        rng = np.random.default_rng(self.seed)
        self.shifts = rng.integers(-self.jitter, self.jitter + 1, size=(self.steps, 2)).astype(np.int32)
        self.fn = _backend.compile_function(self._optimize, name="activation_maximization", state=model)
        self.score_fn = _backend.compile_function(self._scores, name="activation_scores", state=model)

    # ------------------------------------------------------------------ the compiled functions
    def _pre(self, x: Any) -> Any:
        z = self.probe_model(x, training=False)
        if isinstance(z, (list, tuple)):
            z = z[0]
        z = keras.ops.cast(z, "float32")
        return keras.ops.moveaxis(z, 1, -1) if self.channels_first else z

    def _objective(self, z: Any, onehot: Any, mask: Any) -> Any:
        """Per row: mean over the masked cells of the rectified pre-activation of its filter."""
        ops = keras.ops
        per = ops.sum(z * onehot[:, None, None, :], axis=-1)  # (F, h, w)
        per = ops.maximum(per, 0.0) + NEGATIVE_SLOPE * ops.minimum(per, 0.0)
        return ops.sum(per * mask[None], axis=(1, 2)) / ops.sum(mask)

    def _optimize(self, x0: Any, onehot: Any, mask: Any, shifts: Any) -> Any:
        ops = keras.ops
        lo, hi = self.input_range
        step = self.step_size * (hi - lo)
        reg = self.regularization

        def rms(g: Any) -> Any:
            return ops.sqrt(ops.mean(g * g, axis=(1, 2, 3), keepdims=True)) + 1e-12

        def body(i: Any, x: Any) -> Any:
            shift = shifts[i]

            def objective(wrt: list[Any]) -> tuple[Any, Any]:
                moved = ops.roll(ops.roll(wrt[0], shift[0], axis=1), shift[1], axis=2)
                return self._objective(self._pre(moved), onehot, mask), None

            _, _, (g,) = _backend.value_and_grads(objective, [x])
            for _ in range(reg.smooth):
                g = _blur(g)
            direction = g / rms(g)
            if reg.tv > 0:
                _, _, (t,) = _backend.value_and_grads(lambda w: (_total_variation(w[0]), None), [x])
                direction = direction - reg.tv * t / rms(t)
            x = x + step * direction
            if reg.blur > 0:
                x = x + reg.blur * (_blur(x) - x)
            return ops.clip(x, lo, hi)

        x = ops.fori_loop(0, self.steps, body, x0)
        return x, self._scores(x, onehot, mask)

    def _scores(self, x: Any, onehot: Any, mask: Any) -> Any:
        z = self._pre(x)
        per = keras.ops.sum(z * onehot[:, None, None, :], axis=-1)
        return keras.ops.sum(per * mask[None], axis=(1, 2)) / keras.ops.sum(mask)

    # ------------------------------------------------------------------ public
    def starting_noise(self, n: int) -> np.ndarray:
        """The starting images (n, H, W, C): faint Gaussian noise (sd 5% of the range) around the
        middle of the input range, fixed by ``seed`` (row i is the same for any n > i)."""
        lo, hi = self.input_range
        rng = np.random.default_rng([self.seed, 1])
        noise = rng.standard_normal((n, *self.shape)).astype(np.float32)
        return np.clip((lo + hi) / 2 + 0.05 * (hi - lo) * noise, lo, hi).astype(np.float32)

    def _onehot(self, filters: Sequence[int]) -> np.ndarray:
        onehot = np.zeros((len(filters), self.n_channels), np.float32)
        onehot[np.arange(len(filters)), np.asarray(filters)] = 1.0
        return onehot

    def check(self, filters: Any) -> list[int]:
        """``filters`` as a list of channel indices (a count takes the first ones); ValueError if invalid."""
        chosen = check_filters(filters, self.n_channels)
        return list(range(min(chosen, self.n_channels))) if isinstance(chosen, int) else chosen

    def optimize(self, filters: Any, start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(images, scores)``: the optimized images (F, H, W, C) float32 in ``input_range``, row i
        for ``filters[i]``, and each image's `scores` for its filter (F,). ``start`` replaces the
        starting noise."""
        filters = self.check(filters)
        x0 = self.starting_noise(len(filters)) if start is None else np.asarray(start, np.float32)
        images, scores = self.fn(x0, self._onehot(filters), self.mask, self.shifts)
        return (
            _backend.to_numpy(images).astype(np.float32, copy=False),
            _backend.to_numpy(scores).astype(np.float32, copy=False),
        )

    def __call__(self, filters: Any, start: np.ndarray | None = None) -> np.ndarray:
        """The optimized images (F, H, W, C) float32 in ``input_range``, row i for ``filters[i]``."""
        return self.optimize(filters, start)[0]

    def scores(self, x: np.ndarray, filters: Any) -> np.ndarray:
        """The objective's measure without rectification: the mean pre-activation of filter
        ``filters[i]`` over the cells away from the border, for image ``x[i]`` (N,). ``filters``
        holds one channel index per image (repeats allowed), or one index for every image."""
        x = np.asarray(x, np.float32)
        filters = np.broadcast_to(np.asarray(filters, dtype=np.int64), (len(x),))
        if filters.size and not (filters.min() >= 0 and filters.max() < self.n_channels):
            raise ValueError(
                f"filter indices must be in 0..{self.n_channels - 1}, got {sorted(set(filters.tolist()))[:12]}."
            )
        s = self.score_fn(np.asarray(x, np.float32), self._onehot(filters), self.mask)
        return _backend.to_numpy(s).astype(np.float32)

    def describe(self) -> str:
        """One sentence on the method and its settings (for a view's description)."""
        reg = self.regularization
        parts = [f"jitter ±{self.jitter} px" if self.jitter else "no jitter"]
        if reg.smooth:
            parts.append(f"gradient smoothed ({reg.smooth}× 3×3 binomial)")
        if reg.blur:
            parts.append(f"blur {reg.blur:g}")
        if reg.tv:
            parts.append(f"total variation {reg.tv:g}")
        lo, hi = self.input_range
        cells = "the cells whose receptive field lies inside the image" if self.border_excluded else "every cell"
        return (
            f"gradient ascent on the input, {self.steps} steps of {self.step_size:g}× the input range "
            f"(gradient normalized per image), maximizing the mean over {cells} of the filter's rectified "
            f"pre-activation (negative values weigh {NEGATIVE_SLOPE:g}); {', '.join(parts)}; from faint noise "
            f"(seed {self.seed}); input range [{lo:g}, {hi:g}]"
        )

    def compiled_functions(self) -> list[_backend.TracedFunction]:
        return [self.fn, self.score_fn]


def activation_maximization(
    model: keras.Model,
    layer: str | None,
    filters: Any,
    *,
    steps: int = 30,
    step_size: float = 0.05,
    image_size: Sequence[int] | None = None,
    input_range: Sequence[float] | None = None,
    regularization: Any = "default",
    seed: int = 0,
) -> np.ndarray:
    """The inputs that excite each filter most: (F, H, W, C) float32 in ``input_range``.

    ``filters`` is a list of channel indices of ``layer`` (row i maximizes
    ``filters[i]``) or a count (the first ones; the callback chooses by
    activity or weight norm instead). For a notebook; a callback keeps an
    `ActivationMaximizer` built once. See the module docstring for the method.
    """
    maximizer = ActivationMaximizer(
        model,
        layer,
        steps=steps,
        step_size=step_size,
        image_size=image_size,
        input_range=input_range,
        regularization=regularization,
        seed=seed,
    )
    return maximizer(filters)


__all__ = [
    "REGULARIZATIONS",
    "ActivationMaximizer",
    "Regularization",
    "activation_maximization",
    "check_input_range",
    "image_shape",
]
