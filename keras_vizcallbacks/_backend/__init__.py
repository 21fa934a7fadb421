"""The only place that knows which Keras backend runs the model.

Everything backend-specific (compiled calls, gradients) is reached through the
functions exported here; the rest of the package stays backend-neutral. Only
TensorFlow is implemented today; JAX and PyTorch slot in as sibling modules.
"""

from __future__ import annotations

import keras

_NAME = keras.backend.backend()

if _NAME == "tensorflow":
    from keras_vizcallbacks._backend.tensorflow import (  # noqa: F401
        TracedFunction,
        compile_function,
        gradient,
        gradients,
        to_numpy,
    )
else:  # pragma: no cover - exercised only under other backends
    raise ImportError(
        f"keras_vizcallbacks supports the TensorFlow backend today; KERAS_BACKEND={_NAME!r}. "
        "Set KERAS_BACKEND=tensorflow."
    )

BACKEND = _NAME
