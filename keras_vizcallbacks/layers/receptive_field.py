"""Receptive-field geometry: where the cells of a layer's spatial output sit on the model input,
and which input pixels each cell sees.

Computed once from the layer stack (kernel sizes, strides, dilations, padding,
zero padding and cropping) by replaying the graph, nested models included;
shared by everything that places a layer's map on the input (Grad-CAM) or cuts
a cell's input patch out (top activations, the border of activation
maximization).

Two answers per cell, along each spatial axis:

* the *window* ``[lo, lo + size)``, ``lo = offset + i * stride - (size - 1) / 2``:
  the regular grid of `Geometry` (stride, offset, size), the same for every
  cell, reaching past the image border where a layer pads;
* the *field*: the input pixels that actually reach the cell (their hull),
  tracked layer by layer through the real sizes: a tap that falls on padding
  reads no pixel, so near a padded border the field is the window clipped to
  the image, or smaller (a dilated tap that skips the border pixels, a cell
  that reads only padding has an empty field). Known when the input size is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from keras_vizcallbacks.layers.discovery import CONV_TYPES, POOL_TYPES, image_input_index, is_model
from keras_vizcallbacks.layers.probes import replay

Bounds = tuple[tuple[np.ndarray, np.ndarray], ...]  # per spatial axis: (lo, hi) per cell, [lo, hi)


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where the cells of a layer's spatial output sit on the model input.

    Along each spatial axis, cell ``i`` is centred on input coordinate
    ``offset + i * stride`` (pixel centres are integers, pixel 0 at 0.0) and
    its window spans ``size`` input pixels (see the module docstring).
    ``bounds`` holds the exact fields per axis, ``(lo, hi)`` arrays over the
    layer's cells, when the input size is known (else None).
    """

    stride: tuple[float, ...]
    offset: tuple[float, ...]
    size: tuple[float, ...]
    bounds: Bounds | None = dataclasses.field(default=None, compare=False, repr=False)

    def centres(self, shape: Sequence[int]) -> list[np.ndarray]:
        """Input coordinates of the cell centres of a map of ``shape``."""
        return [o + s * np.arange(n) for o, s, n in zip(self.offset, self.stride, shape, strict=True)]

    def windows(self, cells: Any) -> tuple[np.ndarray, np.ndarray]:
        """The windows of ``cells``, an integer array (..., n) of cell indices (one per spatial
        axis): ``(lo, hi)`` int arrays (..., n), ``[lo, hi)`` per axis, every one ``size`` long,
        not clipped to the input."""
        cells = np.asarray(cells, dtype=np.float64)
        offset, stride = np.asarray(self.offset), np.asarray(self.stride)
        size = np.asarray(self.size)
        lo = np.rint(offset + cells * stride - (size - 1) / 2).astype(np.int64)
        return lo, lo + np.rint(size).astype(np.int64)

    def fields(self, cells: Any) -> tuple[np.ndarray, np.ndarray]:
        """The exact fields of ``cells`` (..., n): ``(lo, hi)`` int arrays (..., n), the hull of
        the input pixels that reach each cell (``lo == hi`` on an axis: none does). Without
        ``bounds`` (input size unknown) the windows clipped at 0 on the low side."""
        cells = np.asarray(cells, dtype=np.int64)
        if self.bounds is None:
            lo, hi = self.windows(cells)
            return np.maximum(lo, 0), np.maximum(hi, 0)
        lo = np.stack([b[0][cells[..., ax]] for ax, b in enumerate(self.bounds)], axis=-1)
        hi = np.stack([b[1][cells[..., ax]] for ax, b in enumerate(self.bounds)], axis=-1)
        return lo, hi

    def inside(self, shape: Sequence[int], input_size: Sequence[int]) -> np.ndarray:
        """Boolean mask (``shape``) of the cells whose whole window lies inside an input of
        ``input_size`` and reaches them: the cells that see no padding."""
        cells = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
        lo, hi = self.windows(cells)
        ok = np.all((lo >= 0) & (hi <= np.asarray(input_size)), axis=-1)
        if self.bounds is not None:
            flo, fhi = self.fields(cells)
            ok &= np.all((flo == lo) & (fhi == hi), axis=-1)
        return ok


def clip_windows(
    lo: np.ndarray, hi: np.ndarray, input_size: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows ``[lo, hi)`` (..., n) clipped to an input of ``input_size``: ``(lo, hi, clipped)``,
    ``clipped`` (...) True where a window reached outside the input."""
    size = np.asarray(input_size, dtype=np.int64)
    lo, hi = np.asarray(lo), np.asarray(hi)
    clipped = np.any((lo < 0) | (hi > size), axis=-1)
    return np.clip(lo, 0, size), np.clip(hi, 0, size), clipped


def _tuple(v: Any, n: int) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, (tuple, list)) else (int(v),) * n


def _layer_window(layer: keras.layers.Layer, n: int) -> tuple[tuple, tuple, tuple, str] | None:
    """(kernel, stride, dilation, padding) of a conv or pooling layer, else None."""
    if isinstance(layer, CONV_TYPES):
        k = _tuple(layer.kernel_size, n)
        s = _tuple(layer.strides, n)
        d = _tuple(getattr(layer, "dilation_rate", 1), n)
        return k, s, d, layer.padding
    if isinstance(layer, POOL_TYPES):
        return _tuple(layer.pool_size, n), _tuple(layer.strides, n), (1,) * n, layer.padding
    return None


_PAD_TYPES = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D)
_CROP_TYPES = (keras.layers.Cropping1D, keras.layers.Cropping2D, keras.layers.Cropping3D)


def _layer_shift(layer: keras.layers.Layer, n: int) -> tuple[int, ...] | None:
    """Pixels added before each spatial axis by zero padding (cropping removes: negative), else None."""
    if isinstance(layer, _PAD_TYPES):
        spec, sign = layer.padding, 1
    elif isinstance(layer, _CROP_TYPES):
        spec, sign = layer.cropping, -1
    else:
        return None
    left = (spec[0],) if n == 1 else tuple(p[0] for p in spec)
    return tuple(sign * int(v) for v in left)


def _spatial_dims(shape: Sequence[Any], data_format: str = "channels_last") -> tuple:
    dims = tuple(shape[1:-1]) if data_format == "channels_last" else tuple(shape[2:])
    return dims


def _pad_left(pad: str, n_in: int | None, keff: int, s: int) -> int:
    """Cells of zero padding before the input of a conv / pooling layer along one axis."""
    if pad == "same" and n_in is not None:
        out_n = -(-n_in // s)
        return max((out_n - 1) * s + keff - n_in, 0) // 2
    if pad == "causal":
        return keff - 1
    return 0


def _tap_bounds(
    lo: np.ndarray, hi: np.ndarray, n_out: int, k: int, s: int, d: int, pad_left: int
) -> tuple[np.ndarray, np.ndarray]:
    """Fields of a conv / pooling layer's output cells along one axis from its input cells'
    fields ``[lo, hi)``: the hull of the fields of the taps that land on input cells which
    themselves see some pixel (a tap on padding, or on a cell that reads only padding, adds none).
    Fields are not monotonic in the cell index near a padded border (a dilated tap can skip the
    border pixels of one cell and not of the next), so the hull takes the min and max over taps."""
    taps = np.arange(n_out)[:, None] * s - pad_left + np.arange(k)[None, :] * d  # (n_out, k)
    valid = (taps >= 0) & (taps < len(lo))
    safe = np.clip(taps, 0, max(len(lo) - 1, 0))
    valid &= hi[safe] > lo[safe]
    some = valid.any(axis=1)
    big = np.iinfo(np.int64).max
    out_lo = np.where(valid, lo[safe], big).min(axis=1)
    out_hi = np.where(valid, hi[safe], -big).max(axis=1)
    return np.where(some, out_lo, 0), np.where(some, out_hi, 0)


def _shift_bounds(lo: np.ndarray, hi: np.ndarray, n_out: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """ZeroPadding (``shift`` > 0 cells added before) or Cropping (< 0: removed) along one axis."""
    src = np.arange(n_out) - shift
    ok = (src >= 0) & (src < len(lo))
    safe = np.clip(src, 0, max(len(lo) - 1, 0))
    return np.where(ok, lo[safe], 0), np.where(ok, hi[safe], 0)


def geometry(model: keras.Model, path: str, input_size: Sequence[int] | None = None) -> Geometry:
    """Receptive-field geometry of layer ``path``'s output on the model's input.

    Computed once from the layer stack (kernel sizes, strides, dilations,
    padding) by replaying the graph; merges take their widest branch (and the
    union of the branches' fields). ``input_size`` (the spatial sizes of the
    image input) is for models whose input size is not fixed: 'same' padding
    with a stride pads by an amount that depends on the size, and the exact
    fields need it.
    """
    image = image_input_index(model)
    in_shape = model.inputs[image].shape
    n = len(in_shape) - 2
    shapes = [tuple(t.shape) for t in model.inputs]
    if input_size is not None:
        if len(input_size) != n:
            raise ValueError(f"input_size {tuple(input_size)} has {len(input_size)} axes; the input has {n}.")
        shapes[image] = (shapes[image][0], *(int(v) for v in input_size), shapes[image][-1])
    inputs = [keras.Input(batch_shape=s, dtype=t.dtype) for s, t in zip(shapes, model.inputs, strict=True)]
    dims0 = _spatial_dims(shapes[image])
    start = Geometry((1.0,) * n, (0.0,) * n, (1.0,) * n)
    start_bounds: Bounds | None = None
    if all(isinstance(v, int) for v in dims0):
        start_bounds = tuple((np.arange(v), np.arange(v) + 1) for v in dims0)
    geo: dict[int, Geometry] = {}
    bounds: dict[int, Bounds | None] = {}
    found: dict[str, Geometry] = {}

    def first_tensor(obj: Any) -> list[Any]:
        if isinstance(obj, (list, tuple)):
            return [t for o in obj for t in first_tensor(o)]
        return [obj] if hasattr(obj, "shape") else []

    def merged_bounds(tensors: list[Any], dims: tuple) -> Bounds | None:
        """The union of the inputs' fields (inputs with the output's spatial size), or None."""
        known = [bounds.get(id(t)) for t in tensors if id(t) in geo]
        if not known or any(b is None for b in known):
            return None
        if any(tuple(len(lo) for lo, _ in b) != dims for b in known):
            return None
        return tuple(
            (np.min([b[ax][0] for b in known], axis=0), np.max([b[ax][1] for b in known], axis=0)) for ax in range(n)
        )

    def visit(layer, lpath, args, kwargs):
        ins = first_tensor(args)
        known = [geo[id(t)] for t in ins if id(t) in geo]
        g = max(known, key=lambda q: q.size) if known else start
        widest = next((t for t in ins if id(t) in geo and geo[id(t)] is g), None)
        b_in = bounds.get(id(widest)) if widest is not None else (start_bounds if not known else None)
        if is_model(layer):  # replayed layer by layer: the geometry goes through it
            inner_inputs = list(args) if len(args) > 1 else [args[0]]
            for t in first_tensor(inner_inputs):
                geo.setdefault(id(t), g)
                bounds.setdefault(id(t), b_in)
            _, outs = replay(layer, inner_inputs, visit, prefix=lpath + "/")
            result = outs[0] if len(outs) == 1 else outs
            for t in first_tensor(result):
                if id(t) in geo:
                    continue
                geo[id(t)], bounds[id(t)] = g, None
            if lpath == path:
                found[path] = g
            return result
        result = layer(*args, **kwargs)
        outs = first_tensor(result)
        fmt = getattr(layer, "data_format", "channels_last")
        out_dims = _spatial_dims(outs[0].shape, fmt) if outs and len(outs[0].shape) == n + 2 else None
        sized = out_dims is not None and all(isinstance(v, int) for v in out_dims)
        b_out: Bounds | None = None
        window = _layer_window(layer, n)
        shift = _layer_shift(layer, n)
        if window is not None and ins:
            k, s, d, pad = window
            in_dims = _spatial_dims(ins[0].shape, fmt)
            stride, offset, size, fields = [], [], [], []
            for ax in range(n):
                keff = (k[ax] - 1) * d[ax] + 1
                pad_left = _pad_left(pad, in_dims[ax], keff, s[ax])
                offset.append(g.offset[ax] + ((keff - 1) / 2 - pad_left) * g.stride[ax])
                size.append(g.size[ax] + (keff - 1) * g.stride[ax])
                stride.append(g.stride[ax] * s[ax])
                if b_in is not None and sized:
                    fields.append(_tap_bounds(*b_in[ax], out_dims[ax], k[ax], s[ax], d[ax], pad_left))
            g = Geometry(tuple(stride), tuple(offset), tuple(size))
            b_out = tuple(fields) if len(fields) == n else None
        elif shift is not None:  # ZeroPadding / Cropping move the grid, not its stride
            g = Geometry(g.stride, tuple(o - p * s for o, p, s in zip(g.offset, shift, g.stride)), g.size)
            if b_in is not None and sized:
                b_out = tuple(_shift_bounds(*b_in[ax], out_dims[ax], shift[ax]) for ax in range(n))
        elif sized:  # elementwise, normalization, merges: the same cells
            b_out = merged_bounds(ins, tuple(out_dims))
        for t in outs:
            geo[id(t)] = g
            bounds[id(t)] = b_out
        if lpath == path:
            found[path] = dataclasses.replace(g, bounds=b_out)
        return result

    for t in inputs:
        geo[id(t)] = start
        bounds[id(t)] = start_bounds
    replay(model, inputs, visit)
    if path not in found:
        raise ValueError(f"Layer {path!r} was not reached while replaying model {model.name!r}.")
    return found[path]
