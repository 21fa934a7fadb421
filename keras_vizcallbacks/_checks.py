"""Argument checks shared by the views and explainers (no Keras, no numpy needed).

Integers are accepted as any ``numbers.Integral`` (``np.int64`` from a config or an
array's ``shape`` is fine) and returned as ``int``; ``bool`` is refused (``True`` is
an int to Python, never what a caller meant by a count).
"""

from __future__ import annotations

import numbers
import os
from typing import Any


def integer(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer >= ``minimum``; ValueError naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def optional_integer(value: Any, name: str, minimum: int = 1) -> int | None:
    """`integer`, or ``None`` for ``None`` (the default is chosen later)."""
    return None if value is None else integer(value, name, minimum)


def log_dir(value: Any) -> str:
    """A TensorBoard log directory: a non-empty string or path (``None`` would write to ``./None``)."""
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str) and path.strip():
            return path
    raise ValueError(
        f"log_dir must be a directory path (a non-empty string or os.PathLike), got {value!r}: "
        "the TensorBoard log directory, e.g. 'logs/run1' (the same one keras.callbacks.TensorBoard uses)."
    )
