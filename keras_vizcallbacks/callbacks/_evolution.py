"""``evolution=True``: at train end, one animated GIF per tag a view wrote.

The frames are read back from the run's event file (nothing is kept in memory
while training), so the animation also covers earlier fits into the same run
directory, e.g. a fit resumed with ``initial_epoch``. The GIF is written as an
image summary under ``<tag>/evolution`` at the last step; TensorBoard's image
card plays it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from keras_vizcallbacks import export, render, writers

logger = logging.getLogger("keras_vizcallbacks")

#: At most this many frames per animation: longer runs keep evenly spaced steps, first and last included.
MAX_FRAMES = 100


def evolution_description(tag: str, steps: list[int], total: int | None = None) -> str:
    span = f"steps {steps[0]}–{steps[-1]}" if len(steps) > 1 else f"step {steps[0]}"
    which = (
        f"{len(steps)} of its {total} images, evenly spaced ({span})"
        if total is not None and total > len(steps)
        else f"its {len(steps)} images ({span}), one frame per written step"
    )
    return (
        f"**Evolution of `{tag}`**: an animated GIF of {which}, each frame labelled with its step "
        "(= epoch index, 0-based) and Keras's 1-based epoch. Written once at the end of training, read back "
        "from this run's event files."
    )


def write_evolution(callback: Any) -> list[str]:
    """Write ``<tag>/evolution`` for every tag ``callback`` wrote in this fit; return the tags written.

    ``callback`` is a `VizCallback` whose writer is
    still open. A failure goes through the callback's error policy (warn once,
    or raise with ``on_error="raise"``).
    """
    writer = callback._writer
    written = list(dict.fromkeys(tag for tag, _ in callback.written))
    if writer is None or not written:
        return []
    done: list[str] = []
    last_step = max(step for _, step in callback.written)
    try:
        writer.flush()
        run_dir = getattr(writer, "key", None) or writers.run_path(callback.log_dir, callback.run_name)
        if not os.path.isdir(run_dir):
            return []
        stored = writers.read_images(run_dir)
        for tag in written:
            records = export.latest_per_step(stored.get(tag, []))
            if not records:
                continue
            total = len(records)
            records = [records[i] for i in render.spread(total, MAX_FRAMES)]
            data, width, height = export.evolution_gif(records)
            steps = [r.step for r in records]
            evo_tag = tag + export.EVOLUTION_SUFFIX
            description = evolution_description(tag, steps, total)
            writer.write_encoded(evo_tag, data, width, height, steps[-1], description)
            done.append(evo_tag)
        writer.flush()
    except Exception as exc:
        callback._failed(last_step, exc)
    if done:
        logger.info("%s wrote %d evolution GIF(s): %s", type(callback).__name__, len(done), ", ".join(done))
    return done
