"""The mark on our images: a small manifest per run directory, listing the tags our writers wrote.

``<run_dir>/.keras_vizcallbacks.json``::

    {"format": "keras_vizcallbacks.manifest", "version": 1,
     "tags": {"filters/conv2d": {"view": "filters"}, "my_maps": {"view": "my_maps"}}}

The writers add a tag the first time they write it (`Manifest.note`), merging with what an earlier
fit wrote, and replace the file atomically (write a temporary file, then rename), so a reader never
sees half a manifest. The dashboard (``keras_vizcallbacks.dashboard``) shows the tags a manifest
lists, whatever their names: views take ``tag=``, so a tag prefix cannot tell ours apart.
TensorBoard itself reads only ``*tfevents*`` files and ignores this one.

Standard library only: the dashboard imports this module inside TensorBoard.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from typing import Any

MANIFEST_NAME = ".keras_vizcallbacks.json"
FORMAT = "keras_vizcallbacks.manifest"
VERSION = 1


def view_of(tag: str) -> str:
    """The view group of a tag: the text before the first '/' (TensorBoard groups cards the same way)."""
    return tag.split("/", 1)[0]


def manifest_path(run_dir: str | os.PathLike) -> str:
    return os.path.join(os.fspath(run_dir), MANIFEST_NAME)


def read_manifest(run_dir: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{tag: {"view": ...}}`` of a run directory's manifest; ``{}`` if it has none or it is unreadable."""
    return parse_manifest(manifest_path(run_dir))


def parse_manifest(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """The tags of the manifest file at ``path``; ``{}`` if missing, unreadable, or not a manifest."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tags"), dict):
        return {}
    tags: dict[str, dict[str, Any]] = {}
    for tag, info in doc["tags"].items():
        if isinstance(tag, str) and tag:
            info = info if isinstance(info, dict) else {}
            view = info.get("view")
            tags[tag] = {**info, "view": view if isinstance(view, str) and view else view_of(tag)}
    return tags


def write_manifest(run_dir: str | os.PathLike, tags: dict[str, dict[str, Any]]) -> None:
    """Replace the manifest of ``run_dir`` with ``tags`` atomically (OSError if it cannot be written)."""
    path = manifest_path(run_dir)
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    doc = {"format": FORMAT, "version": VERSION, "tags": dict(sorted(tags.items()))}
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class Manifest:
    """The tags one writer has marked in ``run_dir``; `note` is cheap once a tag is known.

    Not thread-safe by itself: `SharedWriter` calls it under its lock.
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self._known: set[str] = set()
        self._warned = False

    def note(self, tag: str) -> None:
        """Mark ``tag`` as ours (first call per tag writes the file). A failure warns once and never raises:
        the image itself is written either way."""
        if tag in self._known:
            return
        try:
            tags = read_manifest(self.run_dir)  # merge: an earlier fit (or process) may have added tags
            if tag not in tags:
                tags[tag] = {"view": view_of(tag)}
                write_manifest(self.run_dir, tags)
        except OSError as e:
            if not self._warned:
                self._warned = True
                warnings.warn(
                    f"keras_vizcallbacks could not write {manifest_path(self.run_dir)!r} ({e}); the images are "
                    "written, but the Viz dashboard will not list this run's tags.",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return
        self._known.add(tag)
