"""``evolution=True``: at train end, one animated PNG (APNG) per tag a view wrote.

The frames are read back from the run's event files (nothing is kept in memory
while training), so the animation also covers earlier fits into the same run
directory, e.g. a fit resumed with ``initial_epoch``. The animation is written as an
image summary under ``<tag>/evolution`` at the last step; TensorBoard serves it as
``image/png`` and its image card plays it. APNG is lossless: below its label strip
each frame is the stored image, pixel for pixel (a GIF's 256 colours banded heatmaps).

Uses only public names: the run's shared writer (`writers.acquire` returns the one the
callback holds), ``SharedWriter.run_dir`` / ``write_encoded`` / ``flush``, and the
callback's ``log_dir``, ``run_name``, ``png_dir``, ``written`` and ``report_failure``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import Any

from keras_vizcallbacks import export, render, writers

logger = logging.getLogger("keras_vizcallbacks")

#: At most this many frames per animation: longer runs keep evenly spaced steps, first and last included.
MAX_FRAMES = 100

_ACTIVE = threading.local()  # ids of the callbacks whose evolution is being written on this thread


def evolution_description(tag: str, steps: list[int], total: int | None = None) -> str:
    span = f"steps {steps[0]}–{steps[-1]}" if len(steps) > 1 else f"step {steps[0]}"
    which = (
        f"{len(steps)} of its {total} images, evenly spaced ({span})"
        if total is not None and total > len(steps)
        else f"its {len(steps)} images ({span}), one frame per written step"
    )
    return (
        f"**Evolution of `{tag}`**: an animated PNG of {which}, each frame labelled with its epoch "
        "(= step, 0-based) and otherwise the written image, pixel for pixel. Written once at the end of training, "
        "read back from this run's event files."
    )


def write_animations(writer: writers.SharedWriter, tags: Iterable[str], max_frames: int | None = None) -> list[str]:
    """Write ``<tag>/evolution`` (an APNG of the tag's images over all steps, at its last step) for every tag of
    ``tags`` that ``writer``'s run holds; returns the tags written. Errors propagate."""
    max_frames = MAX_FRAMES if max_frames is None else max_frames
    writer.flush()
    if not os.path.isdir(writer.run_dir):
        return []
    tags = list(dict.fromkeys(tags))
    stored = writers.read_images(writer.run_dir, tags=tags)
    done: list[str] = []
    for tag in tags:
        records = export.latest_per_step(stored.get(tag, []))
        if not records:
            continue
        total = len(records)
        records = [records[i] for i in render.spread(total, max_frames)]
        data, width, height = export.evolution_apng(records)
        steps = [r.step for r in records]
        evo_tag = tag + export.EVOLUTION_SUFFIX
        writer.write_encoded(evo_tag, data, width, height, steps[-1], evolution_description(tag, steps, total))
        done.append(evo_tag)
    writer.flush()
    return done


def write_evolution(callback: Any) -> list[str]:
    """Write ``<tag>/evolution`` for every tag ``callback`` wrote in this fit; return the tags written.

    ``callback`` is a `VizCallback` whose writer is still open. A failure goes through the
    callback's error policy (warn once, or raise with ``on_error="raise"``).
    """
    written = list(dict.fromkeys(tag for tag, _ in callback.written))
    active = _ACTIVE.__dict__.setdefault("ids", set())
    if not written or id(callback) in active:  # re-entered: on_error="raise" closes the callback, which lands here
        return []
    last_step = max(step for _, step in callback.written)
    done: list[str] = []
    active.add(id(callback))
    try:
        writer = writers.acquire(callback.log_dir, callback.run_name, callback.png_dir)  # the callback's own
        try:
            done = write_animations(writer, written)
        finally:
            writers.release(writer)
    except Exception as exc:
        callback.report_failure(last_step, exc)
    finally:
        active.discard(id(callback))
    if done:
        logger.info("%s wrote %d evolution animation(s): %s", type(callback).__name__, len(done), ", ".join(done))
    return done
