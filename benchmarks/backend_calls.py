"""One Grad-CAM-like gradient call on the active Keras backend: first call and steady state.

The call: the reference CNN (``kv.models.reference_cnn``) split at its last conv
layer (``conv2d_1``), 16 images of 32x32x3, the target logit's gradient with
respect to the images and to the layer's output (``_backend.value_and_grads``
through ``layers.split_at``), compiled with ``_backend.compile_function``; and the
forward pass alone (the split probe without ``delta``) for comparison. On
PyTorch it also times ``torch.compile``, of the whole call and of the forward
pass only (backward by autograd), against the eager call that ``_backend`` uses.

    KERAS_BACKEND=tensorflow python benchmarks/backend_calls.py
    KERAS_BACKEND=jax python benchmarks/backend_calls.py
    KERAS_BACKEND=torch python benchmarks/backend_calls.py [--no-compile]

Measured on a shared 2-core machine (load ~4.5 from other jobs; 40 interleaved calls;
Keras 3.15; median wall ms / median CPU ms per call, first call in seconds):

=========================  =====================  =====================  ==============
variant                    --threads 1            --threads 2            first call
=========================  =====================  =====================  ==============
TensorFlow 2.21 gradients  22.8 / 22.7            16.5 / 19.0            0.9-1.1 s
TensorFlow forward only    10.1 / 10.0            7.0 / 7.9              0.1-0.2 s
JAX 0.10.2 gradients       30.3 / 21.4            31.2 / 24.2            3.9-4.1 s
JAX forward only           5.5 / 5.2              5.4 / 5.4              0.3-0.4 s
PyTorch 2.13 eager grads   86.0 / 42.7            377 / 216              0.1-0.7 s
PyTorch forward only       46.0 / 22.9            215 / 110              0.04-0.4 s
torch.compile whole call   92.0 / 45.1            434 / 212              21 s
torch.compile forward      93.3 / 43.1            374 / 192              0.6-1.3 s
=========================  =====================  =====================  ==============

JAX's forward pass is the fastest, its gradient slower than TensorFlow's (a plain
``jax.grad`` of ``model.stateless_call`` with respect to the input, without this
package, is as slow: XLA's CPU convolution backward). Eager PyTorch spends most of its
time in Keras' Python per-op layer (the aten ops of one gradient call took 17 ms of CPU
in a profile), and with 2 threads on the loaded machine its OpenMP threads made every
PyTorch variant ~4x slower.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
parser.add_argument("--threads", type=int, default=2, help="framework compute threads (default 2; 0: no limit)")
parser.add_argument("--calls", type=int, default=50, help="timed calls after the first (default 50)")
parser.add_argument("--batch", type=int, default=16, help="images per call (default 16)")
parser.add_argument("--no-compile", action="store_true", help="PyTorch: skip the torch.compile variants")
ARGS = parser.parse_args()

from keras_vizcallbacks import _backend  # noqa: E402

LIMITED = _backend.limit_threads(ARGS.threads) if ARGS.threads else None

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_vizcallbacks import models  # noqa: E402
from keras_vizcallbacks.layers import split_at  # noqa: E402


def fetch(out) -> None:
    for leaf in keras.tree.flatten(out):
        _backend.to_numpy(leaf)


def measure(variants: list[tuple[str, object, tuple, object]]) -> list[tuple]:
    """Per variant: first call ms, then the median and minimum wall ms and the median CPU ms
    (this process, all threads) of ``--calls`` calls, the variants called in turn (interleaved)
    so that load from other processes falls on all alike. On a loaded machine the CPU time,
    run with ``--threads 1``, is the steadiest of the three."""
    firsts = []
    for _, fn, args, _ in variants:
        t = time.perf_counter()
        fetch(fn(*args))
        firsts.append((time.perf_counter() - t) * 1e3)
    wall: list[list[float]] = [[] for _ in variants]
    cpu: list[list[float]] = [[] for _ in variants]
    for _ in range(ARGS.calls):
        for w, c, (_, fn, args, _) in zip(wall, cpu, variants):
            t, p = time.perf_counter(), time.process_time()
            fetch(fn(*args))
            w.append((time.perf_counter() - t) * 1e3)
            c.append((time.process_time() - p) * 1e3)
    return [
        (name, first, statistics.median(w), min(w), statistics.median(c), traces() if callable(traces) else traces)
        for (name, _, _, traces), first, w, c in zip(variants, firsts, wall, cpu)
    ]


def main() -> None:
    _backend.set_random_seed(0)  # keras.utils.set_random_seed would import TensorFlow
    model = models.reference_cnn(compile=False)
    split = split_at(model, "conv2d_1")
    x = np.random.default_rng(0).random((ARGS.batch, 32, 32, 3), dtype=np.float32)
    delta = split.zeros(x)
    target = np.zeros(ARGS.batch, dtype=np.int32)

    def gradcam_call(x, delta, target):
        def fn(ws, target):
            a, logits = split(ws[0], ws[1])
            picked = keras.ops.take_along_axis(logits, keras.ops.expand_dims(target, -1), axis=-1)[:, 0]
            return picked, a

        return _backend.value_and_grads(fn, [x, delta], target)

    compiled = _backend.compile_function(gradcam_call, "gradcam", state=model)
    forward = _backend.compile_function(lambda x: split(x), "forward", state=model)
    variants = [
        (f"{_backend.name()} gradients", compiled, (x, delta, target), lambda: compiled.traces),
        (f"{_backend.name()} forward only", forward, (x,), lambda: forward.traces),
    ]

    if _backend.name() == "torch" and not ARGS.no_compile:
        import torch

        xt, dt, tt = (keras.ops.convert_to_tensor(v) for v in (x, delta, target))
        whole = torch.compile(gradcam_call)
        variants.append(("torch.compile (whole call)", whole, (xt, dt, tt), None))

        torch_forward = torch.compile(lambda x, d: split(x, d))

        def compiled_forward_call(x, delta, target):
            def fn(ws, target):
                a, logits = torch_forward(ws[0], ws[1])
                picked = torch.gather(logits, 1, target.long()[:, None])[:, 0]
                return picked, a

            return _backend.value_and_grads(fn, [x, delta], target)

        variants.append(("torch.compile (forward)", compiled_forward_call, (xt, dt, tt), None))

    head = f"backend {_backend.name()}, keras {keras.__version__}, batch {ARGS.batch}"
    print(f"{head}, threads {ARGS.threads} (limit applied: {LIMITED})")
    print(f"{'variant':30s} {'first ms':>9s} {'median ms':>9s} {'min ms':>7s} {'cpu ms':>7s} {'traces':>6s}")
    for name, first, median, least, cpu, traces in measure(variants):
        shown = traces if traces is not None else ""
        print(f"{name:30s} {first:9.1f} {median:9.2f} {least:7.2f} {cpu:7.2f} {shown:>6}")
    print("tensorflow loaded:", "tensorflow" in sys.modules)


if __name__ == "__main__":
    main()
