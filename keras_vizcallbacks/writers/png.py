"""PNG files on disk, one per tag and step: ``<dir>/<tag with '/' as '__'>/step_000005.png``."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def tag_dirname(tag: str) -> str:
    return tag.replace("/", "__")


def png_path(root: str, tag: str, step: int, ext: str = ".png") -> str:
    """Where the image of ``tag`` at ``step`` lies under ``root`` (the layout of the module docstring)."""
    return os.path.join(root, tag_dirname(tag), f"step_{int(step):06d}{ext}")


class PNGWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.closed = False

    def write(self, tag: str, image: np.ndarray, step: int, description: str = "") -> None:
        image = np.asarray(image)
        if image.ndim == 4:
            image = image[0]
        path = self._prepare(tag, step, ".png", description)
        Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(path)

    def write_encoded(self, tag: str, png: bytes, width: int, height: int, step: int, description: str = "") -> None:
        gif = png[:3] == b"GIF"  # an evolution animation: its description is the still images' one
        path = self._prepare(tag, step, ".gif" if gif else ".png", "" if gif else description)
        with open(path, "wb") as f:
            f.write(png)

    def _prepare(self, tag: str, step: int, ext: str, description: str) -> str:
        """Create the tag's folder, write its description (if any); return the image's path."""
        path = png_path(self.path, tag, step, ext)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if description:
            with open(os.path.join(os.path.dirname(path), "description.md"), "w", encoding="utf-8") as f:
                f.write(description)
        return path

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
