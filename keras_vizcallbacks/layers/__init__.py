"""Layer discovery, nested models, probe models, receptive-field geometry, and the split of a
model at a layer (body and head). Uses Keras only: no model framework, nothing else of ours.

* `discovery`: layers by type, name or nested path; the output layer and its squashing.
* `probes`: the graph re-run symbolically (`replay`), probe models tapping several tensors (`build_probe`).
* `receptive_field`: where a layer's cells sit on the input and the window each sees (`geometry`).
* `surgery`: the head of a model after a layer (`build_head`), the last Dense layer.
* `split`: a model split at a layer (`split_at`): ``(A, logits)`` with a ``delta`` added to ``A``,
  so every backend's autodiff gets ``d score / d A`` as the gradient with respect to an argument.
"""

from keras_vizcallbacks.layers.discovery import (
    CONV_TYPES,
    ELEMENTWISE_TYPES,
    POOL_TYPES,
    ProbeError,
    all_layer_paths,
    check_channels_last_input,
    conv_layers,
    describe_outputs,
    final_squashing,
    find_layer,
    has_graph,
    image_input_index,
    is_model,
    iter_layers,
    output_index,
    output_layer,
    output_names,
    require_graph,
    spatial_output_layers,
)
from keras_vizcallbacks.layers.probes import (
    LOGITS,
    OUTPUT,
    Probe,
    Visitor,
    build_probe,
    output_key,
    pre_activation,
    replay,
)
from keras_vizcallbacks.layers.receptive_field import Geometry, clip_windows, geometry
from keras_vizcallbacks.layers.split import Split, split_at
from keras_vizcallbacks.layers.surgery import build_head, last_dense

__all__ = [
    "CONV_TYPES",
    "ELEMENTWISE_TYPES",
    "LOGITS",
    "OUTPUT",
    "POOL_TYPES",
    "Geometry",
    "Probe",
    "ProbeError",
    "Split",
    "Visitor",
    "all_layer_paths",
    "build_head",
    "build_probe",
    "check_channels_last_input",
    "clip_windows",
    "conv_layers",
    "describe_outputs",
    "final_squashing",
    "find_layer",
    "geometry",
    "has_graph",
    "image_input_index",
    "is_model",
    "iter_layers",
    "last_dense",
    "output_index",
    "output_key",
    "output_layer",
    "output_names",
    "pre_activation",
    "replay",
    "require_graph",
    "spatial_output_layers",
    "split_at",
]
