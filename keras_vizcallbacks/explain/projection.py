"""Projection math for 2-D slices: PCA down to two components, and the plane through three points.

Plain numpy (float64); no model. Used by the decision regions' ``"embedding"``
(`pca2`, `flip_signs`, `align_plane`, `hold_half_width`) and ``"plane"`` (`gram_schmidt_plane`) modes.
"""

from __future__ import annotations

import numpy as np


def pca2(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean (D,), components (2, D) orthonormal, explained variance ratio (2,))`` by numpy SVD.

    Always returns two components: when the centred data has rank < 2 the
    missing ones are completed with orthonormal directions (variance 0).
    """
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    mean = f.mean(axis=0) if n else np.zeros(d)
    centred = f - mean
    if n >= 2 and d <= n:
        # eigenvectors of the (d, d) scatter matrix: the same components as the SVD of the data,
        # several times cheaper for many points of a few hundred features
        var_all, vecs = np.linalg.eigh(centred.T @ centred)
        order = np.argsort(var_all)[::-1]
        s, vt = np.sqrt(np.clip(var_all[order], 0.0, None)), vecs[:, order].T
    elif n >= 2:
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
    else:
        s, vt = np.zeros(0), np.zeros((0, d))
    var = s**2
    total = float(var.sum())
    keep = [
        k for k in range(min(2, len(s))) if s[k] > 1e-7 * max(1.0, s[0])
    ]  # below: rounding noise of the eigen-solver
    comps = [vt[k] for k in keep]
    ratios = [var[k] / total if total > 0 else 0.0 for k in keep]
    basis = np.eye(d)
    for e in basis:
        if len(comps) == 2:
            break
        v = e - sum(np.dot(e, c) * c for c in comps) if comps else e.copy()
        norm = np.linalg.norm(v)
        if norm > 1e-6:
            comps.append(v / norm)
            ratios.append(0.0)
    return mean, np.stack(comps), np.asarray(ratios, dtype=np.float64)


def flip_signs(components: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Fix each component's sign: a positive dot product with ``previous`` (the last
    epoch's components), or, with no previous, a positive largest-magnitude entry."""
    c = np.array(components, dtype=np.float64, copy=True)
    for k in range(len(c)):
        aligned = previous is not None and k < len(previous)
        s = np.dot(c[k], previous[k]) if aligned else c[k][np.argmax(np.abs(c[k]))]
        if s < 0:
            c[k] = -c[k]
    return c


def align_plane(components: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """``components`` (2, D, orthonormal rows) turned within their plane to match ``previous`` best.

    Orthogonal Procrustes: the 2×2 orthogonal ``R`` (a rotation or a reflection) that minimizes
    ``||R·components - previous||`` is ``V·Uᵀ`` for ``U·S·Vᵀ = svd(components·previousᵀ)``, so the
    result spans the same plane as ``components`` (the current principal plane) and is as close
    as any basis of that plane can be to ``previous``: sign flips, swapped components and a slow
    rotation of the plane's two directions do not turn the picture. Without ``previous``: `flip_signs`.
    """
    c = np.asarray(components, dtype=np.float64)
    if previous is None or np.shape(previous) != c.shape:
        return flip_signs(c, None)
    u, _, vt = np.linalg.svd(c @ np.asarray(previous, dtype=np.float64).T)
    return (vt.T @ u.T) @ c


def ladder_above(value: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 4, 6, 8, 12, ... (2**k and 1.5 * 2**k, k any integer) that is >= ``value``."""
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        return 1.0
    base = 2.0 ** np.floor(np.log2(v))
    for step in (base, 1.5 * base, 2.0 * base):
        if step >= v * (1 - 1e-12):
            return float(step)
    return float(2.0 * base)  # unreachable: 2 * base > v


def hold_half_width(half: float | None, points: np.ndarray, pad: float) -> float:
    """The half-width ``L`` of a window ``[-L, L]`` around the origin (one axis) that moves only when the
    points leave it (hysteresis): ``L`` is the smallest of 1, 1.5, 2, 3, 4, 6, ... that holds every
    finite coordinate with ``pad`` to spare; it grows when a point comes closer than ``pad`` to the
    edge and shrinks only when the points fit in half of it. Without ``half``: that smallest value.
    """
    p = np.asarray(points, dtype=np.float64)
    p = p[np.isfinite(p)]
    if p.size == 0:  # nothing to hold: keep the window
        return half if half is not None else 1.0
    need = ladder_above(float(np.max(np.abs(p))) + pad)
    if half is None or need > half or need <= half / 2:
        return need
    return half


def gram_schmidt_plane(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plane through three points: ``(origin = x1, basis (2, D) orthonormal, coordinates (3, 2))``.

    ``basis[0]`` points from x1 to x2; ``basis[1]`` is the part of ``x3 - x1``
    orthogonal to it. Raises ``ValueError`` when the points are collinear.
    """
    o = np.asarray(x1, dtype=np.float64).reshape(-1)
    v1 = np.asarray(x2, dtype=np.float64).reshape(-1) - o
    v2 = np.asarray(x3, dtype=np.float64).reshape(-1) - o
    n1 = np.linalg.norm(v1)
    if not np.isfinite(n1) or n1 == 0:
        raise ValueError("plane: the first two anchor images are identical (or not finite); pick other anchors.")
    e1 = v1 / n1
    w = v2 - np.dot(v2, e1) * e1
    n2 = np.linalg.norm(w)
    if not np.isfinite(n2) or n2 <= 1e-9 * max(n1, 1.0):
        raise ValueError("plane: the three anchor images are collinear; pick other anchors.")
    e2 = w / n2
    coords = np.array([[0.0, 0.0], [n1, 0.0], [np.dot(v2, e1), n2]])
    return o, np.stack([e1, e2]), coords


__all__ = ["align_plane", "flip_signs", "gram_schmidt_plane", "hold_half_width", "ladder_above", "pca2"]
