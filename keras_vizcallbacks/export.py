"""Turning one tag's images over all steps into an animation (APNG or GIF) or a contact sheet.

Reads the event files of a TensorBoard run directory (`keras_vizcallbacks.writers.read_images`,
which loads neither TensorFlow nor Keras), so it works on any log directory written by the
callbacks, during or after training::

    from keras_vizcallbacks import export
    export.export_tag("logs/run1", "filters/conv2d", "evolution.apng")      # animated PNG, lossless
    export.export_tag("logs/run1", "filters/conv2d", "evolution.gif")       # animated GIF, 256 colours a frame
    export.export_tag("logs/run1", "filters/conv2d", "evolution.png")       # contact sheet
    export.list_runs("logs/run1")  # {"viz": {"filters/conv2d": [0, 1, 2, ...], ...}, ...}

Each frame carries a strip with its step (= epoch index, 0-based) so an animation or a
sheet says which epoch every picture shows.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from keras_vizcallbacks import render, writers
from keras_vizcallbacks.writers import events
from keras_vizcallbacks.writers.png import encode_apng, image_format

__all__ = [
    "contact_sheet",
    "evolution_apng",
    "evolution_gif",
    "export_tag",
    "find_runs",
    "frame_label",
    "gif_frames",
    "latest_per_step",
    "list_runs",
    "list_tags",
    "load_records",
]

EVOLUTION_SUFFIX = "/evolution"


def find_runs(logdir: str) -> list[str]:
    """Run names (paths relative to ``logdir``, ``"."`` for ``logdir`` itself) that hold event files."""
    logdir = os.fspath(logdir)
    if not os.path.isdir(logdir):
        raise FileNotFoundError(f"No log directory {logdir!r}.")
    runs = []
    for root, dirs, files in os.walk(logdir):
        dirs.sort()
        if any(".tfevents." in f for f in files):
            rel = os.path.relpath(root, logdir)
            runs.append(rel.replace(os.sep, "/"))
    return runs


def list_runs(logdir: str) -> dict[str, dict[str, list[int]]]:
    """``{run: {image tag: [steps]}}`` for every run under ``logdir`` (runs without images have ``{}``)."""
    return {run: found["images"] for run, found in list_tags(logdir).items()}


def list_tags(logdir: str) -> dict[str, dict[str, dict[str, list[int]]]]:
    """``{run: {"images": {tag: [steps]}, "scalars": {tag: [steps]}}}`` for every run under ``logdir``."""
    return {run: events.read_steps(os.path.join(logdir, run)) for run in find_runs(logdir)}


def latest_per_step(records: Iterable[writers.ImageRecord]) -> list[writers.ImageRecord]:
    """One record per step, the most recently written one (a rerun into the same directory wins), by step."""
    best: dict[int, writers.ImageRecord] = {}
    for r in records:
        if r.step not in best or r.wall_time >= best[r.step].wall_time:
            best[r.step] = r
    return [best[s] for s in sorted(best)]


def load_records(logdir: str, tag: str, run: str = "viz") -> list[writers.ImageRecord]:
    """The records of ``tag`` in ``<logdir>/<run>``, one per step. ValueError names the tags that exist."""
    run_dir = os.path.join(os.fspath(logdir), run)
    if not os.path.isdir(run_dir):
        try:
            runs = find_runs(logdir)
        except FileNotFoundError:
            raise FileNotFoundError(f"No log directory {os.fspath(logdir)!r}.") from None
        raise ValueError(f"No run {run!r} in {os.fspath(logdir)!r}. Runs with event files: {runs or 'none'}.")
    images = writers.read_images(run_dir)
    if tag not in images:
        tags = sorted(images)
        raise ValueError(
            f"No image tag {tag!r} in run {run!r} of {os.fspath(logdir)!r}. "
            f"Image tags there: {', '.join(tags) if tags else 'none'}."
        )
    return latest_per_step(images[tag])


def frame_label(step: int) -> str:
    """The text written on a frame: the epoch as the views number it (0-based, = TensorBoard's step)."""
    return f"epoch {step}"


def _decode(record: writers.ImageRecord) -> np.ndarray:
    with Image.open(io.BytesIO(record.encoded)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _labelled(image: np.ndarray, label: str, width: int, height: int, size: int) -> np.ndarray:
    """``image`` placed top-left on a (height, width) dark canvas, under a text strip with ``label``."""
    canvas = np.full((height, width, 3), 24, dtype=np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    return render.caption(canvas, label, size=size, where="top")


def _text_size(width: int) -> int:
    """Label size: TensorBoard draws a card ~320 px wide, so scale the text with the image to stay readable."""
    return int(np.clip(width // 20, 12, 32))


def gif_frames(records: Sequence[writers.ImageRecord]) -> Iterable[np.ndarray]:
    """Decoded, labelled frames of equal size (smaller images are padded), one at a time (GIF, APNG, sheet)."""
    if not records:
        raise ValueError("No images to export.")
    width = max(r.width for r in records)
    height = max(r.height for r in records)
    size = _text_size(width)
    for r in records:
        yield _labelled(_decode(r), frame_label(r.step), width, height, size)


def evolution_gif(
    records: Sequence[writers.ImageRecord],
    *,
    duration_ms: int = 600,
    last_ms: int = 1800,
    loop: int = 0,
) -> tuple[bytes, int, int]:
    """Animated GIF of ``records`` (one frame per record, in order), with the epoch (= step) written on each frame.

    Returns ``(gif_bytes, width, height)``. Frames are decoded one at a time
    from the stored PNG bytes; each gets its own 256-colour palette (no
    dithering, so tiles stay crisp). Every frame is kept: the step label makes
    consecutive frames differ, so the encoder never merges two of them.
    """
    records = list(records)
    if not records:
        raise ValueError("No images to export.")

    def palettized() -> Iterable[Image.Image]:
        for frame in gif_frames(records):
            yield Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)

    frames = palettized()
    first = next(frames)
    durations = _durations(len(records), duration_ms, last_ms)
    buf = io.BytesIO()
    first.save(
        buf,
        format="GIF",
        save_all=True,
        append_images=list(frames),
        duration=durations if len(records) > 1 else durations[0],
        loop=loop,
        disposal=1,
        optimize=False,
    )
    return buf.getvalue(), first.width, first.height


def _durations(n: int, duration_ms: int, last_ms: int) -> list[int]:
    """Each frame ``duration_ms``; the last one held longer (``last_ms``) before the loop starts again."""
    return [duration_ms] * (n - 1) + [max(duration_ms, last_ms)]


def evolution_apng(
    records: Sequence[writers.ImageRecord],
    *,
    duration_ms: int = 600,
    last_ms: int = 1800,
    loop: int = 0,
) -> tuple[bytes, int, int]:
    """Animated PNG of ``records`` (one frame per record, in order), with the epoch (= step) written on each frame.

    Returns ``(apng_bytes, width, height)``. Lossless: below its label strip each frame is
    the stored image, pixel for pixel (a GIF has 256 colours a frame). Frames are decoded and
    encoded one at a time (`keras_vizcallbacks.writers.png.encode_apng`). Browsers play APNG,
    and TensorBoard serves it as ``image/png``, so its image card plays it.
    """
    records = list(records)
    if not records:
        raise ValueError("No images to export.")
    frames = iter(gif_frames(records))
    first = next(frames)
    data = encode_apng(
        itertools.chain([first], frames),
        len(records),
        _durations(len(records), duration_ms, last_ms),
        loop=loop,
    )
    return data, int(first.shape[1]), int(first.shape[0])


def contact_sheet(records: Sequence[writers.ImageRecord], *, columns: int | None = None, pad: int = 6) -> np.ndarray:
    """All frames of ``records`` in one near-square grid (or ``columns`` wide), each labelled with its step."""
    tiles = np.stack(list(gif_frames(records)))
    return render.tile(tiles, cols=columns, pad=pad, pad_value=(255, 255, 255), border=True)


#: ``--out`` extensions and what each writes.
FORMATS = {".apng": "animated PNG", ".gif": "animated GIF", ".png": "contact sheet"}


def export_tag(
    logdir: str,
    tag: str,
    out: str,
    *,
    run: str = "viz",
    duration_ms: int = 600,
    columns: int | None = None,
    steps: tuple[int | None, int | None] = (None, None),
) -> dict:
    """Write ``tag``'s images of ``<logdir>/<run>`` to ``out``: an animated ``.apng`` (lossless) or ``.gif``
    (256 colours a frame), or a contact-sheet ``.png``.

    ``steps`` keeps only steps in ``[first, last]`` (either may be None).
    Returns a summary: ``{"path", "format", "frames", "steps", "width", "height", "bytes"}``
    (format ``"apng"``, ``"gif"`` or ``"png"``).
    """
    ext = os.path.splitext(out)[1].lower()
    if ext not in FORMATS:
        choices = ", ".join(f"{e} ({what})" for e, what in FORMATS.items())
        raise ValueError(f"--out must end in {choices}; got {out!r}.")
    records = load_records(logdir, tag, run)
    lo, hi = steps
    records = [r for r in records if (lo is None or r.step >= lo) and (hi is None or r.step <= hi)]
    if not records:
        raise ValueError(f"Tag {tag!r} has no images in the step range {lo}..{hi}.")
    if image_format(records[0].encoded) in ("gif", "apng"):
        raise ValueError(f"Tag {tag!r} already holds an animation; export the tag it was made from.")
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    if ext in (".gif", ".apng"):
        make = evolution_gif if ext == ".gif" else evolution_apng
        data, width, height = make(records, duration_ms=duration_ms)
        with open(out, "wb") as f:
            f.write(data)
        fmt = ext[1:]
    else:
        sheet = contact_sheet(records, columns=columns)
        Image.fromarray(sheet).save(out, optimize=True)
        height, width = sheet.shape[:2]
        fmt = "png"
    return {
        "path": out,
        "format": fmt,
        "frames": len(records),
        "steps": [r.step for r in records],
        "width": int(width),
        "height": int(height),
        "bytes": os.path.getsize(out),
    }
