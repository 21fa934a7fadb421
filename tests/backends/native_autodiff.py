"""References for the backend tests, written with the backend's own autodiff.

The backend tests run on whichever Keras backend the process has (``KERAS_BACKEND``).

Run them once per backend, each in its own process (the backend is fixed at import):

    KERAS_BACKEND=jax   python -m pytest -q --confcutdir=tests/backends tests/backends
    KERAS_BACKEND=torch python -m pytest -q --confcutdir=tests/backends tests/backends

(``make test-backends`` does both). ``--confcutdir`` keeps ``tests/conftest.py``, which
imports the whole package for the TensorFlow suite, out of these processes; under
``make test`` they run on TensorFlow with the rest of the suite. (This is not a
conftest.py: a second module named ``conftest`` would shadow ``tests/conftest.py``
for the tests that import from it.)

References use ``tf.GradientTape``, ``jax.grad`` or ``torch.autograd.grad`` on the
model's layers called by hand, never ``keras_vizcallbacks``.
"""

from __future__ import annotations

import keras
import numpy as np

BACKEND = keras.backend.backend()


def native_grad(f, w) -> np.ndarray:
    """``d sum(f(w)) / d w`` with the backend's own autodiff, as float32 numpy."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        w = tf.convert_to_tensor(w)
        with tf.GradientTape() as tape:
            tape.watch(w)
            total = tf.reduce_sum(tf.cast(f(w), tf.float32))
        return np.asarray(tape.gradient(total, w), dtype=np.float32)
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        # jitted: one compile of the whole function is faster than compiling each eager op
        grad = jax.jit(jax.grad(lambda v: jnp.sum(f(v).astype(jnp.float32))))
        return np.asarray(grad(jnp.asarray(w)), dtype=np.float32)
    if BACKEND == "torch":
        import torch

        w = keras.ops.convert_to_tensor(np.asarray(w)).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(w).to(torch.float32).sum(), w)
        return g.detach().to(torch.float32).cpu().numpy()
    raise AssertionError(BACKEND)


def numpy_of(x) -> np.ndarray:
    """numpy from a backend tensor (or a Keras variable's value), written here (not through ``_backend.to_numpy``)."""
    if isinstance(x, keras.Variable):
        x = x.value
    if BACKEND == "torch":
        return x.detach().to("cpu").float().numpy()
    return np.asarray(x)
