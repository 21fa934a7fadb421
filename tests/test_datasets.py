"""The embedded shapes data set."""

from __future__ import annotations

import numpy as np

import keras_vizcallbacks as kv


def test_shapes_deterministic_and_well_formed():
    a = kv.datasets.shapes(64, seed=3)
    b = kv.datasets.shapes(64, seed=3)
    c = kv.datasets.shapes(64, seed=4)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (64, 32, 32, 3) and a.images.dtype == np.float32
    assert a.images.min() >= 0 and a.images.max() <= 1
    assert a.labels.dtype == np.int32 and sorted(set(a.labels.tolist())) == [0, 1, 2, 3]
    assert np.bincount(a.labels).tolist() == [16, 16, 16, 16]
    assert a.class_names == ["circle", "square", "triangle", "cross"]
    assert a.masks.shape == (64, 32, 32) and a.masks.dtype == bool
    big = kv.datasets.shapes(8, size=64, seed=0)
    assert big.images.shape == (8, 64, 64, 3)


def test_masks_mark_the_shape():
    d = kv.datasets.shapes(200, seed=0)
    area = d.masks.mean(axis=(1, 2))
    assert (area > 0.02).all() and (area < 0.5).all()
    # inside the mask the colour differs from the background on average
    for img, m in zip(d.images[:50], d.masks[:50], strict=True):
        assert np.abs(img[m].mean(0) - img[~m].mean(0)).max() > 0.2
    # a square fills its bounding box, a cross does not
    for label, lo, hi in [(1, 0.95, 1.0), (3, 0.3, 0.7)]:
        m = d.masks[d.labels == label][0]
        ys, xs = np.nonzero(m)
        fill = m.sum() / ((np.ptp(ys) + 1) * (np.ptp(xs) + 1))
        assert lo <= fill <= hi


def test_learnable_by_the_reference_cnn(trained_cnn, shapes_test):
    acc = trained_cnn.evaluate(shapes_test.images, shapes_test.labels, verbose=0)[1]
    assert acc > 0.9


def test_two_moons_and_cifar_subset_selection():
    pts, labels = kv.datasets.two_moons(100, seed=0)
    assert pts.shape == (100, 2) and set(labels.tolist()) == {0, 1}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, (20, 1))
    (xt, _), (xv, yv), names = kv.datasets._airplane_car(x, y, x, y, n_train=5)
    keep = np.isin(y[:, 0], [0, 1])
    assert names == ["airplane", "car"] and len(xt) == min(5, keep.sum()) and len(xv) == keep.sum()
    assert xt.max() <= 1.0 and set(yv.tolist()) <= {0, 1}
