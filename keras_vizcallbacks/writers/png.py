"""PNG files on disk, one per tag and step: ``<dir>/<tag with '/' as '__'>/step_000005.png``."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def tag_dirname(tag: str) -> str:
    return tag.replace("/", "__")


class PNGWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.closed = False

    def write(self, tag: str, image: np.ndarray, step: int, description: str = "") -> None:
        folder = os.path.join(self.path, tag_dirname(tag))
        os.makedirs(folder, exist_ok=True)
        image = np.asarray(image)
        if image.ndim == 4:
            image = image[0]
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(
            os.path.join(folder, f"step_{int(step):06d}.png")
        )
        if description:
            with open(os.path.join(folder, "description.md"), "w", encoding="utf-8") as f:
                f.write(description)

    def write_encoded(self, tag: str, png: bytes, width: int, height: int, step: int, description: str = "") -> None:
        folder = os.path.join(self.path, tag_dirname(tag))
        os.makedirs(folder, exist_ok=True)
        ext = ".gif" if png[:3] == b"GIF" else ".png"
        with open(os.path.join(folder, f"step_{int(step):06d}{ext}"), "wb") as f:
            f.write(png)
        if description and ext == ".png":
            with open(os.path.join(folder, "description.md"), "w", encoding="utf-8") as f:
                f.write(description)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
