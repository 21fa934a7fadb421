"""The saliency method table: one entry per method.

An entry (`SaliencyMethod`) is a title, the method's options with their
defaults, a check of those options, and the function that makes the
per-channel attribution. The function receives a `Gradients`: the images,
their gradients and scores for the target class, and ``copies``, which
evaluates the gradients of many copies of the images (noisy, interpolated) in
fixed-size batches. Adding a method is adding one entry to `SALIENCY_METHODS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

Copies = Callable[[np.ndarray, Callable[[int, int], np.ndarray]], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass
class Gradients:
    """What a saliency method receives (numpy)."""

    image: np.ndarray  # (N, H, W, C) float32: the images
    gradients: np.ndarray  # d score / d image, same shape
    scores: np.ndarray  # (N,) the target class's logit
    classes: np.ndarray  # int32 (N,) the target classes
    copies: Copies  # (owners (M,), make(start, stop) -> copies) -> (gradients (M, ...), scores (M,))


@dataclasses.dataclass(frozen=True)
class SaliencyMethod:
    """One saliency method: ``attribute(gradients, options) -> (attributions, delta or None)``."""

    name: str
    title: str
    attribute: Callable[[Gradients, Mapping[str, Any]], tuple[np.ndarray, np.ndarray | None]]
    options: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    check: Callable[[Mapping[str, Any]], None] | None = None
    summary: str = ""  # one line: what the map is (docstrings, docs)


# --------------------------------------------------------------------------- the methods


def vanilla(grad: Gradients, options: Mapping[str, Any]) -> tuple[np.ndarray, None]:
    """Simonyan et al. 2014: ``d score / d x``."""
    return grad.gradients, None


def gradient_x_input(grad: Gradients, options: Mapping[str, Any]) -> tuple[np.ndarray, None]:
    """``x * d score / d x``."""
    return grad.gradients * grad.image, None


def smoothgrad(grad: Gradients, options: Mapping[str, Any]) -> tuple[np.ndarray, None]:
    """Smilkov et al. 2017: the mean gradient over ``n_samples`` noisy copies ``x + N(0, sigma²)``,
    ``sigma = noise * (max(x) - min(x))`` per image, the noise drawn from ``seed``."""
    img = grad.image
    n, k = len(img), int(options["n_samples"])
    flat = img.reshape(n, -1)
    sigma = float(options["noise"]) * (flat.max(axis=1) - flat.min(axis=1))  # (n,)
    rng = np.random.default_rng(options["seed"])
    noise = rng.standard_normal((n * k, *img.shape[1:]), dtype=np.float32)
    owners = np.repeat(np.arange(n), k)

    def make(start: int, stop: int) -> np.ndarray:
        own = owners[start:stop]
        shape = (-1,) + (1,) * (img.ndim - 1)
        return img[own] + noise[start:stop] * sigma[own].reshape(shape).astype(np.float32)

    grads, _ = grad.copies(owners, make)
    return grads.reshape(n, k, *img.shape[1:]).mean(axis=1), None


def check_baseline(baseline: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The Integrated Gradients ``baseline`` broadcast to images of ``shape`` (N, ...); ValueError
    naming both shapes when it does not broadcast (the views check this before training)."""
    try:
        return np.broadcast_to(np.asarray(baseline, dtype=np.float32), tuple(shape))
    except ValueError:
        raise ValueError(
            f"baseline of shape {np.shape(baseline)} does not broadcast to the images "
            f"{tuple(shape)}; pass a number, one image {tuple(shape[1:])} or one baseline per image."
        ) from None


def integrated_gradients(grad: Gradients, options: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Sundararajan et al. 2017: ``(x - baseline) * mean gradient along the straight path``,
    trapezoidal rule over ``steps`` intervals; ``delta`` = the completeness gap per image."""
    img = grad.image
    n, m = len(img), int(options["steps"])
    baseline = check_baseline(options["baseline"], img.shape)
    alphas = np.linspace(0.0, 1.0, m + 1, dtype=np.float64)
    weights = np.full(m + 1, 1.0 / m)
    weights[[0, -1]] = 0.5 / m  # trapezoidal rule
    owners = np.repeat(np.arange(n), m + 1)
    step_of = np.tile(np.arange(m + 1), n)
    diff = img - baseline

    def make(start: int, stop: int) -> np.ndarray:
        own, a = owners[start:stop], alphas[step_of[start:stop]].astype(np.float32)
        return baseline[own] + a.reshape((-1,) + (1,) * (img.ndim - 1)) * diff[own]

    grads, scores = grad.copies(owners, make)
    grads = grads.reshape(n, m + 1, *img.shape[1:])
    avg = np.tensordot(weights.astype(np.float32), grads, axes=([0], [1]))  # (n, ...)
    baseline_scores = scores.reshape(n, m + 1)[:, 0]
    attr = (diff * avg).astype(np.float32)
    delta = attr.reshape(n, -1).sum(axis=1, dtype=np.float64) - (grad.scores.astype(np.float64) - baseline_scores)
    return attr, delta


def _check_smoothgrad(opts: Mapping[str, Any]) -> None:
    if not isinstance(opts["n_samples"], (int, np.integer)) or opts["n_samples"] < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {opts['n_samples']!r}.")
    if not np.isfinite(opts["noise"]) or opts["noise"] < 0:
        raise ValueError(f"noise must be a fraction of the input range >= 0, got {opts['noise']!r}.")


def _check_integrated_gradients(opts: Mapping[str, Any]) -> None:
    if not isinstance(opts["steps"], (int, np.integer)) or opts["steps"] < 1:
        raise ValueError(f"steps must be an integer >= 1, got {opts['steps']!r}.")


SALIENCY_METHODS: dict[str, SaliencyMethod] = {
    m.name: m
    for m in (
        SaliencyMethod("vanilla", "Vanilla gradient", vanilla, summary="the gradient of the score"),
        SaliencyMethod(
            "smoothgrad",
            "SmoothGrad",
            smoothgrad,
            MappingProxyType({"n_samples": 25, "noise": 0.15, "seed": 0}),
            _check_smoothgrad,
            summary="the mean gradient over noisy copies",
        ),
        SaliencyMethod(
            "integrated_gradients",
            "Integrated Gradients",
            integrated_gradients,
            MappingProxyType({"baseline": 0.0, "steps": 64}),
            _check_integrated_gradients,
            summary="(x - baseline) × the mean gradient along the path from the baseline",
        ),
        SaliencyMethod("gradient_x_input", "Gradient × input", gradient_x_input, summary="x × the gradient"),
    )
}


def saliency_method(method: str) -> SaliencyMethod:
    """The table entry ``method``; ValueError naming the methods for an unknown name."""
    if method not in SALIENCY_METHODS:
        raise ValueError(f"Unknown saliency method {method!r}; use one of {list(SALIENCY_METHODS)}.")
    return SALIENCY_METHODS[method]


def saliency_options(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The method's options with defaults filled in; ValueError for unknown or invalid ones."""
    entry = saliency_method(method)
    defaults = entry.options
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        allowed = sorted(defaults) or "none"
        raise ValueError(f"Unknown option(s) {unknown} for saliency method {method!r}; its options: {allowed}.")
    opts = {**defaults, **options}
    if entry.check is not None:
        entry.check(opts)
    return opts
