"""keras_vizcallbacks: Keras 3 callbacks that show what a convolutional network learns.

Add callbacks to ``model.fit``; at the end of each epoch (or every N) they write
TensorBoard image summaries under ``<log_dir>/viz``::

    import keras_vizcallbacks as kv
    model.fit(x, y, epochs=20, callbacks=[
        keras.callbacks.TensorBoard("logs/run1"),
        kv.FilterGrid("logs/run1"),
        kv.FeatureMaps("logs/run1", samples=x_val[:4]),
    ])
    # tensorboard --logdir logs --samples_per_plugin=images=1000
"""

from keras_vizcallbacks import datasets, explain, layers, models, render, writers
from keras_vizcallbacks.callbacks import FeatureMaps, FilterGrid, Frame, VizCallback, VizWarning
from keras_vizcallbacks.callbacks.activation_max import ActivationMaximization
from keras_vizcallbacks.callbacks.boundary import DecisionBoundary
from keras_vizcallbacks.callbacks.confusion import ConfusionMatrix
from keras_vizcallbacks.callbacks.gradcam import GradCAM
from keras_vizcallbacks.callbacks.saliency import Saliency
from keras_vizcallbacks.callbacks.top_activations import TopActivations

__version__ = "0.1.0"

__all__ = [
    "ActivationMaximization",
    "ConfusionMatrix",
    "DecisionBoundary",
    "FeatureMaps",
    "FilterGrid",
    "Frame",
    "GradCAM",
    "Saliency",
    "TopActivations",
    "VizCallback",
    "VizWarning",
    "__version__",
    "datasets",
    "explain",
    "layers",
    "models",
    "render",
    "writers",
]
