"""The 1-D (Conv1D: time series, audio, sensors) pictures of the gradient views and the feature
maps: the signal's channels as lines, maps and layer outputs under them (render/signal.py).
`GradCAM`, `Saliency` and `FeatureMaps` call these when their input or layer is 1-D."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_vizcallbacks import layers as L
from keras_vizcallbacks.callbacks.base import Frame
from keras_vizcallbacks.explain import channel_summary
from keras_vizcallbacks.render import header, overlay, spread
from keras_vizcallbacks.render.signal import MAX_LINES, signal_feature_grid, signal_map_grid


def signals(view: Any) -> np.ndarray:
    """The view's samples as float32 signals (N, steps, C): its explainer's image input."""
    ex = view.explainer
    return np.asarray(ex.prepare_inputs(view.x)[ex.image_index], dtype=np.float32)


def signal_inputs(model: Any, x: Any) -> np.ndarray | None:
    """`FeatureMaps`' samples as signals (N, steps, C) when the image input is one, else None."""
    if isinstance(x, (list, dict)):
        idx = L.image_input_index(model)
        x = list(x.values())[idx] if isinstance(x, dict) else x[idx]
    x = np.asarray(x)
    return x.astype(np.float32) if x.ndim == 3 else None


def _lines_text(c: int) -> str:
    if c <= MAX_LINES:
        return f"its {c} channel{'s' if c > 1 else ''} as lines" if c > 1 else "the signal as a line"
    return f"{MAX_LINES} of its {c} channels (evenly spaced) as lines"


def grad_cam_frame(view: Any, signals: np.ndarray, computed: dict[str, np.ndarray], epoch: int) -> Frame:
    """`GradCAM`'s picture of 1-D samples: per sample the signal and the map as a heat band under it."""
    ex = view.explainer
    maps = computed["maps"]
    peak = [float(np.max(r)) if r.size else 0.0 for r in computed["raw"]]
    captions, correct = view._captions(
        computed["classes"], computed["probabilities"], [f"map max {p:.3g}" for p in peak], computed.get("scores")
    )
    grid = signal_map_grid(signals, maps, captions, correct=correct, cmap=view.cmap)
    bar = overlay.colour_bar(grid.shape[1], view.cmap, ("0 (no evidence)", f"map max  (epoch {epoch})"))
    image = header(np.concatenate([grid, bar], axis=0), [ex.title, ex.path, f"epoch {epoch}"])
    cells = computed["raw"].shape[1]
    geo = ex.geometry
    desc = (
        f"**{ex.title} of {type(ex.layer).__name__} `{ex.path}`** ({cells} cells) for {len(maps)} fixed 1-D "
        f"samples ({signals.shape[1]} steps), one panel each: {_lines_text(signals.shape[2])} (one vertical "
        f"scale per sample), and under them the map as a heat band ({view.cmap}), step for step.\n\n"
        f"- Target: {view._target_text()}{view._score_text()}.\n"
        f"- Placement: cell i is centred on step {geo.offset[0]:g} + {geo.stride[0]:g}·i (receptive-field "
        f"centres, each cell sees {geo.size[0]:g} steps), linear in between.\n"
        "- Normalization: ReLU, then each map min-max scaled on its own (blue = its minimum, red = its "
        "maximum; an all-zero map stays blue).\n"
        "- Caption: true class, predicted class and its probability (green = right, red = wrong), and the "
        "map's maximum before scaling (after ReLU), which says how strong the evidence is. Step = epoch."
    )
    return Frame(f"{view.view}/{ex.path}", image, desc)


def saliency_frames(view: Any, signals: np.ndarray, computed: dict[str, np.ndarray], epoch: int) -> list[Any]:
    """`Saliency`'s picture of 1-D samples (the signal, the map as a heat band under it), and the
    completeness gap scalar for methods that have one."""
    ex = view.explainer
    maps = computed["maps"]
    gaps = np.abs(computed["delta"]).reshape(len(maps), -1).max(axis=1) if "delta" in computed else None
    extra = None if gaps is None else [f"gap {g:.2g}" for g in gaps]
    captions, correct = view._captions(computed["classes"], computed["probabilities"], extra, computed.get("scores"))
    pct = view.percentile
    grid = signal_map_grid(
        signals, maps, captions, correct=correct, cmap=view.cmap, symmetric=view.signed, percentile=pct
    )
    top_label = "max" if pct is None else f"p{pct:g}"
    ends = ("-" + top_label, "+" + top_label) if view.signed else ("min", top_label)
    bar = overlay.colour_bar(grid.shape[1], view.cmap, (ends[0], f"{ends[1]}  (epoch {epoch})"))
    image = header(np.concatenate([grid, bar], axis=0), ["saliency", ex.title, f"epoch {epoch}"])
    opts = ", ".join(f"{k}={v!r}" for k, v in view.method_options.items() if not isinstance(v, np.ndarray))
    if view.signed:
        scale = "centred on zero, ±" + ("max |value|" if pct is None else f"the {pct:g}th percentile of |value|")
    else:
        scale = "from its minimum to " + ("its maximum" if pct is None else f"its {pct:g}th percentile (clipped above)")
    tag = f"{view.view}/{view.method}"
    desc = (
        f"**{ex.title}** ({view.method}{', ' + opts if opts else ''}; channels reduced by `{view.reduce}`) for "
        f"{len(maps)} fixed 1-D samples ({signals.shape[1]} steps), one panel each: "
        f"{_lines_text(signals.shape[2])} (one vertical scale per sample), and under them the map as a heat band "
        f"({view.cmap}), step for step.\n\n"
        f"- Target: {view._target_text()}{view._score_text(ex.differentiates)}, differentiated w.r.t. the input "
        "steps.\n"
        f"- Normalization: each map on its own, {scale}.\n"
        "- Caption: true class, predicted class and its probability (green = right, red = wrong)"
    )
    return view._frames_with_gap(tag, image, desc, gaps, len(maps))


def feature_rows(
    maps: np.ndarray, inputs: np.ndarray | None, captions: Any, labels: list[str], cmap: str, title: Any, subtitle: Any
) -> np.ndarray:
    """`FeatureMaps`' picture of a 1-D layer: the samples two to a line, each its input signal and
    one heat row per channel shown."""
    grid = signal_feature_grid(maps, inputs, cmap=cmap, captions=captions, channel_labels=labels)
    return header(grid, title, subtitle)


def feature_rows_text(layer: Any, path: str, shape: str, n: int, chosen: str, cmap: str) -> str:
    """`FeatureMaps`' description of a 1-D layer (``chosen``: which channels are shown)."""
    return (
        f"**Outputs of {type(layer).__name__} `{path}`** (per sample {shape}) for {n} fixed samples, two to a "
        f"line: the input signal as lines (one vertical scale per sample), then one heat row per channel: "
        f"{chosen}, labelled at the left of each line of samples (the same order for every sample). Each row is "
        f"min-max normalized on its own ({cmap}: dark = low, bright = high) and stretched to the signal's width "
        "(cell j over the fraction j / cells of it, not placed by receptive field; a column over several cells shows "
        "the largest); an all-zero (dead) channel is "
        "dark, another constant row mid-colour, magenta = NaN/Inf. Step = epoch."
    )


ROWS_UP_TO = 4  # Conv1D kernels with at most this many input channels show every channel as a row


def kernel_rows(kernels: np.ndarray, channels: str, max_channels: int, cmap: str) -> tuple[str, np.ndarray, str]:
    """`FilterGrid`'s tiles of Conv1D kernels (filters, in, taps): ``(short text, tiles (filters, 1,
    rows, taps), description)``. Each filter is a small heatmap, one row per input channel (taps
    left to right), when ``channels="all"`` (at most ``max_channels``, evenly spaced) or the layer
    has at most `ROWS_UP_TO` input channels (a signal's own channels); else one row, the
    norm-weighted mean over the input channels (`channel_summary`)."""
    n_in, taps = kernels.shape[1], kernels.shape[2]
    if channels == "all" or n_in <= ROWS_UP_TO:
        ci = spread(n_in, max_channels)
        rows = "all" if len(ci) == n_in else f"{len(ci)} of"
        short = f"rows = {rows} {n_in} input channel{'s' if n_in > 1 else ''}"
        desc = (
            f"Each filter is a small heatmap, one row per input channel ({rows} {n_in}, top to bottom"
            f"{', evenly spaced' if len(ci) < n_in else ''}) and its {taps} taps left to right, colormap {cmap} "
            "(centre = 0)"
        )
        return short, kernels[:, ci][:, None], desc
    short = f"norm-weighted mean over {n_in} input channels"
    desc = (
        f"Each filter is one row of its {taps} taps: the norm-weighted mean of its {n_in} per-input-channel "
        f"kernels (sum_i |K_i| K_i / sum_i |K_i|, so the strongest input channels dominate), colormap {cmap} "
        "(centre = 0)"
    )
    return short, channel_summary(kernels)[:, :, None], desc
