"""An incremental index of our image summaries in a TensorBoard logdir.

A *run* is a directory under the logdir that holds a manifest (`keras_vizcallbacks.writers.manifest`);
its name is the path relative to the logdir, as TensorBoard names runs (``"."`` for the logdir itself).
For each run the reader frames the run's event files itself (`keras_vizcallbacks.writers.records`)
and keeps, per image tag, sorted parallel arrays ``step -> (file, offset, wall time)``: about 28
bytes a step, never the image bytes. An image is read from its record when asked for, through a
small LRU cache bounded in bytes.

Incremental: each event file remembers the offset after its last complete record, so a refresh
reads only what was appended since (a record still being written is read next time). A file that
shrank or was replaced makes the run re-index from scratch.

Confined to the logdir: run names and tags are looked up in the index, never joined into paths;
directories are walked without following symlinks, and every file opened (manifest, event file)
must resolve to a path inside the logdir's real path.

Thread-safe (TensorBoard serves requests on several threads): one lock guards the index; image
bytes are read outside it.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import os
import threading
import time
from array import array
from typing import Any

from tensorboard.compat.proto import event_pb2

from keras_vizcallbacks.writers import records
from keras_vizcallbacks.writers.manifest import MANIFEST_NAME, parse_manifest, view_of
from keras_vizcallbacks.writers.png import is_animated_png

logger = logging.getLogger(__name__)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
GIF_MAGICS = (b"GIF87a", b"GIF89a")


class NotFound(LookupError):
    """An unknown run, tag or step (the plugin answers 404 with this message)."""


def image_type(data: bytes) -> str | None:
    """``"image/png"``, ``"image/gif"`` or None, from the magic bytes."""
    if data.startswith(PNG_MAGIC):
        return "image/png"
    if data[:6] in GIF_MAGICS:
        return "image/gif"
    return None


def is_animated(data: bytes) -> bool:
    """An animation: a GIF, or an animated PNG (``acTL`` before the first ``IDAT``: the views'
    ``<tag>/evolution`` images)."""
    return image_type(data[:8]) == "image/gif" or is_animated_png(data)


def _inside(path: str, root: str) -> bool:
    """Whether the real path of ``path`` lies inside ``root`` (itself a real path)."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


class Series:
    """One tag's steps, sorted, as parallel arrays (no image bytes)."""

    __slots__ = ("animated", "description", "files", "offsets", "steps", "walls")

    def __init__(self) -> None:
        self.steps = array("q")
        self.files = array("i")  # index into the run's file list
        self.offsets = array("q")
        self.walls = array("d")
        self.description = ""
        self.animated = False  # the latest image is a GIF (e.g. the <tag>/evolution animations)

    def add(self, step: int, file_index: int, offset: int, wall: float) -> None:
        """Index one record; a step seen before is replaced by the later record (resumed or repeated fits)."""
        steps = self.steps
        if not steps or step > steps[-1]:
            steps.append(step)
            self.files.append(file_index)
            self.offsets.append(offset)
            self.walls.append(wall)
            return
        i = bisect.bisect_left(steps, step)
        if i < len(steps) and steps[i] == step:
            self.files[i], self.offsets[i], self.walls[i] = file_index, offset, wall
            return
        steps.insert(i, step)
        self.files.insert(i, file_index)
        self.offsets.insert(i, offset)
        self.walls.insert(i, wall)

    def find(self, step: int) -> int:
        i = bisect.bisect_left(self.steps, step)
        if i == len(self.steps) or self.steps[i] != step:
            raise NotFound(f"no step {step}")
        return i

    def nbytes(self) -> int:
        return sum(a.buffer_info()[1] * a.itemsize for a in (self.steps, self.files, self.offsets, self.walls))


@dataclasses.dataclass
class _File:
    path: str
    offset: int = 0  # bytes framed so far
    ident: tuple[int, int] = (0, 0)  # (device, inode): a replaced file is re-read
    broken: bool = False  # a corrupt record: nothing after it can be framed


class Run:
    """The index of one run directory."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.files: list[_File] = []
        self.by_path: dict[str, int] = {}
        self.series: dict[str, Series] = {}
        self.image_tags: set[str] = set()  # tags whose metadata said "images" (later events may omit it)
        self.ours: dict[str, dict[str, Any]] = {}  # the manifest's tags
        self.manifest_stamp: tuple[float, int] | None = None
        self.generation = 0  # bumped whenever what the run shows changes
        self.refreshed = -1e18

    def reset(self) -> None:
        self.files, self.by_path, self.series, self.image_tags = [], {}, {}, set()
        self.generation += 1

    def tags(self) -> list[str]:
        """Our tags with at least one image, sorted."""
        return sorted(t for t in self.ours if t in self.series and len(self.series[t].steps))


class LogdirReader:
    """Our image summaries under ``logdir``, indexed incrementally.

    ``refresh_s``: a run's files are re-scanned at most this often (on demand, when asked for it);
    ``discover_s``: the logdir is walked for new runs at most this often;
    ``cache_bytes``: bound of the LRU cache of image bytes.
    """

    def __init__(
        self, logdir: str, *, refresh_s: float = 2.0, discover_s: float = 5.0, cache_bytes: int = 32 << 20
    ) -> None:
        self.logdir = logdir
        self.root = os.path.realpath(logdir) if logdir else ""
        self.refresh_s = refresh_s
        self.discover_s = discover_s
        self.cache_bytes = cache_bytes
        self._runs: dict[str, Run] = {}
        self._discovered = -1e18
        self._lock = threading.RLock()
        self._cache: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()
        self._cache_size = 0
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------ discovery

    def _discover(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._discovered < self.discover_s:
            return
        self._discovered = now
        found: dict[str, str] = {}
        if self.root and os.path.isdir(self.root):
            for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
                dirnames.sort()
                if MANIFEST_NAME in filenames and _inside(os.path.join(dirpath, MANIFEST_NAME), self.root):
                    rel = os.path.relpath(dirpath, self.root)
                    found["." if rel == os.curdir else rel.replace(os.sep, "/")] = dirpath
        for name in list(self._runs):
            if name not in found:
                del self._runs[name]
        for name, path in found.items():
            if name not in self._runs:
                self._runs[name] = Run(name, path)

    def _run(self, name: str) -> Run:
        run = self._runs.get(name)
        if run is None:
            self._discover(force=True)
            run = self._runs.get(name)
        if run is None:
            raise NotFound(f"no run {name!r}; runs: {sorted(self._runs) or 'none'}")
        return run

    # ------------------------------------------------------------------ scanning

    def _refresh(self, run: Run, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - run.refreshed < self.refresh_s:
            return
        run.refreshed = now
        self._read_manifest(run)
        try:
            names = sorted(n for n in os.listdir(run.path) if "tfevents" in n)
        except OSError:
            names = []
        paths = []
        for n in names:
            p = os.path.join(run.path, n)
            if _inside(p, self.root) and os.path.isfile(p):
                paths.append(p)
        # A file that disappeared, shrank or was replaced: start this run over.
        stale = set(run.by_path) - set(paths)
        sizes: dict[str, int] = {}
        for p in paths:
            i = run.by_path.get(p)
            if i is None:
                continue
            try:
                st = os.stat(p)
            except OSError:
                stale.add(p)
                continue
            f = run.files[i]
            if (st.st_dev, st.st_ino) != f.ident or st.st_size < f.offset:
                stale.add(p)
            sizes[p] = st.st_size
        if stale:
            run.reset()
            sizes.clear()
        for p in paths:
            if p not in run.by_path:
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                run.by_path[p] = len(run.files)
                run.files.append(_File(p, 0, (st.st_dev, st.st_ino)))
            index = run.by_path[p]
            if sizes.get(p) != run.files[index].offset:  # something was appended (or the file is new)
                self._scan(run, index)

    def _read_manifest(self, run: Run) -> None:
        path = os.path.join(run.path, MANIFEST_NAME)
        try:
            st = os.stat(path)
        except OSError:
            return
        stamp = (st.st_mtime, st.st_size)
        if stamp == run.manifest_stamp or not _inside(path, self.root):
            return
        run.manifest_stamp = stamp
        ours = parse_manifest(path)
        if ours != run.ours:
            run.ours = ours
            run.generation += 1

    def _scan(self, run: Run, index: int) -> None:
        f = run.files[index]
        if f.broken:
            return
        changed = False
        try:
            for offset, data in records.iter_records(f.path, f.offset):
                f.offset = offset + records.record_size(len(data))
                changed |= self._index_event(run, index, offset, data)
        except records.CorruptRecordError as e:
            f.broken = True
            logger.warning("Viz dashboard: %s; the rest of this file is skipped.", e)
        except OSError as e:
            logger.warning("Viz dashboard: cannot read %s: %s", f.path, e)
        if changed:
            run.generation += 1

    def _index_event(self, run: Run, index: int, offset: int, data: bytes) -> bool:
        try:
            event = event_pb2.Event.FromString(data)
        except Exception:  # a record that is not an Event: skip it
            return False
        if not event.HasField("summary"):
            return False
        changed = False
        for value in event.summary.value:
            tag = value.tag
            if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
                if value.metadata.plugin_data.plugin_name != "images":
                    continue
                run.image_tags.add(tag)
            encoded = _encoded(value, tag in run.image_tags)
            if encoded is None:
                continue
            series = run.series.get(tag)
            if series is None:
                series = run.series[tag] = Series()
            if not series.description and value.metadata.summary_description:
                series.description = value.metadata.summary_description
            series.add(int(event.step), index, offset, float(event.wall_time))
            if int(event.step) == series.steps[-1]:
                series.animated = is_animated(encoded)
            changed = True
        return changed

    # ------------------------------------------------------------------ queries

    def runs(self) -> dict[str, list[str]]:
        """``{run: [our tags]}`` from the manifests (cheap: no event file is read; a tag may still
        have no image if its first write is under way). Runs whose manifest lists no tag are left out."""
        with self._lock:
            self._discover()
            out = {}
            for name in sorted(self._runs):
                run = self._runs[name]
                self._read_manifest(run)
                if run.ours:
                    out[name] = sorted(run.ours)
            return out

    def has_runs(self) -> bool:
        """Whether the logdir holds a manifest (cheap: no event file is read)."""
        with self._lock:
            self._discover()
            return bool(self._runs)

    def run_info(self, name: str) -> dict[str, Any]:
        """``{"generation": g, "tags": {tag: {view, description, animated, steps, wall_times}}}`` of one run."""
        with self._lock:
            run = self._run(name)
            self._refresh(run)
            tags = {}
            for tag in run.tags():
                s = run.series[tag]
                tags[tag] = {
                    "view": run.ours[tag].get("view") or view_of(tag),
                    "description": s.description,
                    "animated": s.animated,
                    "steps": s.steps.tolist(),
                    "wall_times": s.walls.tolist(),
                }
            return {"run": name, "generation": run.generation, "tags": tags}

    def generation(self, name: str) -> int:
        with self._lock:
            run = self._run(name)
            self._refresh(run)
            return run.generation

    def _series(self, run_name: str, tag: str) -> tuple[Run, Series]:
        run = self._run(run_name)
        self._refresh(run)
        if tag not in run.ours or tag not in run.series or not len(run.series[tag].steps):
            raise NotFound(f"no tag {tag!r} in run {run_name!r}; tags: {run.tags() or 'none'}")
        return run, run.series[tag]

    def steps(self, run_name: str, tag: str) -> list[tuple[int, float]]:
        """``[(step, wall_time), ...]`` of one tag, by step."""
        with self._lock:
            _, s = self._series(run_name, tag)
            return list(zip(s.steps.tolist(), s.walls.tolist()))

    def image(self, run_name: str, tag: str, step: int) -> bytes:
        """The encoded image (PNG or GIF bytes) of ``tag`` at ``step``; `NotFound` if there is none."""
        with self._lock:
            run, s = self._series(run_name, tag)
            try:
                i = s.find(step)
            except NotFound:
                raise NotFound(f"no step {step} of {tag!r} in run {run_name!r}") from None
            f = run.files[s.files[i]]
            path, offset = f.path, s.offsets[i]
            key = (path, f.ident, offset, tag)
        with self._cache_lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data
        try:
            event = event_pb2.Event.FromString(records.read_record(path, offset))
        except (OSError, records.CorruptRecordError) as e:
            raise NotFound(f"the record of {tag!r} step {step} cannot be read ({e})") from None
        data = next((e for v in event.summary.value if v.tag == tag for e in [_encoded(v, True)] if e), None)
        if data is None:
            raise NotFound(f"no image of {tag!r} at step {step}")
        self._remember(key, data)
        return data

    def _remember(self, key: tuple, data: bytes) -> None:
        if len(data) > self.cache_bytes // 4:
            return
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = data
            self._cache_size += len(data)
            while self._cache_size > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cache_size -= len(old)

    # ------------------------------------------------------------------ diagnostics

    def index_bytes(self) -> int:
        """Bytes held by the step arrays of every run (the index, without Python object overhead)."""
        with self._lock:
            return sum(s.nbytes() for run in self._runs.values() for s in run.series.values())

    def cache_size(self) -> int:
        with self._cache_lock:
            return self._cache_size


def _encoded(value: Any, is_image: bool) -> bytes | None:
    """The first encoded image of a summary value, or None: a tensor ``[width, height, image...]`` of an
    image summary, or a legacy ``Summary.Image``."""
    if value.HasField("image"):
        return bytes(value.image.encoded_image_string) or None
    if not is_image or not value.HasField("tensor"):
        return None
    vals = value.tensor.string_val
    if len(vals) < 3:
        return None
    return bytes(vals[2])
