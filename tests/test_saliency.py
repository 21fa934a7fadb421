"""Saliency: vanilla / gradient x input against a per-image GradientTape reference,
SmoothGrad and Integrated Gradients properties (completeness, linear models), uint8
rendering without wrap-around, the randomisation sanity check, and the callback."""

from __future__ import annotations

import pathlib
import re

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_gradcam import spearman
from util import assert_steps, compiled, image, random_data, read_run, small_functional

import keras_vizcallbacks as kv
from keras_vizcallbacks import render
from keras_vizcallbacks.explain import SaliencyExplainer
from keras_vizcallbacks.render import overlay
from keras_vizcallbacks.writers import read_descriptions


def logits_model(model):
    """Pre-softmax output built by hand: the last Dense layer's input, times its kernel."""
    last = model.layers[-1]
    features = keras.Model(model.inputs[0], last.input)
    return lambda x: tf.matmul(features(x), last.kernel) + last.bias


def tape_gradients(logits, x, classes):
    out = []
    for i in range(len(x)):
        xi = tf.constant(x[i : i + 1])
        with tf.GradientTape() as tape:
            tape.watch(xi)
            s = logits(xi)[0, int(classes[i])]
        out.append(tape.gradient(s, xi).numpy()[0])
    return np.stack(out)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(21)
    m = compiled(small_functional())
    x, y = random_data(64)
    m.fit(x, y, epochs=2, verbose=0)
    return m


def linear_model():
    """No nonlinearity between input and logits: gradients do not depend on x."""
    inp = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, name="c")(inp)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(3, activation="softmax", name="out")(h)
    return keras.Model(inp, out)


def test_vanilla_and_gradient_x_input_equal_the_tape_reference(model):
    x, _ = random_data(4, seed=1)
    classes = np.argmax(model.predict(x, verbose=0), axis=1)
    ref = tape_gradients(logits_model(model), x, classes)
    raw = kv.explain.saliency(model, x, reduce=None)
    assert raw.shape == x.shape and raw.dtype == np.float32
    np.testing.assert_allclose(raw, ref, atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(kv.explain.saliency(model, x), np.abs(ref).max(-1), atol=1e-6, rtol=1e-5)
    np.testing.assert_allclose(kv.explain.saliency(model, x, reduce="sum"), ref.sum(-1), atol=1e-6, rtol=1e-5)
    gxi = kv.explain.saliency(model, x, method="gradient_x_input", reduce=None)
    np.testing.assert_allclose(gxi, x * ref, atol=1e-6, rtol=1e-5)
    ref1 = tape_gradients(logits_model(model), x, [1, 0, 2, 1])
    got = kv.explain.saliency(model, x, class_index=[1, 0, 2, 1], reduce=None)
    np.testing.assert_allclose(got, ref1, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="3 classes"):
        kv.explain.saliency(model, x, class_index=3)


def test_smoothgrad_properties(model):
    x, _ = random_data(3, seed=2)
    vanilla = kv.explain.saliency(model, x, reduce=None)
    # no noise: the mean of identical gradients
    quiet = kv.explain.saliency(model, x, method="smoothgrad", noise=0.0, n_samples=5, reduce=None)
    np.testing.assert_allclose(quiet, vanilla, atol=1e-6, rtol=1e-5)
    # noise changes a nonlinear model's map, reproducibly for one seed
    a = kv.explain.saliency(model, x, method="smoothgrad", n_samples=10, reduce=None)
    b = kv.explain.saliency(model, x, method="smoothgrad", n_samples=10, reduce=None)
    c = kv.explain.saliency(model, x, method="smoothgrad", n_samples=10, seed=1, reduce=None)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, vanilla, atol=1e-6) and not np.allclose(a, c, atol=1e-6)
    # a linear model's gradient is the same everywhere: SmoothGrad equals the plain gradient
    lin = linear_model()
    xl = np.random.default_rng(3).random((2, 8, 8, 3), dtype=np.float32)
    g = kv.explain.saliency(lin, xl, class_index=1, reduce=None)
    s = kv.explain.saliency(lin, xl, class_index=1, method="smoothgrad", noise=0.5, n_samples=70, reduce=None)
    np.testing.assert_allclose(s, g, atol=1e-6, rtol=1e-4)  # 140 copies: three batches of 64, padded


def test_integrated_gradients_completeness(trained_cnn, shapes_test):
    """sum(attributions) == F(x) - F(baseline) (target logit) within 1% at 256 steps."""
    x = shapes_test.images[:4]
    last = trained_cnn.layers[-1]
    features = keras.Model(trained_cnn.inputs[0], trained_cnn.get_layer("dropout").output)

    def logit(v):
        return (features(v).numpy() @ last.kernel.numpy() + last.bias.numpy()).astype(np.float64)

    classes = np.argmax(logit(x), axis=1)
    rows = np.arange(len(x))
    gap = logit(x)[rows, classes] - logit(np.zeros_like(x))[rows, classes]
    errors = {}
    for steps in (16, 32, 64, 128, 256):
        attr = kv.explain.saliency(trained_cnn, x, method="integrated_gradients", steps=steps, reduce=None)
        err = np.abs(attr.reshape(len(x), -1).sum(1) - gap) / np.maximum(np.abs(gap), 1.0)
        errors[steps] = float(err.max())
    print("IG relative completeness error by steps:", {k: f"{v:.4f}" for k, v in errors.items()})
    assert errors[256] < 0.01
    assert errors[256] < errors[16]


def test_integrated_gradients_on_a_linear_model_is_exact():
    lin = linear_model()
    x = np.random.default_rng(4).random((2, 8, 8, 3), dtype=np.float32)
    baseline = np.full((8, 8, 3), 0.3, dtype=np.float32)
    g = kv.explain.saliency(lin, x, class_index=2, reduce=None)
    ig = kv.explain.saliency(
        lin, x, class_index=2, method="integrated_gradients", baseline=baseline, steps=4, reduce=None
    )
    np.testing.assert_allclose(ig, (x - baseline) * g, atol=1e-6, rtol=1e-4)
    r = SaliencyExplainer(lin, "integrated_gradients", steps=4).explain(x, 2)
    assert np.abs(r.delta).max() < 1e-4  # completeness, reported


def test_rendered_saliency_uses_the_full_range_without_wrap_around(model):
    """tf-explain wrapped large values around in uint8; here grey is monotonic and spans 0..255."""
    x, _ = random_data(2, seed=5)
    maps = kv.explain.saliency(model, x) * 1e6  # huge values: uint8 arithmetic would wrap
    grey = overlay.attribution_image(maps, "gray")[..., 0].astype(int)
    for m, g in zip(maps, grey):
        order = np.argsort(m.ravel(), kind="mergesort")
        assert np.all(np.diff(g.ravel()[order]) >= 0), "grey level not monotonic in the saliency"
        assert g.min() == 0 and g.max() == 255
    signed = overlay.attribution_image(np.array([[[-3e9, 0.0, 1.5e9]]]), "gray", symmetric=True)[0, 0, :, 0]
    assert signed.tolist() == [0, 128, 191]  # zero in the middle, the ends at ±max|x|
    # NaN / Inf / constant maps render without errors
    odd = overlay.attribution_image(np.array([[[np.nan, np.inf]], [[2.0, 2.0]]]), "gray")
    assert odd.dtype == np.uint8 and (odd[0, 0, 0] == render.MARKER).all()


def test_saliency_depends_on_the_weights(trained_cnn, shapes_test):
    """Adebayo et al. 2018. Signed attributions of a re-initialised model are unrelated to the
    trained model's (rank correlation < 0.5). Absolute-value maps are not: they keep the
    image's edges whatever the weights (measured ~0.65 here), which the docs point out."""
    x = shapes_test.images[:24]
    keras.utils.set_random_seed(12)
    random_model = keras.models.clone_model(trained_cnn)
    classes = np.argmax(trained_cnn.predict(x, verbose=0), axis=1)
    for method, options in [("vanilla", {}), ("smoothgrad", {"n_samples": 8}), ("integrated_gradients", {"steps": 16})]:
        a = kv.explain.saliency(trained_cnn, x, class_index=classes, method=method, reduce="sum", **options)
        b = kv.explain.saliency(random_model, x, class_index=classes, method=method, reduce="sum", **options)
        rho = np.nanmean([spearman(p, q) for p, q in zip(a, b)])
        same = np.nanmean([spearman(p, q) for p, q in zip(a, a + 1e-3 * np.abs(a).max() * np.sign(a))])
        print(f"{method} (signed) trained vs re-initialised: mean Spearman {rho:.3f}")
        assert rho < 0.5 and same > 0.9
    a = kv.explain.saliency(trained_cnn, x, class_index=classes)
    b = kv.explain.saliency(random_model, x, class_index=classes)
    rho_abs = np.nanmean([spearman(p, q) for p, q in zip(a, b)])
    print(f"vanilla |gradient| (max_abs) trained vs re-initialised: {rho_abs:.3f}")


def test_callback_writes_each_epoch_and_traces_once(log_dir, model):
    m = keras.models.clone_model(model)
    m.set_weights(model.get_weights())
    compiled(m)
    x, y = random_data(24, seed=6)
    vanilla = kv.Saliency(log_dir, x[:1], labels=y[:1], cmap="gray", percentile=None, alpha=0.5)
    smooth = kv.Saliency(
        log_dir, (x[:3], y[:3]), method="smoothgrad", method_options={"n_samples": 8}, class_names=["a", "b", "c"]
    )
    ig = kv.Saliency(log_dir, x[:2], labels=y[:2], method="integrated_gradients", reduce="sum", target="true")
    m.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[vanilla, smooth, ig])
    for cb in (vanilla, smooth, ig):
        assert cb.failures == []
        assert cb.explainer.fn.traces == 1 and cb.explainer.copies_fn.traces <= 1
    assert smooth.explainer.copies_fn.traces == 1 and ig.explainer.copies_fn.traces == 1
    run = read_run(log_dir)
    tags = ["saliency/vanilla", "saliency/smoothgrad", "saliency/integrated_gradients"]
    assert_steps(run, tags, [0, 1, 2])
    img = image(run["saliency/vanilla"][-1])
    # [input | map | overlay] at factor 6 (16 px -> 96 px): the map panel is the grey saliency
    f = 6
    rgb = render.upscale(render.to_rgb(x[:1], per=1)[0], f)
    hits = np.argwhere((img[: -f * 16, :, :] == rgb[0, 0]).all(-1))
    top, left = next(
        (int(t), int(lft)) for t, lft in hits if np.array_equal(img[t : t + 16 * f, lft : lft + 16 * f], rgb)
    )
    panel = img[top : top + 16 * f, left + 16 * f + 4 : left + 32 * f + 4][::f, ::f, 0].astype(int)
    expected = kv.explain.saliency(m, x[:1])[0]
    order = np.argsort(expected.ravel(), kind="mergesort")
    assert np.all(np.diff(panel.ravel()[order]) >= 0) and panel.min() == 0 and panel.max() == 255
    desc = read_descriptions(log_dir + "/viz")
    assert "SmoothGrad" in desc["saliency/smoothgrad"] and "n_samples=8" in desc["saliency/smoothgrad"]
    # the completeness gap is a per-epoch number: in the captions and a scalar, not in the description
    assert "completeness gap" in desc["saliency/integrated_gradients"]
    gap = kv.writers.read_scalars(log_dir + "/viz")["saliency/integrated_gradients/completeness_gap"]
    assert [s.step for s in gap] == [0, 1, 2]


def test_callback_configuration_errors(log_dir, model):
    x, y = random_data(8)
    m = compiled(keras.models.clone_model(model))
    with pytest.raises(ValueError, match=r"target='true' needs the true labels"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[kv.Saliency(log_dir, x[:2], target="true")])
    with pytest.raises(ValueError, match=r"4 class_names.*3 classes"):
        m.fit(x, y, epochs=1, verbose=0, callbacks=[kv.Saliency(log_dir, x[:2], class_names="abcd")])
    with pytest.raises(ValueError, match="Unknown option"):
        kv.Saliency(log_dir, x[:2], method="vanilla", method_options={"steps": 3})
    with pytest.raises(ValueError, match="Unknown saliency method"):
        kv.Saliency(log_dir, x[:2], method="guided")


def test_saliency_works_on_a_subclassed_model():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(3, 3, activation="relu")
            self.pool = keras.layers.GlobalAveragePooling2D()
            self.out = keras.layers.Dense(2)

        def call(self, x):
            return self.out(self.pool(self.conv(x)))

    net = Net()
    x = np.random.default_rng(6).random((2, 8, 8, 3), dtype=np.float32)
    net(x)
    ref = tape_gradients(net, x, np.argmax(net(x).numpy(), axis=1))
    np.testing.assert_allclose(kv.explain.saliency(net, x, reduce=None), ref, atol=1e-6, rtol=1e-5)


def test_method_table_is_what_docstrings_and_docs_list():
    """Every method of the table is named in the docstrings and the docs page, with its options."""
    page = (pathlib.Path(__file__).parents[1] / "docs" / "views" / "saliency.md").read_text(encoding="utf-8")
    section = page.split("## Methods", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `\"([^`]+)\"` \|[^|]*\|([^|]*)\|", section, flags=re.M)
    assert sorted(name for name, _ in rows) == sorted(kv.explain.SALIENCY_METHODS)
    for name, options in rows:
        entry = kv.explain.SALIENCY_METHODS[name]
        assert entry.name == name and entry.title and entry.summary
        for option, default in entry.options.items():
            assert f"`{option}={default!r}`" in options, (name, option)
    for doc in (kv.explain.saliency.__doc__, SaliencyExplainer.__doc__, kv.Saliency.__doc__):
        for name in kv.explain.SALIENCY_METHODS:
            assert f'``"{name}"``' in doc
