"""Data sets: the embedded synthetic shapes set (no download), and loaders for
real data for users who have the internet."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "cross")


class Shapes(NamedTuple):
    images: np.ndarray  # float32 (N, size, size, 3) in [0, 1]
    labels: np.ndarray  # int32 (N,)
    class_names: list[str]
    masks: np.ndarray  # bool (N, size, size): where the shape is


def shapes(n: int, size: int = 32, seed: int = 0) -> Shapes:
    """Coloured shapes (circle, square, triangle, cross) on noisy backgrounds.

    Each image holds one shape at a random position, size and colour, on a
    random background colour with a brightness gradient and Gaussian noise.
    Classes are balanced. Deterministic for a ``seed``. ``masks`` marks the
    shape's pixels, so tests can check where an attribution map looks.
    """
    if n < 0 or size < 8:
        raise ValueError(f"shapes needs n >= 0 and size >= 8, got n={n}, size={size}.")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_NAMES)).astype(np.int32)
    r = rng.uniform(0.16, 0.30, n) * size
    cx = rng.uniform(r + 1, size - r - 1)
    cy = rng.uniform(r + 1, size - r - 1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    rr = r[:, None, None]
    circle = dx**2 + dy**2 <= rr**2
    square = np.maximum(np.abs(dx), np.abs(dy)) <= rr * 0.8
    triangle = (dy >= -rr) & (dy <= 0.75 * rr) & (np.abs(dx) <= (dy + rr) / 1.75)
    arm = rr * 0.32
    cross = ((np.abs(dx) <= rr) & (np.abs(dy) <= arm)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= rr))
    masks = np.select([labels[:, None, None] == k for k in range(4)], [circle, square, triangle, cross])

    dark_bg = rng.random(n) < 0.5
    bg = np.where(dark_bg[:, None], rng.uniform(0.0, 0.45, (n, 3)), rng.uniform(0.55, 1.0, (n, 3)))
    fg = np.where(dark_bg[:, None], rng.uniform(0.55, 1.0, (n, 3)), rng.uniform(0.0, 0.45, (n, 3)))
    angle = rng.uniform(0, 2 * np.pi, n)
    ramp = (np.cos(angle)[:, None, None] * xx + np.sin(angle)[:, None, None] * yy) / size - 0.5
    gradient = rng.uniform(0.0, 0.25, n)[:, None, None] * ramp
    m = masks[..., None].astype(np.float32)
    images = bg[:, None, None, :] * (1 - m) + fg[:, None, None, :] * m
    images = images + gradient[..., None] + rng.normal(0.0, 0.06, images.shape)
    images = np.clip(images, 0.0, 1.0).astype(np.float32)
    return Shapes(images, labels, list(SHAPE_NAMES), masks.astype(bool))


def two_moons(n: int, noise: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles in 2-D (float32 points, int32 labels 0/1)."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int32)
    t = rng.uniform(0, np.pi, n)
    x = np.where(labels == 0, np.cos(t), 1 - np.cos(t))
    y = np.where(labels == 0, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], axis=1) + rng.normal(0, noise, (n, 2))
    order = rng.permutation(n)
    return pts[order].astype(np.float32), labels[order]


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar10_airplane_car(n_train: int | None = None, n_test: int | None = None):
    """The seed article's subset: CIFAR-10 airplanes vs cars (labels 0/1), scaled to [0, 1].

    Downloads CIFAR-10 through ``keras.datasets`` (needs the internet the first
    time). Raises ``RuntimeError`` with a clear message when it cannot.
    Returns ``((x_train, y_train), (x_test, y_test), ["airplane", "car"])``.
    """
    import keras

    try:
        (xt, yt), (xv, yv) = keras.datasets.cifar10.load_data()
    except Exception as e:  # network errors come in many types
        raise RuntimeError(
            "Could not load CIFAR-10 (keras.datasets.cifar10 needs the internet the first time, "
            f"or a cached copy in ~/.keras/datasets): {e}. Use the embedded data set instead: "
            "keras_vizcallbacks.datasets.shapes(n)."
        ) from e
    return _airplane_car(xt, yt, xv, yv, n_train, n_test)


def _airplane_car(xt, yt, xv, yv, n_train=None, n_test=None):
    def pick(x, y, n):
        y = np.asarray(y).reshape(-1)
        keep = (y == 0) | (y == 1)
        x, y = x[keep], y[keep]
        if n is not None:
            x, y = x[:n], y[:n]
        return (x.astype(np.float32) / 255.0), y.astype(np.int32)

    return pick(xt, yt, n_train), pick(xv, yv, n_test), ["airplane", "car"]
