"""render/: normalization, colormaps, tiling, text — plain arrays in, uint8 images out."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from keras_vizcallbacks import render
from keras_vizcallbacks.render.legibility import recording
from keras_vizcallbacks.render.views import feature_map_grid, filter_grid


def test_lut_matches_matplotlib():
    table = render.lut("viridis")
    assert table.shape == (256, 3) and table.dtype == np.uint8
    ref = np.round(np.array(matplotlib.colormaps["viridis"](np.linspace(0, 1, 256)))[:, :3] * 255)
    assert np.array_equal(table, ref.astype(np.uint8))
    with pytest.raises(ValueError, match="Unknown colormap"):
        render.lut("no-such-map")


def test_normalize_per_tile_and_shared():
    x = np.stack([np.arange(4.0).reshape(2, 2), 10 + 2 * np.arange(4.0).reshape(2, 2)])
    per, _ = render.normalize(x, per=1)
    assert np.allclose(per[0], per[1]) and per.min() == 0 and per.max() == 1
    shared, _ = render.normalize(x)
    assert shared[0].max() < shared[1].min()
    sym, _ = render.normalize(np.array([-2.0, 0.0, 1.0]), symmetric=True)
    assert np.allclose(sym, [0.0, 0.5, 0.75])


@pytest.mark.parametrize(
    "x",
    [
        np.full((5, 5), 3.0),
        np.zeros((5, 5)),
        np.full((5, 5), np.nan),
        np.array([[np.inf, -np.inf], [np.nan, 1.0]]),
        np.array([[1e308, -1e308], [0.0, 5e307]]),
        np.array([[np.float32(1e-45), 0.0]]),
        np.array([[3.4e38, -3.4e38]], dtype=np.float32),
    ],
)
def test_heatmap_never_fails(x):
    with np.errstate(all="raise"):  # no division by zero, no overflow, no invalid op
        img = render.heatmap(x, "viridis")
    assert img.dtype == np.uint8 and img.shape == (*x.shape, 3)
    invalid = ~np.isfinite(x)
    assert (img[invalid] == render.MARKER).all()
    if np.isfinite(x).all() and x.max() == x.min():  # constant tile: middle of the colormap
        assert (img == render.lut("viridis")[128]).all()


def test_huge_values_keep_order():
    x = np.array([-1e308, 0.0, 1e308])
    scaled, _ = render.normalize(x)
    assert np.allclose(scaled, [0, 0.5, 1])


def test_tile_layout_and_padding():
    tiles = np.zeros((5, 2, 3, 3), dtype=np.uint8)
    for i in range(5):
        tiles[i] = 10 * (i + 1)
    grid = render.tile(tiles, pad=1, pad_value=255)
    # 5 tiles -> 3 columns, 2 rows: height 2*2+1, width 3*3+2
    assert grid.shape == (5, 11, 3)
    assert (grid[0:2, 0:3] == 10).all() and (grid[0:2, 4:7] == 20).all() and (grid[3:5, 4:7] == 50).all()
    assert (grid[2, :] == 255).all() and (grid[:, 3] == 255).all()
    assert (grid[3:5, 8:11] == 255).all()  # empty cell


def test_tile_keeps_batch_axes():
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 255, (3, 7, 4, 5, 3), dtype=np.uint8)
    batch = render.tile(tiles, pad=2, pad_value=(1, 2, 3), border=True)
    for i in range(3):
        np.testing.assert_array_equal(batch[i], render.tile(tiles[i], pad=2, pad_value=(1, 2, 3), border=True))
    single = render.tile(tiles[0], pad=2, pad_value=(1, 2, 3), border=True)
    assert single.shape == (2 + 3 * 6 - 2 + 2, 2 + 3 * 7 - 2 + 2, 3)  # 7 tiles: 3 x 3 grid, border 2
    assert (single[:2] == (1, 2, 3)).all() and np.array_equal(single[2:6, 2:7], tiles[0, 0])


def test_upscale_and_resize():
    img = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    up = render.upscale(img, 3)
    assert up.shape == (6, 6, 3) and (up[:3, :3] == img[0, 0]).all() and (up[3:, 3:] == img[1, 1]).all()
    same = render.resize_nearest(up, 2, 2)
    assert np.array_equal(same, img)


def test_spread_is_deterministic_and_covers_range():
    assert render.spread(10, None).tolist() == list(range(10))
    assert render.spread(64, 8).tolist() == [0, 9, 18, 27, 36, 45, 54, 63]
    assert render.spread(3, 8).tolist() == [0, 1, 2]


def test_to_rgb_keeps_unit_range_and_marks_nan():
    x = np.zeros((2, 2, 3), dtype=np.float32)
    x[0, 0] = [1.0, 0.5, 0.0]
    x[1, 1, 0] = np.nan
    rgb = render.to_rgb(x)
    assert rgb[0, 0].tolist() == [255, 128, 0]
    assert rgb[1, 1].tolist() == render.MARKER.tolist()
    gray = render.to_rgb(np.ones((4, 4, 1), dtype=np.float32) * 0.5)
    assert gray.shape == (4, 4, 3) and (gray == 128).all()


def test_caption_adds_readable_text_strip():
    img = np.zeros((40, 200, 3), dtype=np.uint8)
    out = render.caption(img, ["circle  p=0.98", "second line"])
    assert out.shape[1] == 200 and out.shape[0] > 40
    strip = out[: out.shape[0] - 40]
    assert (strip > 150).any()  # light text pixels were drawn


def test_sample_caption_strips_assembled_from_cached_lines_equal_pillow_drawing_them():
    """Sample captions are put together from lines rendered once each (a changed number re-renders its
    line only): pixel for pixel what ImageDraw.text draws for the whole caption, descenders, accents
    and shortened lines included, whichever lines came from the cache."""
    from PIL import Image, ImageDraw

    from keras_vizcallbacks.render import overlay
    from keras_vizcallbacks.render.text import fit, font

    def drawn(lines, width, size, colour):
        line_h = round(size * 1.2)
        strip = Image.new("RGB", (width, line_h * len(lines) + 6), overlay.BG)
        draw = ImageDraw.Draw(strip)
        for i, line in enumerate(lines):
            draw.text((4, 3 + i * line_h), fit(line, width - 6, size), fill=colour, font=font(size))
        return np.asarray(strip)

    overlay._line_ink.cache_clear()
    for size, width in ((11, 96), (17, 260), (24, 300)):
        for colour in ((120, 220, 120), (240, 130, 110)):
            for p in ("0.28", "0.97", "1.00"):
                lines = ("#12  true: triangle", f"pred: jigsaw (gÿq) p={p}", "map max 6.65e-05 · ÁÉ | a long tail")
                got = overlay._caption_strip(lines, width, size, colour)
                np.testing.assert_array_equal(got, drawn(lines, width, size, colour), err_msg=f"{size} {width} {p}")
    assert overlay._line_ink.cache_info().hits > 0  # the unchanged lines came from the cache


def test_filter_grid_rgb_colour_and_scale():
    k = np.zeros((4, 3, 3, 3), dtype=np.float32)  # (out, in=RGB, h, w)
    k[0, 0, 0, 0] = 2.0  # red +max at top-left of filter 0
    k[0, 2, 2, 2] = -2.0  # blue -max at bottom-right
    with recording() as drawn:
        img = filter_grid(k, rgb=True, labels=["0", "1", "2", "3"], title="filters · c1 · epoch 0")
    red = np.all(img == [255, 128, 128], axis=-1)
    neg_blue = np.all(img == [128, 128, 0], axis=-1)
    (ry, rx), (by, bx) = np.argwhere(red)[0], np.argwhere(neg_blue)[0]
    f = int(np.sqrt(red.sum()))
    assert f >= 4 and red.sum() == f * f and neg_blue.sum() == f * f and (by - ry, bx - rx) == (2 * f, 2 * f)
    texts = [d.text for d in drawn if d.kind == "text"]
    assert "filters · c1 · epoch 0" in texts and {"0", "1", "2", "3"} <= set(texts)
    assert "\u22122" in texts and "+2" in texts  # the scale bar's ends: the colour range of this picture
    marks = {d.what: d.px for d in drawn if d.kind == "mark"}
    assert marks["kernel weight"] == f


def test_filter_grid_heatmap_centre_and_shared_scale():
    k = np.zeros((6, 5, 3, 3), dtype=np.float32)
    k[0, 0, 1, 1] = 1.0
    k[3, 4, 0, 0] = -0.5
    lut = render.lut("RdBu_r")
    bar_only = filter_grid(np.zeros_like(k), cmap="RdBu_r")  # the same layout: only the scale bar's ramp is coloured

    def count(img, level):  # pixels of one colormap level, less those of the scale bar's ramp
        return np.all(img == lut[level], axis=-1).sum() - np.all(bar_only == lut[level], axis=-1).sum()

    img = filter_grid(k, cmap="RdBu_r")
    top, low = count(img, 255), count(img, 64)  # +1 and -0.5 of a ±1 scale
    assert top > 0 and top == low
    assert count(img, 128) == -(top + low)  # every other weight is the centre, as in the all-zero grid
    fixed = filter_grid(k, cmap="RdBu_r", scale=2.0)  # a given scale: +1 is then 3/4 up the colormap
    assert count(fixed, 191) == top


def test_filter_grid_keeps_weights_legible_at_card_size():
    """64 filters x 16 channels of 3x3 ("all channels"): as few blocks per row as keep a weight 4 px at 330 px."""
    k = np.random.default_rng(0).normal(size=(64, 16, 3, 3)).astype(np.float32)
    with recording() as drawn:
        img = filter_grid(k, labels=[str(i) for i in range(64)], title="filters · c2 · epoch 0")
    f = next(d.px for d in drawn if d.what == "kernel weight")
    assert f * 330 / img.shape[1] >= 4


def test_feature_map_grid_rows_and_nan():
    maps = np.random.default_rng(0).random((3, 6, 6, 5)).astype(np.float32)
    maps[0, ..., 0] = np.nan
    maps[1, ..., 1] = 7.0
    inputs = np.random.default_rng(1).random((3, 12, 12, 3)).astype(np.float32)
    maps[2, ..., 2] = 0.0  # a dead ReLU channel
    img = feature_map_grid(maps, inputs, captions=["a", "b", "c"], tile_px=30)
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert np.all(img == render.MARKER, axis=-1).sum() == 36 * 25  # 6x6 map drawn at 5x
    lut = render.lut("viridis")
    assert np.all(img == lut[0], axis=-1).sum() >= 36 * 25  # dead channel: lowest colour
    assert np.all(img == lut[128], axis=-1).sum() == 36 * 25  # constant 7.0: mid colour


def test_feature_map_grid_layout_thumbnail_fills_the_row():
    """One row per sample: the thumbnail as tall as the sample's tiles (no empty area under it), then
    the tiles ``cols`` to a line; the key labels each tile position once."""
    rng = np.random.default_rng(2)
    maps = rng.random((2, 5, 5, 16)).astype(np.float32)
    inputs = np.zeros((2, 8, 8, 3), np.float32)
    inputs[0] = 1.0  # sample 0's thumbnail is white, sample 1's black
    labels = [str(i) for i in rng.permutation(40)[:16]]
    with recording() as drawn:
        img = feature_map_grid(
            maps, inputs, tile_px=20, channel_labels=labels, cols=8, title="feature maps · c · epoch 2"
        )
    white = np.all(img == 255, axis=-1)
    rows, cols = np.nonzero(white)
    thumb_h = rows.max() - rows.min() + 1
    assert thumb_h == 2 * 20 + 1  # two lines of 8 tiles of 5x5 at 4x, 1 px apart: the thumbnail fills them
    assert cols.max() - cols.min() + 1 == thumb_h  # square input, square thumbnail
    viridis = np.isin(img.reshape(-1, 3).view([("", img.dtype)] * 3), render.lut("viridis").view([("", np.uint8)] * 3))
    tile_rows = np.nonzero(viridis.reshape(img.shape[:2]).any(axis=1))[0]
    first_tile_rows = tile_rows[tile_rows <= rows.max()]
    assert first_tile_rows.min() == rows.min() and first_tile_rows.max() == rows.max()  # same rows as the thumbnail
    assert [d.text for d in drawn if d.what == "channel label"][:16] == labels
    assert any(d.what == "header" and d.text == "feature maps · c · epoch 2" for d in drawn)


def test_header_text_reads_at_card_size():
    """Independent of the size arithmetic: draw a header, scale the picture to 330 px wide as
    TensorBoard's card does, and measure the digits' ink in the scaled pixels."""
    from PIL import Image

    for width in (330, 600, 1000):
        img = render.header(np.zeros((10, width, 3), np.uint8), "0123456789", bg=(0, 0, 0), fg=(255, 255, 255))
        small = np.asarray(Image.fromarray(img).resize((330, round(img.shape[0] * 330 / width)), Image.LANCZOS))
        ink = np.nonzero((small[..., 0] > 100).any(axis=1))[0]
        assert ink.max() - ink.min() + 1 >= 9, width


# ------------------------------------------------------------------ fast paths (performance issue)


def test_levels_matches_normalize_then_round():
    from keras_vizcallbacks.render import color

    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 6, 9, 9)).astype(np.float32) * rng.uniform(0.01, 100, size=(4, 6, 1, 1))
    x[1, 2] = 3.0  # a constant tile: the middle level
    for symmetric in (False, True):
        fast, invalid = color.levels(x, per=2, symmetric=symmetric)
        scaled, _ = color.normalize(x, per=2, symmetric=symmetric)
        ref = np.round(scaled * 255.0).astype(np.int64)
        assert invalid is None and fast.dtype == np.uint8
        assert np.abs(fast.astype(np.int64) - ref).max() <= 1  # ties and float32 rounding only
        assert (fast.astype(np.int64) == ref).mean() > 0.99
    assert (color.levels(x, per=2)[0][1, 2] == 128).all()


def test_levels_takes_the_safe_path_for_nonfinite_and_huge_values():
    from keras_vizcallbacks.render import color

    x = np.array([[0.0, np.nan, 1.0, np.inf]], dtype=np.float32)
    lv, invalid = color.levels(x, per=1)
    assert invalid is not None and invalid.tolist() == [[False, True, False, True]]
    assert lv[0, 0] == 0 and lv[0, 2] == 255
    huge = np.array([[-1e308, 0.0, 1e308]])  # float64 beyond float32: no overflow, no wrap-around
    lv, invalid = color.levels(huge, per=1)
    assert invalid is None and lv.tolist() == [[0, 128, 255]]


def test_filled_equals_np_full():
    from keras_vizcallbacks.render.grid import filled

    for shape, value in (((5, 7, 3), (40, 41, 42)), ((2, 3, 4, 3), (9, 9, 9)), ((6, 2), 7), ((0, 4, 3), (1, 2, 3))):
        expected = np.full(shape, value, dtype=np.uint8)
        got = filled(shape, value)
        assert got.shape == expected.shape and np.array_equal(got, expected)


def test_stamp_text_blends_ink_inside_its_box_and_clips_at_edges():
    from keras_vizcallbacks.render.text import stamp_text, text_coverage

    canvas = np.full((60, 120, 3), 255, dtype=np.uint8)
    stamp_text(canvas, "97%\n12", (60, 30), (0, 0, 0), 18, bold=True)
    cov = text_coverage("97%\n12", 18, True)
    ink = canvas.min(axis=-1) < 128
    rows, cols = np.nonzero(ink)
    assert ink.sum() > 50  # the digits are there
    assert abs((rows.min() + rows.max()) / 2 - 30) <= 2 and abs((cols.min() + cols.max()) / 2 - 60) <= 2
    assert rows.max() - rows.min() < cov.shape[0] and cols.max() - cols.min() < cov.shape[1]
    assert cov.shape[0] > 2 * 13  # two lines
    before = canvas.copy()
    stamp_text(canvas, "edge", (-5, -5), (0, 0, 0), 18)  # mostly outside: clipped, no error
    stamp_text(canvas, "", (10, 10), (0, 0, 0), 18)
    assert canvas.shape == before.shape
