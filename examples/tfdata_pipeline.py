"""A tf.data input pipeline feeding both training and every view.

Training reads a shuffled, augmented, batched and prefetched ``tf.data.Dataset``; the views take
their fixed samples from the validation dataset too (the first few examples are taken once, so
every epoch shows the same images), and the views that evaluate on data read the whole
validation dataset. Nothing is converted to numpy by hand.

    python examples/tfdata_pipeline.py            # 8 epochs on 4000 shapes images
    python examples/tfdata_pipeline.py --small    # 2 epochs on a few hundred (the test)
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/tfdata-<timestamp>; --logdir DIR picks one)
"""

from __future__ import annotations

import argparse
import sys

import keras
import tensorflow as tf

import keras_vizcallbacks as kv
from keras_vizcallbacks.demo import new_log_dir


def pipelines(n_train: int, n_val: int, batch_size: int) -> tuple[tf.data.Dataset, tf.data.Dataset, list[str]]:
    train, val = kv.datasets.shapes(n_train, seed=0), kv.datasets.shapes(n_val, seed=1)

    def augment(image, label):
        image = tf.image.random_flip_left_right(image)
        image = tf.clip_by_value(tf.image.random_brightness(image, 0.1), 0.0, 1.0)
        return image, label

    train_ds = (
        tf.data.Dataset.from_tensor_slices((train.images, train.labels))
        .shuffle(n_train, seed=0)
        .map(augment, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_ds = tf.data.Dataset.from_tensor_slices((val.images, val.labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return train_ds, val_ds, train.class_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="few images and 2 epochs (offline test)")
    parser.add_argument("--epochs", type=int, default=None, help="default 8, 2 with --small")
    parser.add_argument("--logdir", default=None, help="log directory (default: a new logs/tfdata-<timestamp>)")
    args = parser.parse_args(argv)
    args.logdir = args.logdir or new_log_dir("tfdata")
    epochs = args.epochs or (2 if args.small else 8)
    n_train, n_val = (256, 64) if args.small else (4000, 400)

    keras.utils.set_random_seed(0)
    train_ds, val_ds, names = pipelines(n_train, n_val, batch_size=64)
    model = kv.models.reference_cnn(n_classes=len(names))

    log = args.logdir
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.TensorBoard(log),
        kv.FilterGrid(log),
        kv.FeatureMaps(log, samples=val_ds, class_names=names, max_samples=4),  # first 4 of the dataset
    ]
    callbacks.append(kv.GradCAM(log, samples=val_ds, class_names=names))
    callbacks.append(kv.Saliency(log, samples=val_ds, class_names=names))
    callbacks.append(kv.DecisionBoundary(log, data=val_ds, class_names=names))
    callbacks.append(kv.ConfusionMatrix(log, data=val_ds, class_names=names))

    model.fit(train_ds, epochs=epochs, validation_data=val_ds, callbacks=callbacks, verbose=2)
    print(f"\ntensorboard --logdir {log} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
