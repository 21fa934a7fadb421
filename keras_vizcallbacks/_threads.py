"""Keep numpy's BLAS on one thread while a view computes and draws.

numpy's OpenBLAS runs a matrix product of a few hundred rows (a PCA, a
projection) on every core, and its threads then busy-wait for more work for a
while, competing with TensorFlow for the cores: on 2 cores, the next forward
pass or training step ran ~1.4x slower (DecisionBoundary compute: 115 ms ->
80 ms with BLAS on one thread; see docs/performance.md). The views' matrices are
small, so one thread loses nothing.

``quiet_blas()`` is re-entrant and thread-safe (the training thread and the
background threads that draw with ``async_write`` may overlap): the first to
enter limits BLAS to one thread, the last to leave restores the previous setting. Without threadpoolctl's
view of a BLAS library it does nothing. OpenBLAS reliably honours a limit set
from the thread that first set one (here, the training thread); that is one
more reason the views keep their BLAS work (PCA, projections) in ``compute``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.Lock()
_DEPTH = 0
_LIMITER: Any = None
_CONTROLLER: Any = None


def _controller() -> Any:
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        except Exception:  # threadpoolctl missing or unable to inspect this process
            _CONTROLLER = False
    return _CONTROLLER


@contextlib.contextmanager
def quiet_blas() -> Iterator[None]:
    """Run the block with numpy's BLAS limited to one thread (see the module docstring)."""
    global _DEPTH, _LIMITER
    with _LOCK:
        _DEPTH += 1
        if _DEPTH == 1:
            ctl = _controller()
            if ctl:
                try:
                    _LIMITER = ctl.limit(limits=1, user_api="blas")
                except Exception:
                    _LIMITER = None
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _LIMITER is not None:
                limiter, _LIMITER = _LIMITER, None
                with contextlib.suppress(Exception):
                    limiter.restore_original_limits()


def blas_threads() -> int | None:
    """Threads numpy's BLAS uses now (None if unknown); for tests."""
    ctl = _controller()
    if not ctl:
        return None
    info = [p for p in ctl.info() if p.get("user_api") == "blas"]
    return int(info[0]["num_threads"]) if info else None
