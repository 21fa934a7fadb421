"""FilterGrid end to end: event files read back, steps, sizes, pixels that match the kernels."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from util import MODEL_FACTORIES, assert_steps, compiled, image, random_data, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import render
from keras_vizcallbacks.explain import channel_summary, conv_kernels, largest_norm
from keras_vizcallbacks.render import views as render_views
from keras_vizcallbacks.render.legibility import recording


def above_scale_bar(img: np.ndarray) -> np.ndarray:
    """The picture above its scale bar: the bar's ramp is the first row with over 100 distinct colours."""
    distinct = [len(np.unique(row.reshape(-1, 3), axis=0)) for row in img]
    return img[: next(i for i, d in enumerate(distinct) if d > 100)]


class BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.batches += 1


@pytest.mark.parametrize("kind", sorted(MODEL_FACTORIES))
def test_tags_steps_and_sizes_on_every_model_kind(kind, log_dir):
    model = compiled(MODEL_FACTORIES[kind]())
    x, y = random_data()
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[kv.FilterGrid(log_dir)])
    run = read_run(log_dir)
    prefix = "base/" if kind == "nested" else ""
    tags = [f"filters/{prefix}{n}" for n in (("base_c1", "base_c2") if kind == "nested" else ("c1", "c2"))]
    assert_steps(run, tags, [0, 1, 2])
    for tag in tags:
        rec = run[tag][-1]
        img = image(rec)
        assert img.shape == (rec.height, rec.width, 3)
        assert 128 <= max(img.shape[:2]) <= 1024


def test_resumed_fit_continues_steps(log_dir):
    model = compiled(MODEL_FACTORIES["sequential"]())
    x, y = random_data()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[kv.FilterGrid(log_dir)])
    model.fit(x, y, epochs=5, initial_epoch=3, verbose=0, callbacks=[kv.FilterGrid(log_dir)])
    assert_steps(read_run(log_dir), ["filters/c1", "filters/c2"], [0, 1, 2, 3, 4])


def test_every_n_epochs_and_last_epoch(log_dir):
    model = compiled(MODEL_FACTORIES["sequential"]())
    x, y = random_data()
    model.fit(x, y, epochs=6, verbose=0, callbacks=[kv.FilterGrid(log_dir, layers=["c2"], every_n_epochs=4)])
    run = read_run(log_dir)
    assert sorted(run) == ["filters/c2"]
    assert [r.step for r in run["filters/c2"]] == [0, 4, 5]


def test_rgb_first_layer_pixels_match_kernel(log_dir):
    """Set filter 0 of the first layer to a known pattern and find it in the written image."""
    model = MODEL_FACTORIES["sequential"]()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    kernel = np.random.default_rng(0).uniform(-0.4, 0.4, (3, 3, 3, 4)).astype(np.float32)
    kernel[..., 0] = 0.0
    kernel[0, 0, 0, 0] = 1.0  # +max on red at the top-left of filter 0
    kernel[2, 2, 2, 0] = -1.0  # -max on blue at the bottom-right
    model.get_layer("c1").kernel.assign(kernel)
    x, y = random_data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FilterGrid(log_dir, layers=["c1"])])
    img = image(read_run(log_dir)["filters/c1"][0])
    red = np.all(img == [255, 128, 128], axis=-1)
    blue_neg = np.all(img == [128, 128, 0], axis=-1)
    zero = np.all(img == [128, 128, 128], axis=-1)
    f = round(np.sqrt(red.sum()))
    assert f >= 4 and red.sum() == f * f and blue_neg.sum() == f * f
    (ry, rx), (by, bx) = np.argwhere(red)[0], np.argwhere(blue_neg)[0]
    assert (by - ry, bx - rx) == (2 * f, 2 * f)  # 2 kernel cells apart, on the diagonal
    # the other 7 cells of filter 0 are exactly zero: mid grey
    assert zero[ry : ry + 3 * f, rx : rx + 3 * f].sum() == 7 * f * f


def test_filters_ordered_by_norm_with_their_indices(log_dir):
    """Four first-layer filters with one weight each (norms 0.25, 1, 0.5, 0.75): drawn left to right by
    norm (1, 3, 2, 0), each tile labelled with its index, the scale bar's ends at the layer's ±max."""
    model = MODEL_FACTORIES["sequential"]()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    kernel = np.zeros((3, 3, 3, 4), np.float32)
    kernel[0, 0, 0, :] = [0.25, 1.0, -0.5, 0.75]  # the red weight at the top-left of each filter
    model.get_layer("c1").kernel.assign(kernel)
    x, y = random_data()
    cb = kv.FilterGrid(log_dir, layers=["c1"])
    model.fit(x, y, epochs=1, verbose=0, callbacks=[cb])
    img = image(read_run(log_dir)["filters/c1"][0])
    red_levels = {0: 159, 1: 255, 2: 64, 3: 223}  # round(255 * (0.5 + 0.5 * w / 1.0))
    at = {j: tuple(np.argwhere(np.all(img == [level, 128, 128], axis=-1))[0]) for j, level in red_levels.items()}
    assert sorted(at, key=at.get) == [1, 3, 2, 0]  # in reading order: row by row, left to right
    desc = kv.writers.read_descriptions(f"{log_dir}/viz")["filters/c1"]
    assert "largest L2 norm" in desc and "(1, 3, 2, 0)" in desc
    with recording() as drawn:  # drawn again from the same kernels: what text the picture carries
        cb.draw(cb.compute(0), 0)
    texts = [d.text for d in drawn if d.kind == "text"]
    assert [t for t in texts if t in {"0", "1", "2", "3"}] == ["1", "3", "2", "0"]
    assert "\u22121" in texts and "+1" in texts and "filters · c1 · epoch 0" in texts  # a true minus (U+2212)


def test_heatmap_layer_pixels_match_kernel(log_dir):
    model = MODEL_FACTORIES["sequential"]()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    k = np.zeros((3, 3, 4, 6), dtype=np.float32)
    k[1, 1, 0, 0] = 0.5  # centre of (filter 0, input channel 0): the layer's max
    k[0, 2, 3, 5] = -0.25  # half the scale, negative
    model.get_layer("c2").kernel.assign(k)
    x, y = random_data()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[kv.FilterGrid(log_dir, layers=["c2"], cmap="RdBu_r")])
    img = image(read_run(log_dir)["filters/c2"][0])
    lut = render.lut("RdBu_r")
    grid = above_scale_bar(img)  # the scale bar's ramp holds every level
    top = np.all(grid == lut[255], axis=-1)
    quarter = np.all(grid == lut[64], axis=-1)  # 0.5 - 0.25/(2*0.5) = 0.25 -> index 64
    assert top.sum() > 0 and top.sum() == quarter.sum()
    # one tile per filter (the summary over input channels: here each filter's single non-zero channel);
    # filter 0 (norm 0.5) comes before filter 5 (norm 0.25), on the same row
    assert np.argwhere(top)[0][1] < np.argwhere(quarter)[0][1]
    np.testing.assert_array_equal(conv_kernels(model.get_layer("c2"))[0, 0], k[:, :, 0, 0])


def test_channel_summary_is_the_norm_weighted_mean():
    rng = np.random.default_rng(1)
    k = rng.normal(size=(5, 7, 3, 3)).astype(np.float32)
    k[2] = 0.0  # a filter that is zero everywhere stays zero
    got = channel_summary(k)
    assert got.shape == (5, 1, 3, 3)
    for o in range(5):
        norms = [float(np.sqrt((k[o, i].astype(np.float64) ** 2).sum())) for i in range(7)]
        if sum(norms) == 0:
            np.testing.assert_array_equal(got[o, 0], 0.0)
            continue
        expected = sum(n * k[o, i] for i, n in enumerate(norms)) / sum(norms)
        np.testing.assert_allclose(got[o, 0], expected, rtol=1e-5, atol=1e-6)


def test_largest_norm_ranks_the_last_axis():
    k = np.zeros((3, 3, 2, 5), np.float32)  # Keras layout (*kernel, in, out)
    k[0, 0, 0, :] = [1.0, 3.0, 2.0, 3.0, np.nan]
    assert largest_norm(k, 3).tolist() == [1, 3, 2]  # a tie keeps the lower index
    assert largest_norm(k, 9).tolist() == [1, 3, 2, 0, 4]  # all of them, ranked; NaN last
    assert largest_norm(k, 2).dtype == np.int64
    with pytest.raises(ValueError, match="integer >= 1"):
        largest_norm(k, 0)


def test_change_shows_the_difference_from_the_first_render(log_dir):
    """show="change": the first frame is zero; after a known step on two weights, the next frame shows
    exactly that step (and nothing else) on the layer's ±max scale."""
    model = MODEL_FACTORIES["sequential"]()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    x, y = random_data()

    def step(epoch, logs=None):
        if epoch == 1:  # between the first and second render
            k = np.asarray(model.get_layer("c2").kernel).copy()
            k[1, 1, 2, 3] += 0.3  # filter 3, input channel 2, centre
            k[0, 0, 1, 4] -= 0.3  # filter 4, input channel 1, top-left
            model.get_layer("c2").kernel.assign(k)

    cbs = [keras.callbacks.LambdaCallback(on_epoch_begin=step), kv.FilterGrid(log_dir, layers=["c2"], show="change")]
    model.fit(x, y, epochs=2, verbose=0, callbacks=cbs)
    frames = [image(r) for r in read_run(log_dir)["filters/c2"]]
    lut = render.lut("RdBu_r")
    grid0, grid1 = (above_scale_bar(f) for f in frames)
    assert not np.all(grid0 == lut[255], axis=-1).any() and np.all(grid0 == lut[128], axis=-1).sum() > 0
    top, low = np.all(grid1 == lut[255], axis=-1), np.all(grid1 == lut[0], axis=-1)
    assert top.sum() > 0 and top.sum() == low.sum()  # +0.3 and -0.3, the ends of the scale
    assert np.all(grid1 == lut[128], axis=-1).sum() == np.all(grid0 == lut[128], axis=-1).sum() - 2 * top.sum()
    desc = kv.writers.read_descriptions(f"{log_dir}/viz")["filters/c2"]
    assert "change of each kernel since epoch 0" in desc


def test_channels_all_draws_every_input_channel(log_dir):
    model = MODEL_FACTORIES["sequential"]()
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    k = np.zeros((3, 3, 4, 6), dtype=np.float32)
    k[1, 1, :, 0] = [0.5, -0.5, 0.5, -0.5]  # filter 0: a centre weight on each of its 4 channels
    model.get_layer("c2").kernel.assign(k)
    x, y = random_data()
    for channels in ("summary", "all"):
        model.fit(
            x,
            y,
            epochs=1,
            verbose=0,
            callbacks=[kv.FilterGrid(f"{log_dir}/{channels}", layers=["c2"], channels=channels)],
        )
    lut = render.lut("RdBu_r")
    summary, every = (image(read_run(f"{log_dir}/{c}")["filters/c2"][0]) for c in ("summary", "all"))
    # the summary (norm-weighted mean) of +/-0.5 on four channels is 0: no colour at either end
    assert not np.all(above_scale_bar(summary) == lut[255], axis=-1).any()
    every = above_scale_bar(every)
    top, low = np.all(every == lut[255], axis=-1).sum(), np.all(every == lut[0], axis=-1).sum()
    assert top > 0 and top == low  # two channels at +max, two at -max


def test_caps_and_description(log_dir):
    model = keras.Sequential(
        [keras.Input((12, 12, 3)), keras.layers.Conv2D(8, 3, name="a"), keras.layers.Conv2D(40, 3, name="b")]
    )
    model.add(keras.layers.Flatten())
    model.add(keras.layers.Dense(2))
    model.compile("sgd", "mse")
    cb = kv.FilterGrid(log_dir, max_filters=5, max_channels=3, channels="all")
    model.fit(np.zeros((4, 12, 12, 3)), np.zeros((4, 2)), verbose=0, callbacks=[cb])
    desc = kv.writers.read_descriptions(f"{log_dir}/viz")
    kernel = np.asarray(model.get_layer("b").kernel)  # (3, 3, 8, 40); zero inputs: the weights did not move
    norms = np.sqrt((kernel.reshape(-1, 40).astype(np.float64) ** 2).sum(axis=0))
    top5 = np.argsort(-norms, kind="stable")[:5]
    assert "Filters shown: 5 of 40, those with the largest L2 norm" in desc["filters/b"]
    assert f"({', '.join(str(i) for i in top5)})" in desc["filters/b"]
    assert "3 of 8, evenly spaced" in desc["filters/b"]
    assert "colour image" in desc["filters/a"]


def test_errors_before_first_batch(log_dir, tmp_path):
    x, y = random_data()
    counter = BatchCounter()
    model = compiled(MODEL_FACTORIES["functional"]())
    with pytest.raises(ValueError, match=r"No layer named 'conv9'.*Conv layers available: \['c1', 'c2'\]"):
        model.fit(x, y, verbose=0, callbacks=[counter, kv.FilterGrid(log_dir, layers=["conv9"])])
    with pytest.raises(ValueError, match=r"'gap' is a GlobalAveragePooling2D, not a convolution layer"):
        model.fit(x, y, verbose=0, callbacks=[counter, kv.FilterGrid(log_dir, layers=["gap"])])
    dense = compiled(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")]))
    with pytest.raises(ValueError, match="has no convolution layer"):
        dense.fit(np.zeros((4, 4)), np.zeros(4), verbose=0, callbacks=[counter, kv.FilterGrid(log_dir)])
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        model.fit(x, y, verbose=0, callbacks=[counter, kv.FilterGrid(str(blocker))])
    with pytest.raises(ValueError, match="cannot be created"):
        model.fit(x, y, verbose=0, callbacks=[counter, kv.FilterGrid(str(blocker / "sub"))])
    assert counter.batches == 0
    assert kv.writers.open_writers() == []  # nothing left open by the failed starts


def test_argument_errors_at_construction(log_dir):
    with pytest.raises(ValueError, match="every_n_epochs"):
        kv.FilterGrid(log_dir, every_n_epochs=0)
    with pytest.raises(ValueError, match="on_error"):
        kv.FilterGrid(log_dir, on_error="ignore")
    with pytest.raises(ValueError, match="path separator"):
        kv.FilterGrid(log_dir, run_name="a/b")
    with pytest.raises(ValueError, match="Unknown colormap"):
        kv.FilterGrid(log_dir, cmap="nope")
    with pytest.raises(ValueError, match=r"show must be 'weights'.*or 'change'.*got 'delta'"):
        kv.FilterGrid(log_dir, show="delta")
    with pytest.raises(ValueError, match=r"channels must be 'summary'.*or 'all'.*got 'mean'"):
        kv.FilterGrid(log_dir, channels="mean")
    with pytest.raises(ValueError, match="max_filters must be an integer >= 1, got 0"):
        kv.FilterGrid(log_dir, max_filters=0)


def test_conv_kernels_layouts():
    conv1d = keras.layers.Conv1D(5, 4)
    conv1d.build((None, 10, 2))
    assert conv_kernels(conv1d).shape == (5, 2, 4)
    tr = keras.layers.Conv2DTranspose(5, 3)
    tr.build((None, 8, 8, 2))
    k = np.asarray(tr.kernel)  # (3, 3, out=5, in=2)
    np.testing.assert_array_equal(conv_kernels(tr)[4, 1], k[:, :, 4, 1])
    dw = keras.layers.DepthwiseConv2D(3, depth_multiplier=2)
    dw.build((None, 8, 8, 3))
    kd = np.asarray(dw.kernel)  # (3, 3, in=3, mult=2)
    out = conv_kernels(dw)
    assert out.shape == (6, 1, 3, 3)
    np.testing.assert_array_equal(out[3, 0], kd[:, :, 1, 1])  # channel 1, multiplier 1 -> output 3
    sep = keras.layers.SeparableConv2D(4, 3)
    sep.build((None, 8, 8, 2))
    assert conv_kernels(sep).shape == (2, 1, 3, 3)
    c3 = keras.layers.Conv3D(2, (2, 3, 3))
    c3.build((None, 4, 8, 8, 1))
    assert conv_kernels(c3).shape == (2, 1, 2, 3, 3)


def test_scale_bar_signs_survive_the_card():
    """The scale's ends carry their sign (a true minus and a plus, bold): scaled to TensorBoard's card
    width the minus still has ink left of the first digit (a thin hyphen used to vanish there)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    img = render_views.filter_grid(rng.normal(size=(32, 3, 3, 3)).astype(np.float32), rgb=True, title="t")
    bar = img[len(above_scale_bar(img)) :]
    with recording() as drawn:
        render_views.filter_grid(rng.normal(size=(32, 3, 3, 3)).astype(np.float32), rgb=True, title="t")
    ends = [d.text for d in drawn if d.what == "scale label"]
    assert ends[0].startswith("\u2212") and ends[2].startswith("+")
    assert all(d.bold for d in drawn if d.what == "scale label")
    # Browsers may drop whole rows when they scale an image down (Chromium did in TensorBoard's card):
    # nearest-neighbour scaling drops rows the same way; bilinear blurs them.
    for width in (330, 300, 260):
        for how in (Image.NEAREST, Image.BILINEAR):
            card = np.asarray(Image.fromarray(bar).resize((width, round(bar.shape[0] * width / bar.shape[1])), how))
            text = card[-round(card.shape[0] * 0.6) :, :60].astype(int).sum(-1)  # the left label, under the ramp
            inked = np.flatnonzero((text > np.median(text) + 150).any(axis=0))
            assert inked.size, "no label drawn at the left end"
            gaps = np.flatnonzero(np.diff(inked) > 1)
            # the minus: a run of inked columns before the first digit, wide enough to read as a sign
            assert gaps.size and gaps[0] + 1 >= 3, (width, how, inked)
