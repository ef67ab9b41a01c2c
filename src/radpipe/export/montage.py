"""Pictures of dataset samples: one random sample, or a montage of the first ones, each with
its mask blended on the auto-windowed image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.colormaps import blend
from radpipe.dataset.schema import DatasetReader
from radpipe.export.png import write_png
from radpipe.windowing import apply_window, auto_window


def sample_picture(image: NDArray[Any], mask: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """An (H, W, 3) picture of a 2-D sample (the middle slice of a 3-D one) with its labels."""
    if image.ndim == 3:
        image, mask = image[image.shape[0] // 2], mask[mask.shape[0] // 2]
    grey = apply_window(image, auto_window(image))
    unit = np.where(mask > 0, mask / max(int(mask.max()), 1), np.nan).astype(np.float32)
    return blend(grey, unit, colormap="autumn", opacity=0.4)


def random_sample_png(path: str | Path, png: str | Path, *, seed: int | None = None) -> Path:
    """Write a random sample of a dataset file with its mask as PNG."""
    reader = DatasetReader(path)
    index = int(np.random.default_rng(seed).integers(len(reader)))
    images, masks = reader.read([index])
    return write_png(sample_picture(images[0], masks[0]), png, overwrite=True)


def montage_png(reader: DatasetReader, png: str | Path, *, count: int = 16) -> Path:
    """Write the first ``count`` samples of a dataset as a square montage PNG."""
    shown = min(count, len(reader))
    images, masks = reader.read(list(range(shown)))
    tiles = [sample_picture(image, mask) for image, mask in zip(images, masks, strict=True)]
    columns = int(np.ceil(np.sqrt(shown)))
    rows = []
    for start in range(0, shown, columns):
        row = tiles[start : start + columns]
        row += [np.zeros_like(tiles[0])] * (columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    return write_png(np.concatenate(rows, axis=0), png, overwrite=True)
