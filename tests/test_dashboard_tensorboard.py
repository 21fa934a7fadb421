"""TensorBoard always starts with the Viz plugin, and finds it through the package's entry point.

TensorBoard imports every ``tensorboard_plugins`` entry point without a guard: a plugin that
imported Keras would stop TensorBoard from starting wherever Keras cannot load its backend.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import os
from importlib import metadata

import pytest
from dashboard_util import ROOT, get, tensorboard, write_run

from keras_vizcallbacks.dashboard import plugin as viz_plugin
from keras_vizcallbacks.writers import read_images


def test_tensorboard_starts_with_a_keras_backend_that_is_not_installed(tmp_path):
    logdir = str(tmp_path / "logs")
    run_dir = write_run(logdir, range(3), ["filters/x", "custom"])
    log = str(tmp_path / "tensorboard.log")
    with tensorboard(logdir, log, env={"KERAS_BACKEND": "not_an_installed_backend"}) as base:
        status, body, _ = get(base + "/data/plugins_listing")
        assert status == 200
        listing = json.loads(body)["keras_viz"]
        assert listing["enabled"] is True  # is_active() found the manifest
        assert listing["tab_name"] == "Viz"
        assert listing["loading_mechanism"] == {"type": "IFRAME", "module_path": "/data/plugin/keras_viz/index.js"}
        status, body, _ = get(base + "/data/plugin/keras_viz/runs")
        assert (status, json.loads(body)) == (200, {"viz": ["custom", "filters/x"]})
        status, body, ctype = get(base + "/data/plugin/keras_viz/image?run=viz&tag=custom&step=2")
        assert (status, ctype) == (200, "image/png")
        assert body == next(r.encoded for r in read_images(run_dir)["custom"] if r.step == 2)


def test_the_entry_point_and_package_data_are_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    target = project["project"]["entry-points"]["tensorboard_plugins"][viz_plugin.PLUGIN_NAME]
    module, _, attr = target.partition(":")
    assert getattr(importlib.import_module(module), attr) is viz_plugin.VizPlugin
    patterns = project["tool"]["setuptools"]["package-data"]["keras_vizcallbacks.dashboard"]
    static = sorted(os.listdir(viz_plugin.STATIC_DIR))
    assert static == sorted(viz_plugin.STATIC_FILES)
    for name in static:  # every served file ships in the wheel
        assert any(fnmatch.fnmatch(f"static/{name}", p) for p in patterns), name


def test_an_installed_package_registers_the_plugin():
    """Where this checkout is installed (``pip install -e .``, as ``make`` does), TensorBoard's entry point
    lookup finds the plugin."""
    try:
        dist = metadata.distribution("keras-vizcallbacks")
    except metadata.PackageNotFoundError:
        pytest.skip("keras-vizcallbacks is not installed (the declaration is checked above)")
    origin = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
    if os.path.realpath(origin.removeprefix("file://")) != os.path.realpath(ROOT):
        pytest.skip(f"the installed keras-vizcallbacks comes from {origin or 'an index'}, not this checkout")
    eps = [ep for ep in metadata.entry_points(group="tensorboard_plugins") if ep.name == viz_plugin.PLUGIN_NAME]
    assert len(eps) == 1, "reinstall (make) after changing pyproject.toml"
    assert eps[0].load() is viz_plugin.VizPlugin
