"""PNG encoding (Pillow), and PNG files on disk, one per tag and step: ``<dir>/<tag with '/' as '__'>/step_000005.png``.

`encode_png` and `encode_apng` use Pillow at zlib level ``PNG_COMPRESSION`` (1): no TensorFlow,
so they work under every Keras backend, and Pillow releases the GIL while it encodes, so the
writers' encoder threads encode beside the training thread.
``benchmarks/png_encode.py`` measures Pillow against TensorFlow's encoder in one run.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

# zlib level for the PNGs of image summaries: level 1 encodes a large composite several times
# faster than the default (6) for a few percent more bytes; encoding is most of the cost of writing.
PNG_COMPRESSION = 1

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}  # channels -> Pillow mode


def encode_png(image: np.ndarray, compression: int = PNG_COMPRESSION) -> bytes:
    """uint8 ``(H, W)`` or ``(H, W, C)`` with C in 1-4 -> PNG bytes (lossless, 8 bits per channel)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"encode_png takes uint8 images, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in _MODES or 0 in image.shape[:2]:
        raise ValueError(f"encode_png takes (H, W) or (H, W, 1-4) images with H, W >= 1, got shape {image.shape}")
    pixels = image[:, :, 0] if image.shape[2] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), _MODES[image.shape[2]]).save(
        buf, format="PNG", compress_level=int(compression)
    )
    return buf.getvalue()


def is_animated_png(data: bytes) -> bool:
    """True for an APNG: a PNG whose ``acTL`` chunk comes before the first ``IDAT``."""
    if data[:8] != PNG_SIGNATURE:
        return False
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"acTL":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def image_format(data: bytes) -> str:
    """``"png"``, ``"apng"``, ``"gif"`` or ``"unknown"``, from the leading bytes."""
    if data[:8] == PNG_SIGNATURE:
        return "apng" if is_animated_png(data) else "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return "unknown"


def tag_dirname(tag: str) -> str:
    return tag.replace("/", "__")


def png_path(root: str, tag: str, step: int, ext: str = ".png") -> str:
    """Where the image of ``tag`` at ``step`` lies under ``root`` (the layout of the module docstring)."""
    return os.path.join(root, tag_dirname(tag), f"step_{int(step):06d}{ext}")


class PNGWriter:
    """Every image as a file (``.png``; an animation as ``.png`` (APNG) or ``.gif``); scalars are not written."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(path, exist_ok=True)
        self.closed = False

    def write(self, tag: str, image: np.ndarray, step: int, description: str = "") -> None:
        image = np.asarray(image)
        if image.ndim == 4:
            image = image[0]
        self.write_encoded(tag, encode_png(image), image.shape[1], image.shape[0], step, description)

    def write_encoded(self, tag: str, png: bytes, width: int, height: int, step: int, description: str = "") -> None:
        ext = ".gif" if image_format(png) == "gif" else ".png"  # an APNG stays .png: browsers play it
        path = self._prepare(tag, step, ext, description)
        with open(path, "wb") as f:
            f.write(png)

    def write_scalar(self, tag: str, value: float, step: int, description: str = "") -> None:
        """Scalars live in the event file only."""

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


def encode_apng(
    frames: Iterable[np.ndarray],
    n_frames: int,
    durations_ms: Sequence[int] | int = 600,
    *,
    loop: int = 0,
    compression: int = 6,
) -> bytes:
    """Animated PNG (APNG) of ``n_frames`` uint8 (H, W, 3) frames of one size, lossless (Pillow).

    Each frame replaces the previous one; ``loop=0`` plays forever. The first frame is also the
    still image that viewers without APNG support show. Browsers play APNG served as
    ``image/png``, which is how TensorBoard serves it. Pillow merges consecutive identical frames
    into one (their durations add up); evolution frames differ by their epoch label.
    """
    if n_frames < 1:
        raise ValueError("An animation needs at least one frame.")
    delays = [int(durations_ms)] * n_frames if isinstance(durations_ms, (int, np.integer)) else list(durations_ms)
    if len(delays) != n_frames:
        raise ValueError(f"{len(delays)} durations for {n_frames} frames.")
    images: list[Image.Image] = []
    shape = None
    for i, frame in enumerate(frames):
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"APNG frames are uint8 (H, W, 3); frame {i} is {frame.dtype} {frame.shape}")
        if i >= n_frames:
            raise ValueError(f"more than n_frames={n_frames} frames")
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise ValueError(f"APNG frames must share one size: frame {i} is {frame.shape}, frame 0 {shape}")
        images.append(Image.fromarray(np.ascontiguousarray(frame), "RGB"))
    if len(images) != n_frames:
        raise ValueError(f"{len(images)} frames given, n_frames={n_frames}")
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="PNG",
        save_all=True,
        append_images=images[1:],
        duration=[max(0, min(d, 65535)) for d in delays],
        loop=int(loop),
        disposal=0,  # none: the next frame covers this one
        blend=0,  # source: the next frame replaces the pixels
        compress_level=int(compression),
        default_image=False,
    )
    return buf.getvalue()
