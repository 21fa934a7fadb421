"""The methods: model + arrays -> float32 numpy arrays. No TensorBoard, no pixels.

Usable on their own in a notebook::

    import keras_vizcallbacks as kv
    maps = kv.explain.feature_maps(model, x[:4])
    kernels = kv.explain.filters(model)
    cams = kv.explain.grad_cam(model, x[:8], method="gradcam++")

Everything a callback uses is a public name of this package (`__all__`): the
explainers (built once, called every epoch), the method tables, the
probability helpers and the data pass shared by views on the same data.
"""

from keras_vizcallbacks.explain._batches import Predictor, batch_size_for, take_index
from keras_vizcallbacks.explain._memory import MEMORY_BUDGET, check_batch_size
from keras_vizcallbacks.explain._outputs import (
    check_classifier,
    check_one_output,
    classes_and_confidence,
    logits_to_probabilities,
    n_classes,
    n_outputs,
    to_probabilities,
)
from keras_vizcallbacks.explain._placement import normalize_maps, place_on_input
from keras_vizcallbacks.explain._shared import SharedView, shared_passes
from keras_vizcallbacks.explain._shared import register as shared_pass
from keras_vizcallbacks.explain._targets import check_score_function, is_score_function, score_name, split_inputs
from keras_vizcallbacks.explain.activation_max import (
    REGULARIZATIONS,
    ActivationMaximizer,
    Regularization,
    activation_maximization,
    check_input_range,
)
from keras_vizcallbacks.explain.activations import ActivationProbe, feature_maps
from keras_vizcallbacks.explain.boundary import MODES as BOUNDARY_MODES
from keras_vizcallbacks.explain.boundary import DecisionRegionExplainer, DecisionRegions, decision_regions
from keras_vizcallbacks.explain.cam_methods import CAM_METHODS, SCORECAM_CHANNELS, CAMMethod, MaskedScorer, cam_method
from keras_vizcallbacks.explain.confusion import NORMALIZE as CONFUSION_NORMALIZE
from keras_vizcallbacks.explain.confusion import confusion_matrix, normalize_confusion
from keras_vizcallbacks.explain.filters import channel_summary, conv_kernels, filters
from keras_vizcallbacks.explain.gradcam import CAMResult, GradCAMExplainer, cam_layer, check_rank, grad_cam
from keras_vizcallbacks.explain.projection import flip_signs, gram_schmidt_plane, pca2
from keras_vizcallbacks.explain.saliency import REDUCTIONS as SALIENCY_REDUCTIONS
from keras_vizcallbacks.explain.saliency import SaliencyExplainer, SaliencyResult, reduce_channels, saliency
from keras_vizcallbacks.explain.saliency_methods import (
    SALIENCY_METHODS,
    Gradients,
    SaliencyMethod,
    saliency_method,
    saliency_options,
)
from keras_vizcallbacks.explain.selection import (
    channel_means,
    check_filters,
    choose_filters,
    filter_layer,
    kernel_norms,
    largest_norm,
    most_active,
)
from keras_vizcallbacks.explain.top_activations import (
    ChannelStats,
    LayerStats,
    TopActivationResult,
    channel_stats,
    cut_patches,
    rank_activations,
    top_activations,
)
from keras_vizcallbacks.layers import OUTPUT

__all__ = [
    "BOUNDARY_MODES",
    "CAM_METHODS",
    "CONFUSION_NORMALIZE",
    "MEMORY_BUDGET",
    "OUTPUT",
    "REGULARIZATIONS",
    "SALIENCY_METHODS",
    "SALIENCY_REDUCTIONS",
    "SCORECAM_CHANNELS",
    "ActivationMaximizer",
    "ActivationProbe",
    "CAMMethod",
    "CAMResult",
    "ChannelStats",
    "DecisionRegionExplainer",
    "DecisionRegions",
    "GradCAMExplainer",
    "Gradients",
    "LayerStats",
    "MaskedScorer",
    "Predictor",
    "Regularization",
    "SaliencyExplainer",
    "SaliencyMethod",
    "SaliencyResult",
    "SharedView",
    "TopActivationResult",
    "activation_maximization",
    "batch_size_for",
    "cam_layer",
    "cam_method",
    "channel_means",
    "channel_stats",
    "channel_summary",
    "check_batch_size",
    "check_classifier",
    "check_filters",
    "check_input_range",
    "check_one_output",
    "check_rank",
    "check_score_function",
    "choose_filters",
    "classes_and_confidence",
    "confusion_matrix",
    "conv_kernels",
    "cut_patches",
    "decision_regions",
    "feature_maps",
    "filter_layer",
    "filters",
    "flip_signs",
    "grad_cam",
    "gram_schmidt_plane",
    "is_score_function",
    "kernel_norms",
    "largest_norm",
    "logits_to_probabilities",
    "most_active",
    "n_classes",
    "n_outputs",
    "normalize_confusion",
    "normalize_maps",
    "pca2",
    "place_on_input",
    "rank_activations",
    "reduce_channels",
    "saliency",
    "saliency_method",
    "saliency_options",
    "score_name",
    "shared_pass",
    "shared_passes",
    "split_inputs",
    "take_index",
    "to_probabilities",
    "top_activations",
]
