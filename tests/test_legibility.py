"""Every view reads at TensorBoard's card size, and every picture names itself.

TensorBoard draws an image card about 330 px wide whatever the image's size. Once a picture is
scaled to 330 px wide, its text must be at least 9 px tall (the ink height of the digits, about
a capital letter) and its marks at least 4 px across: markers (scatter points, kernel weights,
confusion cells, legend handles), map tiles (a feature-map channel, a Grad-CAM or saliency
panel) and colour bars.

How it is measured: render/ notes each text it draws (its font size) and each mark (its size
across) while a `legibility.recording()` is active; matplotlib figures note each of their texts,
scatter markers and legend handles from the artists themselves. Here each view is trained for
one epoch on the shapes data with the reference CNN (the demo's sizes), drawn again while
recording, and every note is scaled by 330 / (the width of the image written to the event file).

A new view (activation maximization, top activations, ...) is one more `Case` in CASES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pytest
from util import image, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks.callbacks.base import Frame
from keras_vizcallbacks.render import legibility
from keras_vizcallbacks.render.legibility import Drawn, problems, recording


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[str, Any], Any]  # (log_dir, shapes data) -> the callback
    tag: str  # the one tag it writes
    names: tuple[str, ...]  # what its header must say beside "epoch N": the view, the layer or method


def _samples(d):
    return (d.images[:6], d.labels[:6])


CASES = [
    *[
        Case(f"filters-{layer}-{show}", lambda log, d, k=layer, s=show: kv.FilterGrid(log, layers=[k], show=s),
             f"filters/{layer}", ("filters", layer))
        for layer in ("conv2d", "conv2d_1")
        for show in ("weights", "change")
    ],
    Case("filters-conv2d_1-all", lambda log, d: kv.FilterGrid(log, layers=["conv2d_1"], channels="all"),
         "filters/conv2d_1", ("filters", "conv2d_1")),
    *[
        Case(f"feature_maps-{layer}",
             lambda log, d, k=layer: kv.FeatureMaps(log, samples=_samples(d), layers=[k], class_names=d.class_names),
             f"feature_maps/{layer}", ("feature maps", layer))
        for layer in ("conv2d", "conv2d_1")
    ],
    Case("grad_cam", lambda log, d: kv.GradCAM(log, samples=_samples(d), class_names=d.class_names),
         "grad_cam/conv2d_1", ("Grad-CAM", "conv2d_1")),
    Case("saliency", lambda log, d: kv.Saliency(log, samples=_samples(d), class_names=d.class_names),
         "saliency/vanilla", ("saliency", "Vanilla gradient")),
    Case("decision_boundary", lambda log, d: kv.DecisionBoundary(log, (d.images, d.labels), mode="embedding",
                                                                 class_names=d.class_names),
         "decision_boundary/embedding", ("decision boundary", "PCA")),
    Case("confusion_matrix", lambda log, d: kv.ConfusionMatrix(log, (d.images, d.labels), class_names=d.class_names),
         "confusion_matrix", ("confusion matrix",)),
    Case("activation_maximization",
         lambda log, d: kv.ActivationMaximization(log, layer="conv2d_1", filters=8, steps=5, every_n_epochs=1),
         "activation_maximization/conv2d_1", ("activation maximization", "conv2d_1")),
    Case("top_activations", lambda log, d: kv.TopActivations(log, d.images, layer="conv2d_1", filters=6, top_k=6),
         "top_activations/conv2d_1", ("top activations", "conv2d_1")),
]  # fmt: skip


def test_every_view_has_a_case():
    views = {type(case.make("unused", _FakeData())).__name__ for case in CASES}
    exported = {
        n for n in kv.__all__ if isinstance(getattr(kv, n), type) and issubclass(getattr(kv, n), kv.VizCallback)
    }
    assert exported - {"VizCallback"} <= views, "add a Case for every view"


class _FakeData:
    images = np.zeros((4, 32, 32, 3), np.float32)
    labels = np.arange(4) % 4
    class_names = ("circle", "square", "triangle", "cross")


@pytest.fixture(scope="module")
def shapes():
    keras.utils.set_random_seed(0)
    data = kv.datasets.shapes(64, seed=0)
    return data


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_legible_at_card_size_and_named(case, shapes, log_dir):
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=len(shapes.class_names))
    cb = case.make(log_dir, shapes)
    model.fit(shapes.images, shapes.labels, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    written = image(read_run(log_dir)[case.tag][0])
    with recording() as drawn:  # the same picture, drawn again while recording what it draws
        frames = [f for f in cb.draw(cb.compute(0), 0) if isinstance(f, Frame)]
    cb.on_close()
    assert [f.tag for f in frames] == [case.tag]
    assert frames[0].image.shape == written.shape  # the picture measured is the picture written
    width = written.shape[1]
    texts = [d for d in drawn if d.kind == "text"]
    marks = [d for d in drawn if d.kind == "mark"]
    assert texts and marks, "the view draws text and marks: they must be noted"
    assert problems(drawn, width) == []
    smallest = min(legibility.card_size(d, width) for d in texts)
    assert smallest >= legibility.MIN_TEXT_PX
    # every picture names itself: a header (or figure title) with the view, its layer or method, the epoch
    header = " ".join(d.text for d in texts if d.what in ("header", "stamped"))
    for word in (*case.names, "epoch 0"):
        assert word in header, f"{word!r} not in the header {header!r}"


def test_the_check_catches_small_text_and_marks():
    """The check is not vacuous: the sizes the views drew before (12 px captions on a 514 px grid,
    2.5 px points) fail it."""
    img = kv.render.caption(np.zeros((40, 514, 3), np.uint8), "#0  circle", size=12)
    with recording() as drawn:
        kv.render.caption(img, "#0  circle", size=12)
        legibility.note_mark("marker", 4.4)
    found = problems(drawn, 640)
    assert len(found) == 2 and "caption '#0  circle'" in found[0] and "marker" in found[1]
    assert problems([Drawn("text", "ok", kv.render.legible_size(640))], 640) == []
    assert not legibility.active()


@pytest.mark.parametrize("n", [2, 6, 10, 20])
def test_figures_stay_legible_with_many_classes(n):
    """More classes, longer names: the figures' cell values, ticks and legend still read in the card
    (cell values fall back to fewer characters, then to the colours alone)."""
    from keras_vizcallbacks.render.boundary import decision_boundary_image
    from keras_vizcallbacks.render.confusion import confusion_image

    rng = np.random.default_rng(n)
    names = [f"class number {k}" for k in range(n)]
    counts = rng.integers(0, 50, (n, n)) + np.eye(n, dtype=int) * 400
    rates = counts / counts.sum(1, keepdims=True)
    with recording() as drawn:
        img = confusion_image(counts, rates, class_names=names, title="confusion · epoch 3")
    assert problems(drawn, img.shape[1]) == []
    g = np.linspace(-1, 1, 40)
    xx, _ = np.meshgrid(g, g)
    classes = np.minimum(((xx + 1) / 2 * n).astype(int), n - 1)
    labels = rng.integers(0, n, 500)
    points = rng.normal(size=(500, 2)) / 2
    with recording() as drawn:
        img = decision_boundary_image(
            classes, np.full(classes.shape, 0.8), g, g, points=points, labels=labels, predictions=labels,
            class_names=names, title="t · epoch 3",
        )  # fmt: skip
    assert problems(drawn, img.shape[1]) == []
    assert [d for d in drawn if d.what == "marker"] and [d for d in drawn if d.what == "legend marker"]
