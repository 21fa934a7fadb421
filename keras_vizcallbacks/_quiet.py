"""Hide TensorFlow's start-up lines in our own programs (the demo, the command line).

TensorFlow 2.21 writes its start-up lines (absl's "All log messages before
absl::InitializeLog()", CUDA probing, CPU feature notes, a failed ``cuInit``) from
C++ straight to file descriptor 2, some at import and some when it first looks for
devices, whatever ``TF_CPP_MIN_LOG_LEVEL`` says. Only redirecting the descriptor itself
hides them.

For entry points only: the library never calls this when a user's program imports it
(a user's stderr is theirs). Both helpers show everything with ``verbose=True``, and if
the quiet block fails, what it wrote to stderr is written back before the error rises,
so an import error is never hidden.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet_stderr(enabled: bool = True) -> Iterator[None]:
    """Send file descriptor 2 (C/C++ and Python writes alike) to a temporary file for the block.

    Whatever was written is dropped when the block succeeds, and replayed to stderr when
    it raises. ``enabled=False`` does nothing.
    """
    if not enabled:
        yield
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                capture.seek(0)
                held = capture.read()
                if held:
                    with contextlib.suppress(OSError):
                        os.write(2, held)


def start_framework(verbose: bool = False) -> Any:
    """Import Keras and start its backend with the start-up lines hidden (unless ``verbose``); returns ``keras``.

    Under the TensorFlow backend this also lists the devices, which is when TensorFlow probes
    CUDA and prints its last start-up line. The demo calls it before anything else loads Keras.
    """
    with quiet_stderr(not verbose):
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
    return keras


def import_tensorflow_quietly(verbose: bool = False) -> bool:
    """Import TensorFlow (if installed) and list its devices with the start-up lines hidden (unless
    ``verbose``); False when it is not installed. For programs that load it anyway (TensorBoard)."""
    with quiet_stderr(not verbose):
        try:
            import tensorflow as tf
        except ImportError:
            return False
        tf.config.list_physical_devices()
    return True
