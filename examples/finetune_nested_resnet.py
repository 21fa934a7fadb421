"""Fine-tuning a nested backbone: ResNet50 as one layer of a classifier, views looking inside it.

The backbone is a whole model used as a layer (``base`` below), so its conv layers are not in the
outer model's graph: Keras 3 raises "Graph disconnected" or ``.output`` errors for the usual
recipes. The callbacks name layers inside it by path (``"resnet50/conv1_conv"``) and rebuild
the graph themselves. Two phases, as in the usual transfer-learning recipe: train the new head
with the backbone frozen, then unfreeze the last stage (conv5) with a small learning rate; the
second fit continues the TensorBoard steps (``initial_epoch``).

    python examples/finetune_nested_resnet.py --small                 # offline, random weights, seconds
    python examples/finetune_nested_resnet.py --weights imagenet      # downloads ImageNet weights (~95 MB)
    tensorboard --logdir logs --samples_per_plugin=images=1000 --host 127.0.0.1

(each run writes a new logs/finetune_resnet-<timestamp>; --logdir DIR picks one)

Data: the embedded shapes set at a larger size (no download). With ``--weights imagenet`` the
first conv layer's filters are the familiar colour edges and blobs from ImageNet.
"""

from __future__ import annotations

import argparse
import sys

import keras
import numpy as np

import keras_vizcallbacks as kv
from keras_vizcallbacks import _backend  # set_random_seed without importing TensorFlow under JAX/PyTorch
from keras_vizcallbacks.demo import new_log_dir


def build(size: int, n_classes: int, weights: str | None) -> tuple[keras.Model, keras.Model]:
    base = keras.applications.ResNet50(include_top=False, weights=weights, input_shape=(size, size, 3))
    base.trainable = False  # phase 1; frozen BatchNorm layers also run in inference mode in Keras 3
    model = keras.Sequential(
        [
            keras.Input((size, size, 3), name="image"),  # pixels in [0, 1]
            # ResNet50's own preprocessing (RGB -> BGR, ImageNet mean subtracted) on 0-255 pixels.
            keras.layers.Lambda(lambda t: keras.applications.resnet50.preprocess_input(t * 255.0), name="preprocess"),
            base,  # the nested model: a whole ResNet50 as one layer
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dropout(0.2, name="dropout"),
            keras.layers.Dense(n_classes, activation="softmax", name="head"),
        ],
        name="finetune",
    )
    return model, base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="few tiny images, 1 + 1 epochs, no validation (test)")
    parser.add_argument("--weights", choices=("none", "imagenet"), default="none", help="backbone weights")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per phase (default 3, 1 with --small)")
    parser.add_argument("--size", type=int, default=None, help="image size (default 96, 64 with --small)")
    parser.add_argument(
        "--logdir", default=None, help="log directory (default: a new logs/finetune_resnet-<timestamp>)"
    )
    args = parser.parse_args(argv)
    args.logdir = args.logdir or new_log_dir("finetune_resnet")
    epochs = args.epochs or (1 if args.small else 3)
    size = args.size or (64 if args.small else 96)
    n_train = 32 if args.small else 2000

    _backend.set_random_seed(0)
    train, val = (
        kv.datasets.shapes(n_train, size=size, seed=0),
        kv.datasets.shapes(16 if args.small else 200, size=size, seed=1),
    )
    try:
        model, base = build(size, len(train.class_names), None if args.weights == "none" else args.weights)
    except Exception as e:  # ImageNet weights need the internet the first time
        print(f"Could not build ResNet50 with weights={args.weights!r}: {e}\nRun offline with --weights none.")
        return 2
    print(f"Backbone {base.name}: {len(base.layers)} layers, weights={args.weights}; images {size}x{size}.")

    log = args.logdir
    samples = (val.images[:4], val.labels[:4])
    views: list[keras.callbacks.Callback] = [
        keras.callbacks.TensorBoard(log),
        # Layers inside the nested backbone, by path.
        kv.FilterGrid(log, layers=[f"{base.name}/conv1_conv"], evolution=True),
        kv.FeatureMaps(
            log,
            samples=samples,
            layers=[f"{base.name}/conv1_conv", f"{base.name}/conv3_block4_out"],
            class_names=train.class_names,
            max_channels=16,
        ),
    ]
    # Grad-CAM on a stage inside the backbone: conv4's output is size/16 cells wide.
    views.append(kv.GradCAM(log, samples=samples, layer=f"{base.name}/conv4_block6_out", class_names=train.class_names))

    # Phase 1: the new head only.
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    # --small skips the validation passes: each fit would trace ResNet50's test step once more.
    validation = None if args.small else (val.images, val.labels)
    model.fit(train.images, train.labels, epochs=epochs, batch_size=32, validation_data=validation,
              callbacks=views, verbose=2)  # fmt: skip

    # Phase 2: unfreeze the last stage (conv5) and fine-tune with a small learning rate; steps continue.
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith("conv5_")
    model.compile(keras.optimizers.Adam(1e-5), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train.images, train.labels, epochs=2 * epochs, initial_epoch=epochs, batch_size=32,
              validation_data=validation, callbacks=views, verbose=2)  # fmt: skip

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    if args.small:  # 32 images, random weights: no accuracy worth tracing ResNet50's test step for
        print(f"trainable weights now {trainable:,}")
    else:
        acc = model.evaluate(val.images, val.labels, verbose=0)[1]
        print(f"validation accuracy {acc:.3f} (chance {1 / len(train.class_names):.2f}); "
              f"trainable weights now {trainable:,}")  # fmt: skip
    print(f"\ntensorboard --logdir {log} --samples_per_plugin=images=1000 --host 127.0.0.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
