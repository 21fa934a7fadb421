"""The callback lifecycle shared by every view.

A view is a subclass that implements two methods:

* ``prepare(model)`` — once per model, in ``on_train_begin``: validate the
  configuration against the model (raise ``ValueError`` naming the fix), build
  probe models and compiled functions.
* ``render(epoch)`` — at a scheduled epoch end: return `Frame` objects
  (tag, uint8 image, Markdown description). A view may instead implement
  ``compute(epoch)`` (everything that touches the model, on the training
  thread) and ``draw(computed, epoch)`` (arrays -> frames, which may run on a
  background thread with ``async_write=True``). Beside the frames, ``render`` and
  ``draw`` may return `Scalar` items (tag, value, description): per-epoch numbers
  for TensorBoard's scalars dashboard, written to the same run.

Optionally ``on_close()`` (release figures and caches at the end of a fit),
``explainers()`` (what `trace_counts` reports on) and ``tags()`` (the tags the view
will write, claimed at train begin: two views on one tag in one run are a
``ValueError`` then, naming both). The base class owns everything
else: the schedule (`Schedule`), the shared writer and the background delivery
of images (`Delivery`), and the error policy (configuration errors raise before
the first batch; failures at epoch end warn once and training goes on, or raise
with ``on_error="raise"``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _checks, writers
from keras_vizcallbacks._threads import quiet_blas
from keras_vizcallbacks.callbacks import _chief
from keras_vizcallbacks.callbacks._delivery import Delivery
from keras_vizcallbacks.callbacks._evolution import write_evolution
from keras_vizcallbacks.callbacks._schedule import Schedule

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


@dataclasses.dataclass
class Scalar:
    """One number for one tag at one step, for TensorBoard's scalars dashboard (same run as the images).

    ``draw`` (or ``render``) may return these beside its `Frame` objects; the base class writes them.
    The tag is, by convention, the image's tag and a name (``confusion_matrix/accuracy``); the
    description, like an image's, holds only what stays fixed over the run.
    """

    tag: str
    value: float
    description: str = ""


def check_tag(tag: Any) -> str:
    """``tag`` if it is a usable TensorBoard tag prefix, else ValueError naming the rule."""
    if not isinstance(tag, str) or not tag.strip() or tag != tag.strip():
        raise ValueError(f"tag must be a non-empty string without surrounding spaces, got {tag!r}.")
    if tag.startswith("/") or tag.endswith("/") or "//" in tag:
        raise ValueError(f"tag {tag!r} has a leading, trailing or double '/'; use e.g. 'cam_pp' or 'val/confusion'.")
    return tag


class VizCallback(keras.callbacks.Callback):
    """Base class of every view. See the module docstring for the contract.

    Options every view takes (subclasses forward ``**options`` here):

    Args:
        log_dir: TensorBoard log directory; images go to ``<log_dir>/<run_name>``,
            beside the ``train``/``validation`` runs of ``keras.callbacks.TensorBoard``.
        tag: replaces the view's tag prefix (``view``): ``GradCAM(..., tag="cam_pp")``
            writes ``cam_pp/<layer>``; for a view with a single tag (``ConfusionMatrix``)
            it is the whole tag. Two views that would write one tag in one run are a
            ``ValueError`` at train begin, naming both: give one of them a ``tag``.
        every_n_epochs: render at epochs 0, n, 2n, ... and at the last epoch.
        run_name: the TensorBoard run (a plain directory name). Callbacks with the
            same ``log_dir`` and ``run_name`` share one writer.
        on_error: ``"warn"`` (default): a failure while rendering warns once and
            training goes on; ``"raise"``: it propagates and stops training.
        png_dir: also write every image as a PNG file under this directory.
        max_overhead: budget for this callback's own cost as a fraction of epoch
            time (e.g. ``0.02``); ``None`` (default) for no budget. When a render
            costs more (the first, tracing call aside), ``every_n_epochs`` is raised
            to the smallest value that fits and a warning says once which epochs
            will be rendered.
        async_write: draw (render) and write images on the background threads
            (the writers' shared PNG encoders; one epoch of a view at a time, in
            order). The model is still evaluated on the training thread
            (``compute``); the queue is bounded (``queue_size`` epochs) and blocks
            rather than drops; ``on_train_end`` waits for every image. Errors in
            the background follow ``on_error`` (with ``"raise"`` they propagate at
            the next epoch end or at train end).
        queue_size: epochs that may wait for the background threads.
        evolution: at the end of training, also write each tag's images over all
            steps as one animated GIF (tag ``<tag>/evolution``, read back from the
            event file), which TensorBoard's image card plays.
        render_on: which process renders in a distributed fit: ``"chief"`` (default;
            the chief of ``TF_CONFIG`` or worker 0 without one, process 0 of
            ``jax.distributed``, rank 0 of ``torch.distributed``; the only process
            otherwise) or a callable ``() -> bool``, evaluated once at train begin.
            A process that does not render does nothing else either (no checks of
            ``log_dir``, no compiling, no writers). See docs/distributed.md.
    """

    view: str = "view"

    def __init__(
        self,
        log_dir: str,
        *,
        tag: str | None = None,
        every_n_epochs: int = 1,
        run_name: str = "viz",
        on_error: str = "warn",
        png_dir: str | None = None,
        max_overhead: float | None = None,
        async_write: bool = False,
        queue_size: int = 2,
        evolution: bool = False,
        render_on: str | Callable[[], bool] = "chief",
    ) -> None:
        super().__init__()
        if tag is not None:
            self.view = check_tag(tag)  # the instance's prefix: every f"{self.view}/..." tag follows it
        self.schedule = Schedule(every_n_epochs, max_overhead)
        queue_size = _checks.integer(queue_size, "queue_size")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}.")
        writers.validate_run_name(run_name)
        self.log_dir = _checks.log_dir(log_dir)
        self.run_name = run_name
        self.on_error = on_error
        self.png_dir = png_dir
        self.async_write = bool(async_write)
        self.queue_size = queue_size
        self.evolution = bool(evolution)
        self.render_on = _chief.check(render_on)
        self.rendering: _chief.Decision | None = None  # this process's part, decided at train begin
        self._active = False  # between a successful on_train_begin and the end of the fit
        self._epoch_start: float | None = None
        self.epoch_times: list[float] = []  # seconds per epoch (begin to end, this callback's work excluded)
        self._writer: writers.SharedWriter | None = None
        self._delivery = Delivery()
        self._prepared_for: keras.Model | None = None
        self._warned: set[str] = set()
        self.failures: list[tuple[int, BaseException]] = []
        self.timings: list[float] = []  # seconds per render+write call
        self.written: list[tuple[str, int]] = []  # (tag, step) of every image written
        self.scalars_written: list[tuple[str, int]] = []  # (tag, step) of every scalar written
        self._claimed: set[str] = set()  # tags claimed for the current fit (`writers.claim_tags`)

    @property
    def every_n_epochs(self) -> int:
        return self.schedule.every_n_epochs

    @every_n_epochs.setter
    def every_n_epochs(self, n: int) -> None:
        self.schedule.every_n_epochs = n

    @property
    def max_overhead(self) -> float | None:
        return self.schedule.max_overhead

    # ------------------------------------------------------------- subclass API
    def prepare(self, model: keras.Model) -> None:
        """Validate against ``model`` and build what the view needs (once per model)."""

    def render(self, epoch: int) -> list[Frame | Scalar]:
        """The frames (and `Scalar` items) of one epoch. Implement this, or ``compute`` and ``draw``."""
        if type(self).compute is not VizCallback.compute:
            return self.draw(self.compute(epoch), epoch)
        raise NotImplementedError(f"{type(self).__name__} implements neither render() nor compute()/draw().")

    def compute(self, epoch: int) -> Any:
        """Runs on the training thread: everything that touches the model (weights,
        forward/backward passes); returns plain arrays for `draw`.

        The default renders everything here (``render``), so a view that only
        implements ``render`` works unchanged with ``async_write`` (only writing
        then moves to the background thread).
        """
        return self.render(epoch)

    def draw(self, computed: Any, epoch: int) -> list[Frame | Scalar]:
        """Arrays from `compute` -> frames, and optionally `Scalar` items (written to the same run). May
        run on the background thread (``async_write``): it must not call the model. Default: ``computed``
        are the frames."""
        return computed

    def on_close(self) -> None:
        """Called at the end of every fit (and by `close`) once every image is written:
        release what the view keeps between epochs (figures, caches). Extend it; the default does nothing."""

    def explainers(self) -> list[Any]:
        """The explainers this view computes with; their ``compiled_functions()`` make `trace_counts`."""
        return []

    def tags(self) -> list[str] | None:
        """The image tags this view will write, known after `prepare`: claimed at train begin, so two
        views on one tag in one run fail before the first batch. ``None`` (the default): a tag is
        claimed when it is first written (a clash then fails that epoch's render, by ``on_error``)."""
        return None

    def due(self, epoch: int) -> bool:
        """Render at epochs 0, n, 2n, ... and always at the last epoch of the fit."""
        return self.schedule.due(epoch, (self.params or {}).get("epochs"))

    # ------------------------------------------------------------- lifecycle
    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.model is None:
            raise ValueError(f"{type(self).__name__} has no model: pass it to model.fit(callbacks=[...]).")
        if self._writer is not None or len(self._delivery):  # the last fit ended without on_train_end
            self.close()
        self._active = False
        self._claimed = set()  # claims are per fit (`writers.claim_tags` drops an earlier fit's)
        self.rendering = _chief.decide(self.render_on, self.model)  # once per fit, before any other work
        if not self.rendering.renders:
            return  # another process renders: no log_dir checks, no prepare, no writer on this one
        # Fail fast on the log_dir, but open (or share) the writer only in the first on_epoch_begin: when
        # another callback's on_train_begin raises, Keras skips on_train_end and an open writer would leak.
        writers.check(self.log_dir, self.run_name, self.png_dir)
        if self._prepared_for is not self.model:
            with quiet_blas(), _chief.alone(self.rendering, self.model):
                self.prepare(self.model)
            self._prepared_for = self.model
        self._claim(self.tags() or [])  # two views on one tag in one run: ValueError naming both
        self._active = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if not self.async_write:
            self._settle_counted()  # the last epoch's images, encoded while the other callbacks ran: written now
        if self._active and self._writer is None:
            # Every callback's on_train_begin has passed: open (or share) the writer now.
            try:
                self._writer = writers.acquire(self.log_dir, self.run_name, self.png_dir)
            except Exception as exc:  # e.g. the directory went away: on_epoch_end tries again
                self.report_failure(epoch, exc)
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._epoch_start is not None:
            self.epoch_times.append(time.perf_counter() - self._epoch_start)
            self._epoch_start = None
        if self.async_write:
            self._settle(wait=False)  # epochs drawn in the background: recorded; a failure warns or raises here
        if not self._active or not self.due(epoch):
            return
        start = time.perf_counter()
        try:
            self._render(epoch)
        finally:
            self.timings.append(time.perf_counter() - start)
            message = self.schedule.adjust(self.timings, self.epoch_times, epoch, (self.params or {}).get("epochs"))
            if message:
                self._warn_once("max_overhead", f"{type(self).__name__} {message}", again=logging.INFO)

    def _render(self, epoch: int) -> None:
        """Compute on the training thread, then draw here (the frames' PNGs are encoded in the
        background) or, with ``async_write``, hand drawing and writing to the background."""
        try:
            if self._writer is None:
                self._writer = writers.acquire(self.log_dir, self.run_name, self.png_dir)
            with quiet_blas(), _chief.alone(self.rendering, self.model):
                with writers.computing():  # background encodes start after it: the framework has the cores
                    computed = self.compute(epoch)
                if not self.async_write:
                    for item in self.draw(computed, epoch):
                        if isinstance(item, Scalar):
                            self.write_scalar(item.tag, item.value, epoch, item.description)
                        else:
                            self.write(item, epoch)
                    return
        except Exception as exc:
            self.report_failure(epoch, exc)
            return
        self._settle(keep=self.queue_size)  # blocks while queue_size epochs wait for the background
        self._delivery.later(functools.partial(self._draw_and_write, computed, epoch), epoch)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Wait until every queued image is written, call `on_close` and release the writer.

        ``on_train_end`` does this; call it yourself after a fit that was
        interrupted (Keras skips ``on_train_end`` when ``fit`` raises). The next
        fit with this callback also does it first.
        """
        self._active = False
        try:
            self._settle_counted()
            if self.evolution and self._writer is not None:
                write_evolution(self)
        finally:
            try:
                self.on_close()
            finally:
                writers.release_tags(self)
                self._claimed = set()
                if self._writer is not None:
                    writers.release(self._writer)
                    self._writer = None

    def _abort(self) -> None:
        """`close` on the way out of an error: secondary errors are logged, not raised."""
        try:
            self.close()
        except Exception as exc:  # the error being raised matters more
            logger.debug("%s: error while closing after a failure: %r", type(self).__name__, exc)

    # ------------------------------------------------------------- diagnostics
    def trace_counts(self) -> dict[str, int]:
        """``{function name: times traced}`` of the view's explainers' compiled functions: 1 each
        after any number of epochs when nothing retraces (0 for one the view never calls)."""
        return {f.name: f.traces for e in self.explainers() if e is not None for f in e.compiled_functions()}

    # ------------------------------------------------------------- writing
    def write(self, frame: Frame, step: int) -> None:
        """Write one frame. A uint8 (H, W, C) image is PNG-encoded and written on the writers'
        background threads while the next view (or callback) works, and waited for before the next
        epoch trains; anything else is written here."""
        assert self._writer is not None
        self._claim([frame.tag])
        image = np.asarray(frame.image)
        if image.ndim == 3 and image.dtype == np.uint8:
            self._delivery.encode(self._writer, frame.tag, image, step, self._describe(frame))
            return
        self._writer.write(frame.tag, image, step, self._describe(frame))
        self.written.append((frame.tag, step))

    def write_scalar(self, tag: str, value: float, step: int, description: str = "") -> None:
        """Write one scalar (TensorBoard's scalars dashboard) to this view's run, now. `draw` may instead
        return `Scalar` items beside its frames; both end here."""
        assert self._writer is not None
        self._writer.write_scalar(tag, float(value), step, description)
        self.scalars_written.append((tag, step))

    def _claim(self, tags: list[str]) -> None:
        """Claim ``tags`` of this view's run for the current fit (`writers.claim_tags`); ValueError on a clash."""
        new = [t for t in tags if t not in self._claimed]
        if new:
            writers.claim_tags(self.log_dir, self.run_name, self, new, fit=self.params)
            self._claimed.update(new)

    def _draw_and_write(self, computed: Any, epoch: int) -> None:
        """``async_write``: one epoch's frames drawn, encoded and written on a background thread."""
        assert self._writer is not None
        with quiet_blas():
            for frame in self.draw(computed, epoch):
                if isinstance(frame, Scalar):
                    self.write_scalar(frame.tag, frame.value, epoch, frame.description)
                    continue
                self._claim([frame.tag])
                self._writer.write(frame.tag, np.asarray(frame.image), epoch, self._describe(frame))
                self.written.append((frame.tag, epoch))

    def _describe(self, frame: Frame) -> str:
        """The frame's description, ending with which process rendered it in a distributed fit."""
        return _chief.describe(frame.description, self.rendering)

    def _settle(self, keep: int = 0, wait: bool = True) -> None:
        """Collect delivered images, oldest first: all but the newest ``keep`` (waiting for them), or
        (``wait=False``) those already finished. A failure goes through the error policy (raises
        here with ``on_error="raise"``)."""
        while len(self._delivery) > keep:
            done = self._delivery.next(wait)
            if done is None:
                return
            step, tag, error = done
            if error is not None:
                self.report_failure(step, error)  # type: ignore[arg-type]
            elif tag is not None:
                self.written.append((tag, step))

    def _settle_counted(self) -> None:
        """`_settle`, with the wait counted in the last render's cost (``async_write``: not counted)."""
        start, waiting = time.perf_counter(), len(self._delivery) > 0
        try:
            self._settle()
        finally:
            if waiting and self.timings and not self.async_write:
                self.timings[-1] += time.perf_counter() - start

    # ------------------------------------------------------------- errors
    def report_failure(self, epoch: int, exc: Exception) -> None:
        """The error policy for a failure at ``epoch``: warn once and go on (``on_error="warn"``), or
        close and raise (``on_error="raise"``). Views and helpers that fail outside `render` call this."""
        self.failures.append((epoch, exc))
        if self.on_error == "raise":
            self._abort()  # Keras skips on_train_end when fit raises: wait for queued images, release the writer
            raise exc
        key = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        # Once per cause: the same error with other numbers in it (epoch, shapes, values) is not new.
        self._warn_once(
            re.sub(r"\d+(\.\d+)?", "#", key),
            f"{type(self).__name__} could not render epoch {epoch} ({key}). Training goes on; "
            "later epochs will be tried again. Pass on_error='raise' to stop on this error.",
        )

    def _warn_once(self, key: str, message: str, again: int = logging.DEBUG) -> None:
        """Warn (VizWarning and the log) the first time for ``key``; later only log at level ``again``."""
        if key in self._warned:
            logger.log(again, message)
            return
        self._warned.add(key)
        logger.warning(message)
        warnings.warn(message, VizWarning, stacklevel=3)

    def __repr__(self) -> str:
        # what tells two views of one class apart in a message (e.g. two GradCAMs on one tag)
        shown = {k: getattr(self, k, None) for k in ("layer", "layers", "method", "mode")}
        shown["tag"] = self.view if self.view != type(self).view else None
        extra = "".join(f", {k}={v!r}" for k, v in shown.items() if v is not None)
        return f"{type(self).__name__}(log_dir={self.log_dir!r}, run_name={self.run_name!r}{extra})"
