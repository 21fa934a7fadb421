"""Where images go: TensorBoard event files (and PNG files). Nothing else knows the sink.

Nothing here loads TensorFlow or Keras: event files are written and read by our own small
writer and reader (`eventfile`, `events`, over `records`), PNGs encoded by `png.encode_png`.
"""

from keras_vizcallbacks.writers.events import (
    ImageRecord,
    ScalarRecord,
    decode,
    read_descriptions,
    read_images,
    read_scalars,
)
from keras_vizcallbacks.writers.png import PNGWriter, encode_png
from keras_vizcallbacks.writers.registry import (
    ImageSink,
    SharedWriter,
    acquire,
    check,
    claim_tags,
    claimed_tags,
    computing,
    open_writers,
    release,
    release_tags,
    run_later,
    run_path,
    validate_run_name,
    wait,
)
from keras_vizcallbacks.writers.tensorboard import TensorBoardWriter, check_writable

__all__ = [
    "ImageRecord",
    "ImageSink",
    "PNGWriter",
    "ScalarRecord",
    "SharedWriter",
    "TensorBoardWriter",
    "acquire",
    "check",
    "check_writable",
    "claim_tags",
    "claimed_tags",
    "computing",
    "decode",
    "encode_png",
    "open_writers",
    "read_descriptions",
    "read_images",
    "read_scalars",
    "release",
    "release_tags",
    "run_later",
    "run_path",
    "validate_run_name",
    "wait",
]
