"""Short, readable lists for descriptions and error messages."""

from __future__ import annotations

from typing import Any

import numpy as np


def fmt_list(items: list[Any], limit: int = 12) -> str:
    """``a, b, c, … (40 in all)``: at most ``limit`` items."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def fmt_choice(idx: np.ndarray, n: int) -> str:
    """How a capped, evenly spaced choice of indices is described: 'all 32' or '16 of 64, evenly spaced (0, 4, …)'."""
    if len(idx) == n:
        return f"all {n}"
    return f"{len(idx)} of {n}, evenly spaced ({fmt_list(np.asarray(idx).tolist(), 8)})"
