"""What "same weights, same maps" compares: every view's arrays for the trained shapes model.

`compute(model)` runs the explain functions the views use (Grad-CAM's activations, gradients and
maps, Score-CAM, saliency, decision regions in the image modes, feature maps, confusion counts) on
fixed shapes images and returns them as numpy arrays. The backend tests call it in their own
process and, for one other backend, in a subprocess:

    KERAS_BACKEND=jax python tests/backends/shapes_maps.py WEIGHTS.weights.h5 OUT.npz
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

N_IMAGES = 12
N_REGION_POINTS = 120


def data():
    from keras_vizcallbacks import datasets

    return datasets.shapes(N_REGION_POINTS, seed=3)


def compute(model) -> dict[str, np.ndarray]:
    """The arrays each view draws, for the true classes (a near tie between two predicted classes
    cannot flip a map). Grad-CAM's gradient methods differ only in numpy arithmetic on the same
    ``A`` and ``G``, which are compared themselves; Score-CAM has its own compiled passes."""
    import keras_vizcallbacks as kv

    d = data()
    x, y = d.images[:N_IMAGES], d.labels[:N_IMAGES]
    out: dict[str, np.ndarray] = {}
    seen = {}

    def capture(a, g):
        seen["A"], seen["G"] = a, g
        return kv.explain.CAM_METHODS["gradcam"].fn(a, g)

    r = kv.explain.GradCAMExplainer(model, method=capture).explain(x, y, normalize=False)
    out["grad_cam/A"], out["grad_cam/G"] = seen["A"], seen["G"]
    out["grad_cam/gradcam"], out["grad_cam/gradcam/placed"] = r.raw, r.maps
    for name, entry in kv.explain.CAM_METHODS.items():
        if entry.gradients and name != "gradcam":
            out[f"grad_cam/{name}"] = np.maximum(entry.fn(seen["A"], seen["G"]), 0.0)
    r = kv.explain.GradCAMExplainer(model, method="scorecam", batch_size=32).explain(x, y, normalize=False)
    out["grad_cam/scorecam"] = r.raw
    options = {"smoothgrad": {"n_samples": 6}, "integrated_gradients": {"steps": 16}}
    for method in ("vanilla", "smoothgrad", "integrated_gradients"):  # gradient x input: vanilla times x
        out[f"saliency/{method}"] = kv.explain.saliency(
            model, x, class_index=y, method=method, reduce=None, **options.get(method, {})
        )
    for mode in ("embedding", "plane"):
        regions = kv.explain.decision_regions(model, d.images, d.labels, mode=mode, grid_resolution=40)
        out[f"regions/{mode}"] = regions.classes
        out[f"regions/{mode}/probabilities"] = regions.probabilities
    for path, maps in kv.explain.feature_maps(model, x).items():
        out[f"feature_maps/{path}"] = maps
    predicted = kv.explain.Predictor(model).probabilities(d.images)
    out["confusion"] = kv.explain.confusion_matrix(d.labels, predicted, 4)
    return out


def main(weights: str, path: str) -> None:
    from backend_cases import shapes_cnn

    model = shapes_cnn()
    model.load_weights(weights)
    np.savez(path, **compute(model))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
