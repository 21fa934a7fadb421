"""The views under JAX's distribution API (issue 13), in child processes with ``KERAS_BACKEND=jax``.

This file is part of the TensorFlow run of the suite (``make test``): each test starts fresh Python
processes that run this file as a script on JAX, because the virtual CPU devices (``XLA_FLAGS``) and
``jax.distributed`` must be set up before JAX starts, and one process holds one Keras backend.

* One process, two virtual CPU devices: ``keras.distribution.DataParallel`` and a ``ModelParallel``
  layout that shards the conv and dense kernels (and one layer's output) over the devices. Every view
  renders, and its pictures equal those of a model without a distribution holding the same weights.
* Two processes (``jax.distributed`` on 127.0.0.1, gloo CPU collectives) with DataParallel: both finish
  the fit; only process 0 writes images, from its local copy of the replicated weights, while process 1
  is held in plain Python (not in any JAX computation) until process 0 has rendered each epoch, so a
  render that needed process 1 to join a computation could not finish. A view that raises on process 0
  warns and the fit goes on. ``ModelParallel`` across the two processes: a ValueError at train begin on
  both, before the first batch.

Every wait is bounded (``TIMEOUT``); both processes are killed in every outcome.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from util import image, read_run

from keras_vizcallbacks import writers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TIMEOUT = 420  # seconds for one child (about 20-60 s on the shared 2-core machine)
GATE_TIMEOUT = 180  # seconds process 1 waits for process 0's render of one epoch
ALL_VIEWS = ["FilterGrid", "FeatureMaps", "GradCAM", "Saliency", "DecisionBoundary", "ConfusionMatrix"]
EXTRA = ["Failing", "Builder"]  # two custom views of the two-process run: one raises, one creates variables


def child_env(devices: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "XLA_FLAGS")}
    env.update(KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([HERE, ROOT]), TF_CPP_MIN_LOG_LEVEL="2")
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(commands: list[list[str]], env: dict[str, str], timeout: float = TIMEOUT) -> list[dict]:
    """Start every command at once, wait for all (bounded), kill any left in every outcome; the last
    stdout line of each is its JSON result."""
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, *cmd], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for cmd in commands
    ]
    outputs: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            try:
                outputs.append(proc.communicate(timeout=max(1.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                pytest.fail(f"a child did not finish in {timeout} s: {commands}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()
    results = []
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, f"exit {proc.returncode}\n{out[-3000:]}\n{err[-6000:]}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


# --------------------------------------------------------------------------- one process, two devices


@pytest.mark.parametrize("layout", ["data", "model"])
def test_one_process_two_devices_every_view_reads_the_distributed_weights(tmp_path, layout):
    out = str(tmp_path)
    (info,) = run_processes([["one", out, layout]], child_env(devices=2))
    assert info["devices"] == 2
    if layout == "model":  # the kernels really are split over the two devices
        assert info["shardings"]["c1/kernel"] == [None, None, None, "model"]
        assert info["shardings"]["out/kernel"] == ["model", None]
    assert info["failures"] == {name: [] for name in ALL_VIEWS}
    run = read_run(os.path.join(out, "fit"))
    for name, tags in info["tags"].items():
        assert tags, f"{name} wrote nothing"
        for tag in tags:
            assert [r.step for r in run[tag]] == [0, 1], (name, tag)
    # The same weights drawn by the distributed model and by a model without a distribution.
    assert info["same_weights"]
    dist, plain = read_run(os.path.join(out, "dist")), read_run(os.path.join(out, "plain"))
    assert set(dist) == set(plain) == {t for tags in info["tags"].values() for t in tags}
    for tag in sorted(plain):
        a, b = image(dist[tag][0]), image(plain[tag][0])
        assert a.shape == b.shape, tag
        np.testing.assert_array_equal(a, b, err_msg=tag)


# --------------------------------------------------------------------------- two processes


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> tuple[str, list[dict]]:
    """One pair of processes for the two tests below: a DataParallel fit with every view, then (in the
    same processes) a ModelParallel fit that must be refused."""
    out = str(tmp_path_factory.mktemp("two"))
    port = free_port()
    return out, run_processes([["two", out, str(pid), str(port)] for pid in (0, 1)], child_env())


def test_two_processes_only_process_0_renders_and_neither_waits_for_the_other(two_process_run):
    out, (first, second) = two_process_run
    by_pid = {r["pid"]: r for r in (first, second)}
    zero, one = by_pid[0], by_pid[1]
    for r in (zero, one):
        assert r["count"] == 2 and len(r["loss"]) == 2 and np.isfinite(r["loss"]).all()
    assert zero["loss"] == one["loss"]  # one synchronous job
    assert zero["weights"] == one["weights"]  # replicated weights, the same on both processes
    # Process 1: nothing rendered, prepared or written; it was held by the gate at each epoch end.
    assert one["renders"] == {name: False for name in [*ALL_VIEWS, *EXTRA]}
    assert one["written"] == {name: [] for name in [*ALL_VIEWS, *EXTRA]}
    assert one["prepared"] == [] and one["gate_timeouts"] == 0 and one["gate_waits"] == 2
    # Process 0: every view at both epochs; the failing view warned and the fit went on.
    assert zero["renders"] == {name: True for name in [*ALL_VIEWS, *EXTRA]}
    assert zero["failures"]["Failing"] == ["RuntimeError('this view fails on purpose')"] * 2
    assert {k: v for k, v in zero["failures"].items() if k != "Failing"} == {n: [] for n in [*ALL_VIEWS, "Builder"]}
    assert zero["written"]["Builder"] == [["builder/dense", 0], ["builder/dense", 1]]
    assert zero["warned"] and zero["global_arguments"] == 0 and zero["compiled_calls"] > 0
    # The shared log directory: event files of process 0 only; every description says who rendered.
    run_dir = os.path.join(out, "logs", "viz")
    files = [n for n in os.listdir(run_dir) if "tfevents" in n]
    assert files and all(f".{zero['os_pid']}." in n for n in files), (files, zero["os_pid"], one["os_pid"])
    assert os.listdir(os.path.join(out, "logs")) == ["viz"]
    run = read_run(os.path.join(out, "logs"))
    tags = {t for name in [*ALL_VIEWS, *EXTRA] for t, _ in zero["written"][name]}
    assert tags and set(run) == tags
    for tag in tags:
        assert [r.step for r in run[tag]] == [0, 1], tag
    for tag, description in writers.read_descriptions(run_dir).items():
        assert "Rendered by process 0 of 2" in description, tag


def test_model_parallel_across_processes_is_refused_at_train_begin_on_both(two_process_run):
    out, results = two_process_run
    assert sorted(r["pid"] for r in results) == [0, 1]
    for r in results:
        refused = r["model_parallel"]
        assert refused["error"].startswith("ValueError: keras_vizcallbacks renders on one process"), r
        assert "ModelParallel over 2 processes" in refused["error"] and "DataParallel" in refused["error"]
        assert refused["batches"] == 0
    assert not os.path.exists(os.path.join(out, "model-parallel-logs"))


def test_the_jax_example_runs_two_processes_and_only_process_0_renders(tmp_path):
    log_dir = str(tmp_path / "jax_dp")
    script = os.path.join(ROOT, "examples", "distributed_jax.py")
    proc = subprocess.Popen(
        [sys.executable, script, "--small", "--logdir", log_dir, "--timeout", str(TIMEOUT)],
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT + 60)  # the example stops its own processes at TIMEOUT
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-3000:] + err[-5000:]
    assert "process 1: rendered nothing" in out and "process 0: rendered 16 images" in out, out[-3000:]
    run = read_run(log_dir)
    groups = {tag.split("/")[0] for tag in run}
    assert groups == {"filters", "feature_maps", "grad_cam", "saliency", "decision_boundary", "confusion_matrix"}
    for tag, records in run.items():
        assert [r.step for r in records] == [0, 1], tag
    for description in writers.read_descriptions(os.path.join(log_dir, "viz")).values():
        assert "Rendered by process 0 of 2" in description


# --------------------------------------------------------------------------- the children (JAX)


def _small_model():
    from util import small_functional

    return small_functional()


def _data():
    from util import random_data

    return random_data(32)


def _views(log_dir: str, x, y, **options) -> list:
    import viewset

    return viewset.build_all(log_dir, x, y, names=ALL_VIEWS, **options)


def _shardings(model) -> dict[str, list]:
    out = {}
    for v in model.weights:
        spec = getattr(v.value.sharding, "spec", None)
        if spec is not None:
            out["/".join(v.path.split("/")[-2:])] = [None if s is None else str(s) for s in spec]
    return out


def _child_one(out: str, layout: str) -> dict:
    import random

    import jax
    import keras

    devices = keras.distribution.list_devices()
    if layout == "data":
        distribution = keras.distribution.DataParallel(devices=devices)
    else:
        mesh = keras.distribution.DeviceMesh((1, len(devices)), ["batch", "model"], devices)
        layouts = keras.distribution.LayoutMap(mesh)
        layouts[".*c1/kernel"] = (None, None, None, "model")
        layouts[".*c2/kernel"] = (None, None, None, "model")
        layouts[".*out/kernel"] = ("model", None)
        layouts[".*c1/output"] = ("batch", None, None, "model")  # a relayout inside the views' calls too
        distribution = keras.distribution.ModelParallel(layout_map=layouts, batch_dim_name="batch")
    keras.distribution.set_distribution(distribution)
    random.seed(0)
    np.random.seed(0)
    x, y = _data()
    model = _small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    views = _views(os.path.join(out, "fit"), x, y)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=views)
    info = {
        "devices": jax.device_count(),
        "shardings": _shardings(model),
        "failures": {type(v).__name__: [repr(e) for _, e in v.failures] for v in views},
        "tags": {type(v).__name__: sorted({t for t, _ in v.written}) for v in views},
    }

    weights = [np.asarray(w) for w in model.get_weights()]

    def render(log_dir: str, distributed: bool):
        keras.distribution.set_distribution(distribution if distributed else None)
        m = _small_model()
        m.set_weights(weights)
        m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="sparse_categorical_crossentropy")
        m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, callbacks=_views(log_dir, x, y))
        return [np.asarray(w) for w in m.get_weights()]

    after = [render(os.path.join(out, "dist"), True), render(os.path.join(out, "plain"), False)]
    info["same_weights"] = all(all(np.array_equal(a, w) for a, w in zip(ws, weights)) for ws in after)
    return info


class _Gate:
    """Process 0 marks each epoch rendered (after every view); process 1 waits for the mark in plain
    Python, so it is inside no JAX computation while process 0 renders."""

    def __init__(self, directory: str, pid: int):
        import keras

        class Gate(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.waits = self.timeouts = 0

            def on_epoch_end(self, epoch, logs=None):
                mark = os.path.join(directory, f"rendered-{epoch}")
                if pid == 0:
                    with open(mark, "w") as f:
                        f.write("done")
                    return
                self.waits += 1
                deadline = time.monotonic() + GATE_TIMEOUT
                while not os.path.exists(mark):
                    if time.monotonic() > deadline:
                        self.timeouts += 1
                        return
                    time.sleep(0.05)

        self.callback = Gate()


def _init_two(pid: int, port: int):
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=2,
        process_id=pid,
        initialization_timeout=120,
        heartbeat_timeout_seconds=30,
        shutdown_timeout_seconds=60,
    )
    return jax


def _count_global_arguments(jax) -> dict:
    """Wrap ``jax.jit`` so the views' compiled functions (named ``vizcallbacks_*``) count their calls
    and the arguments that are global arrays, i.e. not wholly on this process."""
    counts = {"calls": 0, "global": 0}
    real_jit = jax.jit

    def jit(fun, *args, **kwargs):
        compiled = real_jit(fun, *args, **kwargs)
        if not getattr(fun, "__name__", "").startswith("vizcallbacks_"):
            return compiled

        def call(*a, **k):
            counts["calls"] += 1
            leaves = jax.tree_util.tree_leaves((a, k))
            counts["global"] += sum(isinstance(v, jax.Array) and not v.is_fully_addressable for v in leaves)
            return compiled(*a, **k)

        return call

    jax.jit = jit
    return counts


def _child_two(out: str, pid: int, port: int) -> dict:
    import hashlib
    import random
    import warnings

    jax = _init_two(pid, port)
    counts = _count_global_arguments(jax)
    import keras

    import keras_vizcallbacks as kv

    class Failing(kv.VizCallback):
        def render(self, epoch):
            raise RuntimeError("this view fails on purpose")

    class Builder(kv.VizCallback):
        """A view that creates variables of its own in prepare (a layer on the model's output)."""

        def prepare(self, model):
            self.dense = keras.layers.Dense(2, kernel_initializer="ones", name="builder_dense")
            self.dense.build((None, 3))

        def render(self, epoch):
            value = np.asarray(self.dense(np.ones((1, 3), "float32")))  # 3.0 in both outputs
            return [kv.Frame("builder/dense", np.full((4, 4, 3), int(value.sum()) * 10, np.uint8))]

    distribution = keras.distribution.DataParallel()  # every device of both processes
    distribution.auto_shard_dataset = False  # numpy inputs: each process feeds the whole batch
    keras.distribution.set_distribution(distribution)
    random.seed(0)
    np.random.seed(0)
    x, y = _data()
    model = _small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    log_dir = os.path.join(out, "logs")  # shared by both processes
    views = [*_views(log_dir, x, y), Failing(log_dir), Builder(log_dir)]
    prepared: list[str] = []
    for view in views:
        real = view.prepare
        view.prepare = lambda m, _real=real, _v=view: (prepared.append(type(_v).__name__), _real(m))
    gate = _Gate(out, pid).callback
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[*views, gate])
    digest = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.get_weights())).hexdigest()
    refused = _model_parallel_fit(out)  # the same two processes, now under ModelParallel
    return {
        "model_parallel": refused,
        "pid": int(jax.process_index()),
        "count": int(jax.process_count()),
        "os_pid": os.getpid(),
        "loss": [float(v) for v in history.history["loss"]],
        "weights": digest,
        "renders": {type(v).__name__: bool(v.rendering.renders) for v in views},
        "written": {type(v).__name__: sorted(set(v.written)) for v in views},
        "failures": {type(v).__name__: [repr(e) for _, e in v.failures] for v in views},
        "prepared": prepared,
        "warned": any("Failing could not render epoch" in str(w.message) for w in caught),
        "gate_waits": gate.waits,
        "gate_timeouts": gate.timeouts,
        "compiled_calls": counts["calls"],
        "global_arguments": counts["global"],
    }


def _model_parallel_fit(out: str) -> dict:
    """In the two processes (after `_init_two`): a ModelParallel layout across them, and a fit with a
    view: the view must refuse it at train begin, before the first batch."""
    import random

    import keras

    import keras_vizcallbacks as kv

    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh((1, len(devices)), ["batch", "model"], devices)
    layouts = keras.distribution.LayoutMap(mesh)
    layouts[".*c1/kernel"] = (None, None, None, "model")
    distribution = keras.distribution.ModelParallel(layout_map=layouts, batch_dim_name="batch")
    distribution.auto_shard_dataset = False
    keras.distribution.set_distribution(distribution)
    random.seed(0)
    np.random.seed(0)
    x, y = _data()
    model = _small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    batches = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            batches.append(batch)

    try:
        view = kv.FilterGrid(os.path.join(out, "model-parallel-logs"))
        model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[view, Count()])
        error = ""
    except ValueError as exc:
        error = f"ValueError: {exc}"
    return {"error": error, "batches": len(batches)}


if __name__ == "__main__":
    mode, out_dir, *rest = sys.argv[1:]
    result = _child_one(out_dir, rest[0]) if mode == "one" else _child_two(out_dir, int(rest[0]), int(rest[1]))
    print(json.dumps(result), flush=True)
