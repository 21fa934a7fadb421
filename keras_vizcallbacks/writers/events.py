"""Reading image summaries back from event files (tests, the export CLI)."""

from __future__ import annotations

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    step: int
    wall_time: float
    width: int
    height: int
    encoded: bytes  # PNG (or GIF) bytes of the first image of the summary
    count: int  # images in the summary


def read_images(run_dir: str) -> dict[str, list[ImageRecord]]:
    """All image summaries of one run directory: ``{tag: [ImageRecord, ...]}`` by step.

    Every record is kept (duplicates included), so callers can check that each
    step appears exactly once.
    """
    from tensorboard.backend.event_processing import event_accumulator as ea

    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"No run directory {run_dir!r}.")
    acc = ea.EventAccumulator(run_dir, size_guidance={ea.TENSORS: 0, ea.IMAGES: 0})
    acc.Reload()
    result: dict[str, list[ImageRecord]] = {}
    for tag in acc.Tags().get(ea.TENSORS, []):
        md = acc.SummaryMetadata(tag)
        if md.plugin_data.plugin_name != "images":
            continue
        records = []
        for ev in acc.Tensors(tag):
            vals = ev.tensor_proto.string_val
            records.append(
                ImageRecord(ev.step, ev.wall_time, int(vals[0]), int(vals[1]), bytes(vals[2]), len(vals) - 2)
            )
        result[tag] = sorted(records, key=lambda r: (r.step, r.wall_time))
    return result


def read_descriptions(run_dir: str) -> dict[str, str]:
    """``{tag: Markdown description}`` for the image tags of a run directory."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(run_dir, size_guidance={ea.TENSORS: 1})
    acc.Reload()
    out = {}
    for tag in acc.Tags().get(ea.TENSORS, []):
        md = acc.SummaryMetadata(tag)
        if md.plugin_data.plugin_name == "images":
            out[tag] = md.summary_description
    return out


def decode(record: ImageRecord):
    """The record's first image as a uint8 numpy array (H, W, C)."""
    import io

    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(record.encoded)) as im:
        return np.asarray(im.convert("RGB"))
