"""End to end: a real TensorBoard process serves the images and scalars the callbacks wrote, byte for byte.

A short fit writes logs (with the package's own event-file writer, no TensorFlow involved);
TensorBoard (the one installed beside this Python) is started on 127.0.0.1 at a free port; the
test polls the images plugin's HTTP API until the ``viz`` run's tags appear, then fetches every
step of a tag and compares the served PNG bytes with the event file's, and reads the scalars
back through the scalars plugin. ``keras-vizcallbacks tensorboard`` is started too: it prints no
TensorFlow start-up lines, and a SIGTERM to it stops TensorBoard (nothing listens on the port
afterwards). Only loopback traffic; the processes are always stopped.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import keras
import pytest
from util import read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import cli, writers
from keras_vizcallbacks.writers import png

EPOCHS = 3
SCALARS = {"confusion_matrix/accuracy": [0.25, 0.5, 0.875]}  # written beside the images, in the viz run
WAIT_S = 90  # bound on TensorBoard's start and first load
TAGS = ["filters/conv2d", "filters/conv2d_1", "feature_maps/conv2d"]

# Never use a proxy, even if the environment names one: everything here is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[bytes, str]:
    with _OPENER.open(url, timeout=10) as resp:
        return resp.read(), resp.headers.get("Content-Type", "")


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> str:
    log_dir = str(tmp_path_factory.mktemp("e2e") / "logs")
    data = kv.datasets.shapes(64, seed=2)
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=4)
    model.fit(
        data.images,
        data.labels,
        epochs=EPOCHS,
        batch_size=32,
        verbose=0,
        validation_data=(data.images[:16], data.labels[:16]),
        callbacks=[
            keras.callbacks.TensorBoard(log_dir),
            kv.FilterGrid(log_dir, evolution=True),
            kv.FeatureMaps(log_dir, samples=data.images[:2], layers=["conv2d"], max_channels=8),
        ],
    )
    shared = writers.acquire(log_dir, "viz")
    for tag, values in SCALARS.items():
        for step, value in enumerate(values):
            shared.write_scalar(tag, value, step, "Share of validation images classified right.")
    writers.release(shared)
    return log_dir


@pytest.fixture(scope="module")
def tensorboard(logs, tmp_path_factory):
    """``(base_url, process)`` of a TensorBoard serving ``logs``; stopped at the end whatever happens."""
    argv = cli.tensorboard_command(logs, port=_free_port(), samples="images=1000")
    if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
        pytest.skip("the tensorboard executable is not installed beside this Python")
    argv += ["--reload_interval", "1"]
    log_path = tmp_path_factory.mktemp("tb") / "tensorboard.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed in the finalizer)
    env = {**os.environ, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    port = argv[argv.index("--port") + 1]
    try:
        yield f"http://127.0.0.1:{port}", proc, log_path
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


def _wait_for_tags(base: str, proc: subprocess.Popen, log_path, expected: list[str]) -> dict:
    deadline = time.monotonic() + WAIT_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tensorboard exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        try:
            body, _ = _get(base + "/data/plugin/images/tags")
            tags = json.loads(body)
            last = tags
            if all(t in tags.get("viz", {}) for t in expected):
                return tags
        except (urllib.error.URLError, ConnectionError, OSError, json.JSONDecodeError) as e:
            last = e
        time.sleep(0.5)
    pytest.fail(f"the viz run's tags did not appear within {WAIT_S} s; last answer: {last!r}")


def test_tensorboard_serves_the_written_images(logs, tensorboard):
    base, proc, log_path = tensorboard
    assert proc.args[proc.args.index("--host") + 1] == "127.0.0.1"  # loopback only
    stored = read_run(logs)
    tags = _wait_for_tags(base, proc, log_path, [*TAGS, "filters/conv2d/evolution"])

    # The viz run sits beside train/validation, and each tag carries its description.
    runs_body, _ = _get(base + "/data/runs")
    assert {"train", "validation", "viz"} <= set(json.loads(runs_body))
    descriptions = kv.writers.read_descriptions(os.path.join(logs, "viz"))
    for tag in TAGS:  # served as HTML rendered from the Markdown (the (i) card header)
        served = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", tags["viz"][tag]["description"])))
        written = re.sub(r"\s+", " ", descriptions[tag].replace("**", "").replace("`", ""))
        assert served.strip() == written.strip()

    for tag in TAGS:
        query = urllib.parse.urlencode({"run": "viz", "tag": tag, "sample": 0})
        body, _ = _get(f"{base}/data/plugin/images/images?{query}")
        entries = json.loads(body)
        assert [e["step"] for e in entries] == list(range(EPOCHS)), tag  # every step kept, in order
        for entry, record in zip(entries, stored[tag], strict=True):
            image, content_type = _get(f"{base}/data/plugin/images/individualImage?{entry['query']}")
            assert content_type == "image/png"
            assert image == record.encoded, f"{tag} step {entry['step']}: served bytes differ from the event file"

    # The evolution animation (APNG) is served as image/png, which browsers play, the same bytes, at the last step.
    query = urllib.parse.urlencode({"run": "viz", "tag": "filters/conv2d/evolution", "sample": 0})
    (entry,) = json.loads(_get(f"{base}/data/plugin/images/images?{query}")[0])
    assert entry["step"] == EPOCHS - 1
    animation, content_type = _get(f"{base}/data/plugin/images/individualImage?{entry['query']}")
    assert content_type == "image/png"
    assert animation == stored["filters/conv2d/evolution"][0].encoded
    assert png.image_format(animation) == "apng"

    # Scalars written through the writers are in the scalars dashboard of the same run, with their description.
    tags_body, _ = _get(base + "/data/plugin/scalars/tags")
    assert set(SCALARS) <= set(json.loads(tags_body)["viz"])
    assert "classified right" in json.loads(tags_body)["viz"]["confusion_matrix/accuracy"]["description"]
    for tag, values in SCALARS.items():
        body, _ = _get(base + "/data/plugin/scalars/scalars?" + urllib.parse.urlencode({"run": "viz", "tag": tag}))
        assert [(step, value) for _, step, value in json.loads(body)] == list(enumerate(values))


#: Lines TensorFlow prints when it loads and probes devices (TF 2.21), whatever TF_CPP_MIN_LOG_LEVEL says.
TF_STARTUP = re.compile(r"absl::InitializeLog|^[IWE]0000 |cudart_stub|cpu_feature_guard|cuInit|oneDNN", re.M)


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_cli_tensorboard_is_quiet_and_stops_on_sigterm(logs, tmp_path):
    """``keras-vizcallbacks tensorboard`` becomes TensorBoard: no TensorFlow start-up lines, and a
    SIGTERM to the process we started leaves nothing listening on the port."""
    port = _free_port()
    out_path, err_path = tmp_path / "out.log", tmp_path / "err.log"
    env = {**os.environ, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # TensorFlow's own setting is not what keeps it quiet
    argv = [sys.executable, "-m", "keras_vizcallbacks.cli", "tensorboard", logs, "--port", str(port)]
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        try:
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline and not _listening(port):
                if proc.poll() is not None:
                    pytest.fail(f"exited with {proc.returncode}: {err_path.read_text(errors='replace')[-3000:]}")
                time.sleep(0.5)
            body, _ = _get(f"http://127.0.0.1:{port}/data/runs")
            assert "viz" in json.loads(body)
            proc.send_signal(signal.SIGTERM)  # to the process we started: TensorBoard itself, not a wrapper
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=15)
    deadline = time.monotonic() + 10
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(port), "TensorBoard still listens after SIGTERM"
    stderr = err_path.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}/" in stderr  # TensorBoard's own messages still show
    assert not TF_STARTUP.search(stderr), stderr
    assert "--samples_per_plugin=images=100000" in out_path.read_text()
