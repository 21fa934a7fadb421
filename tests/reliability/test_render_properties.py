"""Property tests for render/: any float array (NaN, Inf, constant, denormal, huge, 1x1,
1000 channels) gives a uint8 image of the promised shape, without raising."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from keras_vizcallbacks import render
from keras_vizcallbacks.render import views

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

DTYPES = st.sampled_from([np.float16, np.float32, np.float64])
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 5e-324, 1e-310, 1.0e38, -3.4e38, 1.7e308, -1.7e308]


def elements(dtype):
    finfo = np.finfo(dtype)
    finite = st.floats(min_value=float(finfo.min), max_value=float(finfo.max), allow_subnormal=True, width=finfo.bits)
    return st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf, 0.0, float(finfo.tiny) / 4, float(finfo.max)]))


@st.composite
def float_arrays(draw, min_dims, max_dims, max_side=7):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side))
    fill = draw(st.sampled_from(["any", "constant"]))
    if fill == "constant":
        value = draw(elements(dtype))
        return np.full(shape, value, dtype=dtype)
    return draw(hnp.arrays(dtype, shape, elements=elements(dtype)))


def quiet(fn, *args, **kwargs):
    """Call a render function; numpy's overflow RuntimeWarnings are allowed, exceptions are not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def check_uint8(img, shape=None, ndim=None):
    assert img.dtype == np.uint8, img.dtype
    if shape is not None:
        assert img.shape == shape, (img.shape, shape)
    if ndim is not None:
        assert img.ndim == ndim, img.shape


@SETTINGS
@given(x=float_arrays(1, 4), per=st.integers(0, 1), symmetric=st.booleans())
def test_normalize_in_unit_range(x, per, symmetric):
    per = min(per, x.ndim - 1)
    scaled, invalid = quiet(render.normalize, x, per=per, symmetric=symmetric)
    assert scaled.shape == x.shape and scaled.dtype == np.float32
    assert np.isfinite(scaled).all() and (scaled >= 0).all() and (scaled <= 1).all()
    np.testing.assert_array_equal(invalid, ~np.isfinite(x.astype(np.float64)))


@SETTINGS
@given(x=float_arrays(2, 4), symmetric=st.booleans())
def test_heatmap_shape_and_marker(x, symmetric):
    img = quiet(render.heatmap, x, "viridis", symmetric=symmetric)
    check_uint8(img, (*x.shape, 3))
    bad = ~np.isfinite(x.astype(np.float64))
    assert (img[bad] == render.MARKER).all()


@SETTINGS
@given(x=float_arrays(3, 4), channels=st.sampled_from([1, 3, 4, 5]))
def test_to_rgb(x, channels):
    x = np.repeat(x[..., :1], channels, axis=-1)
    img = quiet(render.to_rgb, x)
    check_uint8(img, (*x.shape[:-1], 3))


@SETTINGS
@given(k=float_arrays(4, 4, max_side=6), labelled=st.booleans())
def test_filter_grid_heatmaps(k, labelled):
    labels = [str(i) for i in range(len(k))] if labelled else None
    img = quiet(views.filter_grid, k, labels=labels, title="filters · x · epoch 0")
    check_uint8(img, ndim=3)
    assert img.shape[-1] == 3


@SETTINGS
@given(k=float_arrays(4, 4, max_side=6))
def test_filter_grid_rgb(k):
    k = np.repeat(k[:, :1], 3, axis=1)
    img = quiet(views.filter_grid, k, rgb=True)
    check_uint8(img, ndim=3)
    assert img.shape[-1] == 3


@SETTINGS
@given(maps=float_arrays(4, 4, max_side=6), with_inputs=st.booleans())
def test_feature_map_grid(maps, with_inputs):
    inputs = np.linspace(0, 1, maps.shape[0] * 8 * 8 * 3, dtype=np.float32).reshape(-1, 8, 8, 3)
    img = quiet(views.feature_map_grid, maps, inputs if with_inputs else None, captions=None)
    check_uint8(img, ndim=3)
    assert img.shape[-1] == 3


@SETTINGS
@given(maps=float_arrays(3, 3, max_side=9), symmetric=st.booleans(), percentile=st.sampled_from([None, 99.0]))
def test_attribution_overlay(maps, symmetric, percentile):
    overlay = pytest.importorskip("keras_vizcallbacks.render.overlay")
    images = np.zeros((*maps.shape, 3), np.uint8)
    colours = quiet(overlay.attribution_image, maps, symmetric=symmetric, percentile=percentile)
    check_uint8(colours, (*maps.shape, 3))
    blended = quiet(overlay.overlay, images, maps, symmetric=symmetric, percentile=percentile)
    check_uint8(blended, (*maps.shape, 3))


@pytest.mark.parametrize("value", SPECIAL)
def test_constant_and_special_arrays(value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x = np.full((2, 3, 5, 5), value, dtype=np.float64)
        check_uint8(render.heatmap(x, per=1), (*x.shape, 3))
        check_uint8(views.filter_grid(x), ndim=3)
        check_uint8(views.filter_grid(np.full((2, 3, 3, 3), value), rgb=True), ndim=3)
        check_uint8(views.feature_map_grid(np.full((2, 5, 5, 3), value)), ndim=3)


def test_one_by_one():
    check_uint8(render.heatmap(np.ones((1, 1))), (1, 1, 3))
    check_uint8(views.filter_grid(np.ones((1, 1, 1, 1))), ndim=3)
    check_uint8(views.filter_grid(np.ones((1, 3, 1, 1)), rgb=True), ndim=3)
    check_uint8(views.feature_map_grid(np.ones((1, 1, 1, 1))), ndim=3)
    check_uint8(render.tile(np.zeros((1, 1, 1, 3), np.uint8)), (1, 1, 3))


def test_thousand_channels():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 4, 4, 1000)).astype(np.float32)
    maps[0, 0, 0, 7] = np.nan
    img = views.feature_map_grid(maps)
    check_uint8(img, ndim=3)
    k = rng.normal(size=(4, 1000, 3, 3)).astype(np.float32)
    check_uint8(views.filter_grid(k), ndim=3)
    check_uint8(render.heatmap(np.moveaxis(maps[0], -1, 0), per=1), (1000, 4, 4, 3))


@example(x=np.array([[np.finfo(np.float64).max, -np.finfo(np.float64).max]]))
@SETTINGS
@given(x=float_arrays(2, 2))
def test_huge_values_do_not_wrap(x):
    scaled, _ = quiet(render.normalize, x)
    assert np.isfinite(scaled).all()
    finite = np.isfinite(x.astype(np.float64))
    if finite.sum() >= 2 and len(np.unique(x[finite])) > 1:
        lo = np.argmin(np.where(finite, x, np.inf))
        hi = np.argmax(np.where(finite, x, -np.inf))
        assert scaled.flat[lo] <= scaled.flat[hi]
