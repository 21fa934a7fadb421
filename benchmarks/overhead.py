"""What the views cost: epoch time with and without them, measured interleaved in one process.

Workload (the design card's CNN, ``kv.models.reference_cnn``): 10,000 synthetic
32x32x3 images per epoch (``kv.datasets.shapes``), batch 128, 2 CPU threads,
16 samples for the sample-based views (FeatureMaps, GradCAM, Saliency) and a
1,000-image validation set for the data-based ones (DecisionBoundary,
ConfusionMatrix).

Configurations, each with its own model and log directory, run one epoch at a
time in turn (the order rotates every round), so load from other processes
falls on all of them alike:

* ``baseline``: no callbacks;
* each view that exists, alone, at its defaults;
* ``all``: every view together; ``all async``: the same with ``async_write=True``.

Reported: per-epoch wall time (median over the epochs after the first, which
traces), its ratio to the baseline, the callbacks' own steady time per epoch
as a share of the baseline epoch (``own/base``: less noisy than the ratio on a
loaded machine), each callback's own time per call (the
first, tracing call separately), event-file bytes per epoch; then the steady
cost of each view's ``compute`` (training thread) and ``draw`` (pixels), one
forward+backward pass of the 16 samples for comparison, a naive matplotlib
renderer of the same filter grid (a pyplot subplot per filter, as in most
tutorials), trace counts across ``--trace-epochs`` epochs, and RSS / open files
over ``--memory-epochs`` epochs of a tiny model with every view.

    python benchmarks/overhead.py                 # full run (tens of minutes on 2 cores)
    python benchmarks/overhead.py --quick         # a few minutes
    python benchmarks/overhead.py --json out.json # also write the results as JSON
    python benchmarks/overhead.py --quick --backend jax    # the same table on JAX (or torch)
    python benchmarks/overhead.py --image-size 224 --backbone mobilenetv2   # real-size workload (below)

Real-size workload (``--backbone mobilenetv2`` or ``resnet50``, ``weights=None``, nested in a
functional model with a 4-class head, ``--image-size`` px, 16 samples): no training; each
attribution view (Grad-CAM, Score-CAM, vanilla saliency, SmoothGrad, Integrated Gradients) is
prepared as in ``on_train_begin`` and its ``compute`` + ``draw`` + PNG encoding timed directly
(one warm-up call that traces, then the median of ``--reps`` calls), against one forward+backward
pass of the 16 samples (gradient w.r.t. the input, compiled as the views compile) measured in the
same process. Targets: Grad-CAM within 3x of one forward+backward; SmoothGrad and Integrated
Gradients within 1.3x of their n forward+backward passes (n = copies / 16); Score-CAM capped
(``max_channels``). Peak RSS is printed after each view. Not run in CI (minutes on 2 cores).

The Keras backend is ``--backend`` (default: ``KERAS_BACKEND``, else TensorFlow), set
before Keras is imported; ``--threads`` goes through ``_backend.limit_threads`` (TensorFlow's
intra-/inter-op threads, XLA's CPU threads on JAX, ``torch.set_num_threads`` on PyTorch).

An epoch here is timed from ``on_epoch_begin`` to the end of ``on_train_end``
(each round is one ``fit`` call of one epoch), so the background writer's
backlog, the writer's close and the per-fit setup of the callbacks are counted
against the callbacks: the ratios are an upper bound of the cost in a long fit.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
BACKENDS = ("tensorflow", "jax", "torch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 images, 3 rounds, short trace/memory phases")
    p.add_argument("--samples", type=int, default=None, help="training images per epoch (default 10000)")
    p.add_argument("--epochs", type=int, default=None, help="rounds (epochs per configuration), default 5")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get("KERAS_BACKEND") or "tensorflow",
        help="Keras backend (default: KERAS_BACKEND, else tensorflow)",
    )
    p.add_argument("--threads", type=int, default=2, help="the framework's compute threads (_backend.limit_threads)")
    p.add_argument("--view-samples", type=int, default=16)
    p.add_argument(
        "--saliency-method",
        default="vanilla",
        help="the Saliency view's method in the overhead phases (default vanilla; e.g. smoothgrad)",
    )
    p.add_argument("--trace-epochs", type=int, default=None, help="epochs of the trace-count phase (default 20)")
    p.add_argument("--memory-epochs", type=int, default=None, help="epochs of the memory phase (default 200)")
    p.add_argument("--no-async", action="store_true", help="skip the 'all async' configuration")
    p.add_argument("--long-epochs", type=int, default=None, help="epochs of each long fit (default 6; 0 skips)")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    p.add_argument(
        "--phases",
        default="overhead,long,alternate,traces,memory",
        help="comma-separated phases to run (default all): overhead (interleaved one-epoch fits, then the "
        "steady per-call costs), long (one long fit per configuration), alternate (one fit per configuration "
        "rendering every other epoch, the other epochs its baseline), traces, memory",
    )
    p.add_argument(
        "--configs",
        default=None,
        help="long and alternate phases: comma-separated configurations to run (view names, 'all'; the long "
        "phase always runs 'baseline'), default every one",
    )
    p.add_argument("--alternate-pairs", type=int, default=5, help="render epochs per alternate fit (default 5)")
    p.add_argument(
        "--backbone", choices=("mobilenetv2", "resnet50"), default=None, help="real-size workload (see the docstring)"
    )
    p.add_argument("--image-size", type=int, default=None, help="input size of the real-size workload (default 224)")
    p.add_argument("--reps", type=int, default=2, help="real-size: timed calls per view after the warm-up call")
    p.add_argument("--smoothgrad-samples", type=int, default=8, help="real-size: SmoothGrad's n_samples")
    p.add_argument("--ig-steps", type=int, default=8, help="real-size: Integrated Gradients' steps")
    p.add_argument(
        "--view-batch-size", type=int, default=None, help="real-size: the views' batch_size (default: derived)"
    )
    p.add_argument(
        "--views",
        default="gradcam,scorecam,vanilla,smoothgrad,integrated_gradients",
        help="real-size: comma-separated views to time",
    )
    args = p.parse_args(argv)
    if args.backbone and args.image_size is None:
        args.image_size = 224
    quick = args.quick
    args.samples = args.samples or (2000 if quick else 10000)
    args.epochs = args.epochs or (3 if quick else 5)
    args.trace_epochs = args.trace_epochs or (8 if quick else 20)
    args.memory_epochs = args.memory_epochs or (40 if quick else 200)
    args.long_epochs = (3 if quick else 6) if args.long_epochs is None else args.long_epochs
    args.phases = {x.strip() for x in args.phases.split(",") if x.strip()}
    unknown = args.phases - {"overhead", "long", "alternate", "traces", "memory"}
    if unknown:
        p.error(f"unknown --phases {sorted(unknown)}; available: overhead, long, alternate, traces, memory")
    if args.memory_epochs <= 10:
        p.error("--memory-epochs must be above 10: memory is compared between epoch 10 and the last")
    return args


ARGS = parse_args()
os.environ["KERAS_BACKEND"] = ARGS.backend  # before Keras is imported: the backend is fixed at import

from keras_vizcallbacks import _backend  # noqa: E402

THREADS_LIMITED = _backend.limit_threads(ARGS.threads)  # before the framework's first op

import keras  # noqa: E402
import numpy as np  # noqa: E402
import psutil  # noqa: E402

import keras_vizcallbacks as kv  # noqa: E402

# --------------------------------------------------------------------------- the views


def view_table(samples: tuple, val: tuple, names: list[str], n: int) -> dict[str, Any]:
    """Every view, at its defaults (the sample-based ones get ``n`` samples)."""
    table = {
        "FilterGrid": lambda d, **o: kv.FilterGrid(d, **o),
        "FeatureMaps": lambda d, **o: kv.FeatureMaps(d, samples, max_samples=n, class_names=names, **o),
        "GradCAM": lambda d, **o: kv.GradCAM(d, samples, max_samples=n, class_names=names, **o),
        "Saliency": lambda d, **o: kv.Saliency(
            d, samples, method=ARGS.saliency_method, max_samples=n, class_names=names, **o
        ),
        "DecisionBoundary": lambda d, **o: kv.DecisionBoundary(d, val, mode="embedding", class_names=names, **o),
        "ConfusionMatrix": lambda d, **o: kv.ConfusionMatrix(d, val, class_names=names, **o),
    }
    return table


class Stopwatch:
    """Two callbacks: ``begin`` goes first in the list, ``end`` last. An epoch runs from the first
    ``on_epoch_begin`` to the last ``on_train_end``, or, with ``per_epoch``, to the end of the next
    epoch's last ``on_epoch_begin`` (so the views' waits for their PNGs count) or of ``on_train_end``."""

    def __init__(self, per_epoch: bool = False) -> None:
        self.t0: float | None = None
        self.times: list[float] = []
        sw = self

        class Begin(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if sw.t0 is None or not per_epoch:
                    sw.t0 = time.perf_counter()

        class End(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if per_epoch:
                    now = time.perf_counter()
                    if sw.t0 is not None and epoch > 0:
                        sw.times.append(now - sw.t0)
                    sw.t0 = now

            def on_train_end(self, logs=None):
                if sw.t0 is not None:
                    sw.times.append(time.perf_counter() - sw.t0)
                    sw.t0 = None

        self.begin, self.end = Begin(), End()


def dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


# --------------------------------------------------------------------------- phases


def overhead_phase(tmp: str, data, samples, val, names) -> dict[str, Any]:
    x, y = data
    table = view_table(samples, val, names, ARGS.view_samples)
    configs: dict[str, list[str]] = {"baseline": []}
    configs.update({name: [name] for name in table})
    configs["all"] = list(table)
    if not ARGS.no_async:
        configs["all async"] = list(table)
    state = {}
    for i, (cfg, views) in enumerate(configs.items()):
        _backend.set_random_seed(0)
        log_dir = os.path.join(tmp, f"cfg{i}")
        opts = {"async_write": True} if cfg == "all async" else {}
        state[cfg] = {
            "model": kv.models.reference_cnn(n_classes=len(names)),
            "callbacks": [table[v](log_dir, **opts) for v in views],
            "views": views,
            "log_dir": log_dir,
            "watch": Stopwatch(),
        }
    order = list(configs)
    for epoch in range(ARGS.epochs):
        rotated = order[epoch % len(order) :] + order[: epoch % len(order)]
        for cfg in rotated:
            s = state[cfg]
            s["model"].fit(
                x,
                y,
                batch_size=ARGS.batch_size,
                epochs=epoch + 1,
                initial_epoch=epoch,
                verbose=0,
                callbacks=[s["watch"].begin, *s["callbacks"], s["watch"].end],
            )
        done = ", ".join(f"{c} {state[c]['watch'].times[-1]:.2f}s" for c in order)
        print(f"  round {epoch + 1}/{ARGS.epochs}: {done}", file=sys.stderr, flush=True)
    base = med(state["baseline"]["watch"].times[1:])
    rows = {}
    for cfg, s in state.items():
        steady = med(s["watch"].times[1:])
        per_cb = {}
        for cb in s["callbacks"]:
            per_cb[type(cb).__name__] = {
                "first_s": cb.timings[0] if cb.timings else None,
                "steady_s": med(cb.timings[1:]),
                "failures": [f"{e}: {exc!r}" for e, exc in cb.failures][:3],
            }
        own = [c["steady_s"] for c in per_cb.values() if c["steady_s"] is not None]
        rows[cfg] = {
            # the callbacks' own steady time per epoch over the baseline epoch: less noisy than the ratio
            "own_pct": 100 * sum(own) / base if base and own else None,
            "epoch_s": steady,
            "first_epoch_s": s["watch"].times[0],
            "epochs_s": s["watch"].times,
            "ratio": steady / base if base and steady else None,
            "overhead_pct": 100 * (steady / base - 1) if base and steady else None,
            "callbacks": per_cb,
            "event_bytes_per_epoch": dir_bytes(s["log_dir"]) / ARGS.epochs,
        }
    return {"configs": rows, "views": list(table), "state": state}


def steady_costs(state: dict, samples, n_reps: int = 15) -> dict[str, Any]:
    """compute(), draw() and PNG encoding of each view alone, called directly after training
    (median of n_reps), under the same one-thread BLAS limit the callbacks run with."""
    from keras_vizcallbacks._threads import quiet_blas
    from keras_vizcallbacks.writers.tensorboard import encode_png

    out = {}
    for cfg, s in state.items():
        if cfg in ("baseline", "all", "all async"):
            continue
        (cb,) = s["callbacks"]
        comp, draw, encode = [], [], []
        with quiet_blas():
            computed = cb.compute(0)
            for _ in range(n_reps):
                t = time.perf_counter()
                computed = cb.compute(0)
                comp.append(time.perf_counter() - t)
                t = time.perf_counter()
                frames = [f for f in cb.draw(computed, 0) if hasattr(f, "image")]  # not the Scalar items
                draw.append(time.perf_counter() - t)
                t = time.perf_counter()
                for f in frames:
                    encode_png(f.image)
                encode.append(time.perf_counter() - t)
        out[cfg] = {
            "compute_ms": 1e3 * statistics.median(comp),
            "draw_ms": 1e3 * statistics.median(draw),
            "encode_ms": 1e3 * statistics.median(encode),
            "frames": len(frames),
            "pixels": int(sum(f.image.shape[0] * f.image.shape[1] for f in frames)),
        }
    # one forward + backward pass of the 16 samples, for Grad-CAM's target
    model = state["baseline"]["model"]
    xs = samples[0][: ARGS.view_samples]
    ref = {}
    for name, fn in (("input", input_gradient(model)), ("weights", weights_gradient(model))):
        _backend.to_numpy(fn(xs))
        ts = []
        for _ in range(30):
            t = time.perf_counter()
            _backend.to_numpy(fn(xs))
            ts.append(time.perf_counter() - t)
        ref[name] = 1e3 * statistics.median(ts)
    return {"views": out, "forward_backward_ms": ref}


def input_gradient(model: keras.Model) -> Any:
    """d sum(max output) / d x, compiled as the views compile (``_backend``), for any backend."""

    def call(x):
        def fn(ws):
            return keras.ops.max(model(ws[0], training=False), axis=-1), None

        return _backend.value_and_grads(fn, [x])[2][0]

    return _backend.compile_function(call, "input_gradient", state=model)


def weights_gradient(model: keras.Model) -> Any:
    """d sum(max output) / d weights, in the backend's own terms (what a training step's backward costs)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def grads(x):
            with tf.GradientTape() as tape:
                score = tf.reduce_sum(tf.reduce_max(model(x, training=False), axis=-1))
            return tape.gradient(score, model.trainable_variables)[0]

        return grads
    if backend == "jax":
        import jax

        def score(trainable, non_trainable, x):
            out, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return jax.numpy.sum(jax.numpy.max(out, axis=-1))

        grad = jax.jit(jax.grad(score))
        return lambda x: grad(
            [v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], x
        )[0]
    import torch

    params = [v.value for v in model.trainable_variables]

    def grads(x):
        score = torch.sum(torch.amax(model(keras.ops.convert_to_tensor(x), training=False), dim=-1))
        return torch.autograd.grad(score, params)[0]

    return grads


def naive_matplotlib(model: keras.Model, reps: int = 3) -> dict[str, float]:
    """A pyplot subplot per filter, then PNG bytes: what most tutorials do (reference only)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # only here: the naive reference, never in the library

    result = {}
    for path, layer in kv.layers.conv_layers(model):
        k = kv.explain.conv_kernels(layer)  # (out, in, h, w)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            n = len(k)
            cols = 8
            rows = -(-n // cols)
            fig, axes = plt.subplots(rows, cols, figsize=(cols, rows))
            for i, ax in enumerate(np.ravel(axes)):
                ax.axis("off")
                if i >= n:
                    continue
                if k.shape[1] == 3:
                    img = k[i].transpose(1, 2, 0)
                    img = (img - img.min()) / (np.ptp(img) or 1.0)
                    ax.imshow(img)
                else:
                    ax.imshow(k[i].mean(axis=0), cmap="RdBu_r")
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            plt.close(fig)
            times.append(time.perf_counter() - t)
        result[path] = 1e3 * statistics.median(times)
    return result


def chosen(configs: dict[str, list[str]], *keep: str) -> dict[str, list[str]]:
    """``configs`` restricted to ``--configs`` (and ``keep``); all of them without the option."""
    if not ARGS.configs:
        return configs
    wanted = {c.strip() for c in ARGS.configs.split(",") if c.strip()} | set(keep)
    unknown = wanted - set(configs)
    if unknown:
        raise SystemExit(f"--configs: unknown {sorted(unknown)}; available: {', '.join(configs)}")
    return {k: v for k, v in configs.items() if k in wanted}


def timed_fit(log_dir: str, data, views: list[str], table: dict, names, epochs: int, **options):
    """A fresh reference CNN fit for ``epochs`` with ``views`` (made with ``options``), seeded alike for
    every configuration: ``(callbacks, per-epoch wall times)`` (`Stopwatch` with ``per_epoch``)."""
    x, y = data
    _backend.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=len(names))
    cbs = [table[v](log_dir, **options) for v in views]
    watch = Stopwatch(per_epoch=True)
    model.fit(x, y, batch_size=ARGS.batch_size, epochs=epochs, verbose=0, callbacks=[watch.begin, *cbs, watch.end])
    return cbs, watch.times


def own_ms(own: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else 1e3 * v for k, v in own.items()}


def long_fit_phase(tmp: str, data, samples, val, names) -> dict[str, Any]:
    """No callbacks, each view alone and all six, in one ``--long-epochs`` fit each (not interleaved):
    the views' own steady time per epoch when nothing is set up or torn down between epochs, as a
    user's run sees it (including the wait for their background PNGs at the next epoch's begin),
    over the epoch of the fit without callbacks."""
    table = view_table(samples, val, names, ARGS.view_samples)
    configs = chosen({"baseline": []} | {name: [name] for name in table} | {"all": list(table)}, "baseline")
    out: dict[str, Any] = {}
    base = None
    for i, (cfg, views) in enumerate(configs.items()):
        cbs, times = timed_fit(os.path.join(tmp, f"long{i}"), data, views, table, names, ARGS.long_epochs)
        wall = med(times[1:])
        if cfg == "baseline":
            base = wall
        own = {type(cb).__name__: med(cb.timings[1:]) for cb in cbs}
        total = sum(v for v in own.values() if v)
        out[cfg] = {
            "own_ms": own_ms(own),
            "epoch_s": wall,
            "ratio": wall / base if base and wall else None,
            "own_pct": 100 * total / base if base and cbs else None,
        }
        if cbs:
            print(f"  long fit {cfg}: own {out[cfg]['own_pct']:.1f}%", file=sys.stderr, flush=True)
    return out


def alternate_phase(tmp: str, data, samples, val, names) -> dict[str, Any]:
    """Each view alone and all six, each in one fit of ``2 * --alternate-pairs + 2`` epochs with
    ``every_n_epochs=2``: the views render at the even epochs only, so the odd epochs of the same fit,
    interleaved with them, are the baseline (no separate fit whose load may differ). Reported per
    configuration: the views' own time per render over the median plain epoch (``own_pct``); the views'
    own time at each render epoch over that epoch's own training time (its wall time less the views'),
    median over the render epochs (``own_same_epoch_pct``: the one to quote on a host whose speed changes
    from one epoch to the next, as both come from the same seconds); and the
    wall-time difference of each render epoch from the mean of its two plain neighbours, median over
    the pairs, over the median plain epoch (``wall_pct``: counts the background encoding's share of the
    cores too, noisier). Epoch 0 (tracing) and the last epoch (it always renders, and closes) are left out.
    """
    table = view_table(samples, val, names, ARGS.view_samples)
    configs = chosen({name: [name] for name in table} | {"all": list(table)})
    epochs = 2 * ARGS.alternate_pairs + 2
    out: dict[str, Any] = {}
    for i, (cfg, views) in enumerate(configs.items()):
        cbs, t = timed_fit(os.path.join(tmp, f"alt{i}"), data, views, table, names, epochs, every_n_epochs=2)
        # t[e]: epoch e, from its begin to the next epoch's begin (after the views' waits)
        render = list(range(2, epochs - 1, 2))
        plain = list(range(1, epochs - 1, 2))
        base = med([t[e] for e in plain])
        # cb.timings: one entry per render (epochs 0, 2, ..., and the last); the steady ones are 1 .. -2
        own = {type(cb).__name__: med(cb.timings[1:-1]) for cb in cbs}
        total = sum(v for v in own.values() if v)
        diffs = [t[e] - (t[e - 1] + t[e + 1]) / 2 for e in render]
        # the views' own time at each render epoch over that same epoch's training (its wall time less the
        # views' time): numerator and denominator from the same seconds, whatever the host does between epochs
        own_at = [sum(cb.timings[e // 2] for cb in cbs) for e in render]
        same = [o / (t[e] - o) for o, e in zip(own_at, render)]
        out[cfg] = {
            "plain_epoch_s": base,
            "plain_epochs_s": [t[e] for e in plain],
            "render_epochs_s": [t[e] for e in render],
            "own_ms": own_ms(own),
            "own_pct": 100 * total / base if base else None,
            "own_epochs_ms": [1e3 * o for o in own_at],
            "own_same_epoch_pct": 100 * med(same) if same else None,
            "own_same_epoch_pct_range": [100 * min(same), 100 * max(same)] if same else None,
            "wall_pct": 100 * med(diffs) / base if base else None,
            "wall_pct_range": [100 * min(diffs) / base, 100 * max(diffs) / base] if base and diffs else None,
        }
        r = out[cfg]
        print(
            f"  alternate {cfg}: own {r['own_pct']:.1f}%, own/same epoch {r['own_same_epoch_pct']:.1f}%, "
            f"wall {r['wall_pct']:.1f}%",
            file=sys.stderr,
            flush=True,
        )
    return out


def trace_phase(tmp: str, samples, val, names) -> dict[str, Any]:
    _backend.set_random_seed(0)
    x, y = kv.datasets.shapes(512, seed=2)[:2]
    model = kv.models.reference_cnn(n_classes=len(names))
    table = view_table(samples, val, names, ARGS.view_samples)
    cbs = [make(os.path.join(tmp, "traces")) for make in table.values()]
    model.fit(x, y, batch_size=ARGS.batch_size, epochs=ARGS.trace_epochs, verbose=0, callbacks=cbs)
    return {type(cb).__name__: cb.trace_counts() | {"renders": len(cb.timings)} for cb in cbs}


def trim() -> None:
    """Return freed heap pages to the OS (glibc malloc_trim), so RSS shows what is still allocated."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def tiny_model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((10, 10, 3)),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(4, 3, activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def memory_phase(tmp: str) -> dict[str, Any]:
    _backend.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((8, 10, 10, 3), dtype=np.float32)
    y = np.arange(8) % 3
    model = tiny_model()
    table = view_table((x[:4], y[:4]), (x, y), ["a", "b", "c"], 4)
    cbs = [make(os.path.join(tmp, "memory")) for make in table.values()]
    proc = psutil.Process()
    snaps: dict[int, dict[str, float]] = {}
    marks = {10, ARGS.memory_epochs // 2, ARGS.memory_epochs}

    class Snap(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in marks:
                gc.collect()
                raw = proc.memory_info().rss / 2**20
                trim()
                snaps[epoch + 1] = {
                    "rss_mb": raw,
                    "rss_trimmed_mb": proc.memory_info().rss / 2**20,
                    "fds": proc.num_fds(),
                }

    model.fit(x, y, batch_size=8, epochs=ARGS.memory_epochs, verbose=0, callbacks=[*cbs, Snap()])
    first, last = snaps[10], snaps[ARGS.memory_epochs]
    return {
        "epochs": ARGS.memory_epochs,
        "snapshots": snaps,
        "rss_growth_mb": last["rss_mb"] - first["rss_mb"],
        "rss_trimmed_growth_mb": last["rss_trimmed_mb"] - first["rss_trimmed_mb"],
        "fds_growth": last["fds"] - first["fds"],
    }


def baseline_memory_phase() -> dict[str, Any]:
    """The same tiny model without callbacks: how much RSS growth is Keras/TensorFlow's own."""
    rng = np.random.default_rng(0)
    x = rng.random((8, 10, 10, 3), dtype=np.float32)
    y = np.arange(8) % 3
    model = tiny_model()
    proc = psutil.Process()
    snaps = {}

    class Snap(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in (10, ARGS.memory_epochs):
                gc.collect()
                raw = proc.memory_info().rss / 2**20
                trim()
                snaps[epoch + 1] = (raw, proc.memory_info().rss / 2**20)

    model.fit(x, y, batch_size=8, epochs=ARGS.memory_epochs, verbose=0, callbacks=[Snap()])
    last, first = snaps[ARGS.memory_epochs], snaps[10]
    return {"rss_growth_mb": last[0] - first[0], "rss_trimmed_growth_mb": last[1] - first[1]}


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "python": platform.python_version(),
        "backend": ARGS.backend,
        ARGS.backend: framework_version(),
        "keras": keras.__version__,
        "threads": ARGS.threads,
        "threads_limited": THREADS_LIMITED,
    }


def framework_version() -> str:
    import importlib

    return importlib.import_module(ARGS.backend).__version__


def fmt(v: float | None, spec: str) -> str:
    return format("-", ">" + spec.split(".")[0]) if v is None else format(v, spec)


def print_report(res: dict[str, Any]) -> None:
    m = res["machine"]
    print(
        f"\n{m['backend']} {m[m['backend']]}, Keras {m['keras']}: "
        f"reference_cnn, {ARGS.samples} images/epoch, batch {ARGS.batch_size}, {m['threads']} threads, "
        f"{ARGS.view_samples} samples; {ARGS.epochs} rounds; load avg {m['load_avg_start']} -> {m['load_avg_end']}"
    )
    if "overhead" in res:
        print_overhead(res)
    print_rest(res)


def print_overhead(res: dict[str, Any]) -> None:
    head = f"{'configuration':18} {'epoch s':>8} {'ratio':>7} {'overhead':>9} {'own/base':>8} {'event KB/ep':>11}"
    print(f"{head}  per-call ms")
    for cfg, row in res["overhead"].items():
        calls = "; ".join(
            f"{name} first {fmt(c['first_s'] and 1e3 * c['first_s'], '.0f')}"
            f" steady {fmt(c['steady_s'] and 1e3 * c['steady_s'], '.1f')}" + (" FAILED" if c["failures"] else "")
            for name, c in row["callbacks"].items()
        )
        print(
            f"{cfg:18} {fmt(row['epoch_s'], '8.2f')} {fmt(row['ratio'], '7.3f')} "
            f"{fmt(row['overhead_pct'], '8.1f')}% {fmt(row['own_pct'], '7.1f')}% "
            f"{row['event_bytes_per_epoch'] / 1024:11.1f}  {calls}"
        )
    print("\nsteady cost per call, called directly (median):")
    print(f"{'view':18} {'compute ms':>10} {'draw ms':>8} {'PNG ms':>7} {'frames':>6} {'pixels':>9}")
    for name, c in res["steady"]["views"].items():
        print(
            f"{name:18} {c['compute_ms']:10.1f} {c['draw_ms']:8.1f} {c['encode_ms']:7.1f} "
            f"{c['frames']:6d} {c['pixels']:9d}"
        )
    fb = res["steady"]["forward_backward_ms"]
    print(
        f"one forward+backward of {ARGS.view_samples} samples: {fb['input']:.1f} ms (gradient w.r.t. the input), "
        f"{fb['weights']:.1f} ms (w.r.t. the weights)"
    )
    if "GradCAM" in res["steady"]["views"]:
        g = res["steady"]["views"]["GradCAM"]
        print(f"Grad-CAM compute / forward+backward (input) = {g['compute_ms'] / fb['input']:.2f}x")
    naive = res["naive_matplotlib_ms"]
    print(
        "naive pyplot subplot-per-filter grid: "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in naive.items())
        + f" (total {sum(naive.values()):.0f} ms)"
    )
    if "FilterGrid" in res["steady"]["views"]:
        print(f"FilterGrid draw (both layers): {res['steady']['views']['FilterGrid']['draw_ms']:.1f} ms")


def print_rest(res: dict[str, Any]) -> None:
    if "long_fit" in res:
        print(f"\nin one {ARGS.long_epochs}-epoch fit each (steady own time per epoch, PNG waits included):")
        for cfg, row in res["long_fit"].items():
            calls = ", ".join(f"{k} {fmt(v, '.1f')} ms" for k, v in row["own_ms"].items())
            print(
                f"{cfg:18} epoch {fmt(row['epoch_s'], '.2f')} s  ratio {fmt(row['ratio'], '.3f')}  "
                f"own {fmt(row['own_pct'], '5.1f')}%  ({calls})"
            )
    if "alternate" in res:
        print(
            f"\nin one {2 * ARGS.alternate_pairs + 2}-epoch fit each, rendering every other epoch (the plain epochs "
            "between are the baseline):"
        )
        for cfg, row in res["alternate"].items():
            calls = ", ".join(f"{k} {fmt(v, '.1f')} ms" for k, v in row["own_ms"].items())
            lo, hi = row["wall_pct_range"] or (None, None)
            slo, shi = row["own_same_epoch_pct_range"] or (None, None)
            print(
                f"{cfg:18} plain epoch {fmt(row['plain_epoch_s'], '.2f')} s  own {fmt(row['own_pct'], '5.1f')}%  "
                f"own/same epoch {fmt(row['own_same_epoch_pct'], '5.1f')}% ({fmt(slo, '.1f')} .. {fmt(shi, '.1f')}%)  "
                f"wall {fmt(row['wall_pct'], '5.1f')}% (pairs {fmt(lo, '.1f')} .. {fmt(hi, '.1f')}%)  ({calls})"
            )
    if "traces" in res:
        print(f"\ntrace counts over {ARGS.trace_epochs} epochs: {json.dumps(res['traces'])}")
    if "memory" not in res:
        return
    mem = res["memory"]
    print(
        f"memory, tiny model, every view, {mem['epochs']} epochs: RSS growth epoch 10 -> {mem['epochs']} = "
        f"{mem['rss_growth_mb']:.1f} MB raw, {mem['rss_trimmed_growth_mb']:.1f} MB after malloc_trim "
        f"(same model without callbacks: {res['memory_baseline']['rss_growth_mb']:.1f} / "
        f"{res['memory_baseline']['rss_trimmed_growth_mb']:.1f} MB), open files growth {mem['fds_growth']}"
    )


def main() -> None:
    names = list(kv.datasets.SHAPE_NAMES)
    train = kv.datasets.shapes(ARGS.samples, seed=0)
    val = kv.datasets.shapes(1000, seed=1)
    samples = (val.images[: ARGS.view_samples], val.labels[: ARGS.view_samples])
    res: dict[str, Any] = {"machine": machine(), "args": vars(ARGS)}
    with tempfile.TemporaryDirectory(prefix="kv_bench_") as tmp:
        t = time.perf_counter()
        if "overhead" in ARGS.phases:
            over = overhead_phase(tmp, (train.images, train.labels), samples, (val.images, val.labels), names)
            res["overhead"] = over["configs"]
            res["steady"] = steady_costs(over["state"], samples)
            res["naive_matplotlib_ms"] = naive_matplotlib(over["state"]["baseline"]["model"])
            del over
            gc.collect()
        if "long" in ARGS.phases and ARGS.long_epochs > 1:
            data, val_data = (train.images, train.labels), (val.images, val.labels)
            res["long_fit"] = long_fit_phase(tmp, data, samples, val_data, names)
        if "alternate" in ARGS.phases and ARGS.alternate_pairs > 1:
            data, val_data = (train.images, train.labels), (val.images, val.labels)
            res["alternate"] = alternate_phase(tmp, data, samples, val_data, names)
        if "traces" in ARGS.phases:
            res["traces"] = trace_phase(tmp, samples, (val.images, val.labels), names)
        if "memory" in ARGS.phases:
            res["memory_baseline"] = baseline_memory_phase()
            res["memory"] = memory_phase(tmp)
        res["wall_s"] = time.perf_counter() - t
    res["machine"]["load_avg_end"] = os.getloadavg()
    print_report(res)
    if ARGS.json:
        with open(ARGS.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, default=str)
        print(f"\nJSON: {ARGS.json}")


# --------------------------------------------------------------------------- real-size workload


def backbone_model(name: str, size: int, n_classes: int) -> keras.Model:
    """A keras.applications backbone (weights=None: nothing downloaded), nested in a functional
    model with global average pooling and a softmax head, as in transfer learning."""
    make = {"mobilenetv2": keras.applications.MobileNetV2, "resnet50": keras.applications.ResNet50}[name]
    base = make(include_top=False, weights=None, input_shape=(size, size, 3))
    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D(name="gap")(base(inp))
    out = keras.layers.Dense(n_classes, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name=f"{name}_classifier")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def real_size_views(samples: tuple, names: list[str], n: int) -> dict[str, tuple[Any, float]]:
    """name -> (make(log_dir), forward+backward passes of the n samples the method needs)."""
    bs = ARGS.view_batch_size
    k, m = ARGS.smoothgrad_samples, ARGS.ig_steps
    common = {"max_samples": n, "class_names": names, "batch_size": bs}
    return {
        "gradcam": (lambda d: kv.GradCAM(d, samples, **common), 1.0),
        "scorecam": (lambda d: kv.GradCAM(d, samples, method="scorecam", **common), float("nan")),
        "vanilla": (lambda d: kv.Saliency(d, samples, method="vanilla", **common), 1.0),
        "smoothgrad": (
            lambda d: kv.Saliency(d, samples, method="smoothgrad", method_options={"n_samples": k}, **common),
            float(k + 1),  # n noisy copies, plus the images themselves
        ),
        "integrated_gradients": (
            lambda d: kv.Saliency(d, samples, method="integrated_gradients", method_options={"steps": m}, **common),
            float(m + 2),  # steps + 1 points on the path, plus the images themselves
        ),
    }


def real_size_main() -> None:
    from keras_vizcallbacks._threads import quiet_blas
    from keras_vizcallbacks.explain._memory import MEMORY_BUDGET, default_batch_size, values_per_example
    from keras_vizcallbacks.writers.tensorboard import encode_png

    t_start = time.perf_counter()
    names = list(kv.datasets.SHAPE_NAMES)
    n = ARGS.view_samples
    data = kv.datasets.shapes(n, size=ARGS.image_size, seed=1)
    samples = (data.images[:n], data.labels[:n])
    _backend.set_random_seed(0)
    model = backbone_model(ARGS.backbone, ARGS.image_size, len(names))
    res: dict[str, Any] = {
        "machine": machine(),
        "args": vars(ARGS),
        "params": int(model.count_params()),
        "values_per_image": values_per_example(model),
        "default_batch_size": default_batch_size(model),
        "memory_budget_mib": MEMORY_BUDGET / 2**20,
        "rss_after_build_mb": peak_rss_mb(),
    }
    xs = samples[0]
    fb = input_gradient(model)
    _backend.to_numpy(fb(xs))  # traces
    ts = []
    for _ in range(max(3, ARGS.reps)):
        t = time.perf_counter()
        _backend.to_numpy(fb(xs))
        ts.append(time.perf_counter() - t)
    res["forward_backward_ms"] = 1e3 * statistics.median(ts)
    res["rss_after_forward_backward_mb"] = peak_rss_mb()
    print(f"  forward+backward of {n}: {res['forward_backward_ms']:.0f} ms", file=sys.stderr, flush=True)
    wanted = [v.strip() for v in ARGS.views.split(",") if v.strip()]
    table = real_size_views(samples, names, n)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kv_bench_real_") as tmp, quiet_blas():
        for name in wanted:
            make, passes = table[name]
            cb = make(os.path.join(tmp, name))
            cb.set_model(model)
            cb.on_train_begin()
            t = time.perf_counter()
            computed = cb.compute(0)
            first = time.perf_counter() - t
            comp, draw, enc = [], [], []
            for _ in range(ARGS.reps):
                t = time.perf_counter()
                computed = cb.compute(0)
                comp.append(time.perf_counter() - t)
                t = time.perf_counter()
                frames = [f for f in cb.draw(computed, 0) if hasattr(f, "image")]
                draw.append(time.perf_counter() - t)
                t = time.perf_counter()
                for f in frames:
                    encode_png(f.image)
                enc.append(time.perf_counter() - t)
            cb.on_train_end()
            total = statistics.median(comp) + statistics.median(draw) + statistics.median(enc)
            ref = passes * res["forward_backward_ms"] / 1e3
            rows[name] = {
                "first_compute_s": first,
                "compute_s": statistics.median(comp),
                "draw_s": statistics.median(draw),
                "encode_s": statistics.median(enc),
                "total_s": total,
                "passes": passes,
                "reference_s": ref,
                "ratio": total / ref if ref == ref else None,
                "compute_ratio": statistics.median(comp) / ref if ref == ref else None,
                "batch_size": cb.explainer.batch_size,
                "image_shape": list(frames[0].image.shape),
                "peak_rss_mb": peak_rss_mb(),
            }
            if name == "scorecam":
                ex = cb.explainer
                rows[name]["channels"] = ex.channels
                rows[name]["max_channels"] = ex.max_channels
            print(f"  {name}: {total:.2f} s/epoch, peak RSS {peak_rss_mb():.0f} MB", file=sys.stderr, flush=True)
            del cb, computed, frames
            gc.collect()
    res["views"] = rows
    res["wall_s"] = time.perf_counter() - t_start
    res["machine"]["load_avg_end"] = os.getloadavg()
    print_real_size(res)
    if ARGS.json:
        with open(ARGS.json, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1, default=str)
        print(f"\nJSON: {ARGS.json}")


TARGETS = {"gradcam": 3.0, "smoothgrad": 1.3, "integrated_gradients": 1.3}


def print_real_size(res: dict[str, Any]) -> None:
    m = res["machine"]
    fb = res["forward_backward_ms"]
    print(
        f"\n{m['backend']} {m[m['backend']]}, Keras {m['keras']}: {ARGS.backbone} (weights=None, "
        f"{res['params'] / 1e6:.1f} M parameters), {ARGS.image_size}x{ARGS.image_size}, {ARGS.view_samples} samples, "
        f"{m['threads']} threads; load avg {m['load_avg_start']} -> {m['load_avg_end']}; wall {res['wall_s']:.0f} s"
    )
    print(
        f"default batch_size {res['default_batch_size']} ({res['values_per_image'] / 1e6:.1f} M values per image, "
        f"{res['memory_budget_mib']:.0f} MiB budget); one forward+backward of {ARGS.view_samples} samples: {fb:.0f} ms"
    )
    print(
        f"{'view':22} {'batch':>5} {'compute s':>9} {'draw s':>7} {'PNG s':>6} {'total s':>8} {'passes':>6} "
        f"{'ref s':>7} {'ratio':>6} {'target':>16} {'picture':>11} {'peak RSS MB':>11}"
    )
    for name, r in res["views"].items():
        target = TARGETS.get(name)
        if target is not None:
            verdict = f"{'met' if r['ratio'] <= target else 'MISSED'} ({target:g}x)"
        elif name == "scorecam":
            verdict = f"capped {min(r['channels'], r['max_channels'] or r['channels'])}/{r['channels']}"
        else:
            verdict = "-"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        passes = "-" if r["passes"] != r["passes"] else f"{r['passes']:g}"
        ref = "-" if r["reference_s"] != r["reference_s"] else f"{r['reference_s']:.2f}"
        shape = "x".join(str(v) for v in r["image_shape"][:2])
        print(
            f"{name:22} {r['batch_size']:5d} {r['compute_s']:9.2f} {r['draw_s']:7.2f} {r['encode_s']:6.2f} "
            f"{r['total_s']:8.2f} {passes:>6} {ref:>7} {ratio:>6} {verdict:>16} {shape:>11} {r['peak_rss_mb']:11.0f}"
        )
    print(f"peak RSS after the model was built: {res['rss_after_build_mb']:.0f} MB, after forward+backward: "
          f"{res['rss_after_forward_backward_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    if ARGS.backbone:
        real_size_main()
    else:
        main()
