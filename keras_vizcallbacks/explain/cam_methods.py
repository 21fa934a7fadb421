"""The Grad-CAM family's method table: one entry per method.

An entry (`CAMMethod`) is a title, whether the method needs gradients, and the
function that makes its map before the final ReLU, shape (N, *spatial):

* gradient methods: ``fn(A, G)`` with the layer's activations ``A`` and the
  gradients ``G = d score / d A`` of the target class's logit, float32
  (N, *spatial, K);
* gradient-free methods: ``fn(A, scorer)``: ``scorer`` (a `MaskedScorer`)
  places maps on the input and scores masked copies of one image.

A user's callable ``fn(A, G)`` is a method too (`cam_method`): its title is
its ``__name__``. Adding a method is adding one entry to `CAM_METHODS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from keras_vizcallbacks.explain._placement import normalize_maps
from keras_vizcallbacks.explain.selection import most_active

SCORECAM_CHANNELS = 32  # Score-CAM's default: this many channels per image, the most active ones


class MaskedScorer(Protocol):
    """What a gradient-free method receives: how to place maps on the input, the
    target-class score of masked copies of one image, and how many channels to score
    per image (``max_channels``, None for all)."""

    max_channels: int | None

    def place(self, maps: np.ndarray) -> np.ndarray:
        """Maps (K, h, w) at the layer's resolution -> (K, H, W) on the input (receptive-field centres)."""
        ...

    def scores(self, i: int, masks: np.ndarray) -> np.ndarray:
        """Target-class logit (float64, (K,)) of image ``i`` multiplied by each mask (K, H, W)."""
        ...


@dataclasses.dataclass(frozen=True)
class CAMMethod:
    """One CAM method: ``fn(A, G)`` (``gradients=True``) or ``fn(A, scorer)`` -> map before ReLU (N, *spatial)."""

    name: str
    title: str
    fn: Callable[[np.ndarray, Any], np.ndarray]
    gradients: bool = True
    summary: str = ""  # one line: what the map is (docstrings, docs)


# --------------------------------------------------------------------------- the methods


def _weighted(weights: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.einsum("nk,nhwk->nhw", weights, a)


def gradcam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Selvaraju et al. 2017: channel weights = spatial mean of G; map = sum_k w_k A_k."""
    return _weighted(g.mean(axis=(1, 2)), a)


def gradcam_pp(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Chattopadhyay et al. 2018: channel weights = sum over cells of ReLU(G) times
    alpha = G² / (2 G² + sum(A) G³) (the closed form that assumes an exponential of the score)."""
    g2 = g * g
    g3 = g2 * g
    sum_a = a.sum(axis=(1, 2), keepdims=True)
    denom = 2.0 * g2 + sum_a * g3
    safe = np.where(np.abs(denom) > 1e-12, denom, 1.0)
    alpha = np.where((g != 0) & (np.abs(denom) > 1e-12), g2 / safe, 0.0)
    weights = (np.maximum(g, 0.0) * alpha).sum(axis=(1, 2))
    return _weighted(weights, a)


def hirescam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Draelos & Carin 2020: sum_k G_k * A_k, the element-wise product, no spatial averaging."""
    return (g * a).sum(axis=-1)


def layercam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Jiang et al. 2021: sum_k ReLU(G_k) * A_k."""
    return (np.maximum(g, 0.0) * a).sum(axis=-1)


def scored_channels(a: np.ndarray, k: int | None) -> np.ndarray:
    """The channels of one image's activations ``a`` (h, w, K) that Score-CAM scores, in channel order:
    the ``k`` with the largest mean activation (`selection.most_active`), or all when ``k`` is None or >= K."""
    n = a.shape[-1]
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(most_active(a[None], int(k)))


def scorecam(a: np.ndarray, scorer: MaskedScorer) -> np.ndarray:
    """Wang et al. 2020, gradient free: each channel, min-max scaled and placed on the input,
    masks the image; its weight is the softmax over channels of the target logit for that
    masked image. One forward pass per channel and image (batched). Only the
    ``scorer.max_channels`` most active channels of each image (largest mean activation) are
    scored and weighted; the others get weight 0."""
    n, h, w = a.shape[:3]
    out = np.zeros((n, h, w), dtype=np.float64)
    for i in range(n):
        keep = scored_channels(a[i], getattr(scorer, "max_channels", None))
        ai = a[i][..., keep]
        channels = np.moveaxis(ai, -1, 0)  # (K, h, w)
        masks = normalize_maps(scorer.place(channels))  # (K, H, W)
        scores = scorer.scores(i, masks)
        z = np.exp(scores - scores.max())
        weights = z / z.sum()
        out[i] = np.einsum("k,hwk->hw", weights, ai)
    return out.astype(np.float32)


CAM_METHODS: dict[str, CAMMethod] = {
    m.name: m
    for m in (
        CAMMethod("gradcam", "Grad-CAM", gradcam, summary="channel weights = spatial mean of the gradients"),
        CAMMethod("gradcam++", "Grad-CAM++", gradcam_pp, summary="channel weights from positive gradients, alpha"),
        CAMMethod("hirescam", "HiResCAM", hirescam, summary="element-wise gradient × activation, summed"),
        CAMMethod("layercam", "LayerCAM", layercam, summary="element-wise ReLU(gradient) × activation, summed"),
        CAMMethod(
            "scorecam",
            "Score-CAM",
            scorecam,
            gradients=False,
            summary=(
                "gradient free: channel weights = softmax of the score of the image masked by each channel "
                f"(the {SCORECAM_CHANNELS} most active channels by default)"
            ),
        ),
    )
}


def cam_method(method: str | Callable[[np.ndarray, np.ndarray], np.ndarray]) -> CAMMethod:
    """A table entry by name, or a user's gradient method ``fn(A, G)`` (titled by its ``__name__``).

    Raises ValueError naming the methods for an unknown name.
    """
    if isinstance(method, CAMMethod):
        return method
    if callable(method):
        name = getattr(method, "__name__", type(method).__name__)
        return CAMMethod(name, name, method, summary="a user's method fn(A, G)")
    if method not in CAM_METHODS:
        raise ValueError(
            f"Unknown Grad-CAM method {method!r}; use one of {list(CAM_METHODS)}, or a callable fn(A, G) "
            "returning the map before ReLU."
        )
    return CAM_METHODS[method]
