"""Layer outputs (feature maps) from one forward pass of a probe model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L


class ActivationProbe:
    """Returns several layers' outputs for a batch from one compiled forward pass.

    Built once; calls with a batch of the same shape reuse one trace
    (``self.fn.traces`` counts them).
    """

    def __init__(self, model: keras.Model, paths: Sequence[str], *, output: bool = False) -> None:
        self.paths = list(paths)
        self.probe = L.build_probe(model, self.paths, output=output)
        probe_model = self.probe.model
        self.fn = _backend.compile_function(lambda x: probe_model(x, training=False), name="activations", state=model)

    def __call__(self, x: Any) -> dict[str, np.ndarray]:
        values = self.fn(x)
        if not isinstance(values, (list, tuple)):
            values = [values]
        return {
            n: _backend.to_numpy(v).astype(np.float32, copy=False)
            for n, v in zip(self.probe.names, values, strict=True)
        }

    def compiled_functions(self) -> list[_backend.TracedFunction]:
        """The compiled forward pass (counts its traces in ``.traces``)."""
        return [self.fn]


def feature_maps(model: keras.Model, x: Any, layers: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``{layer path: output}`` (float32, channels last as the layer gives them) for ``x``.

    ``layers`` defaults to every conv layer (nested models searched). For a
    notebook; callbacks keep an `ActivationProbe` built once.
    """
    paths = [p for p, _ in L.conv_layers(model)] if layers is None else [L.find_layer(model, n)[0] for n in layers]
    return ActivationProbe(model, paths)(x)
