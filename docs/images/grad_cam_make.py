"""Render the pictures of docs/views/grad_cam.md and saliency.md from really trained models.

    .venv/bin/python docs/images/grad_cam_make.py [out_dir]

Trains the reference CNN on the embedded shapes set (3000 images, 5 epochs, seed 0) with
GradCAM and Saliency (SmoothGrad, Integrated Gradients) attached, then a ResNet50
(weights=None, 64x64) nested in a Sequential classifier on shapes drawn at 64 px, with
GradCAM on layers inside the backbone. Copies the last epoch's frames into docs/images/
and prints the measured costs. Offline; several minutes on 2 CPU cores.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from PIL import Image

import keras_vizcallbacks as kv
from keras_vizcallbacks.explain import GradCAMExplainer

HERE = os.path.dirname(os.path.abspath(__file__))


def frame(png_dir: str, tag: str, step: int) -> np.ndarray:
    with Image.open(kv.writers.png.png_path(png_dir, tag, step)) as im:
        return np.asarray(im.convert("RGB"))


def save(image: np.ndarray, name: str) -> None:
    Image.fromarray(image).save(os.path.join(HERE, name), optimize=True)
    print("wrote", os.path.join("docs/images", name), image.shape)


def cost(fn, repeats: int = 5) -> float:
    fn()  # trace
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def shapes_model(out: str) -> None:
    train, test = kv.datasets.shapes(3000, seed=0), kv.datasets.shapes(400, seed=1)
    keras.utils.set_random_seed(0)
    model = kv.models.reference_cnn(n_classes=4)
    samples = (test.images[:8], test.labels[:8])
    png = os.path.join(out, "png")
    common = {"class_names": train.class_names, "png_dir": png, "run_name": "viz"}
    views = [
        kv.GradCAM(out, samples, **common),
        kv.Saliency(out, samples, method="smoothgrad", **common),
        kv.Saliency(out, samples, method="integrated_gradients", reduce="sum", **common),
    ]
    model.fit(train.images, train.labels, epochs=5, batch_size=64, verbose=2, callbacks=views)
    acc = model.evaluate(test.images, test.labels, verbose=0)[1]
    print(f"shapes CNN test accuracy {acc:.3f}")
    save(frame(png, "grad_cam/conv2d_1", 4), "grad_cam_shapes.png")
    save(frame(png, "grad_cam/conv2d_1", 0), "grad_cam_shapes_epoch0.png")
    save(frame(png, "saliency/smoothgrad", 4), "saliency_smoothgrad_shapes.png")
    save(frame(png, "saliency/integrated_gradients", 4), "saliency_integrated_gradients_shapes.png")
    for v in views:
        print(f"{type(v).__name__} {getattr(v, 'method', '')}: seconds per epoch {np.round(v.timings, 3).tolist()}")
    x8 = test.images[:8]
    for method in ("gradcam", "gradcam++", "layercam", "scorecam"):
        ex = GradCAMExplainer(model, method=method, max_channels=None)  # Score-CAM: all 64 channels, as documented
        print(f"cost {method} shapes CNN, 8 images: {cost(lambda ex=ex: ex.explain(x8)) * 1e3:.1f} ms")
    for method, opts in [("vanilla", {}), ("smoothgrad", {}), ("integrated_gradients", {})]:
        print(
            f"cost saliency {method}, 8 images: "
            f"{cost(lambda m=method, o=opts: kv.explain.saliency(model, x8, method=m, **o)) * 1e3:.1f} ms"
        )


def resnet_model(out: str) -> None:
    size = 64
    n_train = int(os.environ.get("RESNET_TRAIN", "2000"))
    train, test = kv.datasets.shapes(n_train, size=size, seed=0), kv.datasets.shapes(200, size=size, seed=1)
    keras.utils.set_random_seed(0)
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(size, size, 3))
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            base,
            keras.layers.GlobalAveragePooling2D(name="gap"),
            keras.layers.Dense(4, activation="softmax", name="head"),
        ],
        name="nested_resnet",
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    samples = (test.images[:8], test.labels[:8])
    png = os.path.join(out, "png")
    common = {"class_names": train.class_names, "png_dir": png, "run_name": "resnet"}
    views = [
        kv.GradCAM(out, samples, **common),  # resnet50/conv5_block3_out, 2x2 cells at 64 px
        kv.GradCAM(out, samples, layer="resnet50/conv4_block6_out", **common),
    ]
    epochs = int(os.environ.get("RESNET_EPOCHS", "4"))
    model.fit(train.images, train.labels, epochs=epochs, batch_size=32, verbose=2, callbacks=views,
              validation_data=(test.images, test.labels))  # fmt: skip
    acc = model.evaluate(test.images, test.labels, verbose=0)[1]
    print(f"nested ResNet50 test accuracy {acc:.3f}")
    save(frame(png, "grad_cam/resnet50/conv5_block3_out", epochs - 1), "grad_cam_resnet.png")
    save(frame(png, "grad_cam/resnet50/conv4_block6_out", epochs - 1), "grad_cam_resnet_conv4.png")
    ex = views[0].explainer
    print(f"cost gradcam nested ResNet50, 8 images 64x64: {cost(lambda: ex.explain(test.images[:8])) * 1e3:.1f} ms")
    print(f"traces over {epochs} epochs: {[v.explainer.fn.traces for v in views]}")


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="grad_cam_docs_")
    which = os.environ.get("WHICH", "shapes,resnet").split(",")
    if "shapes" in which:
        shapes_model(out)
    if "resnet" in which:
        resnet_model(out)


if __name__ == "__main__":
    main()
