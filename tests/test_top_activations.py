"""Top activations and receptive fields: the geometry against a brute-force check (perturb one input
pixel), the ranking against a numpy reference, the view's tags, steps, pixels and clipped patches, the
data pass shared with ConfusionMatrix, and clear errors before training."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from test_activation_max import header_digit_height
from util import assert_steps, image, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend
from keras_vizcallbacks import layers as L
from keras_vizcallbacks.render.filter_views import CARD_WIDTH, HATCH, MIN_TEXT_PX, hatch

STACK = ["a", "b", "zp", "c", "p", "d"]


def rf_stack(size: int = 21, name: str = "stack") -> keras.Model:
    """Linear layers with strides, 'same' padding (even and odd kernels), dilation, zero padding and pooling."""
    inp = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="a")(inp)
    x = keras.layers.Conv2D(2, 3, dilation_rate=2, padding="same", name="b")(x)
    x = keras.layers.ZeroPadding2D(((1, 0), (0, 2)), name="zp")(x)
    x = keras.layers.Conv2D(2, 4, strides=2, padding="same", name="c")(x)
    x = keras.layers.AveragePooling2D(2, strides=1, name="p")(x)
    x = keras.layers.Conv2D(2, 2, dilation_rate=2, padding="valid", name="d")(x)
    return keras.Model(inp, x, name=name)


def brute_force_fields(probe: keras.Model, size: int) -> np.ndarray:
    """(h, w, 4) hull [top, left, bottom, right) of the input pixels whose change changes each output
    cell, -1 where none does: every pixel perturbed on its own, on a zero image."""
    n = size * size
    pert = np.zeros((n, size, size, 1), np.float32)
    pert[np.arange(n), np.arange(n) // size, np.arange(n) % size, 0] = 1.0
    base = keras.ops.convert_to_numpy(probe(np.zeros((1, size, size, 1), np.float32)))
    out = keras.ops.convert_to_numpy(probe(pert))
    changed = np.abs(out - base).max(axis=-1) > 1e-6  # (n, h, w)
    h, w = changed.shape[1:]
    ref = np.full((h, w, 4), -1, np.int64)
    for r in range(h):
        for c in range(w):
            pix = np.flatnonzero(changed[:, r, c])
            if pix.size:
                ys, xs = pix // size, pix % size
                ref[r, c] = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
    return ref


def geometry_fields(geo: L.Geometry, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    cells = np.stack(np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij"), axis=-1)
    lo, hi = geo.fields(cells)
    fields = np.concatenate([lo, hi], axis=-1)
    fields[np.any(hi <= lo, axis=-1)] = -1  # an empty field: no pixel reaches the cell
    wlo, whi = geo.windows(cells)
    return fields, np.concatenate([wlo, whi], axis=-1)


@pytest.mark.parametrize("nested", [False, True])
def test_receptive_field_equals_brute_force(nested):
    """Every cell of every layer of a stack with strides, 'same' padding, dilation, zero padding and
    pooling: the geometry's field equals the hull of the input pixels that change the cell; inside the
    image it is the regular window, at the border it is smaller (and empty where a cell reads only
    padding). Nested: the same stack as a backbone inside another model."""
    _backend.set_random_seed(0)
    size = 21
    stack = rf_stack(size, name="base")
    model = stack
    if nested:  # and a layer after the backbone, whose field goes through it
        after = keras.layers.Conv2D(2, 2, strides=2, padding="same", name="after")
        model = keras.Sequential(
            [keras.Input((size, size, 1)), stack, after, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
        )
        probe = keras.Model(model.inputs, after.output)
        ref = brute_force_fields(probe, size)
        fields, _ = geometry_fields(L.geometry(model, "after"), ref.shape[:2])
        np.testing.assert_array_equal(fields, ref, err_msg="layer after the backbone")
    seen_inside = seen_clipped = seen_empty = 0
    for name in STACK:
        path = f"base/{name}" if nested else name
        probe = keras.Model(stack.inputs, stack.get_layer(name).output)  # the backbone's own graph
        ref = brute_force_fields(probe, size)
        fields, windows = geometry_fields(L.geometry(model, path), ref.shape[:2])
        np.testing.assert_array_equal(fields, ref, err_msg=f"layer {path}")
        inside = np.all((windows[..., :2] >= 0) & (windows[..., 2:] <= size), axis=-1)
        np.testing.assert_array_equal(fields[inside], windows[inside])
        seen_inside += int(inside.sum())
        seen_clipped += int((~inside & (fields[..., 0] >= 0)).sum())
        seen_empty += int((fields[..., 0] < 0).sum())
    assert seen_inside and seen_clipped and seen_empty  # the stack covers all three cases


def numpy_top_activations(maps: np.ndarray, filters: list[int], k: int):
    """Reference: per filter, the k examples whose largest output is largest (ties: lower index first),
    their values and the cell where that largest output is (the first in row-major order)."""
    n, _, w, _ = maps.shape
    indices, values, cells = [], [], []
    for f in filters:
        flat = maps[..., f].reshape(n, -1)
        best = flat.max(axis=1)
        order = sorted(range(n), key=lambda i: (-best[i], i))[:k]
        indices.append(order)
        values.append(best[order])
        cells.append([divmod(int(np.argmax(flat[i])), w) for i in order])
    return np.array(indices), np.array(values), np.array(cells)


def top_model(size: int = 20) -> keras.Model:
    inp = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", dilation_rate=2, name="c2")(x)  # linear: no ties at 0
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="out")(x), name="top_model")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_top_activations_equal_numpy_reference():
    _backend.set_random_seed(0)
    model = top_model()
    x = np.random.default_rng(0).random((40, 20, 20, 3), dtype=np.float32)
    maps = np.asarray(keras.Model(model.inputs, model.get_layer("c2").output).predict(x, verbose=0))
    filters = [1, 5, 7]
    result = kv.explain.top_activations(model, x, "c2", filters, top_k=4)
    indices, values, cells = numpy_top_activations(maps, filters, 4)
    np.testing.assert_array_equal(result.filters, filters)
    np.testing.assert_array_equal(result.indices, indices)
    np.testing.assert_allclose(result.values, values, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(result.cells, cells)
    # boxes: the brute-force field of each strongest cell (one channel of the layer suffices: linear)
    probe = keras.Model(model.inputs, model.get_layer("c2").output)
    ref_fields = brute_force_fields(_single_channel(probe), 20)
    expected = ref_fields[cells[..., 0], cells[..., 1]]
    np.testing.assert_array_equal(result.boxes, expected)
    # a count: the most active filters on the data (highest mean output), most active first
    counted = kv.explain.top_activations(model, x, "c2", 3, top_k=2)
    np.testing.assert_array_equal(counted.filters, np.argsort(-maps.mean(axis=(0, 1, 2)), kind="stable")[:3])


def _single_channel(probe: keras.Model) -> keras.Model:
    """The probe on a one-channel image (the brute force perturbs one channel): the image is repeated."""
    inp = keras.Input((None, None, 1))
    return keras.Model(inp, probe(keras.ops.repeat(inp, 3, axis=-1)))


def test_view_writes_tags_steps_pixels_and_marks_clipped_patches(log_dir):
    _backend.set_random_seed(1)
    model = top_model()
    rng = np.random.default_rng(1)
    x, y = rng.random((48, 20, 20, 3), dtype=np.float32), rng.integers(0, 3, 48)
    cb = kv.TopActivations(log_dir, (x, y), layer="c2", filters=3, top_k=4, on_error="raise")
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    run = read_run(log_dir)
    assert_steps(run, ["top_activations/c2"], [0, 1])
    written = image(run["top_activations/c2"][-1])
    result, (patches, inside) = cb.compute(1)
    np.testing.assert_array_equal(written, cb.draw((result, (patches, inside)), 1)[0].image)
    assert result.indices.shape == (3, 4) and patches.shape[:2] == (3, 4)
    # the patch is the field of the strongest cell, cut from the image; the rest of the window is marked
    for i in range(3):
        for j in range(4):
            top, left, bottom, right = result.boxes[i, j]
            wt, wl = result.windows[i, j, :2]
            cut = patches[i, j, top - wt : bottom - wt, left - wl : right - wl]
            np.testing.assert_array_equal(cut, x[result.indices[i, j], top:bottom, left:right])
            assert inside[i, j].sum() == (bottom - top) * (right - left)
    assert result.clipped.any(), "'same' padding: some strongest cells sit at the border"
    assert (written[..., None, :] == np.array(HATCH, np.uint8)).all(axis=-1).any()  # the striped outside
    desc = kv.writers.read_descriptions(os.path.join(log_dir, "viz"))["top_activations/c2"]
    assert "most active" in desc and "`c2`" in desc and "48 fixed examples" in desc
    assert header_digit_height(written) * CARD_WIDTH / written.shape[1] >= MIN_TEXT_PX


def test_hatch_marks_only_the_outside():
    tiles = np.full((2, 6, 6, 3), 200, np.uint8)
    inside = np.ones((2, 6, 6), bool)
    inside[1, :, :2] = False
    out = hatch(tiles, inside)
    np.testing.assert_array_equal(out[0], tiles[0])
    np.testing.assert_array_equal(out[1, :, 2:], tiles[1, :, 2:])
    colours = {tuple(p) for p in out[1, :, :2].reshape(-1, 3)}
    assert colours == {HATCH[0], HATCH[1]}


def test_whole_images_with_the_window_outlined(log_dir):
    _backend.set_random_seed(2)
    model = top_model()
    x = np.random.default_rng(2).random((16, 20, 20, 3), dtype=np.float32)
    cb = kv.TopActivations(log_dir, x, layer="c1", filters=[0, 2], top_k=3, patches=False, on_error="raise")
    model.fit(x, np.zeros(16, int), epochs=1, verbose=0, callbacks=[cb])
    result, images = cb.compute(0)
    assert images.shape == (2, 3, 20, 20, 3)
    np.testing.assert_array_equal(images, x[result.indices])
    written = image(read_run(log_dir)["top_activations/c1"][0])
    assert (written.reshape(-1, 3) == (255, 210, 0)).all(axis=1).any()  # the outline colour


def test_shares_the_data_pass_with_confusion_matrix(log_dir):
    _backend.set_random_seed(3)
    model = top_model()
    rng = np.random.default_rng(3)
    x, y = rng.random((40, 20, 20, 3), dtype=np.float32), rng.integers(0, 3, 40)
    cm = kv.ConfusionMatrix(log_dir, (x, y), on_error="raise")
    ta = kv.TopActivations(log_dir, (x, y), layer="c2", filters=2, top_k=2, on_error="raise")
    model.fit(x, y, epochs=2, batch_size=20, verbose=0, callbacks=[cm, ta])
    passes = kv.explain.shared_passes(model)
    assert len(passes) == 1 and passes[0].runs == 2
    assert ta.shared.forward is cm.shared.forward


def test_errors_before_training(log_dir):
    model = top_model()
    x, y = np.zeros((8, 20, 20, 3), np.float32), np.zeros(8, int)
    for kwargs, match in [
        ({"layer": "nope"}, r"No layer named 'nope'.*Conv layers: \['c1', 'c2'\]"),
        ({"layer": "gap"}, r"no 2-D spatial output"),
        ({"layer": "c2", "filters": [8]}, r"\[8\] out of range: the layer has 8 channels"),
    ]:
        cb = kv.TopActivations(log_dir, x, **kwargs)
        with pytest.raises(ValueError, match=match):
            model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    with pytest.raises(ValueError, match="expects"):  # data of the wrong size
        model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.TopActivations(log_dir, np.zeros((4, 8, 8, 3)))])
    for kwargs, match in [({"top_k": 0}, "top_k"), ({"filters": -1}, "count"), ({"max_points": 0}, "max_points")]:
        with pytest.raises(ValueError, match=match):
            kv.TopActivations(log_dir, x, **kwargs)
    with pytest.raises(ValueError, match="needs data"):
        kv.TopActivations(log_dir, None)
    one_d = keras.Sequential([keras.Input((20, 2)), keras.layers.Conv1D(3, 3, name="c"), keras.layers.Flatten()])
    with pytest.raises(ValueError, match="1-D"):
        kv.explain.top_activations(one_d, np.zeros((2, 20, 2)), None, 1)
