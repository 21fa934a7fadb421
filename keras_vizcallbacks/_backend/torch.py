"""PyTorch implementations of the backend functions (see ``_backend/__init__.py``).

Compiled functions run eagerly. ``torch.compile`` was measured against eager
on the views' typical call, the forward and input gradient of the reference
CNN on 16 images of 32x32x3 (``benchmarks/torch_compile.py``, 2 CPU cores,
torch 2.13): see that script's docstring for the numbers. Eager wins at the
once-per-epoch call rate of a view, and compiling costs tens of seconds per
function and input shape. PyTorch reads variables live, so ``state`` is not
needed; ``traces`` counts the distinct input signatures seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import torch

from keras_vizcallbacks._backend._common import TracedFunction as _Base
from keras_vizcallbacks._backend._common import seed_python_and_numpy, signature, state_variables


def _to_tensor(x: Any) -> Any:
    if isinstance(x, (np.ndarray, np.generic)):
        return keras.ops.convert_to_tensor(np.asarray(x))  # on Keras' device (CPU or GPU)
    return x


def _detach(x: Any) -> Any:
    return x.detach() if isinstance(x, torch.Tensor) else x


class TracedFunction(_Base):
    """``fn`` run eagerly under ``torch.no_grad()`` (`value_and_grads` turns gradients back on)."""

    def __init__(self, fn: Callable[..., Any], name: str = "fn", state: Any = None) -> None:
        super().__init__(fn, name)
        self.variables, _ = state_variables(state)
        self._signatures: set[tuple] = set()

    def __call__(self, *args: Any) -> Any:
        args = keras.tree.map_structure(_to_tensor, args)
        sig = signature(keras.tree.flatten(args))
        if sig not in self._signatures:
            self._signatures.add(sig)
            self.traces += 1
        with torch.no_grad():
            return self.fn(*args)


def compile_function(fn: Callable[..., Any], name: str = "fn", *, state: Any = None) -> TracedFunction:
    """``fn`` run eagerly (faster than ``torch.compile`` here, see the module docstring)."""
    return TracedFunction(fn, name, state)


def value_and_grads(fn: Callable[..., Any], wrt: Sequence[Any], *args: Any) -> tuple[Any, Any, list[Any]]:
    """Scores, aux and float32 gradients of ``sum(scores)`` w.r.t. each of ``wrt`` (zeros if unconnected)."""
    leaves = [_to_tensor(w) for w in wrt]
    wrt = [w.detach().requires_grad_(True) for w in leaves]
    with torch.enable_grad():
        scores, aux = fn(wrt, *args)
        scores = scores.to(torch.float32)
        # scores that depend on nothing differentiable have no graph: every gradient is zero
        found = torch.autograd.grad(scores.sum(), wrt, allow_unused=True) if scores.requires_grad else [None] * len(wrt)
    grads = [torch.zeros_like(w, dtype=torch.float32) if g is None else g.to(torch.float32) for g, w in zip(found, wrt)]
    return scores.detach(), keras.tree.map_structure(_detach, aux), grads


def to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, keras.Variable):
        x = x.value
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype == torch.bfloat16:  # numpy has no bfloat16
            x = x.to(torch.float32)
        return x.cpu().numpy()
    return np.asarray(x)


def limit_threads(n: int) -> bool:
    """``torch.set_num_threads`` (any time) and ``set_num_interop_threads`` (only before parallel work)."""
    n = int(n)
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # parallel work has already started
        return torch.get_num_threads() == n and torch.get_num_interop_threads() == n
    return torch.get_num_threads() == n


def sync_model_state(model: Any) -> None:
    """Nothing to do: Keras' PyTorch trainer updates the model's parameters in place."""


def set_random_seed(seed: int) -> None:
    """Python, numpy and torch seeds; unlike ``keras.utils.set_random_seed`` it leaves TensorFlow
    unimported. ``keras.random`` calls without a seed keep using Keras' global seed generator as it is."""
    seed_python_and_numpy(seed)
    torch.manual_seed(int(seed))
