"""How a view's images reach its writer: futures on the writers' shared background threads.

One path for every image. Each leaves the view as a future in `Delivery`, and the
view collects them oldest first (`Delivery.next`): there it records what was
written and sends failures through its error policy.

* By default a view draws on the training thread and each frame is PNG-encoded and
  written in the background (`encode`): the frames of one epoch encode in parallel
  while the next callback works, and the view waits for them before the next epoch trains.
* With ``async_write`` a whole epoch (draw, encode, write) is one job (`later`); the
  jobs of one view run one at a time, in epoch order, on the same threads.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from keras_vizcallbacks import writers


class Delivery:
    """The images of one view on their way to the writer, oldest first."""

    def __init__(self) -> None:
        self._pending: deque[tuple[Future, int, str | None]] = deque()  # (future, step, tag of a single frame)
        self._jobs: deque[tuple[Callable[[], Any], Future]] = deque()  # `later` jobs not started yet
        self._lock = threading.Lock()
        self._draining = False  # a drain of `_jobs` is queued or running on the background threads

    def __len__(self) -> int:
        return len(self._pending)

    def encode(self, writer: writers.SharedWriter, tag: str, image: Any, step: int, description: str) -> None:
        """PNG-encode and write one uint8 (H, W, C) image in the background."""
        self._pending.append((writer.write_later(tag, image, step, description), step, tag))

    def later(self, job: Callable[[], Any], step: int) -> None:
        """Run ``job()`` in the background after every earlier job of this view has finished."""
        future: Future = Future()
        with self._lock:
            self._jobs.append((job, future))
            start, self._draining = not self._draining, True
        if start:
            try:
                writers.run_later(self._drain)
            except Exception as exc:  # e.g. the interpreter is shutting down: the job cannot run
                with self._lock:
                    self._jobs.clear()  # only this job: no drain was queued or running
                    self._draining = False
                future.set_exception(exc)
        self._pending.append((future, step, None))

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._jobs:
                    self._draining = False
                    return
                job, future = self._jobs.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(job())
                except BaseException as exc:
                    future.set_exception(exc)

    def next(self, wait: bool = True) -> tuple[int, str | None, BaseException | None] | None:
        """The oldest delivery once it has finished, as ``(step, tag or None, error or None)``;
        None when there is none or (``wait=False``) it has not finished yet."""
        if not self._pending:
            return None
        future, step, tag = self._pending[0]
        if not wait and not future.done():
            return None
        error = writers.wait(future)  # waits, encoding queued images meanwhile
        self._pending.popleft()
        return step, tag, error
