"""One Grad-CAM-like gradient call on the active Keras backend: first call and steady state.

The call: the reference CNN (``kv.models.reference_cnn``) split at its last conv
layer (``conv2d_1``), 16 images of 32x32x3, the target logit's gradient with
respect to the images and to the layer's output (``_backend.value_and_grads``
through ``_split``), compiled with ``_backend.compile_function``. On PyTorch it
also times ``torch.compile``, of the whole call and of the forward pass only
(backward by autograd), against the eager call that ``_backend`` uses.

    KERAS_BACKEND=tensorflow python benchmarks/backend_calls.py
    KERAS_BACKEND=jax python benchmarks/backend_calls.py
    KERAS_BACKEND=torch python benchmarks/backend_calls.py [--no-compile]

Measured (2 shared CPU cores, --threads 2, --calls 50; median ms per call after
the first; first call in brackets, which traces / compiles):

=========================  ================
TensorFlow 2.21 tf.function  see the report
=========================  ================
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
from keras_vizcallbacks._split import split_at  # noqa: E402


def fetch(out) -> None:
    for leaf in keras.tree.flatten(out):
        _backend.to_numpy(leaf)


def measure(variants: list[tuple[str, object, tuple, object]]) -> list[tuple[str, float, float, float, object]]:
    """Per variant: first call ms, then the median and minimum ms of ``--calls`` calls, the
    variants called in turn (interleaved) so that load from other processes falls on all alike."""
    firsts = []
    for _, fn, args, _ in variants:
        t = time.perf_counter()
        fetch(fn(*args))
        firsts.append((time.perf_counter() - t) * 1e3)
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(ARGS.calls):
        for store, (_, fn, args, _) in zip(times, variants):
            t = time.perf_counter()
            fetch(fn(*args))
            store.append((time.perf_counter() - t) * 1e3)
    return [
        (name, first, statistics.median(ts), min(ts), traces() if callable(traces) else traces)
        for (name, _, _, traces), first, ts in zip(variants, firsts, times)
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
    variants = [(f"{_backend.name()} compile_function", compiled, (x, delta, target), lambda: compiled.traces)]

    if _backend.name() == "torch" and not ARGS.no_compile:
        import torch

        xt, dt, tt = (keras.ops.convert_to_tensor(v) for v in (x, delta, target))
        whole = torch.compile(gradcam_call)
        variants.append(("torch.compile (whole call)", whole, (xt, dt, tt), None))

        forward = torch.compile(lambda x, d: split(x, d))

        def compiled_forward_call(x, delta, target):
            def fn(ws, target):
                a, logits = forward(ws[0], ws[1])
                picked = torch.gather(logits, 1, target.long()[:, None])[:, 0]
                return picked, a

            return _backend.value_and_grads(fn, [x, delta], target)

        variants.append(("torch.compile (forward)", compiled_forward_call, (xt, dt, tt), None))

    head = f"backend {_backend.name()}, keras {keras.__version__}, batch {ARGS.batch}"
    print(f"{head}, threads {ARGS.threads} (limit applied: {LIMITED})")
    print(f"{'variant':32s} {'first ms':>10s} {'median ms':>10s} {'min ms':>8s} {'traces':>7s}")
    for name, first, median, least, traces in measure(variants):
        print(f"{name:32s} {first:10.1f} {median:10.2f} {least:8.2f} {traces if traces is not None else '':>7}")
    print("tensorflow loaded:", "tensorflow" in sys.modules)


if __name__ == "__main__":
    main()
