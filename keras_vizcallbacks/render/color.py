"""Normalization and colormaps: float arrays -> uint8 RGB, vectorized.

NaN and +/-Inf never raise and never poison a tile: they are drawn in
``MARKER`` (magenta), and the scale is computed from the finite values only.
A constant tile maps to the middle of the colormap (no division by zero).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

MARKER = np.array([255, 0, 255], dtype=np.uint8)  # NaN / Inf pixels


@functools.lru_cache(maxsize=32)
def lut(name: str) -> np.ndarray:
    """A matplotlib colormap as a (256, 3) uint8 lookup table."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"Unknown colormap {name!r}; e.g. 'viridis', 'magma', 'gray', 'RdBu_r', 'jet'.") from None
    table = cmap(np.linspace(0.0, 1.0, 256))[:, :3]
    table = np.round(table * 255).astype(np.uint8)
    table.flags.writeable = False
    return table


def _reduce_axes(ndim: int, keep: int) -> tuple[int, ...]:
    return tuple(range(keep, ndim))


def normalize(
    x: np.ndarray,
    *,
    per: int = 0,
    symmetric: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``x`` to [0, 1]; return ``(scaled float32, invalid mask)``.

    ``per`` is the number of leading axes that get their own scale: ``per=0``
    shares one scale over the whole array, ``per=1`` scales each ``x[i]``
    (a tile) alone. ``symmetric=True`` centres zero at 0.5 with the scale
    ``max |x|`` (for weights and signed attributions). ``vmin``/``vmax`` fix the
    range instead. Computed in float64, so huge values do not overflow.
    """
    x = np.asarray(x, dtype=np.float64)
    invalid = ~np.isfinite(x)
    if x.size == 0:
        return x.astype(np.float32), invalid
    axes = _reduce_axes(x.ndim, per)
    keep = x.shape[:per] + (1,) * (x.ndim - per)
    if invalid.any():
        x = np.where(invalid, 0.0, x)
        big, small = np.where(invalid, -np.inf, x), np.where(invalid, np.inf, x)
    else:
        big = small = x
    if symmetric:
        m = np.max(np.abs(x), axis=axes).reshape(keep) if vmax is None else np.full(keep, abs(float(vmax)))
        safe = np.where(m > 0, m, 1.0)
        out = 0.5 + 0.5 * (x / safe)
    else:
        lo = np.min(small, axis=axes).reshape(keep) if vmin is None else np.full(keep, float(vmin))
        hi = np.max(big, axis=axes).reshape(keep) if vmax is None else np.full(keep, float(vmax))
        lo = np.where(np.isfinite(lo), lo, 0.0)  # a slice with no finite value
        hi = np.where(np.isfinite(hi), hi, 0.0)
        # Divide by the magnitude first so that hi - lo cannot overflow (e.g. +-1e308).
        mag = np.maximum(np.abs(lo), np.abs(hi))
        mag = np.where(mag > 0, mag, 1.0)
        span = hi / mag - lo / mag
        ok = span > 0
        out = np.where(ok, (x / mag - lo / mag) / np.where(ok, span, 1.0), 0.5)
    out = np.clip(np.nan_to_num(out, nan=0.5, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return out.astype(np.float32), invalid


def levels(x: np.ndarray, *, per: int = 0, symmetric: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """`normalize` straight to colormap levels: ``(uint8 levels 0-255, invalid mask or None)``.

    The same levels as ``round(normalize(x, ...)[0] * 255)`` (up to ties), computed in
    float32 in place: about 4x faster on the large stacks of feature-map tiles. Arrays with
    NaN/Inf or magnitudes near the float32 limit take the float64 path of `normalize`.
    """
    x = np.asarray(x)
    if x.dtype == np.float32:
        x32 = x
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: Inf here, the float64 path below
            x32 = x.astype(np.float32)
    if x32.size == 0 or not np.isfinite(x32).all():
        return _levels_slow(x, per, symmetric)
    axes = _reduce_axes(x32.ndim, per)
    if symmetric:
        m = np.max(np.abs(x32), axis=axes, keepdims=True)
        if not np.all(m < 1e30):
            return _levels_slow(x, per, symmetric)
        y = x32 * np.where(m > 0, np.float32(127.5) / np.where(m > 0, m, 1), np.float32(0.0))
        y += np.float32(128.0)
    else:
        lo = np.min(x32, axis=axes, keepdims=True)
        hi = np.max(x32, axis=axes, keepdims=True)
        if not (np.all(np.abs(lo) < 1e30) and np.all(np.abs(hi) < 1e30)):
            return _levels_slow(x, per, symmetric)
        span = hi - lo
        ok = span > 0
        y = x32 - lo
        y *= np.where(ok, np.float32(255.0) / np.where(ok, span, 1), np.float32(0.0))
        y += np.where(ok, np.float32(0.5), np.float32(128.0))  # a constant tile: the middle level
    np.clip(y, 0.0, 255.0, out=y)
    return y.astype(np.uint8), None


def _levels_slow(x: np.ndarray, per: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray | None]:
    scaled, invalid = normalize(x, per=per, symmetric=symmetric)
    return np.round(scaled * 255.0).astype(np.uint8), (invalid if invalid.any() else None)


def colorize(scaled: np.ndarray, cmap: str = "viridis", invalid: np.ndarray | None = None) -> np.ndarray:
    """Map values in [0, 1] through a colormap's lookup table -> uint8 (..., 3)."""
    idx = np.clip(np.round(np.asarray(scaled, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)
    rgb = np.take(lut(cmap), idx, axis=0)
    if invalid is not None and invalid.any():
        rgb[invalid] = MARKER
    return rgb


def heatmap(
    x: np.ndarray,
    cmap: str = "viridis",
    *,
    per: int = 0,
    symmetric: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """normalize + colorize: float (..., H, W) -> uint8 (..., H, W, 3)."""
    scaled, invalid = normalize(x, per=per, symmetric=symmetric, vmin=vmin, vmax=vmax)
    return colorize(scaled, cmap, invalid)


def to_rgb(images: np.ndarray, *, per: int = 0, symmetric: bool = False) -> np.ndarray:
    """Images (..., H, W, C) with C in {1, 3, 4} (or more: first 3) -> uint8 RGB.

    uint8 input is kept as is; float input is min-max scaled (``per`` as in
    `normalize`; values already in [0, 1] keep their range).
    """
    images = np.asarray(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    elif images.shape[-1] == 4:
        images = images[..., :3]
    elif images.shape[-1] != 3:
        images = images[..., :3] if images.shape[-1] > 3 else np.repeat(images[..., :1], 3, axis=-1)
    if images.dtype == np.uint8:
        return images
    finite = images[np.isfinite(images)]
    if not symmetric and finite.size and finite.min() >= 0.0 and finite.max() <= 1.0:
        scaled, invalid = normalize(images, vmin=0.0, vmax=1.0)
    else:
        scaled, invalid = normalize(images, per=per, symmetric=symmetric)
    out = np.round(scaled * 255.0).astype(np.uint8)
    if invalid.any():
        bad = invalid.any(axis=-1)
        out[bad] = MARKER
    return out


def blend(base: np.ndarray, overlay: np.ndarray, alpha: float | np.ndarray = 0.5) -> np.ndarray:
    """Alpha-blend two uint8 RGB images (alpha may be per pixel, shape (..., H, W, 1))."""
    a = np.asarray(alpha, dtype=np.float32)
    out = base.astype(np.float32) * (1.0 - a) + overlay.astype(np.float32) * a
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def class_colors(n: int, cmap: str = "tab10") -> np.ndarray:
    """n distinct uint8 RGB colours (tab10, then tab20, cycled)."""
    import matplotlib

    name = cmap if n <= 10 or cmap != "tab10" else "tab20"
    colors = matplotlib.colormaps[name].colors
    rgb = np.array([colors[i % len(colors)][:3] for i in range(n)])
    return np.round(rgb * 255).astype(np.uint8)


__all__: Sequence[str] = [
    "MARKER",
    "blend",
    "class_colors",
    "colorize",
    "heatmap",
    "levels",
    "lut",
    "normalize",
    "to_rgb",
]
