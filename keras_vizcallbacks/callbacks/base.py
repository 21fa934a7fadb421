"""The callback lifecycle shared by every view.

A view is a subclass that implements two methods:

* ``prepare(model)`` — once per model, in ``on_train_begin``: validate the
  configuration against the model (raise ``ValueError`` naming the fix), build
  probe models and compiled functions.
* ``render(epoch)`` — at a scheduled epoch end: return :class:`Frame` objects
  (tag, uint8 image, Markdown description).

The base class owns everything else: the schedule, the shared writer, and the
error policy (configuration errors raise before the first batch; failures at
epoch end warn once and training goes on, or raise with ``on_error="raise"``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import writers

logger = logging.getLogger("keras_vizcallbacks")

ON_ERROR = ("warn", "raise")


class VizWarning(RuntimeWarning):
    """A view failed at epoch end; training continued."""


@dataclasses.dataclass
class Frame:
    """One image for one tag at one step."""

    tag: str
    image: np.ndarray  # uint8 (H, W, 3)
    description: str = ""


class VizCallback(keras.callbacks.Callback):
    """Base class of every view. See the module docstring for the contract.

    Options every view takes (subclasses forward ``**options`` here):

    Args:
        log_dir: TensorBoard log directory; images go to ``<log_dir>/<run_name>``,
            beside the ``train``/``validation`` runs of ``keras.callbacks.TensorBoard``.
        every_n_epochs: render at epochs 0, n, 2n, ... and at the last epoch.
        run_name: the TensorBoard run (a plain directory name). Callbacks with the
            same ``log_dir`` and ``run_name`` share one writer.
        on_error: ``"warn"`` (default): a failure while rendering warns once and
            training goes on; ``"raise"``: it propagates and stops training.
        png_dir: also write every image as a PNG file under this directory.
    """

    view: str = "view"

    def __init__(
        self,
        log_dir: str,
        *,
        every_n_epochs: int = 1,
        run_name: str = "viz",
        on_error: str = "warn",
        png_dir: str | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(every_n_epochs, int) or isinstance(every_n_epochs, bool) or every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be an integer >= 1, got {every_n_epochs!r}.")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}.")
        writers.validate_run_name(run_name)
        self.log_dir = str(log_dir)
        self.run_name = run_name
        self.every_n_epochs = every_n_epochs
        self.on_error = on_error
        self.png_dir = png_dir
        self._writer: writers.SharedWriter | None = None
        self._prepared_for: keras.Model | None = None
        self._warned: set[str] = set()
        self.failures: list[tuple[int, BaseException]] = []
        self.timings: list[float] = []  # seconds per render+write call
        self.written: list[tuple[str, int]] = []  # (tag, step) of every image written

    # ------------------------------------------------------------- subclass API
    def prepare(self, model: keras.Model) -> None:
        """Validate against ``model`` and build what the view needs (once per model)."""

    def render(self, epoch: int) -> list[Frame]:
        raise NotImplementedError

    # ------------------------------------------------------------- schedule
    def due(self, epoch: int) -> bool:
        """Render at epochs 0, n, 2n, ... and always at the last epoch of the fit."""
        last = (self.params or {}).get("epochs")
        return epoch % self.every_n_epochs == 0 or (last is not None and epoch == last - 1)

    # ------------------------------------------------------------- lifecycle
    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.model is None:
            raise ValueError(f"{type(self).__name__} has no model: pass it to model.fit(callbacks=[...]).")
        self._writer = writers.acquire(self.log_dir, self.run_name, self.png_dir)
        try:
            if self._prepared_for is not self.model:
                self.prepare(self.model)
                self._prepared_for = self.model
        except BaseException:
            writers.release(self._writer)
            self._writer = None
            raise

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._writer is None or not self.due(epoch):
            return
        start = time.perf_counter()
        try:
            for frame in self.render(epoch):
                self.write(frame, epoch)
        except Exception as exc:
            self._failed(epoch, exc)
        finally:
            self.timings.append(time.perf_counter() - start)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            writers.release(self._writer)
            self._writer = None

    # ------------------------------------------------------------- helpers
    def write(self, frame: Frame, step: int) -> None:
        assert self._writer is not None
        self._writer.write(frame.tag, frame.image, step, frame.description)
        self.written.append((frame.tag, step))

    def _failed(self, epoch: int, exc: Exception) -> None:
        self.failures.append((epoch, exc))
        if self.on_error == "raise":
            raise exc
        key = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if key in self._warned:
            logger.debug("%s failed again at epoch %d: %s", type(self).__name__, epoch, key)
            return
        self._warned.add(key)
        message = (
            f"{type(self).__name__} could not render epoch {epoch} ({key}). Training goes on; "
            "later epochs will be tried again. Pass on_error='raise' to stop on this error."
        )
        logger.warning(message)
        warnings.warn(message, VizWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(log_dir={self.log_dir!r}, run_name={self.run_name!r})"


def fmt_list(items: list[Any], limit: int = 12) -> str:
    """Short, readable list for descriptions and error messages."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "")


def fmt_choice(idx: np.ndarray, n: int) -> str:
    """How a capped, evenly spaced choice of indices is described: 'all 32' or '16 of 64, evenly spaced (0, 4, …)'."""
    if len(idx) == n:
        return f"all {n}"
    return f"{len(idx)} of {n}, evenly spaced ({fmt_list(np.asarray(idx).tolist(), 8)})"
