"""The methods: model + arrays -> float32 numpy arrays. No TensorBoard, no pixels.

Usable on their own in a notebook::

    import keras_vizcallbacks as kv
    maps = kv.explain.feature_maps(model, x[:4])
    kernels = kv.explain.filters(model)
"""

from keras_vizcallbacks.explain.activations import ActivationProbe, feature_maps
from keras_vizcallbacks.explain.boundary import DecisionRegionExplainer, DecisionRegions, decision_regions
from keras_vizcallbacks.explain.confusion import confusion_matrix, normalize_confusion
from keras_vizcallbacks.explain.filters import conv_kernels, filters
from keras_vizcallbacks.explain.gradcam import GradCAMExplainer, grad_cam
from keras_vizcallbacks.explain.saliency import SaliencyExplainer, saliency

__all__ = [
    "ActivationProbe",
    "DecisionRegionExplainer",
    "DecisionRegions",
    "GradCAMExplainer",
    "SaliencyExplainer",
    "confusion_matrix",
    "conv_kernels",
    "decision_regions",
    "feature_maps",
    "filters",
    "grad_cam",
    "normalize_confusion",
    "saliency",
]
