"""Every view of the package, built with default options for a small model.

A view listed here that the package no longer exports fails every scenario that uses
the set (`available` asks ``keras_vizcallbacks`` for each); a new view is added here.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

import keras_vizcallbacks as kv

# (view name, needs a graph: functional/Sequential model, extra constructor options)
CANDIDATES: list[tuple[str, bool, dict[str, Any]]] = [
    ("FilterGrid", False, {}),
    ("FeatureMaps", True, {}),
    ("GradCAM", True, {}),
    ("Saliency", False, {}),
    ("DecisionBoundary", True, {"mode": "embedding"}),
    ("ConfusionMatrix", False, {}),
]

SAMPLE_PARAMS = ("samples", "data", "validation_data", "x")


def available() -> list[str]:
    """Names of every view; AttributeError if the package does not export one of them."""
    for name, _, _ in CANDIDATES:
        getattr(kv, name)
    return [name for name, _, _ in CANDIDATES]


def graph_views() -> list[str]:
    return [name for name, graph, _ in CANDIDATES if graph]


def build(name: str, log_dir: str, x: np.ndarray, y: np.ndarray, class_names: list[str] | None = None, **options):
    """``kv.<name>`` with its defaults, fed ``(x, y)`` through whichever sample argument it takes."""
    cls = getattr(kv, name)
    params = inspect.signature(cls).parameters
    extra = dict(next(o for n, _, o in CANDIDATES if n == name))
    extra = {k: v for k, v in extra.items() if k in params}
    kwargs: dict[str, Any] = {}
    for p in SAMPLE_PARAMS:
        if p in params:
            kwargs[p] = (x, y)
            break
    if class_names is not None and "class_names" in params:
        kwargs["class_names"] = class_names
    kwargs.update(extra)
    kwargs.update(options)
    return cls(log_dir, **kwargs)


def build_all(log_dir: str, x, y, class_names=None, names: list[str] | None = None, **options) -> list:
    return [build(n, log_dir, x, y, class_names, **options) for n in (names or available())]


def pyplot_figures() -> int:
    from matplotlib import _pylab_helpers

    return _pylab_helpers.Gcf.get_num_fig_managers()
