"""One writer per (log_dir, run_name), shared by every callback that names it.

Callbacks ``acquire`` a writer in ``on_train_begin`` and ``release`` it in
``on_train_end``; the last release closes the event file. A later fit acquires
a fresh writer (TensorBoard reads every event file of a run directory).

Views also claim the tags they write here (`claim_tags`): two views on one tag
in one run are a ValueError when the fit begins.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from keras_vizcallbacks.writers.manifest import Manifest
from keras_vizcallbacks.writers.png import PNGWriter
from keras_vizcallbacks.writers.tensorboard import TensorBoardWriter, check_writable, encode_png


class ImageSink(Protocol):
    def write(self, tag: str, image: np.ndarray, step: int, description: str = "") -> None: ...
    def write_encoded(
        self, tag: str, png: bytes, width: int, height: int, step: int, description: str = ""
    ) -> None: ...
    def write_scalar(self, tag: str, value: float, step: int, description: str = "") -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class SharedWriter:
    """Fan-out to the run's TensorBoard writer and, optionally, a PNG directory."""

    def __init__(self, key: str, sinks: list[ImageSink]) -> None:
        self.key = key
        self.sinks = sinks
        self.users = 0
        self.lock = threading.Lock()
        self.manifest = Manifest(key)  # marks our tags for the Viz dashboard

    @property
    def run_dir(self) -> str:
        """The run directory this writer writes to (``<log_dir>/<run_name>``, absolute)."""
        return self.key

    def write(self, tag: str, image: np.ndarray, step: int, description: str = "") -> None:
        with self.lock:
            self.manifest.note(tag)
            for sink in self.sinks:
                sink.write(tag, image, step, description)

    def write_later(self, tag: str, image: np.ndarray, step: int, description: str = "") -> Future:
        """Encode ``image`` (H, W, C uint8) on the shared encoder threads, then write it; returns a
        Future whose ``result()`` is None or raises what went wrong. ``image`` must not change
        afterwards. Writes of one tag stay in order as long as the caller waits for each step's
        futures before submitting the next step (the callbacks do, before the next epoch trains)."""
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3:
            raise TypeError(f"write_later takes uint8 (H, W, C) images, got {image.dtype} {image.shape} for {tag!r}")
        return _submit_encode(self._encode_and_write, tag, image, step, description)

    def _encode_and_write(self, tag: str, image: np.ndarray, step: int, description: str) -> None:
        _after_compute()  # a view's compiled computation has the cores first
        png = encode_png(image)  # outside the lock: the encoder threads encode in parallel
        self.write_encoded(tag, png, image.shape[1], image.shape[0], step, description)

    def write_encoded(self, tag: str, data: bytes, width: int, height: int, step: int, description: str = "") -> None:
        with self.lock:
            self.manifest.note(tag)
            for sink in self.sinks:
                sink.write_encoded(tag, data, width, height, step, description)

    def write_scalar(self, tag: str, value: float, step: int, description: str = "") -> None:
        """A scalar summary at ``step`` (TensorBoard's scalars dashboard), on every sink that keeps scalars."""
        with self.lock:
            for sink in self.sinks:
                sink.write_scalar(tag, value, step, description)

    def flush(self) -> None:
        with self.lock:
            for sink in self.sinks:
                sink.flush()

    def close(self) -> None:
        with self.lock:
            for sink in self.sinks:
                sink.close()


_LOCK = threading.Lock()
_OPEN: dict[str, SharedWriter] = {}
_ENCODER: ThreadPoolExecutor | None = None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


# PNG encoder threads: half the cores, 1 or 2. On 2 cores one thread encodes beside the training thread's
# drawing without a third thread competing for them (the six views' epoch end 495 ms against 526 with two,
# medians of 5 interleaved epochs, with the compute gate below).
ENCODER_THREADS = min(2, max(1, _cores() // 2))


# Background encodes wait to start while the training thread runs a view's compiled computation
# (`computing`): the framework's threads then have every core, and the encodes run beside the views'
# drawing, which takes one core. A computation longer than COMPUTE_WAIT_S lets them go anyway.
COMPUTE_WAIT_S = 5.0
_COMPUTING = 0
_COMPUTE_DONE = threading.Condition()


@contextlib.contextmanager
def computing() -> Iterator[None]:
    """The block in which a view computes with the model (on the training thread): background PNG
    encodes that have not started yet wait until it ends (at most `COMPUTE_WAIT_S`)."""
    global _COMPUTING
    with _COMPUTE_DONE:
        _COMPUTING += 1
    try:
        yield
    finally:
        with _COMPUTE_DONE:
            _COMPUTING -= 1
            if not _COMPUTING:
                _COMPUTE_DONE.notify_all()


def _after_compute() -> None:
    with _COMPUTE_DONE:
        _COMPUTE_DONE.wait_for(lambda: _COMPUTING == 0, timeout=COMPUTE_WAIT_S)


def _encoder() -> ThreadPoolExecutor:
    """The PNG encoder threads shared by every writer (created on first use)."""
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            _ENCODER = ThreadPoolExecutor(max_workers=ENCODER_THREADS, thread_name_prefix="keras_vizcallbacks-encode")
        return _ENCODER


class _Encode:
    """One queued encode, run by whichever thread takes it first: an encoder thread, or a thread waiting
    for an image (`wait`), whose core would otherwise idle at the epoch's end. Compared by identity."""

    __slots__ = ("args", "fn", "future")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn, self.args, self.future = fn, args, Future()

    def run(self) -> None:
        if self.future.set_running_or_notify_cancel():
            try:
                self.future.set_result(self.fn(*self.args))
            except BaseException as exc:
                self.future.set_exception(exc)


_QUEUED: deque[_Encode] = deque()  # encodes not started yet, oldest first
_QUEUED_LOCK = threading.Lock()


def _submit_encode(fn: Callable[..., Any], *args: Any) -> Future:
    """Queue ``fn(*args)`` (an encode) for the encoder threads, or a waiting thread; returns its Future."""
    item = _Encode(fn, args)
    with _QUEUED_LOCK:
        _QUEUED.append(item)
    try:
        _encoder().submit(_run_queued)
    except BaseException:  # e.g. the interpreter is shutting down: nothing will run it
        with _QUEUED_LOCK:
            if item in _QUEUED:
                _QUEUED.remove(item)
        raise
    return item.future


def _take() -> _Encode | None:
    with _QUEUED_LOCK:
        return _QUEUED.popleft() if _QUEUED else None


def _run_queued() -> None:
    """An encoder thread's turn: the oldest queued encode (none when a waiting thread took it)."""
    item = _take()
    if item is not None:
        item.run()


def wait(future: Future) -> BaseException | None:
    """Wait for ``future`` (from `SharedWriter.write_later` or `run_later`) and return its exception or
    None. Meanwhile this thread runs queued encodes itself, oldest first, rather than idle beside the
    encoder threads: a view waiting for its images at the next epoch's begin encodes on the core the
    training thread would leave idle. Not inside `computing` (the encodes wait for it to end)."""
    while not future.done():
        with _COMPUTE_DONE:
            busy = _COMPUTING > 0
        item = None if busy else _take()
        if item is None:
            break
        item.run()
    return future.exception()


def run_later(fn: Callable[..., Any], *args: Any) -> Future:
    """Run ``fn(*args)`` on the shared background threads (the PNG encoders, first come first served);
    returns its Future. The callbacks' ``async_write`` draws there."""
    return _encoder().submit(fn, *args)


def run_path(log_dir: str, run_name: str) -> str:
    return os.path.abspath(os.path.join(os.fspath(log_dir), run_name))


def validate_run_name(run_name: str) -> None:
    if not isinstance(run_name, str) or not run_name or run_name in (".", ".."):
        raise ValueError(f"run_name must be a non-empty directory name, got {run_name!r}.")
    if "/" in run_name or "\\" in run_name or (os.sep in run_name):
        raise ValueError(
            f"run_name {run_name!r} contains a path separator; use a plain name such as 'viz' "
            "(put structure in log_dir instead)."
        )


def _has_png(shared: SharedWriter | None, png_path: str) -> bool:
    return shared is not None and any(isinstance(s, PNGWriter) and s.path == png_path for s in shared.sinks)


def check(log_dir: str, run_name: str = "viz", png_dir: str | None = None) -> None:
    """ValueError now (naming the fix) if `acquire` could not open these paths; opens nothing."""
    validate_run_name(run_name)
    path = run_path(log_dir, run_name)
    with _LOCK:
        shared = _OPEN.get(path)
    if shared is None:
        check_writable(path)
    if png_dir is not None and not _has_png(shared, os.path.abspath(png_dir)):
        check_writable(os.path.abspath(png_dir))


def acquire(log_dir: str, run_name: str = "viz", png_dir: str | None = None) -> SharedWriter:
    """Get (or open) the shared writer of ``<log_dir>/<run_name>``. ValueError if unwritable."""
    check(log_dir, run_name, png_dir)
    path = run_path(log_dir, run_name)
    with _LOCK:
        shared = _OPEN.get(path)
        if shared is None:
            shared = SharedWriter(path, [TensorBoardWriter(path)])
            _OPEN[path] = shared
        if png_dir is not None and not _has_png(shared, os.path.abspath(png_dir)):
            shared.sinks.append(PNGWriter(os.path.abspath(png_dir)))
        shared.users += 1
        return shared


def release(shared: SharedWriter) -> None:
    """Drop one user; the last one flushes and closes the writer."""
    with _LOCK:
        shared.users -= 1
        if shared.users > 0:
            shared.flush()
            return
        _OPEN.pop(shared.key, None)
    shared.close()


def open_writers() -> list[str]:
    """Paths of writers currently open (for tests and diagnostics)."""
    with _LOCK:
        return sorted(_OPEN)


# --------------------------------------------------------------------------- tag claims
#
# Two views that write one tag in one run would put two images per step on one TensorBoard card, under
# one description. Views claim their tags when a fit begins; a claim holds for that fit only. A fit is
# identified by an object every callback of the fit shares (Keras gives them all the same ``params``
# dict): when a claim arrives from another fit, the claims of the earlier fit on that run are dropped,
# so a fit that ended without ``on_train_end`` (Keras skips it when ``fit`` raises) leaves nothing behind.

_CLAIMS: dict[str, tuple[Any, dict[str, Any]]] = {}  # run path -> (fit, {tag: weak reference to the owner})


def claim_tags(log_dir: str, run_name: str, owner: Any, tags: Iterable[str], fit: Any = None) -> None:
    """Claim ``tags`` of ``<log_dir>/<run_name>`` for ``owner`` during ``fit`` (any object the fit's
    callbacks share; compared by identity and kept until the next fit's first claim on this run).

    Raises ValueError naming both owners (their ``repr``) when another live owner of the same fit holds
    one of the tags; claims made before the conflict stay (the fit is not starting anyway). Claiming a
    tag again for the same owner does nothing.
    """
    path = run_path(log_dir, run_name)
    with _LOCK:
        held = _CLAIMS.get(path)
        if held is None or held[0] is not fit:
            held = (fit, {})
            _CLAIMS[path] = held
        claims = held[1]
        for tag in tags:
            ref = claims.get(tag)
            other = None if ref is None else ref()
            if other is not None and other is not owner:
                raise ValueError(
                    f"Two views write tag {tag!r} to run {path!r}: {other!r} and {owner!r}. TensorBoard would show "
                    "both images on one card under one description. Give one of them another tag "
                    "(tag='...' replaces the view's tag prefix) or another run_name."
                )
            claims[tag] = weakref.ref(owner)


def release_tags(owner: Any) -> None:
    """Drop every claim of ``owner`` (on every run); a view does this when its fit ends."""
    with _LOCK:
        for path, (_, claims) in list(_CLAIMS.items()):
            for tag in [t for t, ref in claims.items() if ref() is owner or ref() is None]:
                del claims[tag]
            if not claims:
                del _CLAIMS[path]


def claimed_tags(log_dir: str, run_name: str = "viz") -> list[str]:
    """Tags currently claimed on ``<log_dir>/<run_name>`` by live owners (for tests and diagnostics)."""
    with _LOCK:
        held = _CLAIMS.get(run_path(log_dir, run_name))
        return sorted(t for t, ref in held[1].items() if ref() is not None) if held else []
