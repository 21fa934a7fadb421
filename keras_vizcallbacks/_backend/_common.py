"""What the backend modules share; no framework is imported here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np


class TracedFunction:
    """A function compiled by the active backend; ``traces`` counts its traces.

    One trace per input signature (the shapes and dtypes of the arguments): a
    fixed sample batch is traced once across all epochs, which tests and
    benchmarks check. On a backend that runs eagerly (PyTorch) ``traces``
    counts the distinct signatures seen, i.e. what a compiling backend would
    have traced. Each backend module subclasses this and implements
    ``__call__``; ``isinstance(obj, TracedFunction)`` finds them all without
    loading a framework.
    """

    def __init__(self, fn: Callable[..., Any], name: str = "fn") -> None:
        self.fn = fn
        self.name = name
        self.traces = 0

    def __call__(self, *args: Any) -> Any:  # pragma: no cover - subclasses implement it
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} traces={self.traces}>"


def state_variables(state: Any) -> tuple[list[Any], list[Any]]:
    """``state`` (None, a Keras layer/model, a variable, or a sequence of them) ->
    ``(variables, layers)``: the variables in a fixed order, without duplicates,
    and the layers (models) they came from."""
    if state is None:
        return [], []
    items: Iterable[Any] = state if isinstance(state, (list, tuple)) else [state]
    variables: list[Any] = []
    layers: list[Any] = []
    seen: set[int] = set()
    for item in items:
        if hasattr(item, "variables") and not hasattr(item, "assign"):  # a layer or model
            layers.append(item)
            found = list(item.variables)
        else:
            found = [item]
        for v in found:
            if id(v) not in seen:
                seen.add(id(v))
                variables.append(v)
    return variables, layers


def signature(leaves: Sequence[Any]) -> tuple:
    """Shapes and dtypes of the array leaves of a call (what a trace is keyed by)."""
    out = []
    for leaf in leaves:
        shape = getattr(leaf, "shape", None)
        dtype = getattr(leaf, "dtype", None)
        if shape is None:
            out.append((type(leaf).__name__, leaf if isinstance(leaf, (int, float, bool, str)) else None))
        else:
            out.append((tuple(shape), str(dtype)))
    return tuple(out)


def seed_python_and_numpy(seed: int) -> None:
    """Seed what Keras draws unseeded initializers from (Python's ``random``) and numpy.

    ``keras.utils.set_random_seed`` does this too, but also seeds TensorFlow whenever it is
    installed, which imports it: the JAX and PyTorch modules call this instead.
    """
    import random

    random.seed(int(seed))
    np.random.seed(int(seed))


def as_numpy_leaf(x: Any) -> Any:
    """numpy scalars become 0-d arrays (so every backend sees an array, not a Python number)."""
    if isinstance(x, np.generic):
        return np.asarray(x)
    return x
