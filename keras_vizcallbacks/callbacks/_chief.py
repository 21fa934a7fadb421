"""Who renders in a distributed fit: one process, decided here and nowhere else.

Every process of a distributed job runs the same ``model.fit`` with the same
callbacks, usually with one shared log directory. Only one of them renders and
writes (``render_on="chief"``, the default): the chief task of ``TF_CONFIG`` on
TensorFlow (or worker 0 when the cluster has no chief, or the only process
without ``TF_CONFIG``), process 0 of ``jax.distributed`` on JAX, rank 0 of
``torch.distributed`` on PyTorch. ``render_on`` may instead be a callable
``() -> bool``. Either is evaluated once per fit, in ``on_train_begin``, before
any other work of the view; a process that does not render then does nothing
at all (no ``prepare``, no compiled functions, no samples read, no log-directory
checks, no writers), so it never waits for, or writes beside, the one that does.

What every process checks alike (so that all of them stop together rather than
one stopping and the others waiting at the next all-reduce): that the weights
can be read whole on the rendering process. A layout that shards weights across
processes (``keras.distribution.ModelParallel`` over several JAX processes) is a
``ValueError`` at train begin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks import _backend

RENDER_ON = ("chief",)


@dataclasses.dataclass(frozen=True)
class Decision:
    """Whether this process renders, and where it stands in the job."""

    renders: bool
    index: int  # this process's place in the job (0 is the chief)
    count: int  # processes in the job
    chosen_by: str  # "chief" or the name of the render_on callable
    host: str

    @property
    def distributed(self) -> bool:
        return self.count > 1 or self.chosen_by != "chief"

    def line(self) -> str:
        """The sentence a picture's description ends with (empty when there is only one process)."""
        if not self.distributed:
            return ""
        who = f"process {self.index} of {self.count} (host `{self.host}`)"
        if self.chosen_by == "chief":
            return f"Rendered by {who}, the chief; the other processes render nothing (`render_on='chief'`)."
        return f"Rendered by {who}, chosen by `render_on={self.chosen_by}`."


def check(render_on: Any) -> str | Callable[[], bool]:
    """``render_on`` as given, or ValueError (in the constructor) naming what it may be."""
    if callable(render_on) or (isinstance(render_on, str) and render_on in RENDER_ON):
        return render_on
    raise ValueError(
        f"render_on must be 'chief' (the process that renders in a distributed fit: the chief of TF_CONFIG, "
        f"process 0 of jax.distributed, rank 0 of torch.distributed) or a callable () -> bool, got {render_on!r}."
    )


def _place() -> tuple[int, int]:
    try:
        return int(_backend.process_index()), int(_backend.process_count())
    except ValueError as exc:  # e.g. TF_CONFIG that is not JSON (json's error is a ValueError)
        raise ValueError(
            f"render_on='chief': could not tell this process's place in the job ({type(exc).__name__}: {exc}). "
            "On TensorFlow it comes from the TF_CONFIG environment variable: fix or unset it, or pass "
            "render_on=<a callable returning True on the one process that should render>."
        ) from exc


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or type(fn).__name__


def decide(render_on: str | Callable[[], bool], model: keras.Model | None = None) -> Decision:
    """Evaluate ``render_on`` for this process (once per fit, in ``on_train_begin``).

    With ``model``, also check on every process alike that the rendering process can read its
    weights whole (ValueError otherwise).
    """
    index, count = _place()
    if count > 1 and model is not None:
        check_weights_local(model, count)
    host = socket.gethostname()
    if callable(render_on):
        result = render_on()
        if not isinstance(result, (bool, np.bool_)):
            raise ValueError(
                f"render_on={_name(render_on)} must return True (this process renders) or False, got {result!r}."
            )
        return Decision(bool(result), index, count, _name(render_on), host)
    return Decision(index == 0, index, count, "chief", host)


def check_weights_local(model: keras.Model, count: int) -> None:
    """ValueError when a weight of ``model`` is sharded across processes: the rendering process could not
    read it without the others joining (every process runs this check, so all of them stop together)."""
    distribution = keras.distribution.distribution()
    if isinstance(distribution, keras.distribution.ModelParallel):
        raise ValueError(
            f"keras_vizcallbacks renders on one process, from its own copy of the weights; with "
            f"keras.distribution.ModelParallel over {count} processes the weights are split between processes "
            "and no process holds them whole. Supported across processes: keras.distribution.DataParallel "
            "(replicated weights). ModelParallel works within one process (all devices local)."
        )
    for variable in model.weights:
        value = getattr(variable, "value", None)
        sharding = getattr(value, "sharding", None)
        if sharding is None or getattr(value, "is_fully_addressable", True):
            continue
        if not getattr(sharding, "is_fully_replicated", False):
            raise ValueError(
                f"keras_vizcallbacks renders on one process, from its own copy of the weights, but weight "
                f"{variable.path!r} is split across the job's {count} processes ({sharding}); no process holds it "
                "whole. Replicate the weights across processes (keras.distribution.DataParallel)."
            )


def alone(decision: Decision | None, model: keras.Model | None) -> Any:
    """The block in which the rendering process computes with ``model`` (``prepare``, ``compute``)
    without the other processes: on JAX with several processes no distribution is set in it, and
    compiled functions read this process's own copy of the weights (`_backend.process_local`), so no
    computation of the views needs another process to join it. Nothing changes in a single process."""
    if decision is None or decision.count == 1 or model is None:
        return contextlib.nullcontext()
    return _backend.process_local(model)


def describe(description: str, decision: Decision | None) -> str:
    """``description`` with the sentence saying which process rendered it (only in a distributed job)."""
    line = decision.line() if decision is not None else ""
    if not line:
        return description
    return f"{description}\n\n{line}" if description else line
