"""keras_vizcallbacks: Keras 3 callbacks that show what a convolutional network learns.

Add callbacks to ``model.fit``; at the end of each epoch (or every N) they write
TensorBoard image summaries under ``<log_dir>/viz``::

    import keras_vizcallbacks as kv
    model.fit(x, y, epochs=20, callbacks=[
        keras.callbacks.TensorBoard("logs/run1"),
        kv.FilterGrid("logs/run1"),
        kv.FeatureMaps("logs/run1", samples=x_val[:4]),
    ])
    # tensorboard --logdir logs --samples_per_plugin=images=1000

The import is lazy: ``import keras_vizcallbacks`` loads neither Keras nor a model
framework. ``kv.GradCAM``, ``kv.explain`` and the other names below load what
they need on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> the module that defines it (views, the base class) or the subpackage itself
_NAMES = {
    "ActivationMaximization": "keras_vizcallbacks.callbacks.activation_max",
    "ConfusionMatrix": "keras_vizcallbacks.callbacks.confusion",
    "DecisionBoundary": "keras_vizcallbacks.callbacks.boundary",
    "FeatureMaps": "keras_vizcallbacks.callbacks.feature_maps",
    "FilterGrid": "keras_vizcallbacks.callbacks.filters",
    "Frame": "keras_vizcallbacks.callbacks.base",
    "GradCAM": "keras_vizcallbacks.callbacks.gradcam",
    "Saliency": "keras_vizcallbacks.callbacks.saliency",
    "Scalar": "keras_vizcallbacks.callbacks.base",
    "TopActivations": "keras_vizcallbacks.callbacks.top_activations",
    "VizCallback": "keras_vizcallbacks.callbacks.base",
    "VizWarning": "keras_vizcallbacks.callbacks.base",
}
_SUBPACKAGES = ("datasets", "explain", "layers", "models", "render", "writers")

__all__ = sorted([*_NAMES, "__version__", *_SUBPACKAGES])

if TYPE_CHECKING:  # for type checkers and editors; at run time the names load on first use
    from keras_vizcallbacks import datasets, explain, layers, models, render, writers  # noqa: F401
    from keras_vizcallbacks.callbacks import (  # noqa: F401
        ActivationMaximization,
        ConfusionMatrix,
        DecisionBoundary,
        FeatureMaps,
        FilterGrid,
        Frame,
        GradCAM,
        Saliency,
        Scalar,
        TopActivations,
        VizCallback,
        VizWarning,
    )


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
