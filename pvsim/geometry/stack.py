"""1D layer stacks (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mesh import Mesh, from_arrays


@dataclass(frozen=True)
class Layer:
    region: str
    thickness_m: float
    spacing_m: float | None = None  # largest cell; default thickness/100
    min_spacing_m: float | None = None  # cell size at both faces (geometric grading)


def _graded(t: float, h_max: float, h_min: float, ratio: float = 1.2) -> np.ndarray:
    """Cell sizes filling [0, t], h_min at both ends growing by ``ratio`` up to h_max."""
    if h_min >= h_max:
        n = max(1, int(np.ceil(t / h_max)))
        return np.full(n, t / n)
    ramp = [h_min]
    while ramp[-1] * ratio < h_max and 2 * (sum(ramp) + ramp[-1] * ratio) < t:
        ramp.append(ramp[-1] * ratio)
    ramp = np.array(ramp)
    middle = t - 2 * ramp.sum()
    n_mid = max(1, int(np.ceil(middle / h_max))) if middle > 0 else 0
    sizes = np.concatenate([ramp, np.full(n_mid, middle / n_mid) if n_mid else [], ramp[::-1]])
    return sizes * t / sizes.sum()


def layer_stack(layers: list[Layer], left_contact: str | None = None,
                right_contact: str | None = None) -> Mesh:
    """A 1D mesh of consecutive layers along x, starting at x = 0 (metres)."""
    x = [0.0]
    regions = {}
    for layer in layers:
        if layer.thickness_m <= 0:
            raise ValueError(f"layer '{layer.region}': thickness must be positive")
        h = layer.spacing_m or layer.thickness_m / 100
        sizes = _graded(layer.thickness_m, h, layer.min_spacing_m or h)
        start = len(x) - 1
        x.extend(x[-1] + np.cumsum(sizes))
        idx = np.arange(start, len(x) - 1)
        cells = np.stack([idx, idx + 1], axis=1)
        regions[layer.region] = np.concatenate([regions[layer.region], cells]) \
            if layer.region in regions else cells
    boundaries = {}
    if left_contact:
        boundaries[left_contact] = [[0]]
    if right_contact:
        boundaries[right_contact] = [[len(x) - 1]]
    return from_arrays(np.array(x), regions, boundaries, source="layer stack")


