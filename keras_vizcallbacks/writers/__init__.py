"""Where images go: TensorBoard event files (and PNG files). Nothing else knows the sink."""

from keras_vizcallbacks.writers.events import ImageRecord, decode, read_descriptions, read_images
from keras_vizcallbacks.writers.png import PNGWriter
from keras_vizcallbacks.writers.registry import (
    ImageSink,
    SharedWriter,
    acquire,
    check,
    open_writers,
    release,
    run_later,
    run_path,
    validate_run_name,
)
from keras_vizcallbacks.writers.tensorboard import TensorBoardWriter, check_writable

__all__ = [
    "ImageRecord",
    "ImageSink",
    "PNGWriter",
    "SharedWriter",
    "TensorBoardWriter",
    "acquire",
    "check",
    "check_writable",
    "decode",
    "open_writers",
    "read_descriptions",
    "read_images",
    "release",
    "run_later",
    "run_path",
    "validate_run_name",
]
