"""The intensity mapping a model applies to its input, fixed at training and stored in the
card: for CT (Hounsfield units, air near -1000) a dataset-wide clip to the 0.5–99.5th
percentiles of the body's voxels (above -500 HU) and a z-score with their mean and spread (as
nnU-Net's CT scheme, over the body rather than the labels, so that a rare darker class such as
a tumour is not clipped into fat; soft-tissue contrast survives, where a per-slice z-score lets
air dominate); for other
modalities a per-slice z-score in 2-D and the same dataset-wide scheme in 3-D; nothing for data
the dataset already normalised."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def fit_intensity(
    images: NDArray[Any], masks: NDArray[np.uint8], *, dimensions: int, normalized: bool
) -> dict[str, Any]:
    """The mapping for a model trained on these (sampled) training images and masks."""
    if normalized:
        return {"mode": "none"}
    hounsfield = float(images.min()) < -500  # air in HU: a CT
    if dimensions == 2 and not hounsfield:
        return {"mode": "slice_zscore"}
    if hounsfield:
        body = images[images > -500]
        values = body if body.size else images.reshape(-1)
    else:
        values = images[masks > 0] if (masks > 0).any() else images.reshape(-1)
    low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    clipped = np.clip(values.astype(np.float64), low, high)
    return {
        "mode": "global_zscore",
        "low": low,
        "high": high,
        "mean": float(clipped.mean()),
        "std": float(clipped.std()) or 1.0,
    }


def apply_intensity(image: NDArray[Any], intensity: dict[str, Any]) -> NDArray[np.float32]:
    """``image`` (H, W) or (D, H, W) mapped as the card says, float32."""
    values = np.asarray(image, dtype=np.float32)
    mode = intensity.get("mode", "none")
    if mode == "slice_zscore":
        if values.ndim == 2:
            return _zscore(values)
        return np.stack([_zscore(plane) for plane in values])
    if mode == "global_zscore":
        clipped = np.clip(values, intensity["low"], intensity["high"])
        return ((clipped - np.float32(intensity["mean"])) / np.float32(intensity["std"])).astype(
            np.float32
        )
    return values


def _zscore(plane: NDArray[np.float32]) -> NDArray[np.float32]:
    std = float(plane.std())
    return ((plane - np.float32(plane.mean())) / np.float32(std or 1.0)).astype(np.float32)
