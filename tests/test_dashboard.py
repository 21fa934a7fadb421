"""The Viz dashboard's routes and reader, on event files written by the real callbacks.

Every route is called through the plugin's own WSGI apps (werkzeug's test client); image bytes
are compared with what `keras_vizcallbacks.writers.read_images` (TensorBoard's own event reader)
reads from the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from dashboard_util import (
    CUSTOM_TAG,
    EPOCHS,
    SPARSE_STEPS,
    UNMARKED_TAG,
    fit_logs,
    image_event,
    tiny_png,
    write_run,
)
from tensorboard.plugins import base_plugin
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.test import Client

from keras_vizcallbacks import writers
from keras_vizcallbacks.dashboard import plugin as viz_plugin
from keras_vizcallbacks.dashboard.reader import LogdirReader, NotFound
from keras_vizcallbacks.writers import manifest, records

OUR_TAGS = ["feature_maps/c1", "filters/c1", "filters/c2", CUSTOM_TAG]


def client(logdir: str) -> tuple[Client, viz_plugin.VizPlugin]:
    """The plugin's routes mounted as TensorBoard mounts them (``data/plugin/keras_viz/<route>``)."""
    plugin = viz_plugin.VizPlugin(base_plugin.TBContext(logdir=logdir))
    plugin.reader.refresh_s = plugin.reader.discover_s = 0  # tests read what was just written
    apps = plugin.get_plugin_apps()
    prefix = f"/data/plugin/{viz_plugin.PLUGIN_NAME}"

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        route = apps.get(path[len(prefix) :]) if path.startswith(prefix) else None
        return (route or WerkzeugNotFound())(environ, start_response)

    return Client(app), plugin


def route(c: Client, name: str, **params):
    return c.get(f"/data/plugin/{viz_plugin.PLUGIN_NAME}/{name}", query_string=params)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> str:
    return fit_logs(str(tmp_path_factory.mktemp("dash") / "logs"))


@pytest.fixture(scope="module")
def written(logs) -> dict[str, list[writers.ImageRecord]]:
    return writers.read_images(os.path.join(logs, "viz"))


# ------------------------------------------------------------------ the mark


def test_manifest_lists_exactly_the_tags_our_writers_wrote(logs, written):
    marked = manifest.read_manifest(os.path.join(logs, "viz"))
    assert sorted(marked) == OUR_TAGS
    assert marked["filters/c1"]["view"] == "filters"
    assert marked[CUSTOM_TAG]["view"] == CUSTOM_TAG  # no '/': the tag is its own group
    assert UNMARKED_TAG in written and UNMARKED_TAG not in marked  # in the event file, but not ours
    assert not [n for n in os.listdir(os.path.join(logs, "viz")) if n.endswith(".tmp")]  # replaced atomically


def test_manifest_merges_across_fits_and_processes(tmp_path):
    run_dir = write_run(str(tmp_path), range(2), ["a/x"])
    write_run(str(tmp_path), range(2, 3), ["b"])  # a later fit: a new SharedWriter
    assert manifest.read_manifest(run_dir) == {"a/x": {"view": "a"}, "b": {"view": "b"}}
    # a manifest written by something else (another process) in the meantime is kept
    manifest.write_manifest(run_dir, {**manifest.read_manifest(run_dir), "c/y": {"view": "c"}})
    write_run(str(tmp_path), range(3, 4), ["d"])
    assert sorted(manifest.read_manifest(run_dir)) == ["a/x", "b", "c/y", "d"]


def test_unwritable_manifest_warns_once_and_images_are_still_written(tmp_path):
    run_dir = tmp_path / "viz"
    (run_dir / manifest.MANIFEST_NAME).mkdir(parents=True)  # a directory where the file goes: cannot replace
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_run(str(tmp_path), range(3), ["a/x", "a/y"])
    assert len([w for w in caught if "Viz dashboard" in str(w.message)]) == 1
    assert {t: [r.step for r in recs] for t, recs in writers.read_images(str(run_dir)).items()} == {
        "a/x": [0, 1, 2],
        "a/y": [0, 1, 2],
    }


def test_not_a_manifest_is_ignored(tmp_path):
    (tmp_path / manifest.MANIFEST_NAME).write_text('{"tags": {"x": {}}}')  # no format field
    assert manifest.read_manifest(str(tmp_path)) == {}
    (tmp_path / manifest.MANIFEST_NAME).write_text("{not json")
    assert manifest.read_manifest(str(tmp_path)) == {}


# ------------------------------------------------------------------ the plugin object


def test_plugin_is_active_only_where_a_manifest_exists(logs, tmp_path):
    _, plugin = client(logs)
    assert plugin.is_active()
    assert plugin.data_plugin_names() == ()
    meta = plugin.frontend_metadata()
    assert meta.es_module_path == "/index.js" and meta.tab_name == "Viz"
    # TensorBoard's own runs only (scalars, no marked images): inactive
    only_scalars = tmp_path / "scalars"
    shutil.copytree(os.path.join(logs, "train"), only_scalars / "train")
    assert not client(str(only_scalars))[1].is_active()
    assert not client(str(tmp_path / "missing"))[1].is_active()
    assert not client("")[1].is_active()


def test_static_files_are_served(logs):
    c, _ = client(logs)
    js = route(c, "index.js")
    assert js.status_code == 200 and js.mimetype == "text/javascript"
    assert b"export async function render()" in js.data
    css = route(c, "style.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


# ------------------------------------------------------------------ routes


def test_runs_lists_our_tags_not_tensorboards_runs_nor_unmarked_images(logs):
    c, _ = client(logs)
    r = route(c, "runs")
    assert r.status_code == 200 and r.mimetype == "application/json"
    assert r.json == {"viz": OUR_TAGS}  # not "train", not UNMARKED_TAG


def test_every_step_is_listed(logs, written):
    c, _ = client(logs)
    for tag in OUR_TAGS:
        r = route(c, "steps", run="viz", tag=tag)
        assert r.status_code == 200
        steps = [s["step"] for s in r.json]
        assert steps == [rec.step for rec in written[tag]], tag
        assert [s["wall_time"] for s in r.json] == pytest.approx([rec.wall_time for rec in written[tag]])
    assert [s["step"] for s in route(c, "steps", run="viz", tag="filters/c1").json] == list(range(EPOCHS))
    assert EPOCHS > 10  # more than TensorBoard keeps per tag by default
    assert [s["step"] for s in route(c, "steps", run="viz", tag=CUSTOM_TAG).json] == SPARSE_STEPS


def test_image_bytes_equal_what_was_written(logs, written):
    c, _ = client(logs)
    for tag in OUR_TAGS:
        for rec in written[tag]:
            r = route(c, "image", run="viz", tag=tag, step=rec.step)
            assert r.status_code == 200, (tag, rec.step, r.data[:200])
            assert r.mimetype == "image/png"
            assert r.data == rec.encoded, (tag, rec.step)


def test_tags_route_describes_the_run_and_answers_unchanged_when_nothing_is_new(logs, written):
    c, _ = client(logs)
    info = route(c, "tags", run="viz").json
    assert sorted(info["tags"]) == OUR_TAGS
    custom = info["tags"][CUSTOM_TAG]
    assert custom["view"] == CUSTOM_TAG and custom["steps"] == SPARSE_STEPS and not custom["animated"]
    assert "green bar" in custom["description"]
    assert info["tags"]["filters/c1"]["view"] == "filters"
    assert (
        info["tags"]["filters/c1"]["description"] == writers.read_descriptions(os.path.join(logs, "viz"))["filters/c1"]
    )
    again = route(c, "tags", run="viz", since=info["generation"]).json
    assert again == {"run": "viz", "generation": info["generation"], "unchanged": True}


@pytest.mark.parametrize(
    ("params", "name", "code"),
    [
        ({}, "steps", 400),
        ({"run": "viz"}, "steps", 400),
        ({"tag": "filters/c1"}, "steps", 400),
        ({"run": "", "tag": "filters/c1"}, "steps", 400),
        ({"run": "viz", "tag": "filters/c1"}, "image", 400),  # no step
        ({"run": "viz", "tag": "filters/c1", "step": "one"}, "image", 400),
        ({"run": "viz", "tag": "filters/c1", "step": "1.5"}, "image", 400),
        ({"run": "viz", "tag": "filters/c1", "step": "9" * 40}, "image", 400),
        ({"run": "viz", "tag": "x" * 5000}, "steps", 400),
        ({"run": "viz", "since": "new"}, "tags", 400),
        ({}, "tags", 400),
        ({"run": "nope"}, "tags", 404),
        ({"run": "nope", "tag": "filters/c1"}, "steps", 404),
        ({"run": "viz", "tag": "filters/nope"}, "steps", 404),
        ({"run": "viz", "tag": UNMARKED_TAG}, "steps", 404),  # in the file, not ours
        ({"run": "viz", "tag": "filters/c1", "step": "99"}, "image", 404),
        ({"run": "viz", "tag": "filters/c1", "step": "-1"}, "image", 404),
        ({"run": "viz", "tag": CUSTOM_TAG, "step": "5"}, "image", 404),  # not rendered at 5
        ({"run": "train", "tag": "epoch_loss"}, "steps", 404),  # TensorBoard's run, not ours
        # path traversal: names are keys of the index, never paths
        ({"run": "../viz", "tag": "filters/c1"}, "steps", 404),
        ({"run": "viz/..", "tag": "filters/c1"}, "steps", 404),
        ({"run": "/etc", "tag": "passwd"}, "steps", 404),
        ({"run": "..", "tag": "filters/c1", "step": "0"}, "image", 404),
        ({"run": "viz", "tag": "../../../../etc/passwd", "step": "0"}, "image", 404),
        ({"run": "viz/../viz", "tag": "filters/c1", "step": "0"}, "image", 404),
        ({"run": "%2e%2e/viz", "tag": "filters/c1", "step": "0"}, "image", 404),
        ({"run": "viz\x00", "tag": "filters/c1"}, "steps", 400),
    ],
)
def test_bad_input_is_4xx_without_a_traceback(logs, params, name, code):
    c, _ = client(logs)
    r = route(c, name, **params)
    assert r.status_code == code, (params, r.data)
    assert r.mimetype == "text/plain"
    assert b"Traceback" not in r.data and b'File "' not in r.data
    assert len(r.data) < 2000


def test_unknown_route_and_post_are_rejected(logs):
    c, _ = client(logs)
    assert c.get(f"/data/plugin/{viz_plugin.PLUGIN_NAME}/../../etc/passwd").status_code == 404
    assert c.post(f"/data/plugin/{viz_plugin.PLUGIN_NAME}/runs").status_code == 405


def test_an_unexpected_error_is_a_500_without_a_traceback(logs, monkeypatch):
    c, plugin = client(logs)

    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(plugin.reader, "runs", boom)
    r = route(c, "runs")
    assert r.status_code == 500 and b"secret" not in r.data and b"Traceback" not in r.data


# ------------------------------------------------------------------ confinement to the logdir


def _marked_run(run_dir, tags=("v/a",), steps=range(3)) -> None:
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "events.out.tfevents.1.test"), "wb") as f:
        for step in steps:
            for tag in tags:
                records.write_record(f, image_event(tag, step, tiny_png(4, 4, step)))
    manifest.write_manifest(run_dir, {t: {"view": manifest.view_of(t)} for t in tags})


def test_symlinks_out_of_the_logdir_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    _marked_run(str(outside / "secret"), tags=("v/secret",))
    logdir = tmp_path / "logdir"
    _marked_run(str(logdir / "inside"))
    # a directory symlinked out of the logdir: not walked
    os.symlink(outside / "secret", logdir / "linked_dir")
    # a run whose event file and manifest are symlinks to files outside
    (logdir / "linked_files").mkdir()
    os.symlink(outside / "secret" / "events.out.tfevents.1.test", logdir / "linked_files" / "events.out.tfevents.9.x")
    os.symlink(outside / "secret" / manifest.MANIFEST_NAME, logdir / "linked_files" / manifest.MANIFEST_NAME)
    # a run whose manifest is real but whose event file links outside
    (logdir / "half").mkdir()
    manifest.write_manifest(str(logdir / "half"), {"v/secret": {"view": "v"}})
    os.symlink(outside / "secret" / "events.out.tfevents.1.test", logdir / "half" / "events.out.tfevents.9.x")

    c, _ = client(str(logdir))
    assert route(c, "runs").json == {"half": ["v/secret"], "inside": ["v/a"]}
    assert route(c, "tags", run="half").json["tags"] == {}  # listed by its manifest, but no readable image
    assert route(c, "steps", run="half", tag="v/secret").status_code == 404
    for run in ("linked_dir", "linked_files", "../outside/secret"):
        assert route(c, "steps", run=run, tag="v/secret").status_code == 404
    assert route(c, "image", run="inside", tag="v/a", step=2).data == tiny_png(4, 4, 2)


def test_run_names_follow_tensorboard(tmp_path):
    _marked_run(str(tmp_path))  # the logdir itself is a run: "."
    _marked_run(str(tmp_path / "a" / "b" / "viz"))
    c, _ = client(str(tmp_path))
    assert sorted(route(c, "runs").json) == [".", "a/b/viz"]
    assert route(c, "image", run="a/b/viz", tag="v/a", step=1).data == tiny_png(4, 4, 1)


# ------------------------------------------------------------------ incremental reading


def test_new_epochs_appear_and_only_the_appended_tail_is_read(tmp_path, monkeypatch):
    run_dir = tmp_path / "viz"
    run_dir.mkdir()
    path = run_dir / "events.out.tfevents.1.test"
    manifest.write_manifest(str(run_dir), {"v/a": {"view": "v"}})
    frames = [records.frame(image_event("v/a", s, tiny_png(4, 4, s), metadata=s == 0)) for s in range(6)]
    path.write_bytes(b"".join(frames[:3]) + frames[3][:10])  # a record still being written
    reader = LogdirReader(str(tmp_path), refresh_s=0, discover_s=0)
    starts = []
    real = records.iter_records

    def spy(p, start=0, **kw):
        starts.append(start)
        return real(p, start, **kw)

    monkeypatch.setattr(records, "iter_records", spy)
    assert [s for s, _ in reader.steps("viz", "v/a")] == [0, 1, 2]
    g = reader.generation("viz")
    with open(path, "ab") as f:
        f.write(frames[3][10:] + frames[4] + frames[5])  # later epochs, metadata only on the first event
    starts.clear()
    assert [s for s, _ in reader.steps("viz", "v/a")] == [0, 1, 2, 3, 4, 5]
    assert starts == [sum(len(f) for f in frames[:3])]  # re-scanned from the end of the last complete record
    assert reader.generation("viz") > g
    assert reader.image("viz", "v/a", 5) == tiny_png(4, 4, 5)
    starts.clear()
    reader.steps("viz", "v/a")
    assert starts == []  # nothing new: nothing re-read


def test_a_replaced_file_and_a_rewritten_step(tmp_path):
    run_dir = tmp_path / "viz"
    _marked_run(str(run_dir), steps=range(4))
    reader = LogdirReader(str(tmp_path), refresh_s=0, discover_s=0)
    assert [s for s, _ in reader.steps("viz", "v/a")] == [0, 1, 2, 3]
    # a later event file (a resumed fit) writes step 3 again and step 4: the later record wins
    with open(run_dir / "events.out.tfevents.2.test", "wb") as f:
        for step in (3, 4):
            records.write_record(f, image_event("v/a", step, tiny_png(4, 4, 100 + step)))
    assert [s for s, _ in reader.steps("viz", "v/a")] == [0, 1, 2, 3, 4]
    assert reader.image("viz", "v/a", 3) == tiny_png(4, 4, 103)
    # the first file is replaced by a shorter one: the run is indexed again
    (run_dir / "events.out.tfevents.1.test").write_bytes(records.frame(image_event("v/a", 0, tiny_png(4, 4, 7))))
    assert [s for s, _ in reader.steps("viz", "v/a")] == [0, 3, 4]
    assert reader.image("viz", "v/a", 0) == tiny_png(4, 4, 7)


def test_a_corrupt_record_stops_that_file_not_the_reader(tmp_path):
    run_dir = tmp_path / "viz"
    _marked_run(str(run_dir), steps=range(3))
    with open(run_dir / "events.out.tfevents.1.test", "ab") as f:
        f.write(b"\xff" * 40)  # a length whose checksum does not match
    reader = LogdirReader(str(tmp_path), refresh_s=0, discover_s=0)
    assert [s for s, _ in reader.steps("viz", "v/a")] == [0, 1, 2]
    with pytest.raises(NotFound):
        reader.image("viz", "v/a", 3)


def test_gif_images_are_served_as_gif_and_marked_animated(tmp_path):
    from PIL import Image

    frames = [Image.new("RGB", (10, 6), (40 * i, 0, 0)) for i in range(3)]
    import io

    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    shared = writers.acquire(str(tmp_path), "viz")
    try:
        shared.write("v/a", np.zeros((6, 10, 3), np.uint8), 0)
        shared.write_encoded("v/a/evolution", buf.getvalue(), 10, 6, 0, "all epochs")
    finally:
        writers.release(shared)
    c, _ = client(str(tmp_path))
    r = route(c, "image", run="viz", tag="v/a/evolution", step=0)
    assert r.status_code == 200 and r.mimetype == "image/gif" and r.data == buf.getvalue()
    tags = route(c, "tags", run="viz").json["tags"]
    assert tags["v/a/evolution"]["animated"] and not tags["v/a"]["animated"]
    assert route(c, "image", run="viz", tag="v/a", step=0).mimetype == "image/png"


def test_animated_png_evolutions_are_marked_animated(tmp_path, log_dir):
    """The views write their evolution as APNG (served as image/png): grouped with the animations."""
    from util import compiled, random_data, small_sequential

    import keras_vizcallbacks as kv

    x, y = random_data(8)
    model = compiled(small_sequential())
    model.fit(x, y, epochs=2, verbose=0, callbacks=[kv.FilterGrid(log_dir, layers=["c1"], evolution=True)])
    c, _ = client(log_dir)
    tags = route(c, "tags", run="viz").json["tags"]
    assert tags["filters/c1/evolution"]["animated"] and not tags["filters/c1"]["animated"]
    r = route(c, "image", run="viz", tag="filters/c1/evolution", step=1)
    assert r.status_code == 200 and r.mimetype == "image/png" and b"acTL" in r.data[:200]


# ------------------------------------------------------------------ scale


def write_scale_logdir(logdir: str, steps: int, tags: int, files: int = 1) -> list[str]:
    """``steps`` x ``tags`` 8x8 PNG image summaries framed with the records module (no TensorFlow)."""
    names = [f"view{t % 6}/layer_{t}" for t in range(tags)]
    run_dir = os.path.join(logdir, "viz")
    os.makedirs(run_dir)
    per_file = -(-steps // files)
    for k in range(files):
        with open(os.path.join(run_dir, f"events.out.tfevents.{k}.scale"), "wb") as f:
            for step in range(k * per_file, min(steps, (k + 1) * per_file)):
                f.write(
                    b"".join(records.frame(image_event(t, step, tiny_png(8, 8, step + i))) for i, t in enumerate(names))
                )
    manifest.write_manifest(run_dir, {t: {"view": manifest.view_of(t)} for t in names})
    return names


def test_index_memory_is_bounded_at_scale(tmp_path):
    """600 steps x 30 tags here (18,000 images); ``benchmarks/dashboard_scale.py`` runs 3,000 x 30."""
    steps, n_tags = 600, 30
    names = write_scale_logdir(str(tmp_path), steps, n_tags, files=2)
    tracemalloc.start()
    try:
        reader = LogdirReader(str(tmp_path), refresh_s=0, discover_s=0, cache_bytes=64 << 10)
        info = reader.run_info("viz")
        assert sorted(info["tags"]) == sorted(names)
        assert all(t["steps"] == list(range(steps)) for t in info["tags"].values())
        del info
        indexed, _ = tracemalloc.get_traced_memory()
        # images: read back exactly; the cache stays within its bound
        for step in range(0, steps, 7):
            for i in (0, 17, 29):
                assert reader.image("viz", names[i], step) == tiny_png(8, 8, step + i)
        assert 0 < reader.cache_size() <= 64 << 10
    finally:
        tracemalloc.stop()
    assert reader.index_bytes() == steps * n_tags * 28  # 28 bytes a step, no image bytes
    total_event_bytes = sum(os.path.getsize(os.path.join(tmp_path, "viz", n)) for n in os.listdir(tmp_path / "viz"))
    assert indexed < total_event_bytes / 4, (indexed, total_event_bytes)


def test_the_plugin_module_imports_no_framework_nor_views():
    """TensorBoard imports plugin entry points unguarded. The package's ``__init__`` is bypassed here (until
    it is lazy it loads Keras itself); what the dashboard imports must load no Keras, framework or view."""
    import subprocess

    code = (
        "import sys, types, os\n"
        "pkg = types.ModuleType('keras_vizcallbacks')\n"
        "pkg.__path__ = [os.path.join(sys.argv[1], 'keras_vizcallbacks')]\n"
        "sys.modules['keras_vizcallbacks'] = pkg\n"
        "import keras_vizcallbacks.dashboard.plugin\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'tensorflow', 'jax', 'torch')\n"
        "             or m.startswith(('keras_vizcallbacks.callbacks', 'keras_vizcallbacks.explain',\n"
        "                              'keras_vizcallbacks._backend', 'keras_vizcallbacks.layers')))\n"
        "print(bad)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "not_a_backend"}
    out = subprocess.run([sys.executable, "-c", code, root], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"')) == []
