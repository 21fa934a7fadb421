"""The top-level import is lazy: no Keras and no model framework until a view or an explain function is used."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import keras_vizcallbacks as kv

FRAMEWORKS = ["jax", "keras", "tensorflow", "torch"]


def loaded_after(code: str) -> list[str]:
    """The frameworks in ``sys.modules`` of a fresh interpreter after running ``code``."""
    roots = "{m.split('.')[0] for m in sys.modules}"
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({roots} & set({FRAMEWORKS!r}))))"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "module",
    [
        "keras_vizcallbacks",
        "keras_vizcallbacks.writers",
        "keras_vizcallbacks.render",
        "keras_vizcallbacks.export",
        "keras_vizcallbacks.cli",
        "keras_vizcallbacks.datasets",
    ],
)
def test_import_loads_no_framework(module):
    assert loaded_after(f"import {module}") == []


def test_a_view_loads_keras_on_first_use():
    # the same probe sees Keras once a view is touched: the check above can fail
    assert {"keras", "tensorflow"} <= set(loaded_after("import keras_vizcallbacks as kv\nkv.FilterGrid"))


def test_every_public_name_resolves():
    for name in kv.__all__:
        assert getattr(kv, name) is not None, name
    assert set(kv.__all__) <= set(dir(kv))
    assert {"GradCAM", "explain", "layers", "VizCallback"} <= set(kv.__all__)
    from keras_vizcallbacks.callbacks.gradcam import GradCAM

    assert kv.GradCAM is GradCAM
    assert callable(kv.explain.grad_cam) and kv.layers.__name__ == "keras_vizcallbacks.layers"
    with pytest.raises(AttributeError, match="no attribute 'NoSuchView'"):
        kv.NoSuchView  # noqa: B018
