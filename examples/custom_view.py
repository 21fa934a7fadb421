"""Writing your own view: per-layer activation histograms, built only on the public base class.

A view is one explain function (model outputs -> arrays: here, a histogram per layer) and a short
callback on `kv.VizCallback`: ``prepare`` checks the configuration and builds what is reused every
epoch, ``compute`` touches the model (training thread), ``draw`` turns arrays into `kv.Frame` images.
The base class does the rest: schedule, writer, background PNG encoding, ``async_write``, errors.

The picture, one per conv layer (tag ``activation_histograms/<layer>``): the distribution of the
layer's non-zero outputs over a few fixed samples (bar height = log count), with the fraction of
exact zeros (dead ReLU outputs) and the value range in the header. Over the epochs it shows the
activations spreading out, or a layer dying (zeros going to 100%). See docs/custom_view.md.

    python examples/custom_view.py            # the reference CNN on the shapes set, 8 epochs
    python examples/custom_view.py --small    # 2 epochs on a few images (the test)
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/custom_view-<timestamp>; --logdir DIR picks one)
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, NamedTuple

import keras
import numpy as np

import keras_vizcallbacks as kv


class Histogram(NamedTuple):
    counts: np.ndarray  # (bins,) int64: the non-zero finite values in each bin
    edges: np.ndarray  # (bins + 1,) float64: bin edges from the smallest to the largest of those values
    zeros: float  # fraction of the values that are exactly 0
    size: int  # values in all


def activation_histograms(activations: dict[str, np.ndarray], bins: int = 48) -> dict[str, Histogram]:
    """The explain function: per layer, a histogram of its non-zero outputs (arrays in, arrays out)."""
    result = {}
    for path, a in activations.items():
        a = np.asarray(a, dtype=np.float64).ravel()
        nonzero = a[np.isfinite(a) & (a != 0)]
        lo, hi = (float(nonzero.min()), float(nonzero.max())) if nonzero.size else (0.0, 1.0)
        counts, edges = np.histogram(nonzero, bins=bins, range=(lo, hi if hi > lo else lo + 1.0))
        result[path] = Histogram(counts, edges, float(np.mean(a == 0)) if a.size else 0.0, a.size)
    return result


def histogram_bars(counts: np.ndarray, height: int = 96, bar: int = 8) -> np.ndarray:
    """uint8 (height, bins * bar, 3): one bar per bin (``bar - 1`` px and a 1 px gap), its height the
    log count (full height = the fullest bin)."""
    scale = np.log1p(counts) / max(float(np.log1p(counts).max()), 1e-12)
    tops = np.round(scale * height).astype(int)  # pixels filled, from the bottom
    filled = (height - 1 - np.arange(height))[:, None] < tops[None, :]  # (height, bins)
    filled = np.repeat(filled, bar, axis=1)
    filled[:, bar - 1 :: bar] = False  # the gaps
    return np.where(filled[..., None], np.uint8([70, 140, 200]), np.uint8([20, 20, 20])).astype(np.uint8)


class ActivationHistograms(kv.VizCallback):
    """Histograms of conv layer outputs for fixed samples, tag ``activation_histograms/<layer>``."""

    view = "activation_histograms"

    def __init__(self, log_dir: str, samples: Any, layers: list[str] | None = None, *, bins: int = 48, **options):
        super().__init__(log_dir, **options)  # the options every view takes: every_n_epochs, async_write, ...
        if not isinstance(bins, int) or bins < 2:
            raise ValueError(f"bins must be an integer >= 2, got {bins!r}.")
        self.samples, self.layers, self.bins = samples, layers, bins
        self.probe: kv.explain.ActivationProbe | None = None

    def prepare(self, model: keras.Model) -> None:  # once per model, before the first batch
        available = [path for path, _ in kv.layers.conv_layers(model)]
        paths = self.layers or available
        unknown = [p for p in paths if p not in available]
        if unknown or not paths:
            raise ValueError(f"ActivationHistograms: no conv layer {unknown or ''}; conv layers: {available}.")
        self.probe = kv.explain.ActivationProbe(model, paths)  # one compiled forward pass, built once

    def explainers(self) -> list[Any]:
        return [self.probe]  # trace_counts() reports its compiled function

    def compute(self, epoch: int) -> dict[str, Histogram]:  # training thread: the only model call
        return activation_histograms(self.probe(self.samples), self.bins)

    def draw(self, histograms: dict[str, Histogram], epoch: int) -> list[kv.Frame]:  # arrays -> pictures
        frames = []
        for path, h in histograms.items():
            header = [
                f"activation histogram · {path} · epoch {epoch}",
                f"zeros {h.zeros:.1%} · non-zero values {h.edges[0]:.3g} .. {h.edges[-1]:.3g} (log count)",
            ]
            image = kv.render.caption(histogram_bars(h.counts), header)
            description = (
                f"**Output values of `{path}`** over {len(self.samples)} fixed samples ({h.size} values): "
                f"a histogram of the non-zero values in {self.bins} equal bins between their minimum and maximum "
                "(bar height = log(1 + count), full height = the fullest bin); the header gives the fraction of "
                "exact zeros (dead ReLU outputs) and the range. Step = epoch."
            )
            frames.append(kv.Frame(f"{self.view}/{path}", image, description))
        return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a few images and 2 epochs (offline test)")
    parser.add_argument("--epochs", type=int, default=None, help="default 8, 2 with --small")
    parser.add_argument("--logdir", default=None, help="log directory (default: a new logs/custom_view-<timestamp>)")
    args = parser.parse_args(argv)
    args.logdir = args.logdir or time.strftime("logs/custom_view-%Y%m%d-%H%M%S")  # a new directory per run
    epochs = args.epochs or (2 if args.small else 8)

    keras.utils.set_random_seed(0)
    train = kv.datasets.shapes(256 if args.small else 3000, seed=0)
    val = kv.datasets.shapes(64 if args.small else 400, seed=1)
    model = kv.models.reference_cnn(n_classes=len(train.class_names))
    view = ActivationHistograms(args.logdir, val.images[:16], evolution=True)
    model.fit(
        train.images,
        train.labels,
        epochs=epochs,
        batch_size=64,
        validation_data=(val.images, val.labels),
        callbacks=[keras.callbacks.TensorBoard(args.logdir), view],
        verbose=2,
    )
    print(f"\ntensorboard --logdir {args.logdir} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
