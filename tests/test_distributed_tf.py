"""tf.distribute.MirroredStrategy over two logical CPU devices (issue 13): every view renders in a fit,
and its pictures equal a single-device run's for the same weights.

The logical devices must be configured before TensorFlow starts, so the fits run in a child process
(this file, run as a script); the test reads the event files back here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import viewset
from util import image, read_run

from keras_vizcallbacks import writers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIMEOUT = 600  # seconds for the child's three small fits (about 90 s on the shared 2-core machine)


def run_child(out: str) -> dict:
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join([HERE, ROOT]),
    }
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, __file__, out], env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory) -> tuple[str, dict]:
    out = str(tmp_path_factory.mktemp("mirrored"))
    return out, run_child(out)


def test_every_view_renders_under_mirrored_strategy(mirrored):
    out, info = mirrored
    assert info["replicas"] == 2
    assert info["devices"] == [f"/job:localhost/replica:0/task:0/device:CPU:{i}" for i in (0, 1)]
    assert info["failures"] == {name: [] for name in viewset.available()}
    run = read_run(os.path.join(out, "fit"))
    for name, tags in info["tags"].items():
        assert tags, f"{name} wrote nothing"
        for tag in tags:
            assert [r.step for r in run[tag]] == [0, 1], (name, tag)
    descriptions = writers.read_descriptions(os.path.join(out, "fit", "viz"))
    assert all("Rendered by" not in d for d in descriptions.values())  # one process: nothing to say


def test_mirrored_pictures_equal_a_single_device_run_for_the_same_weights(mirrored):
    out, info = mirrored
    assert info["same_weights"]
    mirrored_run, plain_run = read_run(os.path.join(out, "mirrored")), read_run(os.path.join(out, "plain"))
    assert set(mirrored_run) == set(plain_run) and len(mirrored_run) >= 6
    for tag in sorted(plain_run):
        a, b = image(mirrored_run[tag][0]), image(plain_run[tag][0])
        assert a.shape == b.shape, tag
        np.testing.assert_array_equal(a, b, err_msg=tag)
    assert any(image(r[0]).std() > 0 for r in plain_run.values())  # pictures, not blanks


def test_the_mirrored_example_runs_every_view(tmp_path):
    log_dir = str(tmp_path / "mirrored")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    env.pop("TF_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "distributed_mirrored.py"), "--small", "--logdir", log_dir],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "MirroredStrategy over 2 devices" in proc.stdout
    run = read_run(log_dir)
    groups = {tag.split("/")[0] for tag in run}
    assert groups == {"filters", "feature_maps", "grad_cam", "saliency", "decision_boundary", "confusion_matrix"}
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1], tag


# --------------------------------------------------------------------------- the child process


def _child(out: str) -> None:
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    import keras
    from util import random_data, small_functional

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x, y = random_data(32)
    names = viewset.available()

    # 1. A fit with every view under the strategy.
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = small_functional()
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    views = viewset.build_all(os.path.join(out, "fit"), x, y)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=views)
    info = {
        "replicas": strategy.num_replicas_in_sync,
        "devices": list(strategy.extended.worker_devices),
        "failures": {n: [repr(e) for _, e in v.failures] for n, v in zip(names, views)},
        "tags": {n: sorted({t for t, _ in v.written}) for n, v in zip(names, views)},
    }

    # 2. The same weights rendered by a mirrored and a plain model (learning rate 0: the fit leaves them).
    weights = model.get_weights()

    def render(log_dir: str, scope) -> list[np.ndarray]:
        with scope:
            m = small_functional()
            m.set_weights(weights)
            m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, callbacks=viewset.build_all(log_dir, x, y))
        return m.get_weights()

    after_mirrored = render(os.path.join(out, "mirrored"), strategy.scope())
    after_plain = render(os.path.join(out, "plain"), tf.distribute.get_strategy().scope())
    info["same_weights"] = all(
        np.array_equal(a, b) and np.array_equal(a, w) for a, b, w in zip(after_mirrored, after_plain, weights)
    )
    print(json.dumps(info))


if __name__ == "__main__":
    _child(sys.argv[1])
