"""1-D signals (Conv1D models: time series, audio, sensors), other input ranks, and integer inputs.

The signals are made here: three channels of noise, one Gaussian bump at a random step; the channel
that carries the bump is the class. A small Conv1D network learns it in a few epochs, so where the
evidence lies is known: at the bump.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from util import image, read_run, steps

import keras_vizcallbacks as kv
from keras_vizcallbacks.callbacks.base import Frame
from keras_vizcallbacks.render.legibility import problems, recording
from keras_vizcallbacks.writers import read_descriptions

STEPS = 64


def bumps(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signals (n, STEPS, 3), classes (n,), bump positions (n,))."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.3, (n, STEPS, 3)).astype(np.float32)
    y = rng.integers(0, 3, n)
    pos = rng.integers(10, STEPS - 10, n)
    t = np.arange(STEPS)
    x[np.arange(n), :, y] += (2.0 * np.exp(-0.5 * ((t[None] - pos[:, None]) / 2.5) ** 2)).astype(np.float32)
    return x, y, pos


def conv1d_model() -> keras.Model:
    inp = keras.Input((STEPS, 3), name="signal")
    h = keras.layers.Conv1D(8, 5, activation="relu", name="c1")(inp)
    h = keras.layers.MaxPooling1D(2, name="p1")(h)
    h = keras.layers.Conv1D(16, 5, activation="relu", name="c2")(h)
    h = keras.layers.GlobalMaxPooling1D(name="gmp")(h)
    z = keras.layers.Dense(3, name="logits")(h)
    return keras.Model(inp, keras.layers.Activation("softmax", name="probs")(z), name="signal_cnn")


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    x, y, _ = bumps(768, seed=0)
    model = conv1d_model()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    xt, yt, pt = bumps(64, seed=1)
    acc = model.evaluate(xt, yt, verbose=0)[1]
    assert acc > 0.9, f"the Conv1D model reached only {acc:.2f}"
    return model, xt, yt, pt


def test_geometry_of_a_1d_layer():
    """Receptive-field geometry on a sequence: conv 5 (offset 2), pool 2 (stride 2, offset 2.5),
    conv 5 (offset 2.5 + 2·2 = 6.5, size 6 + 4·2 = 14)."""
    g = kv.layers.geometry(conv1d_model(), "c2")
    assert g.stride == (2.0,) and g.offset == (6.5,) and g.size == (14.0,)
    lo, hi = g.fields(np.array([[0], [25]]))  # 64 steps -> 60 -> 30 -> 26 cells
    assert lo.ravel().tolist() == [0, 50] and hi.ravel().tolist() == [14, 64]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam", "scorecam"])
def test_grad_cam_peaks_at_the_bump(trained, method):
    model, x, y, pos = trained
    r = kv.explain.GradCAMExplainer(model, method=method).explain(x, y)
    assert r.maps.shape == (len(x), STEPS) and r.raw.shape == (len(x), 26)
    assert np.all((r.maps >= 0) & (r.maps <= 1))
    err = np.abs(np.argmax(r.maps, axis=1) - pos)
    # the pointing game on a sequence, with a tolerance of 4 steps (the bump's sigma is 2.5)
    assert np.mean(err <= 4) >= 0.85, f"{method}: peak off the bump for {np.sum(err > 4)} of {len(x)}"


def test_grad_cam_is_placed_by_receptive_field(trained):
    """Cell i lands on step 6.5 + 2i, linear in between, the border cells' values beyond (np.interp),
    not a resize of 26 cells to 64 steps."""
    model, x, _, _ = trained
    r = kv.explain.GradCAMExplainer(model, "c2").explain(x[:4], normalize=False)
    centres = 6.5 + 2 * np.arange(26)
    ref = np.stack([np.interp(np.arange(STEPS), centres, raw) for raw in r.raw])
    np.testing.assert_allclose(r.maps, ref, rtol=1e-5, atol=1e-6)
    resized = np.stack([np.interp(np.linspace(0, 25, STEPS), np.arange(26), raw) for raw in r.raw])
    assert np.abs(resized - ref).max() > 1e-3 * np.abs(ref).max()  # the two placements differ


def test_saliency_on_a_signal_equals_gradient_tape(trained):
    import tensorflow as tf

    model, x, y, _ = trained
    ours = kv.explain.saliency(model, x[:8], class_index=y[:8], reduce=None)
    logits = keras.Model(model.inputs, model.get_layer("logits").output)  # the pre-softmax score, independently
    xt = tf.constant(x[:8])
    with tf.GradientTape() as tape:
        tape.watch(xt)
        z = logits(xt)
        s = tf.gather(z, y[:8], axis=1, batch_dims=1)
    ref = tape.gradient(s, xt).numpy()
    assert ours.shape == (8, STEPS, 3)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)
    maps = kv.explain.saliency(model, x[:8], class_index=y[:8])
    np.testing.assert_allclose(maps, np.abs(ref).max(axis=-1), rtol=1e-5, atol=1e-7)


def _views(log_dir, x, y):
    names = ["ch 0", "ch 1", "ch 2"]
    s = (x[:5], y[:5])
    return [
        kv.GradCAM(log_dir, s, class_names=names, on_error="raise"),
        kv.Saliency(log_dir, s, class_names=names, on_error="raise"),
        kv.Saliency(log_dir, s, method="integrated_gradients", reduce="sum", class_names=names, on_error="raise",
                    method_options={"steps": 16}),
        kv.FeatureMaps(log_dir, s, class_names=names, on_error="raise"),
        kv.FilterGrid(log_dir, on_error="raise"),
    ]  # fmt: skip


EXPECTED = {  # tag: (header words, width)
    "grad_cam/c2": (("Grad-CAM", "c2"), 560),
    "saliency/vanilla": (("saliency", "Vanilla gradient"), 560),
    "saliency/integrated_gradients": (("saliency", "Integrated Gradients"), 560),
    "feature_maps/c1": (("feature maps", "c1"), 640),
    "feature_maps/c2": (("feature maps", "c2"), 640),
    "filters/c1": (("filters", "c1"), None),
    "filters/c2": (("filters", "c2"), None),
}


def test_every_1d_view_writes_legible_pictures(trained, log_dir):
    model, x, y, _ = trained
    model = keras.models.clone_model(model)
    model.set_weights(trained[0].get_weights())
    model.compile("adam", "sparse_categorical_crossentropy")
    cbs = _views(log_dir, x, y)
    model.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=cbs)
    run = read_run(log_dir)
    assert set(run) == set(EXPECTED)
    for tag, (_, width) in EXPECTED.items():
        assert steps(run[tag]) == [0, 1], tag
        img = image(run[tag][-1])
        assert img.ndim == 3 and img.shape[2] == 3
        if width is not None:
            assert img.shape[1] == width, (tag, img.shape)
        assert 250 <= max(img.shape[:2]) <= 1600, (tag, img.shape)
        assert img.std() > 20 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50, f"{tag} looks blank"
    for cb in cbs:  # drawn again while recording: every text and mark reads at card size, every picture names itself
        with recording() as drawn:
            frames = [f for f in cb.draw(cb.compute(1), 1) if isinstance(f, Frame)]
        for f in frames:
            words, _ = EXPECTED[f.tag]
            assert f.image.shape == image(run[f.tag][-1]).shape
            assert problems(drawn, f.image.shape[1]) == [], f.tag
            head = " ".join(d.text for d in drawn if d.what == "header")
            for w in (*words, "epoch 1"):
                assert w in head, (f.tag, w, head)
        cb.on_close()
    descs = read_descriptions(log_dir + "/viz")
    assert "1-D samples" in descs["grad_cam/c2"] and "centred on step 6.5 + 2·i" in descs["grad_cam/c2"]
    assert "1-D samples" in descs["saliency/integrated_gradients"]
    assert "one heat row per channel" in descs["feature_maps/c1"] and "key above" not in descs["feature_maps/c1"]
    assert "one row per input channel (all 3" in descs["filters/c1"]
    assert "red, green and blue" not in descs["filters/c1"]
    assert "one row of its 5 taps: the norm-weighted mean of its 8" in descs["filters/c2"]
    assert run["grad_cam/c2"][-1].width == 560


def test_the_map_band_is_under_the_bump(trained):
    """In the Grad-CAM picture, the reddest column of each sample's heat band lies over the bump."""
    from keras_vizcallbacks.render.signal import signal_map_grid

    model, x, y, pos = trained
    maps = kv.explain.grad_cam(model, x[:3], class_index=y[:3])
    img = signal_map_grid(x[:3], maps, None, cmap="jet", width=520)
    top = np.all(img == kv.render.lut("jet")[255], axis=-1)  # each map's maximum: the colormap's last colour
    rows = np.flatnonzero(top.any(axis=1))
    bands = np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1)
    assert len(bands) == 3 and all(len(b) >= 16 for b in bands)  # one band per sample, 16+ px tall
    for band, p, m in zip(bands, pos[:3], maps, strict=True):
        cols = np.flatnonzero(top[band[len(band) // 2]])
        step = (cols.mean() + 0.5 - 6) / (520 - 12) * STEPS - 0.5
        assert abs(step - np.argmax(m)) <= 1 and abs(step - p) <= 5


def conv3d_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((6, 8, 8, 1)),
            keras.layers.Conv3D(3, 3, activation="relu", name="c3d"),
            keras.layers.GlobalAveragePooling3D(),
            keras.layers.Dense(2, activation="softmax"),
        ],
        name="volume_cnn",
    )


def test_gradient_views_refuse_conv3d_before_training_and_the_others_draw_it(log_dir):
    keras.utils.set_random_seed(0)
    model = conv3d_model()
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).normal(size=(8, 6, 8, 8, 1)).astype(np.float32)
    y = np.arange(8) % 2
    for view in (kv.GradCAM(log_dir, (x[:2], y[:2])), kv.Saliency(log_dir, (x[:2], y[:2]))):
        with pytest.raises(ValueError) as e:
            model.fit(x, y, epochs=1, verbose=0, callbacks=[view])
        msg = str(e.value)
        assert "(8, 6, 8, 8, 1)" in msg or "(None, 6, 8, 8, 1)" in msg or "(2, 6, 8, 8, 1)" in msg
        assert "rank 5 (3 spatial axes)" in msg and "1-D signal (batch, steps, channels)" in msg
        assert "FilterGrid and FeatureMaps" in msg
    with pytest.raises(ValueError, match="rank 5"):
        kv.explain.grad_cam(model, x[:2])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FilterGrid(log_dir), kv.FeatureMaps(log_dir, (x[:2], y[:2]))])
    run = read_run(log_dir)
    assert "grad_cam/c3d" not in run and "saliency/vanilla" not in run
    for tag in ("filters/c3d", "feature_maps/c3d"):
        assert steps(run[tag]) == [0]
        assert image(run[tag][0]).std() > 20


# --------------------------------------------------------------------------- integer inputs


def rescaled(dtype: str) -> keras.Model:
    inp = keras.Input((10, 10, 3), dtype=dtype)
    h = keras.layers.Rescaling(1 / 255.0)(inp)
    h = keras.layers.Conv2D(6, 3, activation="relu", name="c")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h), name=f"rescaled_{dtype}")


@pytest.fixture(scope="module")
def uint8_pair():
    keras.utils.set_random_seed(0)
    m8, m32 = rescaled("uint8"), rescaled("float32")
    m32.set_weights(m8.get_weights())
    x = np.random.default_rng(0).integers(0, 256, (4, 10, 10, 3)).astype(np.uint8)
    return m8, m32, x


@pytest.mark.parametrize(
    "method,options",
    [("vanilla", {}), ("smoothgrad", {"n_samples": 8}), ("integrated_gradients", {"steps": 16}),
     ("gradient_x_input", {})],
)  # fmt: skip
def test_integer_input_maps_equal_the_float_model(uint8_pair, method, options):
    m8, m32, x = uint8_pair
    ours = kv.explain.saliency(m8, x, method=method, reduce=None, **options)
    ref = kv.explain.saliency(m32, x.astype(np.float32), method=method, reduce=None, **options)
    assert np.abs(ours).max() > 0, "all-zero maps: the uint8 cast was differentiated"
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-9)


def test_integer_input_grad_cam_and_callback(uint8_pair, log_dir):
    m8, m32, x = uint8_pair
    np.testing.assert_allclose(kv.explain.grad_cam(m8, x), kv.explain.grad_cam(m32, x.astype(np.float32)), atol=1e-6)
    m8.compile("adam", "sparse_categorical_crossentropy")
    y = np.arange(4) % 3
    m8.fit(x, y, epochs=1, verbose=0, callbacks=[kv.Saliency(log_dir, (x, y), on_error="raise")])
    img = image(read_run(log_dir)["saliency/vanilla"][0])
    assert img.std() > 20


def test_causal_dilated_conv1d_is_placed_on_the_past():
    """A TCN-style stack (causal padding, dilation 2): cell i sees steps i-4..i, so it is centred on
    step i - 2 and the output keeps the input's length; Grad-CAM and Saliency run on it."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((40, 2)),
            keras.layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu", name="tcn"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    g = kv.layers.geometry(model, "tcn")
    assert g.stride == (1.0,) and g.offset == (-2.0,) and g.size == (5.0,)
    lo, hi = g.fields(np.array([[0], [10]]))
    assert lo.ravel().tolist() == [0, 6] and hi.ravel().tolist() == [1, 11]  # cell 0 sees only step 0
    x = np.random.default_rng(0).normal(size=(3, 40, 2)).astype(np.float32)
    assert kv.explain.grad_cam(model, x).shape == (3, 40)
    assert kv.explain.saliency(model, x).shape == (3, 40)


def test_a_long_signal_keeps_its_spikes():
    """16000 steps (a second of audio) on ~550 columns: the lines become an envelope that still
    reaches a one-step spike, and a one-step peak of the map still colours its column."""
    from keras_vizcallbacks.render.signal import per_column, signal_map_grid

    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (2, 16000, 1)).astype(np.float32)
    x[:, 12345, 0] = 5.0  # the spike is the signal's maximum: the envelope reaches the plot's top
    maps = np.zeros((2, 16000), np.float32)
    maps[:, 3210] = 1.0
    width = 520
    img = signal_map_grid(x, maps, None, cmap="jet", width=width)
    top = np.all(img == kv.render.lut("jet")[255], axis=-1)
    cols = np.unique(np.nonzero(top)[1])
    assert len(cols) == 1 and abs((cols[0] + 0.5 - 6) / (width - 12) * 16000 - 3210) <= 16000 / (width - 12)
    np.testing.assert_array_equal(per_column(np.array([0.0, 3.0, -4.0, 1.0]), 2), [3.0, -4.0])
    np.testing.assert_array_equal(per_column(np.array([0.2, 0.9, 0.4, 0.5]), 2, centre=0.5), [0.9, 0.4])
    # the spike's column of the plot has line pixels up to the plot's top rows
    plot_rows = np.flatnonzero((img == kv.render.signal.PLOT_BG).all(axis=-1).sum(axis=1) > width // 2)
    first = plot_rows[0]
    spike_col = round(6 + (12345 + 0.5) / 16000 * (width - 12))
    line = ~(img[first : first + 8, spike_col - 2 : spike_col + 3] == kv.render.signal.PLOT_BG).all(axis=-1)
    assert line.any(), "the envelope does not reach the spike"


def test_a_score_function_on_a_signal_model_shows_its_value(trained):
    """A callable target on a 1-D model: the captions carry the score the maps explain (not '?'),
    and that score is the function of the model's output."""
    model, x, y, _ = trained
    for view in (
        kv.GradCAM("unused", samples=(x[:4], y[:4]), layer="c2", target=lambda out: out[:, 2]),
        kv.Saliency("unused", samples=(x[:4], y[:4]), target=lambda out: out[:, 2]),
    ):
        view.set_model(model)
        view.prepare(model)
        computed = view.compute(0)
        expected = model.predict(x[:4], verbose=0)[:, 2]
        np.testing.assert_allclose(computed["scores"], expected, rtol=1e-4, atol=1e-6)
        with recording() as drawn:
            frames = [f for f in view.draw(computed, 0) if isinstance(f, Frame)]
        texts = " ".join(d.text for d in drawn if d.kind == "text")
        assert f"score: {float(expected[0]):.3g}" in texts and "score: ?" not in texts, texts
        assert "a score function" in frames[0].description
        view.on_close()
