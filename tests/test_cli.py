"""The keras-vizcallbacks command and export.py, on logs a short fit writes; evolution=True (APNG)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import warnings

import keras
import numpy as np
import pytest
from PIL import Image
from util import image, read_run

import keras_vizcallbacks as kv
from keras_vizcallbacks import cli, export, writers
from keras_vizcallbacks.writers import png

EPOCHS = 4
TAGS = ["filters/conv2d", "filters/conv2d_1", "feature_maps/conv2d_1"]


def _fit(log_dir: str, epochs: int = EPOCHS, initial_epoch: int = 0, model=None, **options):
    data = kv.datasets.shapes(64, seed=3)
    if model is None:
        keras.utils.set_random_seed(0)
        model = kv.models.reference_cnn(n_classes=4)
    model.fit(
        data.images,
        data.labels,
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=32,
        verbose=0,
        callbacks=[
            kv.FilterGrid(log_dir, **options),
            kv.FeatureMaps(log_dir, samples=data.images[:2], layers=["conv2d_1"], max_channels=8, **options),
        ],
    )
    return model


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> str:
    log_dir = str(tmp_path_factory.mktemp("cli") / "logs")
    _fit(log_dir, evolution=True)
    return log_dir


def _frames(data: bytes) -> list[np.ndarray]:
    """Every frame of an animation (GIF or APNG), as RGB, as a viewer composes it."""
    frames = []
    with Image.open(io.BytesIO(data)) as im:
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
    return frames


def _closest_step(frame: np.ndarray, originals: list[np.ndarray]) -> int:
    """Index of the original image the frame's picture (below its label strip) is closest to."""
    h, w = originals[0].shape[:2]
    body = frame[-h:, :w].astype(int)
    return int(np.argmin([np.abs(body - o.astype(int)).mean() for o in originals]))


def _assert_frames_are_the_images(frames: list[np.ndarray], originals: list[np.ndarray]) -> None:
    """Each frame is a label strip above the stored image, pixel for pixel (error 0)."""
    assert len(frames) == len(originals)
    h, w = originals[0].shape[:2]
    for frame, original in zip(frames, originals, strict=True):
        assert frame.shape[1] == w and frame.shape[0] > h
        np.testing.assert_array_equal(frame[-h:], original)
    strips = [f[: f.shape[0] - h] for f in frames]
    assert all(not np.array_equal(strips[0], s) for s in strips[1:])  # a different label on every frame


def test_list_prints_runs_tags_and_steps(logs, capsys):
    assert cli.main(["export", logs, "--list"]) == 0
    out = capsys.readouterr().out
    assert "run viz: 6 image tag(s)" in out
    for tag in TAGS:
        line = next(line for line in out.splitlines() if line.strip().startswith(tag + " "))
        assert f"{EPOCHS} step(s): 0-{EPOCHS - 1}" in line
    assert cli.main(["list", logs]) == 0
    assert capsys.readouterr().out == out
    assert export.list_runs(logs)["viz"]["filters/conv2d"] == list(range(EPOCHS))


def test_export_gif_has_one_labelled_frame_per_step(logs, tmp_path, capsys):
    out = str(tmp_path / "evo.gif")
    assert cli.main(["export", logs, "--tag", "filters/conv2d_1", "--out", out]) == 0
    assert "4 frame(s) (steps 0-3)" in capsys.readouterr().out
    records = read_run(logs)["filters/conv2d_1"]
    originals = [image(r) for r in records]
    with open(out, "rb") as f:
        data = f.read()
    assert data[:6] == b"GIF89a"
    frames = _frames(data)
    assert len(frames) == EPOCHS
    h, w = originals[0].shape[:2]
    for i, frame in enumerate(frames):
        assert frame.shape[1] == w and frame.shape[0] > h  # the picture plus a label strip above it
        assert _closest_step(frame, originals) == i  # frames in step order, each showing its own step
        assert np.abs(frame[-h:].astype(int) - originals[i].astype(int)).mean() < 4  # 256-colour palette
    strips = [f[: f.shape[0] - h] for f in frames]
    assert all(not np.array_equal(strips[0], s) for s in strips[1:])  # a different label on every frame
    with Image.open(out) as im:
        assert im.info.get("loop") == 0


def test_export_contact_sheet_tiles_every_step(logs, tmp_path):
    out = str(tmp_path / "sheet.png")
    info = export.export_tag(logs, "feature_maps/conv2d_1", out, columns=2)
    assert info["frames"] == EPOCHS and info["steps"] == [0, 1, 2, 3]
    records = read_run(logs)["feature_maps/conv2d_1"]
    originals = [image(r) for r in records]
    h, w = originals[0].shape[:2]
    sheet = np.asarray(Image.open(out).convert("RGB"))
    frame_h = (sheet.shape[0] - 3 * 6) // 2
    assert sheet.shape == (2 * frame_h + 3 * 6, 2 * w + 3 * 6, 3)
    for i in range(EPOCHS):
        r, c = divmod(i, 2)
        y0, x0 = 6 + r * (frame_h + 6), 6 + c * (w + 6)
        np.testing.assert_array_equal(sheet[y0 + frame_h - h : y0 + frame_h, x0 : x0 + w], originals[i])


def test_export_errors_name_the_fix(logs, tmp_path, capsys):
    assert cli.main(["export", logs, "--tag", "filters/nope", "--out", str(tmp_path / "x.gif")]) == 2
    err = capsys.readouterr().err
    assert "No image tag 'filters/nope'" in err and "filters/conv2d_1" in err
    assert cli.main(["export", logs, "--tag", "filters/conv2d", "--out", str(tmp_path / "x.jpg")]) == 2
    err = capsys.readouterr().err
    assert ".apng" in err and ".gif" in err and ".png" in err
    assert cli.main(["export", logs, "--tag", "filters/conv2d", "--run", "nope", "--out", str(tmp_path / "x.gif")]) == 2
    assert "No run 'nope'" in capsys.readouterr().err
    assert cli.main(["export", logs, "--tag", "filters/conv2d/evolution", "--out", str(tmp_path / "x.gif")]) == 2
    assert "already holds an animation" in capsys.readouterr().err
    assert cli.main(["export", logs]) == 2
    assert not os.path.exists(tmp_path / "x.gif")


def test_export_step_range(logs, tmp_path):
    info = export.export_tag(logs, "filters/conv2d", str(tmp_path / "part.gif"), steps=(1, 2))
    assert info["steps"] == [1, 2]
    with open(tmp_path / "part.gif", "rb") as f:
        assert len(_frames(f.read())) == 2


def test_tensorboard_command_keeps_every_step(logs, capsys):
    assert cli.main(["tensorboard", logs, "--port", "6123", "--dry-run", "--reload_interval", "5"]) == 0
    out = capsys.readouterr().out
    assert "--samples_per_plugin=images=100000" in out
    assert "--host 127.0.0.1" in out and "--port 6123" in out and "--reload_interval 5" in out
    assert "images=0" not in out


def test_evolution_apng_written_at_train_end_without_banding(logs):
    """The evolution is an animated PNG whose frames are the stored images exactly (a GIF's palette banded)."""
    run = read_run(logs)
    for tag in TAGS:
        evo = run[tag + "/evolution"]
        assert [r.step for r in evo] == [EPOCHS - 1]  # once, at the last step
        assert png.image_format(evo[0].encoded) == "apng"
        frames = _frames(evo[0].encoded)
        originals = [image(r) for r in run[tag]]
        _assert_frames_are_the_images(frames, originals)
        assert (evo[0].width, evo[0].height) == (frames[0].shape[1], frames[0].shape[0])
        with Image.open(io.BytesIO(evo[0].encoded)) as im:
            assert im.info.get("loop") == 0
    descriptions = kv.writers.read_descriptions(os.path.join(logs, "viz"))
    assert "animated PNG" in descriptions["filters/conv2d/evolution"]


def test_export_apng_is_lossless(logs, tmp_path, capsys):
    out = str(tmp_path / "evo.apng")
    assert cli.main(["export", logs, "--tag", "feature_maps/conv2d_1", "--out", out, "--duration", "250"]) == 0
    assert "animated PNG, 4 frame(s) (steps 0-3)" in capsys.readouterr().out
    with open(out, "rb") as f:
        data = f.read()
    assert png.image_format(data) == "apng"
    _assert_frames_are_the_images(_frames(data), [image(r) for r in read_run(logs)["feature_maps/conv2d_1"]])
    with Image.open(out) as im:
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
    assert durations == [250, 250, 250, 1800]  # the last frame held longer before the loop restarts


def test_list_shows_scalars(tmp_path, capsys):
    log_dir = str(tmp_path / "logs")
    w = writers.acquire(log_dir, "viz")
    for step in range(3):
        w.write("view/t", np.zeros((4, 4, 3), np.uint8), step)
        w.write_scalar("view/accuracy", 0.5, step)
    writers.release(w)
    assert cli.main(["list", log_dir]) == 0
    out = capsys.readouterr().out
    assert "run viz: 1 image tag(s), 1 scalar tag(s)" in out
    assert any(line.split() == ["scalar", "view/accuracy", "3", "step(s):", "0-2"] for line in out.splitlines())


def test_evolution_off_by_default_and_covers_resumed_fit_with_async_write(tmp_path):
    plain = str(tmp_path / "plain")
    _fit(plain, epochs=2)
    assert not [t for t in read_run(plain) if t.endswith("/evolution")]

    log_dir = str(tmp_path / "resumed")
    model = _fit(log_dir, epochs=2)  # no evolution in the first fit
    _fit(log_dir, epochs=4, initial_epoch=2, model=model, evolution=True, async_write=True)
    run = read_run(log_dir)
    evo = run["filters/conv2d/evolution"]
    assert [r.step for r in evo] == [3]
    frames = _frames(evo[0].encoded)
    assert len(frames) == 4  # steps 0-1 of the first fit, 2-3 of the resumed one
    originals = [image(r) for r in run["filters/conv2d"]]
    assert [_closest_step(f, originals) for f in frames] == [0, 1, 2, 3]


def test_console_script_runs(logs):
    exe = os.path.join(os.path.dirname(sys.executable), "keras-vizcallbacks")
    argv = [exe] if os.path.exists(exe) else [sys.executable, "-m", "keras_vizcallbacks.cli"]
    proc = subprocess.run([*argv, "list", logs], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "filters/conv2d_1" in proc.stdout and "0-3" in proc.stdout


def test_evolution_keeps_at_most_max_frames_evenly_spaced(tmp_path, monkeypatch):
    from keras_vizcallbacks.callbacks import _evolution

    monkeypatch.setattr(_evolution, "MAX_FRAMES", 3)
    log_dir = str(tmp_path / "capped")
    _fit(log_dir, epochs=5, evolution=True)
    run = read_run(log_dir)
    (evo,) = run["filters/conv2d/evolution"]
    frames = _frames(evo.encoded)
    originals = [image(r) for r in run["filters/conv2d"]]
    assert [_closest_step(f, originals) for f in frames] == [0, 2, 4]
    description = kv.writers.read_descriptions(os.path.join(log_dir, "viz"))["filters/conv2d/evolution"]
    assert "3 of its 5 images, evenly spaced" in description


_CLI_WITHOUT_FRAMEWORKS = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from keras_vizcallbacks import cli

    logs, out = sys.argv[1], sys.argv[2]
    codes = []
    with contextlib.redirect_stdout(io.StringIO()) as text:
        try:
            cli.main(["--help"])
        except SystemExit as e:
            codes.append(e.code)
        codes.append(cli.main(["list", logs]))
        codes.append(cli.main(["export", logs, "--tag", "filters/conv2d", "--out", out + ".apng"]))
        codes.append(cli.main(["export", logs, "--tag", "filters/conv2d", "--out", out + ".gif"]))
        codes.append(cli.main(["export", logs, "--tag", "filters/conv2d", "--out", out + ".png"]))
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
    print(json.dumps({"codes": codes, "loaded": loaded, "listed": "filters/conv2d" in text.getvalue()}))
    """
)


def test_help_list_and_export_load_neither_tensorflow_nor_keras(logs, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_WITHOUT_FRAMEWORKS, logs, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"codes": [0, 0, 0, 0, 0], "loaded": [], "listed": True}
    assert proc.stderr == ""  # nothing from TensorFlow, nothing at all
    for ext in (".apng", ".gif", ".png"):
        assert os.path.getsize(tmp_path / f"out{ext}") > 0


def test_evolution_failure_goes_through_the_error_policy(tmp_path, monkeypatch):
    """An evolution that cannot be written warns once (on_error='warn'); the stills stay, writers close."""

    def broken(records, **kw):
        raise RuntimeError("animation broke")

    monkeypatch.setattr(export, "evolution_apng", broken)
    log_dir = str(tmp_path / "logs")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _fit(log_dir, epochs=2, evolution=True)
    assert sum("animation broke" in str(w.message) for w in record) == 2  # once per view (two views)
    run = read_run(log_dir)
    assert not [t for t in run if t.endswith("/evolution")]
    assert [r.step for r in run["filters/conv2d"]] == [0, 1]
    assert kv.writers.open_writers() == []

    # on_error="raise": the fit raises at its end; the stills stay and the view's writer is released. (One view
    # only: when a callback's on_train_end raises, Keras skips the on_train_end of the callbacks after it.)
    log_dir = str(tmp_path / "raise")
    data = kv.datasets.shapes(32, seed=3)
    model = kv.models.reference_cnn(n_classes=4)
    with pytest.raises(RuntimeError, match="animation broke"):
        model.fit(
            data.images,
            data.labels,
            epochs=2,
            verbose=0,
            callbacks=[kv.FilterGrid(log_dir, evolution=True, on_error="raise")],
        )
    assert [r.step for r in read_run(log_dir)["filters/conv2d"]] == [0, 1]
    assert kv.writers.open_writers() == []
