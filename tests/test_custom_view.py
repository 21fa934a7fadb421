"""The view of examples/custom_view.py (docs/custom_view.md), tested like the built-in views: its explain
function against numpy, its event file read back (tags, steps, pixels against the layer outputs computed
by hand), its configuration error before the first batch."""

from __future__ import annotations

import os
import re
import runpy

import keras
import numpy as np
import pytest
from util import assert_steps, compiled, image, random_data, read_run, small_functional

import keras_vizcallbacks as kv

EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "custom_view.py")
EXAMPLE_NS = runpy.run_path(EXAMPLE, run_name="custom_view")
ActivationHistograms = EXAMPLE_NS["ActivationHistograms"]
activation_histograms = EXAMPLE_NS["activation_histograms"]

BAR_COLOUR = (70, 140, 200)


def test_the_view_uses_only_the_public_base_class():
    assert ActivationHistograms.__mro__[1] is kv.VizCallback
    with open(EXAMPLE) as f:
        source = f.read()
    assert "keras_vizcallbacks." not in source.replace("import keras_vizcallbacks as kv", "")  # kv.<public> only
    assert "kv._" not in source and "._" not in source.replace("__", "")


def test_the_docs_show_the_examples_code():
    with open(EXAMPLE) as f:
        source = f.read()
    with open(os.path.join(os.path.dirname(os.path.dirname(EXAMPLE)), "docs", "custom_view.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    assert blocks[0] in source and blocks[1] in source  # the explain function and the callback, verbatim
    callback = source[source.index("class ActivationHistograms") : source.index("def main")].strip()
    assert len(callback.splitlines()) <= 60


def test_explain_function_matches_numpy():
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(4, 5, 5, 3)), 0)  # ReLU outputs: about half exact zeros
    a[0, 0, 0, 0] = np.nan
    h = activation_histograms({"layer": a}, bins=10)["layer"]
    nonzero = a[np.isfinite(a) & (a != 0)]
    counts, edges = np.histogram(nonzero, bins=10, range=(nonzero.min(), nonzero.max()))
    np.testing.assert_array_equal(h.counts, counts)
    np.testing.assert_allclose(h.edges, edges)
    assert h.zeros == pytest.approx(np.mean(a == 0)) and 0.3 < h.zeros < 0.7 and h.size == a.size
    dead = activation_histograms({"dead": np.zeros((2, 3, 3, 4))}, bins=8)["dead"]  # nothing to bin: no crash
    assert dead.zeros == 1.0 and dead.counts.sum() == 0 and np.all(np.isfinite(dead.edges))


def test_writes_every_conv_layer_every_epoch_with_the_bars_of_its_outputs(log_dir):
    keras.utils.set_random_seed(1)
    model = compiled(small_functional())
    x, y = random_data(16)
    cb = ActivationHistograms(log_dir, x[:4], bins=12)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb])
    run = read_run(log_dir)
    tags = ["activation_histograms/c1", "activation_histograms/c2"]
    assert sorted(run) == tags
    assert_steps(run, tags, [0, 1, 2])
    descriptions = kv.writers.read_descriptions(os.path.join(log_dir, "viz"))
    for path in ("c1", "c2"):
        # the reference: the trained layer's outputs computed by hand, binned by numpy
        outputs = np.asarray(keras.Model(model.inputs, model.get_layer(path).output)([x[:4]]))
        nonzero = outputs[np.isfinite(outputs) & (outputs != 0)]
        counts, _ = np.histogram(nonzero, bins=12, range=(nonzero.min(), nonzero.max()))
        expected = np.round(np.log1p(counts) / np.log1p(counts).max() * 96)
        picture = image(run[f"activation_histograms/{path}"][-1])
        assert picture.dtype == np.uint8 and picture.shape[1] == 12 * 8 and picture.shape[0] > 96
        bars = np.all(picture[-96:] == BAR_COLOUR, axis=-1)  # the bar panel, below the header
        per_bin = bars.reshape(96, 12, 8)
        assert np.all(per_bin[:, :, :7] == per_bin[:, :, :1]) and not per_bin[:, :, 7].any()  # 7 px bars, 1 px gaps
        heights = bars[:, ::8].sum(axis=0)
        assert np.abs(heights - expected).max() <= 1, (heights, expected)  # float32 ties at a bin edge: 1 px
        assert heights.max() == 96 and not np.any(bars[:, ::8] & ~np.cumsum(bars[:, ::8], axis=0).astype(bool))
        assert f"Output values of `{path}`" in descriptions[f"activation_histograms/{path}"]
    # the first and last epochs differ: the weights moved
    assert not np.array_equal(image(run["activation_histograms/c2"][0]), image(run["activation_histograms/c2"][-1]))
    assert list(cb.trace_counts().values()) == [1] and cb.failures == []


def test_async_write_writes_the_same_steps(log_dir):
    model = compiled(small_functional())
    x, y = random_data(16)
    cb = ActivationHistograms(log_dir, x[:4], ["c2"], async_write=True)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb])
    assert_steps(read_run(log_dir), ["activation_histograms/c2"], [0, 1, 2])


def test_unknown_layer_fails_before_training(log_dir):
    model = compiled(small_functional())
    x, y = random_data(8)
    with pytest.raises(ValueError, match=r"conv layers: \['c1', 'c2'\]"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[ActivationHistograms(log_dir, x[:2], ["dense"])])
    with pytest.raises(ValueError, match="bins"):
        ActivationHistograms(log_dir, x[:2], bins=1)
