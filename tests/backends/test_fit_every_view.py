"""A fit with every view on this process's backend: at each epoch end the views' explainers give
what the backend's own autodiff gives on the weights of that epoch (no frozen jit closure, no
stale cache), the weights and so the maps change between epochs, every fixed batch traces once,
TensorFlow never loads under JAX or PyTorch, and TensorBoard's own reader (in a subprocess) reads
back the event files as ours does. The shared data pass follows the weights within an epoch, and the
activation views (ActivationMaximization, TopActivations) trace once and follow the weights."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import viewset
from backend_cases import Z, assert_close, pre_softmax, randomize
from native_autodiff import BACKEND, native_grad, numpy_of
from util import assert_steps, image, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend, writers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RNG = np.random.default_rng(5)
X = RNG.random((48, 16, 16, 3), dtype=np.float32)
Y = RNG.integers(0, 3, len(X)).astype(np.int32)
SAMPLES, SAMPLE_Y = X[:6], Y[:6]


def bn_model() -> keras.Model:
    """Conv, batch norm (non-trainable statistics the trainer updates), pooling, conv, GAP, softmax."""
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(6, 3, name="c1", **Z)(inp)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c2", **Z)(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="out", **Z)(x)
    model = keras.Model(inp, out, name="bn_cnn")
    randomize(model, seed=6)  # a seed whose target classes have positive evidence at c2 (Grad-CAM not all zero)
    bn = model.get_layer("bn")  # a valid variance (randomize gave it any sign)
    bn.moving_variance.assign(np.abs(keras.ops.convert_to_numpy(bn.moving_variance)) + 0.5)
    return model


def by_hand(model: keras.Model, x):
    """Every layer's output, the layers called by hand in inference mode (not through our code)."""
    get = model.get_layer
    out = {"c1": get("c1")(x)}
    out["bn"] = get("bn")(out["c1"], training=False)
    out["relu"] = get("relu")(out["bn"])
    out["p1"] = get("p1")(out["relu"])
    out["c2"] = get("c2")(out["p1"])
    out["gap"] = get("gap")(out["c2"])
    out["logits"] = pre_softmax(get("out"), out["gap"])
    return out


def picked(logits, target):
    return keras.ops.sum(logits * keras.ops.one_hot(target, 3, dtype=logits.dtype), axis=-1)


def evidence_targets(model: keras.Model) -> np.ndarray:
    """Per sample the class with the most positive evidence at c2 (GAP features times the output
    kernel): its Grad-CAM map is not all zero, so comparing maps is not vacuous."""
    gap = numpy_of(by_hand(model, keras.ops.convert_to_tensor(SAMPLES))["gap"])
    return np.argmax(gap @ keras.ops.convert_to_numpy(model.get_layer("out").kernel), axis=1).astype(np.int32)


def references(model: keras.Model, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Grad-CAM at c2, the input gradient and every layer's output, by the backend's own autodiff."""
    x = keras.ops.convert_to_tensor(SAMPLES)
    target = keras.ops.convert_to_tensor(targets)
    layers = {k: numpy_of(v) for k, v in by_hand(model, x).items()}
    get = model.get_layer
    g_a = native_grad(lambda a: picked(pre_softmax(get("out"), get("gap")(a)), target), layers["c2"])
    g_x = native_grad(lambda v: picked(by_hand(model, v)["logits"], target), SAMPLES)
    cam = np.maximum(np.einsum("nk,nhwk->nhw", g_a.mean(axis=(1, 2)), layers["c2"]), 0.0)
    return {"cam": cam, "saliency": g_x, **layers}


def view(callbacks, name):
    return next(cb for cb in callbacks if type(cb).__name__ == name)


def test_fit_with_every_view(tmp_path):
    model = bn_model()
    model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
    targets = evidence_targets(model)
    log_dir = str(tmp_path / "logs")
    views = viewset.build_all(log_dir, SAMPLES, SAMPLE_Y, class_names=["a", "b", "c"], on_error="raise")
    seen: list[dict[str, np.ndarray]] = []

    class Recorder(keras.callbacks.Callback):
        """After the views at each epoch end: their explainers, called again, against the references."""

        def on_epoch_end(self, epoch, logs=None):
            ref = references(self.model, targets)
            cam = view(views, "GradCAM").explainers()[0].explain(SAMPLES, targets, upsample=False, normalize=False)
            sal = view(views, "Saliency").explainers()[0].explain(SAMPLES, targets, reduce=None)
            probe = view(views, "FeatureMaps").explainers()[0]
            maps = probe(SAMPLES)
            regions = view(views, "DecisionBoundary").explainers()[0](epoch)
            assert ref["cam"].max() > 0, f"epoch {epoch}: an all-zero Grad-CAM would make the comparison vacuous"
            assert_close(cam.raw, ref["cam"], f"epoch {epoch}: Grad-CAM of the view's explainer")
            assert_close(sal.attributions, ref["saliency"], f"epoch {epoch}: saliency of the view's explainer")
            for path in probe.paths:
                assert_close(maps[path], ref[path], f"epoch {epoch}: feature map {path}")
            np.testing.assert_array_equal(regions.predictions, ref["logits"].argmax(axis=1))
            seen.append({"cam": cam.raw, "saliency": sal.attributions, "bn": ref["bn"], **maps})

    model.fit(X, Y, epochs=2, batch_size=16, shuffle=False, verbose=0, callbacks=[*views, Recorder()])

    assert len(seen) == 2
    for key in seen[0]:
        assert not np.allclose(seen[0][key], seen[1][key]), f"{key} did not change between the epochs"
    for cb in views:  # a fixed batch traces once; FilterGrid reads the kernels and compiles nothing
        counts = cb.trace_counts()
        assert all(n <= 1 for n in counts.values()), f"{type(cb).__name__} traced {counts}"
        assert (1 in counts.values()) == (type(cb).__name__ != "FilterGrid"), f"{type(cb).__name__}: {counts}"
    if BACKEND != "tensorflow":
        assert "tensorflow" not in sys.modules, "a view loaded TensorFlow"

    run_dir = os.path.join(log_dir, "viz")
    ours = {
        tag: [[r.step, r.width, r.height, *pixel_digest(writers.decode(r))] for r in records]
        for tag, records in writers.read_images(run_dir).items()
    }
    assert len(ours) >= len(views) and all([s for s, *_ in recs] == [0, 1] for recs in ours.values())
    assert ours == tensorboard_reads(run_dir)


def pixel_digest(pixels: np.ndarray) -> list:
    """``[shape, sha256 of the uint8 RGB bytes]``: equal digests are equal pixels (cheaper to pass than lists)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    return [list(pixels.shape), hashlib.sha256(pixels.tobytes()).hexdigest()]


def tensorboard_reads(run_dir: str) -> dict:
    """What TensorBoard's EventAccumulator sees in the run (each image's step, size and `pixel_digest`),
    read in a subprocess (it imports TensorFlow whenever TensorFlow is installed, which must not happen
    in this process)."""
    code = textwrap.dedent(
        f"""
        import hashlib, io, json
        import numpy as np
        from PIL import Image
        from tensorboard.backend.event_processing import event_accumulator as ea
        acc = ea.EventAccumulator({run_dir!r}, size_guidance={{ea.TENSORS: 0, ea.IMAGES: 0}})
        acc.Reload()
        seen = {{}}
        for tag in acc.Tags()[ea.TENSORS]:
            if acc.SummaryMetadata(tag).plugin_data.plugin_name != "images":
                continue
            for t in acc.Tensors(tag):
                vals = t.tensor_proto.string_val
                pixels = np.ascontiguousarray(Image.open(io.BytesIO(vals[2])).convert("RGB"), dtype=np.uint8)
                digest = [list(pixels.shape), hashlib.sha256(pixels.tobytes()).hexdigest()]
                seen.setdefault(tag, []).append([t.step, int(vals[0]), int(vals[1]), *digest])
        print(json.dumps(seen))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_shared_pass_follows_the_weights_within_an_epoch():
    """Two views on one shared pass read it alternately after each batch (same epoch): each read
    sees that batch's weights, so the cache key (the optimizer's step count, read after syncing
    the trainer's state on JAX) changes with every step."""
    model = bn_model()
    model.compile(keras.optimizers.SGD(0.3), "sparse_categorical_crossentropy")
    first = kv.explain.shared_pass(model, SAMPLES, paths=["c2"], batch_size=6)
    second = kv.explain.shared_pass(model, SAMPLES, paths=["c2"], batch_size=6)
    assert first.forward is second.forward
    seen = []

    class Reader(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            reader = (first, second)[batch % 2]
            got = reader.outputs(epoch=0)["c2"].copy()
            _backend.sync_model_state(self.model)  # the by-hand reference reads the variables
            assert_close(got, numpy_of(by_hand(self.model, keras.ops.convert_to_tensor(SAMPLES))["c2"]), f"{batch}")
            seen.append(got)

    model.fit(X, Y, epochs=1, batch_size=12, verbose=0, callbacks=[Reader()])
    assert len(seen) == 4 and all(not np.allclose(seen[i], seen[i + 1]) for i in range(3))
    assert first.forward.runs == 4 and first.forward.fn.traces == 1


def test_activation_views_trace_once_and_follow_the_weights(tmp_path):
    """ActivationMaximization and TopActivations over three epochs, every one rendered: each compiled
    function traced once, and the weights reach the compiled functions every epoch (frames and top
    activations of different epochs differ: no frozen weights in a jit closure)."""
    data = kv.datasets.shapes(192, size=16, seed=3)
    _backend.set_random_seed(1)
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="out")(x))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    log_dir = str(tmp_path / "logs")
    am = kv.ActivationMaximization(log_dir, "c2", filters=4, data=data.images, steps=5, every_n_epochs=1)
    ta = kv.TopActivations(log_dir, data.images, "c2", filters=4, top_k=3)
    values = []  # the top activations each epoch (read after the views, from the same weights)
    watch = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: values.append(ta.compute(epoch)[0].values))
    model.fit(data.images, data.labels, epochs=3, batch_size=32, verbose=0, callbacks=[am, ta, watch])
    assert not am.failures and not ta.failures, (am.failures, ta.failures)
    assert am.maximizer.fn.traces == 1
    assert am._stats.fn.traces == 1
    assert ta.shared.forward.fn.traces == 1
    run = read_run(log_dir)
    assert_steps(run, ["activation_maximization/c2", "top_activations/c2"], [0, 1, 2])
    frames = [image(r) for r in run["activation_maximization/c2"]]
    assert not np.array_equal(frames[0], frames[2])
    assert not np.allclose(values[0], values[2])
    if BACKEND != "tensorflow":
        assert "tensorflow" not in sys.modules, "a view loaded TensorFlow"
