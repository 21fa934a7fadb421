"""Reference models used by the demo, the examples, the tests and the benchmarks."""

from __future__ import annotations

import keras


def reference_cnn(
    input_shape: tuple[int, int, int] = (32, 32, 3),
    n_classes: int = 4,
    *,
    dropout: float = 0.5,
    compile: bool = True,
    learning_rate: float = 1e-3,
    name: str = "seed_cnn",
) -> keras.Sequential:
    """The seed article's CNN: Conv2D(32,3)-MaxPool-Conv2D(64,3)-MaxPool-Flatten-Dense(128)-Dropout-Dense(n, softmax).

    Compiled with Adam and sparse categorical cross-entropy (integer labels) unless ``compile=False``.
    """
    model = keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(32, 3, activation="relu", name="conv2d"),
            keras.layers.MaxPooling2D(2, name="max_pooling2d"),
            keras.layers.Conv2D(64, 3, activation="relu", name="conv2d_1"),
            keras.layers.MaxPooling2D(2, name="max_pooling2d_1"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(128, activation="relu", name="dense"),
            keras.layers.Dropout(dropout, name="dropout"),
            keras.layers.Dense(n_classes, activation="softmax", name="dense_1"),
        ],
        name=name,
    )
    if compile:
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model
