"""Pictures of dataset samples: one random sample, or a montage of the first ones, each with
its labels blended on the auto-windowed image in the dataset's own colours, with a legend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.dataset.schema import DatasetReader
from radpipe.export.png import write_png
from radpipe.render import blend_labels, label_colours
from radpipe.windowing import apply_window, auto_window

Colours = dict[int, tuple[int, int, int]]


def dataset_colours(reader: DatasetReader) -> Colours:
    """One colour per label of the dataset's table (the same in every tile and picture)."""
    return label_colours(sorted(reader.label_names) or list(range(1, 11)))


def sample_picture(
    image: NDArray[Any], mask: NDArray[np.uint8], colours: Colours | None = None
) -> NDArray[np.uint8]:
    """An (H, W, 3) picture of a 2-D sample (of a 3-D one: the slice with the most labelled
    voxels) with its labels filled and outlined in ``colours``."""
    if image.ndim == 3:
        areas = (mask != 0).reshape(mask.shape[0], -1).sum(axis=1)
        chosen = int(areas.argmax()) if areas.any() else mask.shape[0] // 2
        image, mask = image[chosen], mask[chosen]
    grey = apply_window(image, auto_window(image))
    rgb = np.repeat(grey[..., None], 3, axis=2)
    present = [int(v) for v in np.unique(mask) if v != 0]
    chosen_colours = colours or label_colours(present)
    return blend_labels(rgb, mask, {v: chosen_colours[v] for v in present if v in chosen_colours})


def legend_strip(
    width: int, names: dict[int, str], colours: Colours, *, row_height: int = 16
) -> NDArray[np.uint8]:
    """An (h, width, 3) black strip naming each label beside its colour."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    entries = [(value, f"{value} {names.get(value, '?')}") for value in sorted(colours)]
    per_row = max(1, width // 120)
    rows = max(1, -(-len(entries) // per_row))
    canvas = Image.new("RGB", (width, rows * row_height + 6), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for number, (value, text) in enumerate(entries):
        x = 6 + (number % per_row) * (width // per_row)
        y = 4 + (number // per_row) * row_height
        draw.rectangle([(x, y + 2), (x + 10, y + 12)], fill=colours[value])
        draw.text((x + 15, y + 7), text, fill=(255, 255, 255), font=font, anchor="lm")
    return np.asarray(canvas)


def random_sample_png(
    path: str | Path, png: str | Path, *, seed: int | None = None
) -> tuple[Path, int]:
    """Write a random sample of a dataset file with its labels and legend as PNG; returns the
    PNG and the sample's index."""
    reader = DatasetReader(path)
    index = int(np.random.default_rng(seed).integers(len(reader)))
    images, masks = reader.read([index])
    colours = dataset_colours(reader)
    picture = sample_picture(images[0], masks[0], colours)
    legend = legend_strip(picture.shape[1], reader.label_names, colours)
    return write_png(np.concatenate([picture, legend], axis=0), png, overwrite=True), index


def montage_png(reader: DatasetReader, png: str | Path, *, count: int = 16) -> Path:
    """Write the first ``count`` samples of a dataset as a square montage PNG, every label in
    one colour throughout, with a legend strip under the tiles."""
    shown = min(count, len(reader))
    images, masks = reader.read(list(range(shown)))
    colours = dataset_colours(reader)
    tiles = [
        sample_picture(image, mask, colours) for image, mask in zip(images, masks, strict=True)
    ]
    columns = int(np.ceil(np.sqrt(shown)))
    rows = []
    for start in range(0, shown, columns):
        row = tiles[start : start + columns]
        row += [np.zeros_like(tiles[0])] * (columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    grid = np.concatenate(rows, axis=0)
    legend = legend_strip(grid.shape[1], reader.label_names, colours)
    return write_png(np.concatenate([grid, legend], axis=0), png, overwrite=True)
