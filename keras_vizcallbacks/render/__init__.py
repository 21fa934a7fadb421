"""Pixels: numpy arrays -> uint8 images. Imports nothing else of the package."""

from keras_vizcallbacks.render.color import (
    MARKER,
    blend,
    class_colors,
    colorize,
    heatmap,
    lut,
    normalize,
    to_rgb,
)
from keras_vizcallbacks.render.grid import (
    grid_shape,
    resize_nearest,
    scale_factor,
    spread,
    tile,
    upscale,
    vstack,
)
from keras_vizcallbacks.render.text import caption, header, legible_size

__all__ = [
    "MARKER",
    "blend",
    "caption",
    "class_colors",
    "colorize",
    "grid_shape",
    "header",
    "heatmap",
    "legible_size",
    "lut",
    "normalize",
    "resize_nearest",
    "scale_factor",
    "spread",
    "tile",
    "to_rgb",
    "upscale",
    "vstack",
]
