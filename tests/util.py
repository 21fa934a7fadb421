"""Test helpers: small models of each kind, random data, and reading back what the callbacks wrote."""

from __future__ import annotations

import gc
import os
import weakref

import keras
import numpy as np

from keras_vizcallbacks import writers


class FiguresMade:
    """``with FiguresMade() as made:`` notes (weakly) every matplotlib Figure created inside the block:
    ``made.total`` counts them, ``made.alive()`` collects garbage and counts those still alive. Cheaper
    than scanning ``gc.get_objects()``, whose cost grows with everything a long test session holds."""

    def __enter__(self) -> FiguresMade:
        from matplotlib.figure import Figure

        self.total = 0
        self._made: weakref.WeakSet = weakref.WeakSet()
        self._original = original = Figure.__init__

        def init(fig, *args, **kwargs):
            original(fig, *args, **kwargs)
            self._made.add(fig)
            self.total += 1

        Figure.__init__ = init
        return self

    def __exit__(self, *exc) -> None:
        from matplotlib.figure import Figure

        Figure.__init__ = self._original

    def alive(self) -> int:
        gc.collect()
        return len(self._made)


def read_run(log_dir: str, run: str = "viz") -> dict[str, list[writers.ImageRecord]]:
    return writers.read_images(os.path.join(log_dir, run))


def steps(records: list[writers.ImageRecord]) -> list[int]:
    return [r.step for r in records]


def image(record: writers.ImageRecord) -> np.ndarray:
    return writers.decode(record)


def assert_steps(run: dict[str, list[writers.ImageRecord]], tags: list[str], expected: list[int]) -> None:
    """Each tag is present with exactly the expected steps, each once."""
    for tag in tags:
        assert tag in run, f"tag {tag!r} missing; written: {sorted(run)}"
        assert steps(run[tag]) == expected, f"{tag}: steps {steps(run[tag])} != {expected}"


def small_sequential(input_shape=(16, 16, 3), n_classes=3) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(4, 3, activation="relu", name="c1"),
            keras.layers.MaxPooling2D(2, name="p1"),
            keras.layers.Conv2D(6, 3, activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(n_classes, activation="softmax", name="out"),
        ],
        name="small_seq",
    )


def small_functional(input_shape=(16, 16, 3), n_classes=3) -> keras.Model:
    inp = keras.Input(input_shape, name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="p1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="c2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(n_classes, activation="softmax", name="out")(x)
    return keras.Model(inp, out, name="small_func")


def small_nested(input_shape=(16, 16, 3), n_classes=3) -> keras.Model:
    """A functional base model used as a layer inside a Sequential model."""
    inp = keras.Input(input_shape)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="base_c1")(inp)
    x = keras.layers.MaxPooling2D(2, name="base_p1")(x)
    x = keras.layers.Conv2D(6, 3, activation="relu", name="base_c2")(x)
    base = keras.Model(inp, x, name="base")
    return keras.Sequential(
        [
            keras.Input(input_shape),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(n_classes, activation="softmax", name="out"),
        ],
        name="small_nested",
    )


MODEL_FACTORIES = {"sequential": small_sequential, "functional": small_functional, "nested": small_nested}


def compiled(model: keras.Model) -> keras.Model:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def random_data(n=24, input_shape=(16, 16, 3), n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *input_shape), dtype=np.float32), rng.integers(0, n_classes, n)


def descriptions_per_step(log_dir: str, run: str = "viz") -> dict[str, dict[int, set[str]]]:
    """``{tag: {step: {description, ...}}}`` of every image and scalar summary as written at each step
    (`writers.read_descriptions` gives only the first, which TensorBoard shows at every step)."""
    out: dict[str, dict[int, set[str]]] = {}
    for event in writers.events.iter_events(os.path.join(log_dir, run)):
        for value in event.summary.value if event.HasField("summary") else []:
            out.setdefault(value.tag, {}).setdefault(int(event.step), set()).add(value.metadata.summary_description)
    return out


def assert_fixed_descriptions(log_dir: str, tags: list[str], run: str = "viz") -> dict[str, str]:
    """Each tag was written with one non-empty description, the same at every step; returns them."""
    seen = descriptions_per_step(log_dir, run)
    fixed = {}
    for tag in tags:
        assert tag in seen, f"tag {tag!r} missing; written: {sorted(seen)}"
        texts = set().union(*seen[tag].values())
        assert len(texts) == 1, f"{tag}: {len(texts)} different descriptions over steps {sorted(seen[tag])}"
        (fixed[tag],) = texts
        assert fixed[tag], f"{tag}: empty description"
    return fixed
