"""The callback lifecycle shared by every view.

A view is a subclass that implements two methods:

* ``prepare(model)`` — once per model, in ``on_train_begin``: validate the
  configuration against the model (raise ``ValueError`` naming the fix), build
  probe models and compiled functions.
* ``render(epoch)`` — at a scheduled epoch end: return `Frame` objects
  (tag, uint8 image, Markdown description). A view may instead implement
  ``compute(epoch)`` (everything that touches the model, on the training
  thread) and ``draw(computed, epoch)`` (arrays -> frames, which may run on a
  background thread with ``async_write=True``).

The base class owns everything else: the schedule, the shared writer, and the
error policy (configuration errors raise before the first batch; failures at
epoch end warn once and training goes on, or raise with ``on_error="raise"``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import re
import statistics
import threading
import time
import warnings
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import writers
from keras_vizcallbacks._threads import quiet_blas

logger = logging.getLogger("keras_vizcallbacks")

ON_ERROR = ("warn", "raise")
_THREAD = threading.local()  # .worker is True on the async_write threads


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
        max_overhead: budget for this callback's own cost as a fraction of epoch
            time (e.g. ``0.02``); ``None`` (default) for no budget. When a render
            costs more (the first, tracing call aside), ``every_n_epochs`` is raised
            to the smallest value that fits and a warning says once which epochs
            will be rendered.
        async_write: draw (render) and write images on a background thread. The
            model is still evaluated on the training thread (``compute``); the
            queue is bounded (``queue_size`` epochs) and blocks rather than drops;
            ``on_train_end`` waits for every image. Errors on the worker follow
            ``on_error`` (with ``"raise"`` they propagate at the next epoch end or
            at train end).
        queue_size: epochs that may wait for the background thread.
        evolution: at the end of training, also write each tag's images over all
            steps as one animated GIF (tag ``<tag>/evolution``, read back from the
            event file), which TensorBoard's image card plays.
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
        max_overhead: float | None = None,
        async_write: bool = False,
        queue_size: int = 2,
        evolution: bool = False,
    ) -> None:
        super().__init__()
        if max_overhead is not None and not (isinstance(max_overhead, (int, float)) and 0 < max_overhead < 1):
            raise ValueError(f"max_overhead must be a fraction in (0, 1) such as 0.02, got {max_overhead!r}.")
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}.")
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
        self.max_overhead = None if max_overhead is None else float(max_overhead)
        self.async_write = bool(async_write)
        self.queue_size = queue_size
        self.evolution = bool(evolution)
        self._worker: _Worker | None = None
        self._active = False  # between a successful on_train_begin and the end of the fit
        self._epoch_start: float | None = None
        self.epoch_times: list[float] = []  # seconds per epoch (begin to end, this callback's work excluded)
        self._writer: writers.SharedWriter | None = None
        self._prepared_for: keras.Model | None = None
        self._warned: set[str] = set()
        self.failures: list[tuple[int, BaseException]] = []
        self.timings: list[float] = []  # seconds per render+write call
        self.written: list[tuple[str, int]] = []  # (tag, step) of every image written
        self._pending: list[tuple[Any, str, int]] = []  # (future, tag, step) of images being encoded

    # ------------------------------------------------------------- subclass API
    def prepare(self, model: keras.Model) -> None:
        """Validate against ``model`` and build what the view needs (once per model)."""

    def render(self, epoch: int) -> list[Frame]:
        """The frames of one epoch. Implement this, or ``compute`` and ``draw``."""
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

    def draw(self, computed: Any, epoch: int) -> list[Frame]:
        """Arrays from `compute` -> frames. May run on the background thread
        (``async_write``): it must not call the model. Default: ``computed`` are the frames."""
        return computed

    # ------------------------------------------------------------- schedule
    def due(self, epoch: int) -> bool:
        """Render at epochs 0, n, 2n, ... and always at the last epoch of the fit."""
        last = (self.params or {}).get("epochs")
        return epoch % self.every_n_epochs == 0 or (last is not None and epoch == last - 1)

    # ------------------------------------------------------------- lifecycle
    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.model is None:
            raise ValueError(f"{type(self).__name__} has no model: pass it to model.fit(callbacks=[...]).")
        if self._writer is not None or self._worker is not None:  # the last fit ended without on_train_end
            self._finish()
        self._active = False
        # Fail fast on the log_dir, but open (or share) the writer only in the first on_epoch_begin: when
        # another callback's on_train_begin raises, Keras skips on_train_end and an open writer would leak.
        writers.check(self.log_dir, self.run_name, self.png_dir)
        if self._prepared_for is not self.model:
            with quiet_blas():
                self.prepare(self.model)
            self._prepared_for = self.model
        self._active = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._settle()  # the last epoch's images, encoded while the other callbacks ran: written now
        if self._active and self._writer is None:
            # Every callback's on_train_begin has passed: open (or share) the writer now.
            try:
                self._writer = writers.acquire(self.log_dir, self.run_name, self.png_dir)
            except Exception as exc:  # e.g. the directory went away: on_epoch_end tries again
                self._failed(epoch, exc)
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._epoch_start is not None:
            self.epoch_times.append(time.perf_counter() - self._epoch_start)
            self._epoch_start = None
        if self._worker is not None and self._worker.errors:  # on_error="raise" on the worker surfaces here
            exc = self._worker.errors.pop(0)
            self._abort()
            raise exc
        if not self._active or not self.due(epoch):
            return
        start = time.perf_counter()
        try:
            if self._writer is None:
                self._writer = writers.acquire(self.log_dir, self.run_name, self.png_dir)
            if self.async_write:
                if self._worker is None:
                    self._worker = _Worker(self)
                with quiet_blas():
                    computed = self.compute(epoch)
                self._worker.submit(epoch, computed)  # blocks while the queue is full
            else:
                with quiet_blas():
                    for frame in self.draw(self.compute(epoch), epoch):
                        self.write(frame, epoch)
        except Exception as exc:
            self._failed(epoch, exc)
        finally:
            self.timings.append(time.perf_counter() - start)
            if self.max_overhead is not None:
                self._fit_budget(epoch)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._finish()

    def close(self) -> None:
        """Wait until every queued image is written and release the writer.

        ``on_train_end`` does this; call it yourself after a fit that was
        interrupted (Keras skips ``on_train_end`` when ``fit`` raises). The next
        fit with this callback also does it first.
        """
        self._finish()

    def _abort(self) -> None:
        """_finish on the way out of an error: secondary errors are logged, not raised."""
        try:
            self._finish()
        except Exception as exc:  # the error being raised matters more
            logger.debug("%s: error while closing after a failure: %r", type(self).__name__, exc)

    def _finish(self) -> None:
        """Wait for the background thread (every queued image written), release the writer."""
        worker, self._worker = self._worker, None
        self._active = False
        try:
            self._settle()
            if worker is not None:
                worker.close()
                worker.check()
            if self.evolution and self._writer is not None:
                from keras_vizcallbacks.callbacks._evolution import write_evolution

                write_evolution(self)
        finally:
            if self._writer is not None:
                writers.release(self._writer)
                self._writer = None

    def _fit_budget(self, epoch: int) -> None:
        """Raise ``every_n_epochs`` when the steady cost per render exceeds the budget."""
        steady = self.timings[1:]  # the first call traces: not representative
        epochs = self.epoch_times[1:] or self.epoch_times  # nor is the first epoch (Keras traces train_step)
        if not steady or not epochs:
            return
        cost, epoch_time = statistics.median(steady[-5:]), statistics.median(epochs[-5:])
        ratio = cost / (self.max_overhead * epoch_time)  # epochs one render needs to fit the budget
        if epoch_time <= 0 or ratio <= self.every_n_epochs * (1 + 1e-6):
            return
        n = max(self.every_n_epochs + 1, math.ceil(ratio * (1 - 1e-6)))
        self.every_n_epochs = n
        last = (self.params or {}).get("epochs")
        end = last if last else epoch + 4 * n + 1
        nxt = [e for e in range(epoch + 1, end) if e % n == 0]
        when = "epochs " + ", ".join(map(str, nxt[:3])) + (", …" if len(nxt) > 3 or not last else "")
        if last and last - 1 not in nxt[:3]:
            when = f"{when} and the last, {last - 1}" if nxt else f"only the last epoch, {last - 1}"
        message = (
            f"{type(self).__name__} costs {cost:.3g} s per render, {cost / epoch_time:.1%} of a {epoch_time:.3g} s "
            f"epoch, over max_overhead={self.max_overhead:g}: from now on it renders every {n} epochs ({when})."
        )
        if "max_overhead" in self._warned:  # said once; later adjustments are logged only
            logger.info(message)
            return
        self._warned.add("max_overhead")
        logger.warning(message)
        warnings.warn(message, VizWarning, stacklevel=2)

    # ------------------------------------------------------------- diagnostics
    def traced_functions(self) -> list[Any]:
        """The compiled functions this view holds (``_backend.TracedFunction``), found
        a few attribute levels deep; each counts its traces in ``.traces``."""
        from keras_vizcallbacks._backend import TracedFunction

        found: list[Any] = []
        seen: set[int] = set()

        def walk(o: Any, depth: int) -> None:
            if id(o) in seen or depth < 0:
                return
            seen.add(id(o))
            if isinstance(o, TracedFunction):
                found.append(o)
            elif isinstance(o, (list, tuple)):
                for v in o:
                    walk(v, depth - 1)
            elif isinstance(o, dict):
                for v in o.values():
                    walk(v, depth - 1)
            elif hasattr(o, "__dict__") and type(o).__module__.startswith("keras_vizcallbacks"):
                for v in vars(o).values():
                    walk(v, depth - 1)

        for value in vars(self).values():
            walk(value, 3)
        return found

    def trace_counts(self) -> dict[str, int]:
        """``{function name: times traced}``: 1 each after any number of epochs when nothing retraces."""
        return {f.name: f.traces for f in self.traced_functions()}

    # ------------------------------------------------------------- helpers
    def write(self, frame: Frame, step: int) -> None:
        """Write one frame. On the training thread the PNG is encoded on the writers' encoder
        threads while the next view (or callback) works, and written before the next epoch
        trains (`_settle`); on the ``async_write`` thread it is encoded and written here."""
        assert self._writer is not None
        image = np.asarray(frame.image)
        on_worker = getattr(_THREAD, "worker", False)
        if not on_worker and image.ndim == 3 and image.dtype == np.uint8:
            self._pending.append((self._writer.write_later(frame.tag, image, step, frame.description), frame.tag, step))
            return
        self._writer.write(frame.tag, image, step, frame.description)
        self.written.append((frame.tag, step))

    def _settle(self) -> None:
        """Wait for the images still being encoded (the wait counts in the last render's cost); each
        written one is recorded, a failure goes through the error policy (raises here with
        ``on_error="raise"``)."""
        pending, self._pending = self._pending, []
        start = time.perf_counter()
        try:
            for i, (future, tag, step) in enumerate(pending):
                try:
                    future.result()
                except Exception as exc:
                    self._pending = pending[i + 1 :]  # still waited for by _finish if this raises
                    self._failed(step, exc)
                    continue
                self.written.append((tag, step))
        finally:
            if pending and self.timings:
                self.timings[-1] += time.perf_counter() - start

    def _failed(self, epoch: int, exc: Exception) -> None:
        self.failures.append((epoch, exc))
        if self.on_error == "raise":
            self._abort()  # Keras skips on_train_end when fit raises: wait for queued images, release the writer
            raise exc
        key = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        # Once per cause: the same error with other numbers in it (epoch, shapes, values) is not new.
        cause = re.sub(r"\d+(\.\d+)?", "#", key)
        if cause in self._warned:
            logger.debug("%s failed again at epoch %d: %s", type(self).__name__, epoch, key)
            return
        self._warned.add(cause)
        message = (
            f"{type(self).__name__} could not render epoch {epoch} ({key}). Training goes on; "
            "later epochs will be tried again. Pass on_error='raise' to stop on this error."
        )
        logger.warning(message)
        warnings.warn(message, VizWarning, stacklevel=2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(log_dir={self.log_dir!r}, run_name={self.run_name!r})"


class _Worker:
    """One background thread per callback: draws and writes queued epochs in order.

    The queue is bounded: ``submit`` blocks while it is full, so nothing is dropped.
    The thread is not a daemon; it also ends (after draining the queue) when the
    main thread has ended, so an interrupted fit neither loses queued images nor
    keeps the interpreter alive.
    """

    def __init__(self, callback: VizCallback) -> None:
        self.callback = callback
        self.queue: queue.Queue = queue.Queue(maxsize=callback.queue_size)
        self.errors: list[BaseException] = []
        self.timings: list[float] = []  # seconds per draw+write on the worker
        self._closed = False
        self.thread = threading.Thread(target=self._run, name=f"kv-{type(callback).__name__}", daemon=False)
        self.thread.start()

    def submit(self, epoch: int, computed: Any) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put((epoch, computed), timeout=0.5)
                return
            except queue.Full:
                continue
        raise RuntimeError("the background writer thread has stopped")

    def _run(self) -> None:
        cb = self.callback
        _THREAD.worker = True  # cb.write encodes and writes in place here
        while True:
            try:
                item = self.queue.get(timeout=0.5)
            except queue.Empty:
                if self._closed or not threading.main_thread().is_alive():
                    return
                continue
            if item is None:
                return
            epoch, computed = item
            start = time.perf_counter()
            try:
                with quiet_blas():
                    for frame in cb.draw(computed, epoch):
                        cb.write(frame, epoch)
            except Exception as exc:
                if cb.on_error == "raise":
                    cb.failures.append((epoch, exc))
                    self.errors.append(exc)
                else:
                    cb._failed(epoch, exc)
            finally:
                self.timings.append(time.perf_counter() - start)

    def check(self) -> None:
        """Re-raise (once) an error the worker met under on_error='raise'."""
        if self.errors:
            raise self.errors.pop(0)

    def close(self) -> None:
        self._closed = True
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()


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
