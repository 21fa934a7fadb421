"""When and what: thin keras.callbacks.Callback subclasses, one per view."""

from keras_vizcallbacks.callbacks.activation_max import ActivationMaximization
from keras_vizcallbacks.callbacks.base import Frame, Scalar, VizCallback, VizWarning
from keras_vizcallbacks.callbacks.boundary import DecisionBoundary
from keras_vizcallbacks.callbacks.confusion import ConfusionMatrix
from keras_vizcallbacks.callbacks.feature_maps import FeatureMaps
from keras_vizcallbacks.callbacks.filters import FilterGrid
from keras_vizcallbacks.callbacks.gradcam import GradCAM
from keras_vizcallbacks.callbacks.saliency import Saliency
from keras_vizcallbacks.callbacks.top_activations import TopActivations

__all__ = [
    "ActivationMaximization",
    "ConfusionMatrix",
    "DecisionBoundary",
    "FeatureMaps",
    "FilterGrid",
    "Frame",
    "GradCAM",
    "Saliency",
    "Scalar",
    "TopActivations",
    "VizCallback",
    "VizWarning",
]
