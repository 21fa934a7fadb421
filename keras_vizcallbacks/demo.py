"""``python -m keras_vizcallbacks.demo`` (``make demo``): train the seed article's CNN with every view.

Trains `keras_vizcallbacks.models.reference_cnn` on the embedded shapes
data (no download) with ``keras.callbacks.TensorBoard`` (on JAX and PyTorch the
same loss curves without TensorFlow, see `loss_curves`) and every view this
version of the package has, writes ``logs/demo-<timestamp>``, and prints the
TensorBoard command and a summary of what was written. ``--help`` lists the options.
Any Keras backend: ``KERAS_BACKEND=jax python -m keras_vizcallbacks.demo``.

The table of views (`VIEWS`) is also what the examples use to add "every
view".
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Every view the demo knows: name -> (class name in keras_vizcallbacks, what it shows).
VIEWS: dict[str, tuple[str, str]] = {
    "filters": ("FilterGrid", "conv kernels as grids"),
    "feature_maps": ("FeatureMaps", "conv layer outputs for fixed samples"),
    "grad_cam": ("GradCAM", "class activation maps on fixed samples"),
    "saliency": ("Saliency", "input gradients on fixed samples"),
    "decision_boundary": ("DecisionBoundary", "decision regions of an embedding"),
    "confusion_matrix": ("ConfusionMatrix", "predicted vs true classes on validation data"),
}


class DataUnavailable(RuntimeError):
    """The chosen data set could not be loaded (e.g. CIFAR-10 without the internet)."""


@dataclasses.dataclass
class ViewData:
    """What the views may draw on: fixed samples, validation data, class names."""

    samples: tuple[np.ndarray, np.ndarray]  # (x, y) of a few fixed inputs
    validation: tuple[Any, Any]  # (x, y) arrays, or (dataset, None)
    class_names: list[str]


def new_log_dir(name: str, root: str = "logs") -> str:
    """``<root>/<name>-<YYYYmmdd-HHMMSS>``, a directory that does not exist yet (``-2``, ``-3``, ... after it
    when one does): each run of the demo or an example writes its own, so TensorBoard shows the runs side by
    side instead of mixing their event files."""
    base = os.path.join(root, time.strftime(f"{name}-%Y%m%d-%H%M%S"))
    path, k = base, 1
    while os.path.exists(path):
        k += 1
        path = f"{base}-{k}"
    return path


def available_views() -> list[str]:
    """Names (keys of `VIEWS`) of every view; AttributeError if the package lacks one of their classes."""
    import keras_vizcallbacks as kv

    for cls, _ in VIEWS.values():
        getattr(kv, cls)
    return list(VIEWS)


def _accepted(cls: type) -> set[str]:
    """Keyword names ``cls`` takes: its own and the common base options."""
    import keras_vizcallbacks as kv

    names: set[str] = set()
    for klass in (cls, kv.VizCallback):
        for p in inspect.signature(klass.__init__).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.add(p.name)
    return names


def _build(cls: type, log_dir: str, **candidates: Any) -> Any:
    """``cls(log_dir, **candidates)`` with only the keywords ``cls`` accepts (views differ in what they take)."""
    accepted = _accepted(cls)
    kwargs = {k: v for k, v in candidates.items() if v is not None and k in accepted}
    return cls(log_dir, **kwargs)


def make_view(name: str, log_dir: str, data: ViewData, **options: Any) -> Any:
    """One view callback by name, configured for ``data``; ``options`` are the common base options."""
    import keras_vizcallbacks as kv

    if name not in VIEWS:
        raise ValueError(f"Unknown view {name!r}; views: {', '.join(VIEWS)}.")
    cls = getattr(kv, VIEWS[name][0])
    names = data.class_names
    if name == "filters":
        return _build(cls, log_dir, **options)
    if name == "saliency":  # SmoothGrad, as the README shows
        return _build(cls, log_dir, samples=data.samples, class_names=names, method="smoothgrad", **options)
    if name in ("feature_maps", "grad_cam"):
        return _build(cls, log_dir, samples=data.samples, class_names=names, **options)
    if name == "decision_boundary":
        return _build(cls, log_dir, data=data.validation, class_names=names, **options)
    # confusion_matrix
    return _build(cls, log_dir, validation_data=data.validation, data=data.validation, class_names=names, **options)


def view_callbacks(
    log_dir: str, data: ViewData, views: Sequence[str] | None = None, *, quiet: bool = False, **options: Any
) -> list[Any]:
    """Callbacks for ``views`` (default: every view), each writing under ``<log_dir>/viz``.

    ``quiet`` is kept for callers of earlier versions, which skipped missing views with a message.
    """
    wanted = available_views() if views is None else list(views)
    return [make_view(name, log_dir, data, **options) for name in wanted]


# ----------------------------------------------------------------- data


def load_data(dataset: str, n_train: int, n_val: int, seed: int = 0):
    """``(x, y, x_val, y_val, class_names)`` for ``"shapes"`` (embedded) or ``"cifar10"`` (airplane vs car)."""
    from keras_vizcallbacks import datasets

    if dataset == "shapes":
        train = datasets.shapes(n_train, seed=seed)
        val = datasets.shapes(n_val, seed=seed + 1)
        return train.images, train.labels, val.images, val.labels, train.class_names
    if dataset == "cifar10":
        (x, y), (xv, yv), names = datasets.cifar10_airplane_car(n_train, n_val)
        return x, y, xv, yv, names
    raise ValueError(f"Unknown data set {dataset!r}: shapes or cifar10.")


def fixed_samples(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` validation samples covering the classes round-robin (first of each class, then the next, ...)."""
    order: list[int] = []
    by_class = [list(np.flatnonzero(y == c)) for c in np.unique(y)]
    while len(order) < min(k, len(y)):
        for idx in by_class:
            if idx and len(order) < k:
                order.append(idx.pop(0))
    sel = np.asarray(order)
    return x[sel], y[sel]


# ----------------------------------------------------------------- summary


def _dir_size(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return total


def summarize(log_dir: str, run: str = "viz") -> dict[str, Any]:
    """What a fit wrote: ``{"tags": {tag: (steps, width, height)}, "event_bytes", "total_bytes"}``."""
    from keras_vizcallbacks import export, writers

    run_dir = os.path.join(log_dir, run)
    tags: dict[str, tuple[list[int], int, int]] = {}
    if os.path.isdir(run_dir):
        for tag, recs in sorted(writers.read_images(run_dir).items()):
            recs = export.latest_per_step(recs)
            tags[tag] = ([r.step for r in recs], recs[-1].width, recs[-1].height)
    events = [
        os.path.join(run_dir, f) for f in (os.listdir(run_dir) if os.path.isdir(run_dir) else []) if ".tfevents." in f
    ]
    return {
        "tags": tags,
        "event_files": events,
        "event_bytes": sum(os.path.getsize(f) for f in events),
        "total_bytes": _dir_size(log_dir),
    }


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def format_summary(log_dir: str, summary: dict[str, Any], seconds: float) -> str:
    from keras_vizcallbacks.cli import _steps

    tags = summary["tags"]
    width = max((len(t) for t in tags), default=0)
    lines = [
        "",
        f"Wrote {log_dir} in {seconds:.0f} s:",
        f"  run 'viz': {len(tags)} image tag(s), event file {_mib(summary['event_bytes'])} "
        f"({_mib(summary['total_bytes'])} with train/validation scalars)",
    ]
    for tag, (steps, w, h) in tags.items():
        what = "animation (APNG)" if tag.endswith("/evolution") else f"step(s) {_steps(steps)}"
        lines.append(f"    {tag.ljust(width)}  {w}x{h}  {what}")
    return "\n".join(lines)


def tensorboard_hint(log_dir: str) -> str:
    cmd = ["tensorboard", "--logdir", log_dir, "--samples_per_plugin=images=1000", "--host", "127.0.0.1"]
    return (
        "\nSee it in TensorBoard (images tab; the 'viz' run sits beside train/validation):\n"
        f"  {shlex.join(cmd)}\n"
        "then open http://127.0.0.1:6006/#images  (or: keras-vizcallbacks tensorboard " + shlex.quote(log_dir) + ")"
    )


# ----------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m keras_vizcallbacks.demo",
        description="Train the seed article's CNN with every keras_vizcallbacks view and write TensorBoard logs.",
    )
    p.add_argument("--epochs", type=int, default=10, help="epochs to train (default 10)")
    p.add_argument(
        "--dataset",
        choices=("shapes", "cifar10"),
        default="shapes",
        help="shapes: the embedded synthetic set (no download, default); cifar10: the seed article's airplane-vs-car "
        "subset via keras.datasets (needs the internet the first time)",
    )
    p.add_argument("--out", default=None, help="log directory (default: logs/demo-<timestamp>)")
    p.add_argument(
        "--views",
        default="all",
        help=f"comma-separated views, or 'all' (default): {', '.join(VIEWS)}",
    )
    p.add_argument("--samples", type=int, default=6, help="fixed samples drawn by the per-sample views (default 6)")
    p.add_argument("--n-train", type=int, default=2000, help="training images (default 2000)")
    p.add_argument("--n-val", type=int, default=400, help="validation images (default 400)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--every", type=int, default=1, help="render every N epochs (default 1)")
    p.add_argument(
        "--no-evolution", action="store_true", help="do not write the animated <tag>/evolution images (APNG)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--verbose",
        type=int,
        default=1,
        choices=(0, 1, 2),
        help="Keras fit verbosity (1: progress bar; 2: one line per epoch, and the framework's start-up log lines)",
    )
    return p


def parse_views(spec: str) -> list[str] | None:
    if spec.strip().lower() in ("all", ""):
        return None
    names = [v.strip() for v in spec.split(",") if v.strip()]
    unknown = [v for v in names if v not in VIEWS]
    if unknown:
        raise ValueError(f"Unknown view(s) {', '.join(unknown)}; views: {', '.join(VIEWS)} (or 'all').")
    return names


def loss_curves(keras: Any, log_dir: str) -> Any:
    """The loss and metric curves beside the views: ``keras.callbacks.TensorBoard`` on TensorFlow;
    on JAX and PyTorch the same ``epoch_<metric>`` scalars in the ``train`` and ``validation`` runs,
    written by our event-file writer, because Keras' TensorBoard callback writes with ``tf.summary``
    and so imports TensorFlow under every backend."""
    if keras.backend.backend() == "tensorflow":
        return keras.callbacks.TensorBoard(log_dir)
    from keras_vizcallbacks import writers

    class EpochScalars(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.runs = {run: writers.acquire(log_dir, run) for run in ("train", "validation")}

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for key, value in (logs or {}).items():
                run, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                self.runs[run].write_scalar(f"epoch_{name}", float(value), epoch)
            for writer in self.runs.values():
                writer.flush()

        def on_train_end(self, logs: dict | None = None) -> None:
            for writer in self.runs.values():
                writers.release(writer)

    return EpochScalars()


def run(args: argparse.Namespace, print_fn: Callable[[str], None] = print) -> dict[str, Any]:
    """Train and write the logs; returns the summary (see `summarize`) plus ``log_dir`` and ``seconds``."""
    from keras_vizcallbacks._quiet import start_framework

    keras = start_framework(verbose=args.verbose >= 2)  # the framework's start-up lines only with --verbose 2

    import keras_vizcallbacks as kv
    from keras_vizcallbacks import _backend

    start = time.perf_counter()
    views = parse_views(args.views)
    log_dir = args.out or new_log_dir("demo")
    _backend.set_random_seed(args.seed)  # keras.utils.set_random_seed imports TensorFlow under JAX/PyTorch
    try:
        x, y, xv, yv, names = load_data(args.dataset, args.n_train, args.n_val, args.seed)
    except RuntimeError as e:  # cifar10 without the internet
        raise DataUnavailable(str(e)) from e
    print_fn(
        f"[demo] {args.dataset}: {len(x)} training and {len(xv)} validation images {x.shape[1:]}, "
        f"classes {', '.join(names)}"
    )
    model = kv.models.reference_cnn(input_shape=x.shape[1:], n_classes=len(names))
    data = ViewData(fixed_samples(xv, yv, args.samples), (xv, yv), list(names))
    options: dict[str, Any] = {"every_n_epochs": args.every, "evolution": not args.no_evolution}
    callbacks = view_callbacks(log_dir, data, views, **options)
    print_fn(f"[demo] views: {', '.join(f'{type(c).__name__}' for c in callbacks) or 'none'}; writing {log_dir}")
    model.fit(
        x,
        y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(xv, yv),
        verbose=args.verbose,
        callbacks=[loss_curves(keras, log_dir), *callbacks],
    )
    failures = [(type(c).__name__, e, exc) for c in callbacks for e, exc in c.failures]
    for cls, epoch, exc in failures:
        print_fn(f"[demo] {cls} failed at epoch {epoch}: {type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - start
    summary = summarize(log_dir)
    print_fn(format_summary(log_dir, summary, seconds))
    print_fn(tensorboard_hint(log_dir))
    return {**summary, "log_dir": log_dir, "seconds": seconds, "failures": failures}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except DataUnavailable as e:
        print(f"[demo] {e}\n[demo] Run the demo offline with the embedded data: --dataset shapes", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"[demo] {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
