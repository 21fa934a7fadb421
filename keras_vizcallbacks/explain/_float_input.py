"""Integer inputs (``keras.Input(dtype="uint8")`` followed by a Rescaling layer): gradients with
respect to the input cast to float.

A model called on an integer input casts whatever it is given back to that dtype, and the cast
to an integer has no gradient: every saliency method would return all-zero maps, and SmoothGrad's
noise and Integrated Gradients' path would be rounded away. The explainers differentiate the same
graph (the user's layers and weights, shared) re-run on a float32 input instead: its forward
values equal the model's on the integer images, and its gradients are those of the input cast to
float, the maps of the same model built with a float input.
"""

from __future__ import annotations

import keras

from keras_vizcallbacks import layers as L


def is_float(dtype: object) -> bool:
    return "float" in str(dtype)


def float_input(net: keras.Model, index: int) -> keras.Model:
    """``net`` when its input ``index`` is floating point; else its graph on a float32 input there
    (the other inputs keep their dtypes). Outputs come as a list, as `build_probe`'s do."""
    if is_float(net.inputs[index].dtype):
        return net
    inputs = [
        keras.Input(batch_shape=t.shape, dtype="float32" if i == index else t.dtype) for i, t in enumerate(net.inputs)
    ]
    _, outs = L.replay(net, inputs)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], list(outs), name=f"{net.name}_float_input")
