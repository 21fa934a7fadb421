"""Multi-output models (``output=``) and callable targets (``target=score(outputs)``).

The model has a regression head FIRST (the shape's area, one linear unit) and a softmax
class head second, so anything that silently reads ``model.outputs[0]`` reads the wrong head.
References are independent: ``model.predict`` and numpy for the counts, GradientTape on the
model's own layers for the gradients.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from util import image, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks.explain import GradCAMExplainer, SaliencyExplainer, shared_passes
from keras_vizcallbacks.writers import read_descriptions

SIZE = 16


def shapes_data(n=48, seed=0):
    d = kv.datasets.shapes(n, size=SIZE, seed=seed)
    area = d.masks.reshape(n, -1).mean(axis=1).astype(np.float32)  # the regression target
    dark = (d.images.mean(axis=(1, 2, 3)) < 0.5).astype(np.int32)  # a second class head's labels
    return d.images, d.labels, area, dark


def trunk(inp):
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c2")(x)
    return keras.layers.GlobalAveragePooling2D(name="gap")(x)


def two_heads(compile_=True):
    """Regression head first ("size", one linear unit), class head second ("class", softmax)."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = trunk(inp)
    size = keras.layers.Dense(1, name="size")(x)
    cls = keras.layers.Dense(4, activation="softmax", name="class")(x)
    model = keras.Model(inp, [size, cls], name="two_heads")
    if compile_:
        model.compile(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"])
    return model


def two_classifiers():
    keras.utils.set_random_seed(2)
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = trunk(inp)
    shape = keras.layers.Dense(4, activation="softmax", name="shape")(x)
    dark = keras.layers.Dense(2, activation="softmax", name="dark")(x)
    model = keras.Model(inp, [shape, dark], name="two_classifiers")
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "sparse_categorical_crossentropy"])
    return model


def output_views(log_dir, x, y, **kw):
    return [
        kv.GradCAM(log_dir, x[:4], **kw),
        kv.Saliency(log_dir, x[:4], **kw),
        kv.ConfusionMatrix(log_dir, (x, y), **kw),
        kv.DecisionBoundary(log_dir, (x, y), mode="embedding", grid_resolution=12, **kw),
    ]


# --------------------------------------------------------------------------- which output


@pytest.mark.parametrize("which", range(4))
def test_views_reading_outputs_need_output_on_a_multi_output_model(tmp_path, which):
    x, y, area, _ = shapes_data(16)
    model = two_heads()
    view = output_views(str(tmp_path), x, y)[which]
    with pytest.raises(ValueError) as e:
        model.fit(x, [area, y], epochs=1, verbose=0, callbacks=[view])
    msg = str(e.value)
    assert type(view).__name__ in msg
    assert "2 outputs" in msg and "0 'size'" in msg and "1 'class'" in msg and "output=" in msg
    assert int(model.optimizer.iterations.numpy()) == 0  # raised before the first batch


class SubclassedTwoHeads(keras.Model):
    """The two heads of `two_heads` in a subclassed model: no symbolic outputs to count before it is called."""

    def __init__(self):
        super().__init__(name="sub_two_heads")
        self.c1 = keras.layers.Conv2D(6, 3, activation="relu")
        self.gap = keras.layers.GlobalAveragePooling2D()
        self.size = keras.layers.Dense(1)
        self.cls = keras.layers.Dense(4, activation="softmax")

    def call(self, x, training=False):
        h = self.gap(self.c1(x))
        return {"size": self.size(h), "class": self.cls(h)}


def subclassed_two_heads():
    keras.utils.set_random_seed(3)
    model = SubclassedTwoHeads()
    model.compile(optimizer="adam", loss={"size": "mse", "class": "sparse_categorical_crossentropy"})
    return model


@pytest.mark.parametrize("which", ["Saliency", "ConfusionMatrix", "DecisionBoundary"])
def test_subclassed_model_returning_several_outputs_needs_output(tmp_path, which):
    x, y, area, _ = shapes_data(16)
    model = subclassed_two_heads()
    views = {
        "Saliency": lambda **kw: kv.Saliency(str(tmp_path), x[:2], **kw),
        "ConfusionMatrix": lambda **kw: kv.ConfusionMatrix(str(tmp_path), (x, y), **kw),
        "DecisionBoundary": lambda **kw: kv.DecisionBoundary(str(tmp_path), (x, y), mode="plane", **kw),
    }
    targets = {"size": area, "class": y}
    with pytest.raises(ValueError) as e:
        model.fit(x, targets, epochs=1, verbose=0, callbacks=[views[which]()])
    msg = str(e.value)
    assert msg.startswith(which) and "returns 2 outputs" in msg and "output=" in msg
    assert "0 'class' (1, 4)" in msg and "1 'size' (1, 1)" in msg  # keras.tree.flatten order: keys sorted
    assert int(model.optimizer.iterations.numpy()) == 0  # raised before the first batch
    if which == "Saliency":  # the notebook form says the same; output=0 ('class') explains the class head
        with pytest.raises(ValueError, match="returns 2 outputs"):
            kv.explain.saliency(model, x[:2])
        assert kv.explain.saliency(model, x[:2], output=0).shape == (2, SIZE, SIZE)
        return
    view = views[which](output=0)  # 'class', first in flatten order
    model.fit(x, targets, epochs=1, verbose=0, callbacks=[view])
    assert view.failures == []
    if which == "ConfusionMatrix":
        probs = model.predict(x, verbose=0)["class"]  # the class head, independently
        expected = np.zeros((4, 4), dtype=np.int64)
        np.add.at(expected, (y, probs.argmax(axis=1)), 1)
        np.testing.assert_array_equal(view.counts, expected)


def test_filter_grid_and_feature_maps_need_no_output(tmp_path):
    x, y, area, _ = shapes_data(16)
    model = two_heads()
    views = [kv.FilterGrid(str(tmp_path)), kv.FeatureMaps(str(tmp_path), (x[:2], [area[:2], y[:2]]))]
    model.fit(x, [area, y], epochs=1, verbose=0, callbacks=views)
    run = read_run(str(tmp_path))
    assert any(t.startswith("filters/") for t in run) and any(t.startswith("feature_maps/") for t in run)


def test_class_output_views_write_and_count_the_class_head(tmp_path):
    x, y, area, _ = shapes_data(48)
    model = two_heads()
    views = output_views(str(tmp_path), x, y, output="class")
    model.fit(x, [area, y], epochs=2, batch_size=16, verbose=0, callbacks=views)
    run = read_run(str(tmp_path))
    for tag in ("grad_cam/c2", "saliency/vanilla", "confusion_matrix", "decision_boundary/embedding"):
        assert [r.step for r in run[tag]] == [0, 1], sorted(run)
        assert image(run[tag][-1]).std() > 0
    probs = model.predict(x, verbose=0)[1]  # the class head, independently
    expected = np.zeros((4, 4), dtype=np.int64)
    np.add.at(expected, (y, probs.argmax(axis=1)), 1)
    np.testing.assert_array_equal(views[2].counts, expected)
    regions = views[3].last
    np.testing.assert_array_equal(regions.predictions, probs.argmax(axis=1))  # the points' predictions
    desc = read_descriptions(str(tmp_path / "viz"))
    assert "output 1 `class`" in desc["grad_cam/c2"] and "output 1 `class`" in desc["confusion_matrix"]
    # the gradient views explain the class head: their probabilities are the class head's
    r = views[0].explainer.explain(x[:4])
    np.testing.assert_allclose(r.probabilities, probs[:4], atol=1e-5)


def test_output_by_index_and_by_layer_name_agree():
    x, _, _, _ = shapes_data(4)
    model = two_heads(compile_=False)
    by_name = kv.explain.grad_cam(model, x, output="class", layer="c2")
    by_index = kv.explain.grad_cam(model, x, output=1, layer="c2")
    np.testing.assert_array_equal(by_name, by_index)
    with pytest.raises(ValueError, match=r"no output named 'nope'.*0 'size'.*1 'class'"):
        kv.explain.saliency(model, x, output="nope")
    with pytest.raises(ValueError, match=r"output=2 is out of range"):
        kv.explain.grad_cam(model, x, output=2)


def test_single_output_model_is_unchanged_by_output():
    x, _, _, _ = shapes_data(4)
    keras.utils.set_random_seed(3)
    inp = keras.Input((SIZE, SIZE, 3))
    out = keras.layers.Dense(4, activation="softmax", name="out")(trunk(inp))
    model = keras.Model(inp, out)
    base = kv.explain.grad_cam(model, x)
    for output in (0, "out"):
        np.testing.assert_array_equal(kv.explain.grad_cam(model, x, output=output), base)
        np.testing.assert_array_equal(
            kv.explain.saliency(model, x, output=output), kv.explain.saliency(model, x, output=None)
        )


@pytest.mark.parametrize("form", ["list", "dict", "dataset"])
def test_labels_given_per_output_follow_output(tmp_path, form):
    x, y, area, _ = shapes_data(24)
    model = two_heads()
    labels = [area, y] if form == "list" else {"size": area, "class": y}
    first = [area[:4], y[:4]] if form == "list" else {"size": area[:4], "class": y[:4]}
    data = (x, labels) if form != "dataset" else tf.data.Dataset.from_tensor_slices((x, labels)).batch(8)
    cm = kv.ConfusionMatrix(str(tmp_path), data, output="class")
    cam = kv.GradCAM(str(tmp_path), (x[:4], first), target="true", output=1)
    model.fit(x, [area, y], epochs=1, verbose=0, callbacks=[cm, cam])
    np.testing.assert_array_equal(cm.y, y)
    np.testing.assert_array_equal(cam.y, y[:4])
    np.testing.assert_array_equal(cam.compute(0)["classes"], y[:4])  # target="true": the class labels


def test_regression_output_is_refused_by_the_class_views(tmp_path):
    x, y, area, _ = shapes_data(8)
    model = two_heads()
    for view in (
        kv.ConfusionMatrix(str(tmp_path), (x, y), output="size"),
        kv.DecisionBoundary(str(tmp_path), (x, y), output=0),
        kv.GradCAM(str(tmp_path), x[:2], output="size"),  # a class target on a regression head
    ):
        with pytest.raises(ValueError, match=r"regression output.*'size'"):
            model.fit(x, [area, y], epochs=1, verbose=0, callbacks=[view])
    with pytest.raises(ValueError, match="regression output"):
        kv.explain.decision_regions(model, x, y, output="size")


def test_shared_pass_keys_on_the_output(tmp_path):
    x, y, _, dark = shapes_data(32)
    model = two_classifiers()
    cm_shape = kv.ConfusionMatrix(str(tmp_path), (x, [y, dark]), output="shape", tag="cm_shape")
    cm_dark = kv.ConfusionMatrix(str(tmp_path), (x, [y, dark]), output="dark", tag="cm_dark")
    model.fit(x, [y, dark], epochs=1, verbose=0, callbacks=[cm_shape, cm_dark])
    (forward,) = shared_passes(model)  # one pass over the data for both views
    assert forward.runs == 1 and forward.output_indices == [0, 1]
    shape_p, dark_p = model.predict(x, verbose=0)
    for cm, labels, p in ((cm_shape, y, shape_p), (cm_dark, dark, dark_p)):
        k = p.shape[1]
        expected = np.zeros((k, k), dtype=np.int64)
        np.add.at(expected, (labels, p.argmax(axis=1)), 1)
        np.testing.assert_array_equal(cm.counts, expected)


# --------------------------------------------------------------------------- callable targets


def size_unit(y):
    return y[:, 0]


def test_callable_target_saliency_equals_gradient_tape():
    x, _, _, _ = shapes_data(6)
    model = two_heads(compile_=False)
    r = SaliencyExplainer(model, "vanilla", output="size").explain(x, size_unit, reduce=None)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        s = model(xt, training=False)[0][:, 0]
    g = tape.gradient(s, xt).numpy()
    np.testing.assert_allclose(r.attributions, g, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.scores, model.predict(x, verbose=0)[0][:, 0], rtol=1e-5, atol=1e-6)
    assert (r.classes == -1).all()


def test_callable_target_gradcam_equals_gradient_tape():
    x, _, _, _ = shapes_data(6)
    model = two_heads(compile_=False)
    ex = GradCAMExplainer(model, "c2", output="size")
    r = ex.explain(x, size_unit, upsample=False, normalize=False)
    c1, p1, c2, gap, head = (model.get_layer(n) for n in ("c1", "p1", "c2", "gap", "size"))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        a = c2(p1(c1(xt)))
        tape.watch(a)
        s = tf.matmul(gap(a), head.kernel)[:, 0] + head.bias[0]
    g = tape.gradient(s, a).numpy().astype(np.float64)
    a = a.numpy().astype(np.float64)
    reference = np.maximum((a * g.mean(axis=(1, 2), keepdims=True)).sum(axis=-1), 0.0)
    np.testing.assert_allclose(r.raw, reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.scores, s.numpy(), rtol=1e-5, atol=1e-6)


def test_callable_target_on_the_softmax_output_sees_probabilities():
    """The score function gets the output as the model returns it (after its softmax)."""
    x, _, _, _ = shapes_data(4)
    model = two_heads(compile_=False)
    r = SaliencyExplainer(model, "vanilla", output="class").explain(x, lambda p: p[:, 2], reduce=None)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        s = model(xt, training=False)[1][:, 2]
    np.testing.assert_allclose(r.attributions, tape.gradient(s, xt).numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(r.scores, s.numpy(), rtol=1e-5)


def test_callable_target_captions_show_the_score(tmp_path):
    x, y, area, _ = shapes_data(16)
    model = two_heads()
    cam = kv.GradCAM(str(tmp_path), (x[:3], [area[:3], y[:3]]), output="size", target=size_unit, layer="c2")
    sal = kv.Saliency(str(tmp_path), x[:3], output="size", target=size_unit)
    model.fit(x, [area, y], epochs=1, verbose=0, callbacks=[cam, sal])
    run = read_run(str(tmp_path))
    assert [r.step for r in run["grad_cam/c2"]] == [0] and [r.step for r in run["saliency/vanilla"]] == [0]
    predicted = model.predict(x[:3], verbose=0)[0][:, 0]
    computed = cam.compute(0)
    np.testing.assert_allclose(computed["scores"], predicted, rtol=1e-5, atol=1e-6)
    captions, correct = cam._captions(computed["classes"], computed["probabilities"], None, computed["scores"])
    for i, lines in enumerate(captions):
        assert lines[0] == f"#{i}  true: {area[i]:.3g}"  # the regression label, not a class name
        assert lines[1] == f"score: {predicted[i]:.3g}"
    assert correct == [None, None, None]
    desc = read_descriptions(str(tmp_path / "viz"))
    assert "Target: `size_unit`, a score function of output 0 `size` (as the model returns it)" in desc["grad_cam/c2"]
    assert "score's value" in desc["saliency/vanilla"]


def test_callable_target_with_the_wrong_shape_is_refused_before_training(tmp_path):
    x, y, area, _ = shapes_data(8)
    model = two_heads()
    with pytest.raises(ValueError, match=r"one score per example.*returns shape \('N', 4\)") as e:
        bad = kv.Saliency(str(tmp_path), x[:2], output="class", target=lambda p: p * 2.0)
        model.fit(x, [area, y], epochs=1, verbose=0, callbacks=[bad])
    assert "Saliency" in str(e.value)
    assert int(model.optimizer.iterations.numpy()) == 0
    with pytest.raises(ValueError, match="one score per example"):  # the function API, at its call
        kv.explain.saliency(model, x[:2], output="class", class_index=lambda p: p * 2.0)


def test_header_names_the_output_and_stays_legible(tmp_path):
    from keras_vizcallbacks.render.legibility import problems, recording

    x, y, area, _ = shapes_data(8)
    model = two_heads()
    cam = kv.GradCAM(str(tmp_path), (x[:3], [area[:3], y[:3]]), output="size", target=size_unit)
    sal = kv.Saliency(str(tmp_path), x[:3], output="class")
    model.fit(x, [area, y], epochs=1, verbose=0, callbacks=[cam, sal])
    for view, expected in ((cam, "→ size"), (sal, "→ class")):
        with recording() as drawn:
            (frame,) = [f for f in view.draw(view.compute(0), 0) if hasattr(f, "image")]
        texts = [d.text for d in drawn if d.kind == "text"]
        assert any(expected in t for t in texts), texts
        assert not problems(drawn, frame.image.shape[1])


def test_callable_target_on_a_segmentation_map(tmp_path):
    """A score function reduces a (N, H, W, classes) output: the sum of one class channel."""
    x, _, _, _ = shapes_data(8)
    keras.utils.set_random_seed(4)
    inp = keras.Input((SIZE, SIZE, 3))
    c1 = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    seg = keras.layers.Conv2D(3, 1, activation="softmax", name="seg")(c1)
    model = keras.Model(inp, seg)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    def channel_1(y):
        return keras.ops.sum(y[..., 1], axis=(1, 2))

    r = GradCAMExplainer(model, "c1").explain(x[:3], channel_1, upsample=False, normalize=False)
    xt = tf.constant(x[:3])
    with tf.GradientTape() as tape:
        a = model.get_layer("c1")(xt)
        tape.watch(a)
        s = tf.reduce_sum(model.get_layer("seg")(a)[..., 1], axis=(1, 2))
    g, a = tape.gradient(s, a).numpy().astype(np.float64), a.numpy().astype(np.float64)
    reference = np.maximum((a * g.mean(axis=(1, 2), keepdims=True)).sum(axis=-1), 0.0)
    np.testing.assert_allclose(r.raw, reference, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.scores, s.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(batch, classes\)"):  # a class target has no class to pick
        GradCAMExplainer(model, "c1").explain(x[:3], 1)
    cam = kv.GradCAM(str(tmp_path), x[:3], layer="c1", target=channel_1)
    model.fit(x, np.zeros((8, SIZE, SIZE), dtype=np.int32), epochs=1, verbose=0, callbacks=[cam])
    assert [r.step for r in read_run(str(tmp_path))["grad_cam/c1"]] == [0]


def test_scorecam_with_a_callable_target_scores_masked_images_by_it():
    x, _, _, _ = shapes_data(3)
    model = two_heads(compile_=False)
    ex = GradCAMExplainer(model, "c2", "scorecam", output="size", batch_size=8)
    r = ex.explain(x, size_unit, upsample=False, normalize=False)
    assert r.raw.shape == (3, 5, 5) and np.isfinite(r.raw).all() and r.raw.max() > 0
    np.testing.assert_allclose(r.scores, model.predict(x, verbose=0)[0][:, 0], rtol=1e-5, atol=1e-6)
    _, masked_scores = ex._compiled(size_unit)  # the function that scores the masked copies
    masked = (x * np.linspace(0, 1, SIZE, dtype=np.float32)[None, :, None, None]).astype(np.float32)
    got = np.asarray(masked_scores([masked], np.full(3, -1, dtype=np.int32)))
    np.testing.assert_allclose(got, model.predict(masked, verbose=0)[0][:, 0], rtol=1e-5, atol=1e-6)
