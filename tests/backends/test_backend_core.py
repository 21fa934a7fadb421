"""_backend and layers.split_at on the process's Keras backend: gradients against the backend's own
autodiff, weights read at call time (no frozen jit closure), traces, to_numpy, thread limits,
and TensorFlow left unloaded under JAX and PyTorch. See native_autodiff.py for how to run each backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from backend_cases import (
    CASES,
    TARGET,
    X,
    Z,
    assert_close,
    case_nested,
    case_residual,
    case_sequential,
    picked,
    randomize,
    reference,
)
from native_autodiff import BACKEND

from keras_vizcallbacks import _backend
from keras_vizcallbacks.layers import split_at

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def gradient_function(model, split, idx, name="grads"):
    """Ours: the split probe differentiated by _backend.value_and_grads inside compile_function."""

    def call(xs, delta, target):
        def fn(ws, xs, target):
            inputs = list(xs)
            inputs[idx] = ws[0]
            a, logits = split(inputs, ws[1])
            return picked(logits, target), (a, logits)

        return _backend.value_and_grads(fn, [xs[idx], delta], xs, target)

    return _backend.compile_function(call, name, state=model)


# --------------------------------------------------------------------------- tests


def test_backend_module_is_the_keras_backend():
    assert _backend.name() == BACKEND == os.environ["KERAS_BACKEND"]
    assert _backend.module().__name__ == f"keras_vizcallbacks._backend.{BACKEND}"
    assert isinstance(_backend.compile_function(lambda x: x), _backend.TracedFunction)


@pytest.mark.parametrize("kind", list(CASES))
def test_gradients_match_native_autodiff(kind):
    parts = CASES[kind]()
    model, xs, idx, path, _, _ = parts
    split = split_at(model, path)
    f = gradient_function(model, split, idx)
    scores, (a, logits), (g_image, g_a) = f(xs, split.zeros(xs), TARGET)
    ref_a, ref_logits, ref_g_image, ref_g_a = reference(parts, xs, TARGET)

    assert np.abs(ref_g_a).max() > 0 and np.abs(ref_g_image).max() > 0  # the comparison means something
    assert_close(_backend.to_numpy(a), ref_a, "layer output")
    assert_close(_backend.to_numpy(logits), ref_logits, "logits (pre-softmax)")
    assert_close(_backend.to_numpy(scores), ref_logits[np.arange(len(TARGET)), TARGET], "scores")
    assert_close(_backend.to_numpy(g_image), ref_g_image, "d score / d image")
    assert_close(_backend.to_numpy(g_a), ref_g_a, "d score / d layer output")
    assert _backend.to_numpy(g_image).dtype == np.float32 and _backend.to_numpy(g_a).dtype == np.float32
    assert f.traces == 1


def test_changed_weights_change_the_result_with_one_trace():
    parts = case_residual()
    model, xs, idx, path, _, _ = parts
    split = split_at(model, path)
    f = gradient_function(model, split, idx)
    delta = split.zeros(xs)
    _, _, (_, g_before) = f(xs, delta, TARGET)
    g_before = _backend.to_numpy(g_before).copy()

    randomize(model, seed=7)  # what a training step does: new values in the same variables
    _, (_, logits), (g_image, g_a) = f(xs, delta, TARGET)
    _, ref_logits, ref_g_image, ref_g_a = reference(parts, xs, TARGET)
    assert not np.allclose(ref_g_a, g_before)
    assert_close(_backend.to_numpy(logits), ref_logits, "logits after the weights changed")
    assert_close(_backend.to_numpy(g_a), ref_g_a, "d score / d A after the weights changed")
    assert_close(_backend.to_numpy(g_image), ref_g_image, "d score / d image after the weights changed")
    assert f.traces == 1


def test_fit_each_epoch_and_batch_sees_the_current_weights():
    """Under fit (Keras' JAX trainer holds the weights outside the variables during an epoch),
    a compiled function called from on_epoch_end and from on_train_batch_end matches the
    reference on the weights of that moment, and the weights move between the calls."""
    parts = case_sequential()
    model, xs, idx, path, _, _ = parts
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    split = split_at(model, path)
    f = gradient_function(model, split, idx)
    delta = split.zeros(xs)
    seen: list[tuple[str, np.ndarray, np.ndarray]] = []

    class Probe(keras.callbacks.Callback):
        def record(self, when):
            _, _, (_, g_a) = f(xs, delta, TARGET)  # syncs the trainer's state itself
            _backend.sync_model_state(self.model)  # the hand-written reference reads the variables
            seen.append((when, _backend.to_numpy(g_a).copy(), reference(parts, xs, TARGET)[3]))

        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                self.record("batch")

        def on_epoch_end(self, epoch, logs=None):
            self.record("epoch")

    y = np.array([0, 1, 2, 0] * 4, dtype=np.int32)
    model.fit(np.concatenate([X] * 4), y, epochs=2, batch_size=8, verbose=0, callbacks=[Probe()])
    assert [w for w, _, _ in seen] == ["batch", "epoch", "batch", "epoch"]
    for when, ours, ref in seen:
        assert_close(ours, ref, f"gradient at {when} end")
    grads = [ours for _, ours, _ in seen]
    assert all(not np.allclose(grads[i], grads[i + 1]) for i in range(3)), "the weights did not move"
    assert f.traces == 1


def test_compiled_function_does_not_keep_its_state_model_alive():
    """Views cache compiled functions in weak-keyed registries (model -> functions): the
    function must not hold the model itself, or the model could never be collected."""
    import gc
    import weakref

    model = case_sequential()[0]
    ref = weakref.ref(model)
    f = _backend.compile_function(lambda x: x + 1.0, "weak", state=model)
    np.testing.assert_allclose(_backend.to_numpy(f(np.zeros(2, np.float32))), 1.0)
    del model
    gc.collect()
    assert ref() is None
    np.testing.assert_allclose(_backend.to_numpy(f(np.zeros(2, np.float32))), 1.0)  # still callable


def test_unconnected_input_gets_zero_gradient():
    model, xs = case_sequential()[:2]

    def call(x, z):
        return _backend.value_and_grads(lambda ws: (keras.ops.sum(model(ws[0]), axis=-1), None), [x, z])

    f = _backend.compile_function(call, "unconnected", state=model)
    _, _, (gx, gz) = f(xs[0], np.ones((4, 7), np.float32))
    gz = _backend.to_numpy(gz)
    assert gz.shape == (4, 7) and gz.dtype == np.float32 and not gz.any()
    assert np.abs(_backend.to_numpy(gx)).max() > 0


def test_value_and_grads_runs_uncompiled():
    parts = case_nested()
    model, xs, _, path, _, _ = parts
    split = split_at(model, path)

    def fn(ws):
        a, logits = split(ws[0], ws[1])
        return picked(logits, TARGET), a

    scores, _, (g_image, g_a) = _backend.value_and_grads(fn, [xs[0], split.zeros(xs)])
    _, ref_logits, ref_g_image, ref_g_a = reference(parts, xs, TARGET)
    assert_close(_backend.to_numpy(scores), ref_logits[np.arange(len(TARGET)), TARGET], "eager scores")
    assert_close(_backend.to_numpy(g_a), ref_g_a, "eager d score / d A")
    assert_close(_backend.to_numpy(g_image), ref_g_image, "eager d score / d image")


def test_mixed_precision_gradients_are_float32_and_close():
    """float16 compute: the backward pass runs in the compute dtype,
    the gradients come back float32 and close to the float32 reference on the same weights."""
    policy = "mixed_float16"
    parts32 = case_sequential()
    weights = parts32[0].get_weights()
    _, _, ref_g_image, ref_g_a = reference(parts32, [X], TARGET)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model, xs, idx, path, _, _ = case_sequential()
        model.set_weights(weights)
        assert model.get_layer("c1").compute_dtype != "float32"
        split = split_at(model, path)
        f = gradient_function(model, split, idx, "mixed")
        _, (a, _), (g_image, g_a) = f(xs, split.zeros(xs), TARGET)
    finally:
        keras.config.set_dtype_policy(previous)
    g_image, g_a = _backend.to_numpy(g_image), _backend.to_numpy(g_a)
    assert g_image.dtype == np.float32 and g_a.dtype == np.float32
    assert keras.backend.standardize_dtype(a.dtype) in ("float16", "bfloat16")  # really low precision
    tol = 0.01  # float16 keeps ~3 decimal digits; measured 0.06-0.1% on the three backends
    for ours, ref, what in ((g_image, ref_g_image, "image"), (g_a, ref_g_a, "layer output")):
        err = np.abs(ours - ref).max() / np.abs(ref).max()
        assert err < tol, f"mixed precision d score / d {what}: max error {err:.3g} of the largest gradient"


def test_split_rejects_ambiguous_and_unknown_layers():
    model = case_sequential()[0]
    with pytest.raises(ValueError, match=r"No layer path 'nope'.*c1"):
        split_at(model, "nope")
    with pytest.raises(ValueError, match="model's output"):
        split_at(model, "out")
    inp = keras.Input((6, 6, 2))
    shared = keras.layers.Conv2D(2, 1, name="shared", **Z)
    twice = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(shared(shared(inp))))
    with pytest.raises(ValueError, match="called 2 times"):
        split_at(twice, "shared")


def test_split_without_delta_is_the_plain_forward_pass():
    model, xs, _, path, _, _ = case_residual()
    split = split_at(model, path)
    a, logits = split(xs)
    probs = _backend.to_numpy(keras.ops.softmax(logits, axis=-1))
    np.testing.assert_allclose(probs, _backend.to_numpy(model(xs[0])), rtol=1e-5, atol=1e-6)
    assert split.zeros(xs).shape == (4, *_backend.to_numpy(a).shape[1:])


def test_split_of_a_model_without_a_fixed_input_size():
    model = keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(4, 3, name="c", **Z),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, **Z),
        ]
    )
    randomize(model)
    split = split_at(model, "c")
    x = X[:2, :9, :7]
    delta = split.zeros(x)
    assert split.activation_shape == (None, None, 4) and delta.shape == (2, 7, 5, 4)
    a, _ = split(x, delta)
    assert _backend.to_numpy(a).shape == delta.shape


def test_traces_once_per_signature():
    f = _backend.compile_function(lambda x, y: x * 2.0 + y, "sig")
    for _ in range(3):
        np.testing.assert_allclose(_backend.to_numpy(f(np.ones((2, 3), np.float32), np.float32(1))), 3.0)
    assert f.traces == 1
    f(np.ones((5, 3), np.float32), np.float32(1))
    assert f.traces == 2


def test_to_numpy_reads_each_kind_of_tensor():
    expected = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensors = [keras.ops.convert_to_tensor(expected), keras.Variable(expected), expected, expected.tolist()]
    if BACKEND == "torch":
        import torch

        tensors.append(torch.tensor(expected, requires_grad=True) * 1.0)  # part of a graph
        tensors.append(torch.tensor(expected, dtype=torch.bfloat16))  # numpy has no bfloat16
    for t in tensors:
        out = _backend.to_numpy(t)
        assert isinstance(out, np.ndarray)
        np.testing.assert_array_equal(out.astype(np.float32), expected)


def run_python(code: str) -> str:
    env = {**os.environ, "KERAS_BACKEND": BACKEND, "PYTHONPATH": ROOT}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_backend_package_imports_lazily_and_limits_threads_before_the_first_op():
    """In a fresh process: ``_backend`` alone (its parent package stubbed, which imports
    everything today) loads neither Keras nor a framework; ``limit_threads(1)`` then loads
    the backend and takes effect before its first op."""
    check = {
        "tensorflow": "import tensorflow as tf; print(tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads())",
        "jax": "import os; print(os.environ['XLA_FLAGS'])",
        "torch": "import torch; print(torch.get_num_threads(), torch.get_num_interop_threads())",
    }[BACKEND]
    out = run_python(
        f"""
        import sys, types
        pkg = types.ModuleType("keras_vizcallbacks")
        pkg.__path__ = [{os.path.join(ROOT, "keras_vizcallbacks")!r}]
        sys.modules["keras_vizcallbacks"] = pkg
        import keras_vizcallbacks._backend as B
        print(sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules))
        print(B.limit_threads(1))
        print(sorted(m for m in ("keras", "tensorflow", "jax", "torch") if m in sys.modules))
        {check}
        """
    )
    before, applied, after, value = out.strip().splitlines()[-4:]
    assert before == "[]"
    assert applied == "True"
    after = eval(after)
    assert "keras" in after and BACKEND in after
    assert ("tensorflow" in after) == (BACKEND == "tensorflow")
    if BACKEND == "jax":
        assert value.split() == ["--xla_cpu_multi_thread_eigen=false"]
    else:
        assert value == "1 1"


@pytest.mark.skipif(BACKEND != "jax", reason="JAX only: limits after the backend started are refused")
def test_jax_limit_threads_after_start_is_refused():
    import jax.numpy as jnp

    jnp.ones(2).block_until_ready()
    assert _backend.limit_threads(1) is False


@pytest.mark.skipif(BACKEND == "tensorflow", reason="TensorFlow is the backend")
def test_zz_tensorflow_never_loaded():
    """Runs last in this module: everything above (splits, gradients, a fit) left TensorFlow unloaded."""
    assert "tensorflow" not in sys.modules


def test_every_compiled_function_of_the_package_names_its_state():
    """On JAX a compiled function without ``state=`` keeps the weights it was traced with: every
    call of compile_function outside _backend/ passes it (checked in the source)."""
    import ast
    import pathlib

    package = pathlib.Path(ROOT) / "keras_vizcallbacks"
    calls = []
    for path in package.rglob("*.py"):
        if "_backend" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(func, "attr", getattr(func, "id", None)) == "compile_function":
                calls.append((f"{path.relative_to(package)}:{node.lineno}", {k.arg for k in node.keywords}))
    assert len(calls) >= 9, calls  # the explainers' functions are found
    assert [where for where, keywords in calls if "state" not in keywords] == []
