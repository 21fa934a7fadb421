"""Tags and scalars: `tag=` on every view, two views on one tag, the claims' lifetime, `Scalar` items,
and descriptions that stay the same at every step while the per-epoch numbers go to scalars."""

from __future__ import annotations

import gc
import os

import keras
import numpy as np
import pytest
from util import assert_fixed_descriptions, assert_steps, random_data, read_run, small_sequential

import keras_vizcallbacks as kv
from keras_vizcallbacks import writers


def fit(model, x, y, callbacks, epochs=2, **kw):
    model.fit(x, y, epochs=epochs, batch_size=8, verbose=0, callbacks=callbacks, **kw)


@pytest.fixture
def model():
    keras.utils.set_random_seed(0)
    m = small_sequential()
    m.compile("adam", "sparse_categorical_crossentropy")
    return m


def scalars(log_dir: str) -> dict[str, list[writers.ScalarRecord]]:
    return writers.read_scalars(os.path.join(log_dir, "viz"))


# --------------------------------------------------------------------------- tag=


def test_tag_replaces_every_views_prefix(model, log_dir):
    x, y = random_data(16)
    views = [
        kv.FilterGrid(log_dir, layers=["c1"], tag="kernels"),
        kv.FeatureMaps(log_dir, x[:2], layers=["c2"], tag="maps"),
        kv.GradCAM(log_dir, x[:2], layer="c2", method="gradcam++", tag="cam_pp"),
        kv.Saliency(log_dir, x[:2], tag="grads"),
        kv.DecisionBoundary(log_dir, (x, y), grid_resolution=6, tag="regions"),
        kv.ConfusionMatrix(log_dir, (x, y), tag="val/confusion"),
    ]
    fit(model, x, y, views)
    assert all(v.failures == [] for v in views)
    expected = ["kernels/c1", "maps/c2", "cam_pp/c2", "grads/vanilla", "regions/embedding", "val/confusion"]
    assert sorted(read_run(log_dir)) == sorted(expected)
    assert_steps(read_run(log_dir), expected, [0, 1])
    got = scalars(log_dir)
    assert "val/confusion/accuracy" in got and "regions/embedding/agreement" in got  # scalars follow the tag


@pytest.mark.parametrize("bad", ["", " cam", "cam/", "/cam", "a//b", 3])
def test_tag_is_checked_in_the_constructor(log_dir, bad):
    with pytest.raises(ValueError, match="tag"):
        kv.ConfusionMatrix(log_dir, (np.zeros((2, 2)), np.zeros(2)), tag=bad)


# --------------------------------------------------------------------------- two views on one tag


def test_two_views_on_one_tag_fail_at_train_begin_naming_both(model, log_dir):
    x, y = random_data(16)
    a = kv.GradCAM(log_dir, x[:2], layer="c2")
    b = kv.GradCAM(log_dir, x[:2], layer="c2", method="gradcam++")
    batches = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda i, logs: batches.append(i))
    with pytest.raises(ValueError, match=r"grad_cam/c2") as exc:
        fit(model, x, y, [a, b, spy])
    message = str(exc.value)
    assert "method='gradcam'" in message and "method='gradcam++'" in message and "tag=" in message
    assert batches == []  # before the first batch
    # Keras skipped on_train_end: the next fit (with a tag on one of them) is not blocked by stale claims
    b2 = kv.GradCAM(log_dir, x[:2], layer="c2", method="gradcam++", tag="cam_pp")
    fit(model, x, y, [a, b2], epochs=1)
    assert sorted(read_run(log_dir)) == ["cam_pp/c2", "grad_cam/c2"]
    assert writers.claimed_tags(log_dir) == []  # released at train end


def test_same_tag_in_other_runs_or_other_fits_is_fine(model, log_dir):
    x, y = random_data(16)
    fit(model, x, y, [kv.ConfusionMatrix(log_dir, (x, y)), kv.ConfusionMatrix(log_dir, (x, y), run_name="val")])
    assert_steps(read_run(log_dir), ["confusion_matrix"], [0, 1])
    assert_steps(read_run(log_dir, "val"), ["confusion_matrix"], [0, 1])
    # a fit that raised (on_train_end skipped) leaves claims behind; another fit with a new view on the tag runs
    cm = kv.ConfusionMatrix(log_dir, (x, y))
    boom = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        fit(model, x, y, [cm, boom], epochs=1)
    assert writers.claimed_tags(log_dir) == ["confusion_matrix"]  # stale, from the fit that raised
    other = kv.ConfusionMatrix(log_dir, (x, y))
    fit(model, x, y, [other], epochs=1, initial_epoch=0)
    assert other.failures == []
    assert writers.open_writers() != []  # the interrupted fit's callback still holds its writer
    cm.close()  # what a user calls after an interrupted fit (documented on VizCallback.close)
    assert writers.open_writers() == []


def test_views_without_tags_claim_on_first_write(model, log_dir):
    x, y = random_data(16)

    class Constant(kv.VizCallback):
        view = "constant"

        def render(self, epoch):
            return [kv.Frame(f"{self.view}/a", np.zeros((4, 4, 3), np.uint8), "fixed")]

    first, second = Constant(log_dir), Constant(log_dir)
    with pytest.warns(kv.VizWarning, match="constant/a"):
        fit(model, x, y, [first, second], epochs=1)
    assert first.failures == [] and len(second.failures) == 1 and "Two views" in str(second.failures[0][1])
    assert_steps(read_run(log_dir), ["constant/a"], [0])  # one image, not two
    third = Constant(log_dir, tag="other")
    fit(model, x, y, [Constant(log_dir), third], epochs=1)
    assert third.failures == [] and "other/a" in read_run(log_dir)
    del first, second, third
    gc.collect()


# --------------------------------------------------------------------------- Scalar items


@pytest.mark.parametrize("async_write", [False, True])
def test_scalar_items_and_write_scalar_reach_the_run(model, log_dir, async_write):
    x, y = random_data(16)

    class Counting(kv.VizCallback):
        view = "counting"

        def compute(self, epoch):
            return epoch

        def draw(self, epoch, _):
            image = np.full((4, 4, 3), 10 * epoch, np.uint8)
            return [kv.Frame("counting/img", image, "fixed"), kv.Scalar("counting/twice", 2.0 * epoch, "2 x epoch")]

    view = Counting(log_dir, async_write=async_write)
    fit(model, x, y, [view], epochs=3)
    assert view.failures == []
    got = scalars(log_dir)["counting/twice"]
    assert [(s.step, s.value) for s in got] == [(0, 0.0), (1, 2.0), (2, 4.0)]
    assert writers.read_descriptions(os.path.join(log_dir, "viz"), plugin="scalars")["counting/twice"] == "2 x epoch"
    assert view.scalars_written == [("counting/twice", 0), ("counting/twice", 1), ("counting/twice", 2)]
    assert_steps(read_run(log_dir), ["counting/img"], [0, 1, 2])  # the scalar tag is not an image


# --------------------------------------------------------------------------- descriptions that stay true


def test_descriptions_are_the_same_at_every_step_and_the_numbers_are_scalars(model, log_dir):
    """GradCAM, Saliency, DecisionBoundary and ConfusionMatrix (FilterGrid's and FeatureMaps' descriptions
    are checked in their own tests)."""
    x, y = random_data(24)
    names = ["a", "b", "c"]
    views = [
        kv.GradCAM(log_dir, (x[:3], y[:3]), layer="c2", class_names=names),
        kv.Saliency(log_dir, (x[:2], y[:2]), method="integrated_gradients", method_options={"steps": 8}),
        kv.DecisionBoundary(log_dir, (x, y), grid_resolution=6, class_names=names),
        kv.DecisionBoundary(log_dir, (x, y), mode="plane", grid_resolution=5, class_names=names),
        kv.ConfusionMatrix(log_dir, (x, y), class_names=names),
    ]
    fit(model, x, y, views, epochs=3)
    assert all(v.failures == [] for v in views)
    tags = sorted(read_run(log_dir))
    assert len(tags) == 5
    desc = assert_fixed_descriptions(log_dir, tags)
    assert "Accuracy" not in desc["confusion_matrix"] and "recall" not in desc["confusion_matrix"].split("Scalars")[0]
    assert "Raw maxima" not in desc["grad_cam/c2"] and "map's maximum" in desc["grad_cam/c2"]
    assert "at most" not in desc["saliency/integrated_gradients"]
    assert "Axis limits" not in desc["decision_boundary/embedding"]
    assert "Anchor predictions" not in desc["decision_boundary/plane"]
    # the scalars: steps and values from an independent computation at the last epoch
    got = scalars(log_dir)
    assert_fixed_descriptions(log_dir, sorted(got))
    pred = np.argmax(model.predict(x, verbose=0), axis=1)
    cm = got["confusion_matrix/accuracy"]
    assert [s.step for s in cm] == [0, 1, 2] and cm[-1].value == pytest.approx(np.mean(pred == y))
    for k, name in enumerate(names):
        recall = got[f"confusion_matrix/recall/{name}"][-1].value
        assert recall == pytest.approx(np.mean(pred[y == k] == k))
        precision = got[f"confusion_matrix/precision/{name}"][-1].value
        assert precision == pytest.approx(np.mean(y[pred == k] == k) if np.any(pred == k) else 0.0)
    db = got["decision_boundary/embedding/accuracy"]
    assert [s.step for s in db] == [0, 1, 2] and db[-1].value == pytest.approx(np.mean(pred == y))
    assert "decision_boundary/plane/agreement" not in got  # the anchors lie on the plane: nothing to agree on
    gap = got["saliency/integrated_gradients/completeness_gap"]
    ig = kv.explain.SaliencyExplainer(model, "integrated_gradients", steps=8).explain(x[:2])
    assert [s.step for s in gap] == [0, 1, 2]
    assert gap[-1].value == pytest.approx(float(np.max(np.abs(ig.delta))), rel=1e-3, abs=1e-5)


def test_filter_and_feature_map_descriptions_are_the_same_at_every_step(model, log_dir):
    x, y = random_data(16)
    views = [kv.FilterGrid(log_dir, layers=["c1", "c2"]), kv.FeatureMaps(log_dir, x[:2], layers=["c2"])]
    fit(model, x, y, views, epochs=3)
    assert all(v.failures == [] for v in views)
    assert_fixed_descriptions(log_dir, ["filters/c1", "filters/c2", "feature_maps/c2"])
