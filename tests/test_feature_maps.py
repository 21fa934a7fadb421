"""FeatureMaps end to end: samples in every form, pixels that match the activations, one trace."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from util import MODEL_FACTORIES, assert_steps, compiled, image, random_data, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import render
from keras_vizcallbacks.explain import most_active
from keras_vizcallbacks.render.legibility import recording


def find(img: np.ndarray, patch: np.ndarray) -> list[tuple[int, int]]:
    """Top-left positions where ``patch`` occurs exactly in ``img`` (independent of the layout code)."""
    h, w = patch.shape[:2]
    cand = np.argwhere(np.all(img[: img.shape[0] - h + 1, : img.shape[1] - w + 1] == patch[0, 0], axis=-1))
    return [(y, x) for y, x in cand if np.array_equal(img[y : y + h, x : x + w], patch)]


@pytest.mark.parametrize("kind", sorted(MODEL_FACTORIES))
def test_tags_steps_on_every_model_kind(kind, log_dir):
    model = compiled(MODEL_FACTORIES[kind]())
    x, y = random_data()
    cb = kv.FeatureMaps(log_dir, samples=x[:3])
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb])
    names = ("base/base_c1", "base/base_c2") if kind == "nested" else ("c1", "c2")
    run = read_run(log_dir)
    assert_steps(run, [f"feature_maps/{n}" for n in names], [0, 1, 2])
    assert cb.probe.fn.traces == 1  # the fixed batch traced once across all epochs


def test_tile_pixels_match_the_activation(log_dir):
    """Channel 0 of c1 copies the red channel: its tile must be viridis(minmax(red[1:-1, 1:-1]))."""
    model = MODEL_FACTORIES["functional"]()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    conv = model.get_layer("c1")
    k = np.zeros((3, 3, 3, 4), np.float32)
    k[1, 1, 0, 0] = 1.0
    k[..., 1:] = np.random.default_rng(0).normal(size=(3, 3, 3, 3))
    conv.kernel.assign(k)
    conv.bias.assign(np.zeros(4, np.float32))
    x, y = random_data(8)
    x[0, ..., 0] = np.linspace(0.1, 0.9, 16)[None, :] * np.linspace(0.5, 1.0, 16)[:, None]  # a smooth ramp
    model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FeatureMaps(log_dir, samples=x[:2], layers=["c1"])])
    img = image(read_run(log_dir)["feature_maps/c1"][0])

    def tile_of(i):  # where sample i's channel-0 tile is: viridis(minmax(red)), 14 px maps drawn at 2x (nearest 32 px)
        red = x[i, 1:-1, 1:-1, 0]
        expected = render.lut("viridis")[np.round((red - red.min()) / np.ptp(red) * 255).astype(int)]
        return find(img, np.repeat(np.repeat(expected, 2, 0), 2, 1))

    first, second = tile_of(0), tile_of(1)
    assert len(first) == 1 and len(second) == 1
    # one row per sample, the channels in the same columns: sample 1's tile right under sample 0's
    assert first[0][0] < second[0][0] and first[0][1] == second[0][1]


@pytest.mark.parametrize("form", ["tuple", "dataset_batched", "dataset_unbatched"])
def test_sample_forms(form, log_dir):
    model = compiled(MODEL_FACTORIES["sequential"]())
    x, y = random_data(20)
    if form == "tuple":
        samples = (x[:5], y[:5])
    elif form == "dataset_batched":
        samples = tf.data.Dataset.from_tensor_slices((x, y)).batch(3)
    else:
        samples = tf.data.Dataset.from_tensor_slices((x, y))
    cb = kv.FeatureMaps(log_dir, samples=samples, max_samples=5, class_names=["a", "b", "c"])
    model.fit(x, y, epochs=2, verbose=0, callbacks=[cb])
    assert cb.x.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(cb.x, x[:5])
    np.testing.assert_array_equal(cb.y, y[:5])
    assert_steps(read_run(log_dir), ["feature_maps/c1", "feature_maps/c2"], [0, 1])


def test_most_active_channels_chosen_once_and_labelled(log_dir):
    """The 3 most active of c2's 6 channels (mean activation over the samples, computed here from
    Keras' own outputs), chosen at the first render and kept: the next epochs draw the same ones in
    the same order, under the same key, whatever the activations do."""
    model = compiled(MODEL_FACTORIES["sequential"]())
    x, y = random_data()
    cb = kv.FeatureMaps(log_dir, samples=x[:4], max_channels=3)
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    c2 = np.asarray(keras.Model(model.inputs[0], model.get_layer("c2").output)(x[:4]))  # weights as at that render
    means = c2.reshape(-1, 6).mean(axis=0)
    chosen = sorted(range(6), key=lambda i: (-means[i], i))[:3]
    desc = kv.writers.read_descriptions(f"{log_dir}/viz")["feature_maps/c2"]
    assert "the 3 of 6 with the largest mean activation" in desc and "`c2`" in desc and "normalized" in desc
    assert f"({', '.join(map(str, chosen))})" in desc
    values = cb.compute(1)
    values["c2"] = values["c2"][..., ::-1] * 10.0  # other channels are now the most active
    with recording() as drawn:
        frames = cb.draw(values, 1)
    assert [f.tag for f in frames] == ["feature_maps/c1", "feature_maps/c2"]
    assert [d.text for d in drawn if d.what == "channel label" and d.text != "channel"][-3:] == list(map(str, chosen))
    assert any(d.what == "header" and d.text == "feature maps · c2 · epoch 1" for d in drawn)


def test_most_active_ranks_the_last_axis():
    a = np.zeros((2, 3, 3, 5), np.float32)
    a[..., :] = [0.1, 0.5, 0.2, 0.5, np.nan]
    assert most_active(a, 3).tolist() == [1, 3, 2]  # a tie keeps the lower index
    assert most_active(a, 10).tolist() == [1, 3, 2, 0, 4]  # every channel, ranked; NaN last
    with pytest.raises(ValueError, match="integer >= 1"):
        most_active(a, 0)


def test_evenly_spaced_choice(log_dir):
    model = compiled(MODEL_FACTORIES["sequential"]())
    x, y = random_data()
    cb = kv.FeatureMaps(log_dir, samples=x[:2], max_channels=3, select="evenly_spaced")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    desc = kv.writers.read_descriptions(f"{log_dir}/viz")["feature_maps/c2"]
    assert "3 of 6 channels, evenly spaced" in desc and "(0, 2, 5)" in desc


def test_errors_before_first_batch(log_dir):
    model = compiled(MODEL_FACTORIES["functional"]())
    x, y = random_data()
    seen = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: seen.append(b))

    def fit(**kw):
        model.fit(x, y, verbose=0, callbacks=[counter, kv.FeatureMaps(log_dir, **kw)])

    with pytest.raises(ValueError, match=r"has shape \(2, 28, 28, 1\) but the model expects \(N, 16, 16, 3\)"):
        fit(samples=np.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"rank 3\) but the model expects \(N, 16, 16, 3\).*x\[None\]"):
        fit(samples=x[0])
    with pytest.raises(ValueError, match="empty"):
        fit(samples=x[:0])
    with pytest.raises(ValueError, match=r"'out' \(Dense\) has no spatial output.*c1, p1, c2"):
        fit(samples=x[:2], layers=["out"])
    with pytest.raises(ValueError, match=r"No layer named 'c9'"):
        fit(samples=x[:2], layers=["c9"])
    with pytest.raises(ValueError, match="2 inputs but 3 labels"):
        fit(samples=x[:2], labels=y[:3])
    assert seen == []
    with pytest.raises(ValueError, match=r"select must be 'most_active'.*or 'evenly_spaced', got 'top'"):
        kv.FeatureMaps(log_dir, samples=x[:2], select="top")
    with pytest.raises(ValueError, match="max_channels must be an integer >= 1, got 0"):
        kv.FeatureMaps(log_dir, samples=x[:2], max_channels=0)


def test_explain_feature_maps_function_matches_keras():
    model = MODEL_FACTORIES["nested"]()
    x, _ = random_data(3)
    maps = kv.explain.feature_maps(model, x)
    base = model.layers[0]
    ref = keras.Model(base.inputs, base.get_layer("base_c2").output)(x)
    np.testing.assert_allclose(maps["base/base_c2"], np.asarray(ref), rtol=1e-5, atol=1e-6)
