"""_backend: compiled functions trace once and do not set off TensorFlow's retracing warning."""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

from keras_vizcallbacks import _backend


def test_many_compiled_functions_do_not_warn_about_retracing(caplog):
    fns = [_backend.compile_function(lambda x, k=k: x * k, name=f"f{k}") for k in range(8)]
    x = tf.constant(np.ones((2, 3), np.float32))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            for f in fns:
                f(x)
    assert [f.traces for f in fns] == [1] * 8
    assert not [r for r in caplog.records if "retracing" in r.getMessage()]


def test_same_shape_reuses_the_trace_new_shape_retraces():
    f = _backend.compile_function(lambda x: x + 1.0)
    for _ in range(5):
        np.testing.assert_allclose(np.asarray(f(tf.zeros((4, 2)))), np.ones((4, 2)))
    assert f.traces == 1
    f(tf.zeros((3, 2)))
    assert f.traces == 2
