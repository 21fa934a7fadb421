"""Reading back what the callbacks wrote."""

from __future__ import annotations

import os

import numpy as np

from keras_vizcallbacks import writers


def read_run(log_dir: str, run: str = "viz") -> dict[str, list[writers.ImageRecord]]:
    return writers.read_images(os.path.join(log_dir, run))


def steps(records: list[writers.ImageRecord]) -> list[int]:
    return [r.step for r in records]


def image(record: writers.ImageRecord) -> np.ndarray:
    return writers.decode(record)


def assert_steps(run: dict[str, list[writers.ImageRecord]], tags: list[str], expected: list[int]) -> None:
    """Each tag is present with exactly the expected steps, each once."""
    for tag in tags:
        assert tag in run, f"tag {tag!r} missing; written: {sorted(run)}"
        assert steps(run[tag]) == expected, f"{tag}: steps {steps(run[tag])} != {expected}"
