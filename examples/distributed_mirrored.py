"""Every view under tf.distribute.MirroredStrategy, on one machine.

With two or more GPUs the strategy mirrors the model on them; without, ``--cpus 2`` (the default
when there is no GPU) splits the CPU into two logical devices, so the script shows data-parallel
training with the views on any laptop. The views need nothing special: they render in the one
process there is, from the mirrored weights (the same pictures a single-device model with these
weights gives, as tests/test_distributed_tf.py checks pixel for pixel).

    python examples/distributed_mirrored.py            # 6 epochs on 4000 shapes images
    python examples/distributed_mirrored.py --small    # 2 epochs on a few hundred
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/mirrored-<timestamp>; --logdir DIR picks one)
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="few images and 2 epochs")
    parser.add_argument("--epochs", type=int, default=None, help="default 6, 2 with --small")
    parser.add_argument("--cpus", type=int, default=None, help="logical CPU devices when there is no GPU (default 2)")
    parser.add_argument("--logdir", default=None, help="log directory (default: a new logs/mirrored-<timestamp>)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.small else 6)
    n_train, n_val = (256, 64) if args.small else (4000, 400)

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf

    # Logical devices must be set before TensorFlow starts its runtime: first thing in the script.
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(args.cpus or 2)]
        )
    devices = [d.name for d in tf.config.list_logical_devices("GPU" if gpus else "CPU")]

    import keras

    import keras_vizcallbacks as kv
    from keras_vizcallbacks.demo import new_log_dir

    strategy = tf.distribute.MirroredStrategy(devices)
    print(f"MirroredStrategy over {strategy.num_replicas_in_sync} devices: {', '.join(devices)}")

    train, val = kv.datasets.shapes(n_train, seed=0), kv.datasets.shapes(n_val, seed=1)
    names = train.class_names
    keras.utils.set_random_seed(0)
    with strategy.scope():  # the model's variables are mirrored on every device
        model = kv.models.reference_cnn(n_classes=len(names))

    log = args.logdir or new_log_dir("mirrored")
    samples = (val.images[:8], val.labels[:8])
    callbacks = [
        keras.callbacks.TensorBoard(log),
        kv.FilterGrid(log),
        kv.FeatureMaps(log, samples=samples, class_names=names, max_samples=4),
        kv.GradCAM(log, samples=samples, class_names=names),
        kv.Saliency(log, samples=samples, class_names=names),
        kv.DecisionBoundary(log, data=(val.images, val.labels), class_names=names),
        kv.ConfusionMatrix(log, data=(val.images, val.labels), class_names=names),
    ]
    model.fit(
        train.images,
        train.labels,
        batch_size=64 * strategy.num_replicas_in_sync,  # 64 per device
        epochs=epochs,
        validation_data=(val.images, val.labels),
        callbacks=callbacks,
        verbose=2,
    )
    print(f"\ntensorboard --logdir {log} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
