"""Every view's explain functions on this process's backend, against references written with the
backend's own autodiff and the model's layers called by hand (never through keras_vizcallbacks):
Grad-CAM (every gradient method gets the reference A and G; Score-CAM's masked scores), saliency
(every method from the reference gradient), feature maps, filters, decision regions and the
confusion matrix, on Sequential, residual functional, nested-backbone and multi-input models, and
under mixed precision."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from backend_cases import CASES, TARGET, Z, assert_close, case_multi_input, case_sequential, randomize, reference
from native_autodiff import BACKEND, numpy_of

import keras_vizcallbacks as kv
from keras_vizcallbacks.explain import GradCAMExplainer, SaliencyExplainer


def _inputs(xs, idx):
    return xs if len(xs) > 1 else xs[idx]


@pytest.mark.parametrize("kind", list(CASES))
def test_gradcam_methods_get_the_reference_activations_and_gradients(kind):
    parts = CASES[kind]()
    model, xs, idx, path, _, _ = parts
    ref_a, ref_logits, _, ref_g = reference(parts, xs, TARGET)
    seen = {}

    def capture(a, g):
        seen["a"], seen["g"] = a, g
        return (a * g).sum(axis=-1)

    ex = GradCAMExplainer(model, path, capture)
    r = ex.explain(_inputs(xs, idx), TARGET, upsample=False, normalize=False)
    assert_close(seen["a"], ref_a, f"{kind}: A")
    assert_close(seen["g"], ref_g, f"{kind}: G = d score / d A")
    assert_close(r.logits, ref_logits, f"{kind}: logits")
    np.testing.assert_array_equal(r.classes, TARGET)
    assert ex.fn.traces == 1

    # Grad-CAM itself, by its formula on the reference: ReLU(sum_k mean(G_k) A_k)
    cam = kv.explain.grad_cam(model, _inputs(xs, idx), layer=path, class_index=TARGET, upsample=False, normalize=False)
    expected = np.maximum(np.einsum("nk,nhwk->nhw", ref_g.mean(axis=(1, 2)), ref_a), 0.0)
    assert expected.max() > 0
    assert_close(cam, expected, f"{kind}: Grad-CAM")
    # and the predicted class (target -1) is the reference's argmax
    r = GradCAMExplainer(model, path).explain(_inputs(xs, idx))
    np.testing.assert_array_equal(r.classes, ref_logits.argmax(axis=1))


def test_scorecam_weights_are_the_softmax_of_masked_forward_passes():
    """Score-CAM on the multi-input model: masked images scored by the model called by hand."""
    parts = case_multi_input()
    model, xs, idx, path, body, head = parts
    r = GradCAMExplainer(model, path, "scorecam", batch_size=8).explain(xs, TARGET, upsample=False, normalize=False)
    a = numpy_of(body(xs))
    geo = kv.layers.geometry(model, path)
    for i in range(2):
        masks = kv.explain.normalize_maps(kv.explain.place_on_input(np.moveaxis(a[i], -1, 0), geo, (12, 12)))
        image = np.repeat(xs[idx][i : i + 1], len(masks), axis=0) * masks[..., None]
        others = [np.repeat(v[i : i + 1], len(masks), axis=0) for v in xs]
        others[idx] = image.astype(np.float32)
        scores = numpy_of(head(body(others), others))[:, TARGET[i]].astype(np.float64)
        w = np.exp(scores - scores.max())
        expected = np.maximum(np.einsum("k,hwk->hw", w / w.sum(), a[i]), 0.0)
        np.testing.assert_allclose(r.raw[i], expected, rtol=1e-4, atol=1e-5 * expected.max())


@pytest.mark.parametrize("kind", list(CASES))
def test_saliency_methods_follow_the_reference_gradient(kind):
    parts = CASES[kind]()
    model, xs, idx, _, _, _ = parts
    _, _, ref_g_image, _ = reference(parts, xs, TARGET)
    inputs = _inputs(xs, idx)
    ex = SaliencyExplainer(model, "vanilla")
    r = ex.explain(inputs, TARGET, reduce=None)
    assert_close(r.attributions, ref_g_image, f"{kind}: vanilla")
    gx = kv.explain.saliency(model, inputs, class_index=TARGET, method="gradient_x_input", reduce=None)
    assert_close(gx, ref_g_image * xs[idx], f"{kind}: gradient x input")
    assert ex.fn.traces == 1
    if kind == "nested":  # SmoothGrad and IG: means of reference gradients at the same points
        smooth = kv.explain.saliency(
            model, inputs, class_index=TARGET, method="smoothgrad", n_samples=3, noise=0.0, reduce=None
        )
        assert_close(smooth, ref_g_image, "smoothgrad without noise")
        ig = SaliencyExplainer(model, "integrated_gradients", steps=2, batch_size=4)
        ig = ig.explain(inputs, TARGET, reduce=None)
        _, _, g_half, _ = reference(parts, [xs[0] * 0.5], TARGET)
        _, _, g_zero, _ = reference(parts, [xs[0] * 0.0], TARGET)
        expected = xs[0] * (0.25 * g_zero + 0.5 * g_half + 0.25 * ref_g_image)  # trapezoidal, 2 intervals
        assert_close(ig.attributions, expected, "integrated gradients, 2 steps")


def test_feature_maps_and_filters_are_the_layers_own():
    model, xs, _, _, _, _ = case_sequential()
    c1, p1, c2 = (model.get_layer(n) for n in ("c1", "p1", "c2"))
    maps = kv.explain.feature_maps(model, xs[0])
    assert sorted(maps) == ["c1", "c2"]
    x = keras.ops.convert_to_tensor(xs[0])
    assert_close(maps["c1"], numpy_of(c1(x)), "feature map c1")
    assert_close(maps["c2"], numpy_of(c2(p1(c1(x)))), "feature map c2")
    kernels = kv.explain.filters(model)
    np.testing.assert_array_equal(kernels["c2"], np.transpose(c2.get_weights()[0], (3, 2, 0, 1)))


def _probabilities_by_hand(model, x):
    return numpy_of(model(keras.ops.convert_to_tensor(x), training=False))


def test_decision_regions_in_every_mode_and_the_confusion_matrix():
    # "input": a small MLP on two features; the grid's classes are the model's on the grid points
    rng = np.random.default_rng(2)
    pts = rng.standard_normal((40, 2)).astype(np.float32)
    hidden, out = keras.layers.Dense(8, activation="tanh", **Z), keras.layers.Dense(3, activation="softmax", **Z)
    mlp = keras.Sequential([keras.Input((2,)), hidden, out])
    randomize(mlp, seed=3)
    r = kv.explain.decision_regions(mlp, pts, mode="input", grid_resolution=30)
    expected = _probabilities_by_hand(mlp, r.grid_points.astype(np.float32)).argmax(axis=1).reshape(30, 30)
    assert len(np.unique(expected)) > 1
    assert np.mean(r.classes != expected) <= 0.01
    np.testing.assert_array_equal(r.predictions, _probabilities_by_hand(mlp, pts).argmax(axis=1))

    # "plane": every grid point is an image on the plane through three anchor images
    model, xs, _, _, _, _ = case_sequential()
    images = np.concatenate([xs[0], xs[0][::-1] * 0.7])
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    r = kv.explain.decision_regions(model, images, labels, mode="plane", grid_resolution=12)
    grid_images = (r.origin + r.grid_points @ r.components).reshape(-1, *images.shape[1:]).astype(np.float32)
    expected = _probabilities_by_hand(model, grid_images).argmax(axis=1).reshape(12, 12)
    assert np.mean(r.classes != expected) <= 0.01

    # "embedding" on the multi-input model: the model's predictions for the data
    model, xs, _, _, _, _ = case_multi_input()
    r = kv.explain.decision_regions(model, xs, TARGET, mode="embedding", grid_resolution=10)
    by_hand = numpy_of(model([keras.ops.convert_to_tensor(v) for v in xs], training=False)).argmax(axis=1)
    np.testing.assert_array_equal(r.predictions, by_hand)
    assert r.classes.shape == (10, 10) and np.isfinite(r.probabilities).all()

    # the confusion matrix of the predictions the model gives by hand
    predicted = kv.explain.Predictor(model).probabilities(xs)
    np.testing.assert_array_equal(predicted.argmax(axis=1), by_hand)
    counts = kv.explain.confusion_matrix(TARGET, predicted, 3)
    assert counts.sum() == len(TARGET) and np.trace(counts) == np.sum(by_hand == TARGET)


def test_views_under_mixed_precision_give_float32_maps_close_to_float32():
    """Grad-CAM and saliency of a mixed_float16 model with the float32 model's weights (float16
    keeps ~3 significant digits: within 2% of the largest value; measured 0.1-0.5%)."""
    policy = "mixed_float16"
    model32, xs, _, path, _, _ = case_sequential()
    cam32 = kv.explain.grad_cam(model32, xs[0], layer=path, class_index=TARGET, normalize=False)
    sal32 = kv.explain.saliency(model32, xs[0], class_index=TARGET, reduce=None)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model, _, _, _, _, _ = case_sequential()
        model.set_weights(model32.get_weights())
        cam = kv.explain.grad_cam(model, xs[0], layer=path, class_index=TARGET, normalize=False)
        sal = kv.explain.saliency(model, xs[0], class_index=TARGET, reduce=None)
        maps = kv.explain.feature_maps(model, xs[0])
    finally:
        keras.config.set_dtype_policy(previous)
    tol = 0.02
    for ours, ref, what in ((cam, cam32, "Grad-CAM"), (sal, sal32, "saliency")):
        assert ours.dtype == np.float32 and np.isfinite(ours).all(), what
        err = np.abs(ours - ref).max() / np.abs(ref).max()
        assert err < tol, f"{policy} {what}: max error {err:.3g} of the largest value on {BACKEND}"
    assert all(m.dtype == np.float32 for m in maps.values())


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow is the backend")
def test_zz_tensorflow_never_loaded():
    """Runs last (the last module, the last test): every view's explain functions left TensorFlow unloaded."""
    import sys

    assert "tensorflow" not in sys.modules
