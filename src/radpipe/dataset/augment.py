"""Paired augmentation of 2-D (H, W) and 3-D (D, H, W) samples: the same geometric change on
image and mask (linear for the image, nearest for the mask), intensity changes on the image
only; deterministic from a generator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

Pair = tuple[NDArray[np.float32], NDArray[np.uint8]]


@dataclass(frozen=True)
class Augment:
    """Which augmentations to apply to a 2-D (H, W) or 3-D (D, H, W) sample, each with its
    probability.

    Attributes
    ----------
    flip_horizontal, flip_vertical, rotate90 : float
        Probabilities (columns, rows; quarter turns in the (H, W) plane).
    flip_depth : float
        Probability of reversing the slice axis of a 3-D sample.
    rotate : float
        Probability of a rotation by an angle drawn from ±``max_angle`` degrees in the (H, W)
        plane; a 3-D sample is also tilted out of that plane by up to ±``max_tilt`` degrees
        about each in-plane axis.
    crop_zoom : float
        Probability of cropping a random window of ``zoom_range`` of the size (every axis) and
        zooming it back.
    brightness, contrast, gamma, noise : float
        Probabilities of intensity changes (image only), scaled by ``intensity_strength``.
    """

    flip_horizontal: float = 0.5
    flip_vertical: float = 0.0
    flip_depth: float = 0.0
    rotate90: float = 0.0
    rotate: float = 0.0
    max_angle: float = 15.0
    max_tilt: float = 0.0
    crop_zoom: float = 0.0
    zoom_range: tuple[float, float] = (0.8, 1.0)
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    noise: float = 0.0
    intensity_strength: float = 0.1
    order: Sequence[str] = field(default=("flip", "rotate90", "rotate", "intensity"))

    @classmethod
    def standard(cls) -> Augment:
        """Flips, a ±15° rotation and a crop-and-zoom (the loader benchmark's set)."""
        return cls(flip_horizontal=0.5, flip_vertical=0.5, rotate=0.5, crop_zoom=0.5)

    @classmethod
    def standard_3d(cls) -> Augment:
        """Flips on every axis, a ±15° in-plane rotation with ±5° tilts and a crop-and-zoom."""
        return cls(
            flip_horizontal=0.5, flip_vertical=0.5, flip_depth=0.5, rotate=0.5, max_tilt=5.0,
            crop_zoom=0.5,
        )  # fmt: skip

    def context_shape(self, output_shape: Sequence[int]) -> tuple[int, ...]:
        """The window around a 2-D output of ``output_shape`` that any rotation and zoom-out
        drawn can read from (square: quarter turns swap the axes).

        Cut that much of the sample, centred where the output should be, and pass
        ``output_shape`` to the call: a zoomed-out or rotated window then shows the anatomy
        around it instead of its own edge pixels repeated.
        """
        extent = float(max(output_shape))
        if self.crop_zoom > 0:
            # a zoom-out window of f × the size lies anywhere around the output, so it reaches
            # (2f - 1) × the size across
            extent *= max(1.0, 2 * float(max(self.zoom_range)) - 1)
        if self.rotate > 0 and self.max_angle > 0:
            angle = np.radians(min(abs(self.max_angle), 45.0))
            extent *= float(np.cos(angle) + np.sin(angle))
        side = int(np.ceil(extent)) + 2
        return (side, side)

    def __call__(
        self,
        image: NDArray[np.float32],
        mask: NDArray[np.uint8],
        rng: np.random.Generator,
        *,
        output_shape: Sequence[int] | None = None,
    ) -> Pair:
        """Augment one pair; identical draws from ``rng`` give identical results.

        With ``output_shape`` (2-D only), the pair is a context window (see
        :meth:`context_shape`) and the result is its augmented centre of that shape.
        """
        if image.shape != mask.shape or image.ndim not in (2, 3):
            raise ValueError(
                f"augmentation needs an image and mask of one 2-D or 3-D shape, got "
                f"{image.shape} and {mask.shape}"
            )
        if image.ndim == 3:
            if output_shape is not None:
                raise ValueError("an output shape (context window) is for 2-D samples only")
            return self._volume(image, mask, rng)
        output = tuple(image.shape) if output_shape is None else tuple(output_shape)
        if any(o > i for o, i in zip(output, image.shape, strict=True)):
            raise ValueError(f"output {output} is larger than the context window {image.shape}")
        warped = False
        for step in self.order:
            if step == "flip":
                if rng.random() < self.flip_horizontal:
                    image, mask = image[:, ::-1], mask[:, ::-1]
                if rng.random() < self.flip_vertical:
                    image, mask = image[::-1], mask[::-1]
            elif step == "rotate90" and rng.random() < self.rotate90:
                turns = int(rng.integers(1, 4))
                image, mask = np.rot90(image, turns), np.rot90(mask, turns)
            elif step == "rotate":
                # rotation and crop-and-zoom are one resampling (one interpolation, not two),
                # drawn for the output's frame, which sits at the centre of the window
                transform = _combined(output, rng, self)
                if transform is not None:
                    matrix, offset = transform
                    margin = (np.array(image.shape) - np.array(output)) // 2
                    pair = (np.ascontiguousarray(image), np.ascontiguousarray(mask))
                    image, mask = _affine_pair(*pair, matrix, offset + margin, output)
                    warped = True
            elif step == "intensity":
                if not warped:
                    image, mask = _centre(image, output), _centre(mask, output)
                    warped = True
                image = self._intensity(image, rng)
        if not warped:
            image, mask = _centre(image, output), _centre(mask, output)
        return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(mask)

    def _volume(
        self, image: NDArray[np.float32], mask: NDArray[np.uint8], rng: np.random.Generator
    ) -> Pair:
        """The 3-D path: flips of each axis, quarter turns in-plane, one trilinear warp for the
        rotation (with tilts) and crop-and-zoom (nearest for the mask), intensity last."""
        for step in self.order:
            if step == "flip":
                for axis, chance in ((2, self.flip_horizontal), (1, self.flip_vertical),
                                     (0, self.flip_depth)):  # fmt: skip
                    if rng.random() < chance:
                        image, mask = np.flip(image, axis), np.flip(mask, axis)
            elif step == "rotate90" and rng.random() < self.rotate90:
                turns = int(rng.integers(1, 4))
                image, mask = np.rot90(image, turns, (1, 2)), np.rot90(mask, turns, (1, 2))
            elif step == "rotate":
                transform = _combined_3d(image.shape, rng, self)
                if transform is not None:
                    image, mask = _affine_volume_pair(image, mask, *transform)
            elif step == "intensity":
                image = self._intensity(np.asarray(image, dtype=np.float32), rng)
        return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(mask)

    def _intensity(
        self, image: NDArray[np.float32], rng: np.random.Generator
    ) -> NDArray[np.float32]:
        strength = self.intensity_strength
        if rng.random() < self.brightness:
            image = image + np.float32(
                rng.uniform(-strength, strength) * (float(np.ptp(image)) or 1.0)
            )
        if rng.random() < self.contrast:
            mean = np.float32(image.mean())
            image = (image - mean) * np.float32(rng.uniform(1 - strength, 1 + strength)) + mean
        if rng.random() < self.gamma:
            low, high = float(image.min()), float(image.max())
            if high > low:
                unit = (image - low) / (high - low)
                image = (
                    unit ** np.float32(np.exp(rng.uniform(-strength, strength))) * (high - low)
                    + low
                )
        if rng.random() < self.noise:
            scale = strength * (float(image.std()) or 1.0)
            image = image + rng.normal(0.0, scale, image.shape).astype(np.float32)
        return image.astype(np.float32, copy=False)


def _affine_pair(
    image: NDArray[np.float32],
    mask: NDArray[np.uint8],
    matrix: NDArray[np.float64],
    offset: NDArray[np.float64],
    output_shape: Sequence[int] | None = None,
) -> Pair:
    """Warp both with one coordinate map: output pixel p reads the input at ``matrix @ p + offset``
    (bilinear with edge clamping for the image, nearest with zero outside for the mask); the
    output has the input's shape unless ``output_shape`` is given."""
    rows, columns = image.shape
    out_rows, out_columns = image.shape if output_shape is None else output_shape
    grid_rows, grid_columns = np.meshgrid(
        np.arange(out_rows, dtype=np.float32),
        np.arange(out_columns, dtype=np.float32),
        indexing="ij",
    )
    m = matrix.astype(np.float32)
    source_rows = m[0, 0] * grid_rows + m[0, 1] * grid_columns + np.float32(offset[0])
    source_columns = m[1, 0] * grid_rows + m[1, 1] * grid_columns + np.float32(offset[1])
    # mask: nearest neighbour, zero outside
    nearest_rows = np.rint(source_rows).astype(np.int32)
    nearest_columns = np.rint(source_columns).astype(np.int32)
    valid = (
        (nearest_rows >= 0)
        & (nearest_rows < rows)
        & (nearest_columns >= 0)
        & (nearest_columns < columns)
    )
    flat = np.clip(nearest_rows, 0, rows - 1) * columns + np.clip(nearest_columns, 0, columns - 1)
    labels = np.where(valid, np.take(mask.ravel(), flat), 0).astype(mask.dtype)
    # image: bilinear, coordinates clamped to the edge
    np.clip(source_rows, 0, rows - 1, out=source_rows)
    np.clip(source_columns, 0, columns - 1, out=source_columns)
    top = (
        np.minimum(source_rows.astype(np.int32), rows - 2)
        if rows > 1
        else np.zeros_like(nearest_rows)
    )
    left = (
        np.minimum(source_columns.astype(np.int32), columns - 2)
        if columns > 1
        else np.zeros_like(nearest_columns)
    )
    down = source_rows - top
    across = source_columns - left
    pixels = image.ravel()
    corner = top * columns + left
    step_down = columns if rows > 1 else 0
    step_across = 1 if columns > 1 else 0
    upper = np.take(pixels, corner) * (1 - across) + np.take(pixels, corner + step_across) * across
    lower = (
        np.take(pixels, corner + step_down) * (1 - across)
        + np.take(pixels, corner + step_down + step_across) * across
    )
    warped = upper * (1 - down) + lower * down
    return warped.astype(np.float32), labels


def _centre(array: NDArray[Any], shape: Sequence[int]) -> NDArray[Any]:
    """The central ``shape`` of a 2-D array (its own view when the shapes agree)."""
    first = [(length - size) // 2 for length, size in zip(array.shape, shape, strict=True)]
    return array[first[0] : first[0] + shape[0], first[1] : first[1] + shape[1]]


def _combined(
    image_shape: Sequence[int], rng: np.random.Generator, augment: Augment
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """One affine for the rotation and the crop-and-zoom (drawn in that order), or None."""
    shape = np.array(image_shape, dtype=np.float64)
    centre = (shape - 1) / 2
    matrix = np.eye(2)
    offset = np.zeros(2)
    changed = False
    if rng.random() < augment.rotate:
        angle = np.radians(float(rng.uniform(-augment.max_angle, augment.max_angle)))
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        matrix, offset = rotation, centre - rotation @ centre
        changed = True
    if rng.random() < augment.crop_zoom:
        matrix, offset = _with_crop_zoom(matrix, offset, shape, rng, augment)
        changed = True
    return (matrix, offset) if changed else None


def _with_crop_zoom(
    matrix: NDArray[np.float64],
    offset: NDArray[np.float64],
    shape: NDArray[np.float64],
    rng: np.random.Generator,
    augment: Augment,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(matrix, offset)`` followed by a crop of ``zoom_range`` of the size (any number of
    axes; a fraction above 1 zooms out) scaled back to the full size."""
    fraction = float(rng.uniform(*augment.zoom_range))
    window = shape * fraction
    slack = shape - window  # negative when zooming out (a window larger than the image)
    start = rng.uniform(np.minimum(slack, 0), np.maximum(slack, 0))
    # output p → zoomed point zoom @ p + start → rotated source matrix @ (...) + offset
    return matrix @ np.diag(window / shape), matrix @ start + offset


def _rotation(axis: int, angle_degrees: float) -> NDArray[np.float64]:
    """3×3 rotation in index space about array axis ``axis``."""
    angle = np.radians(angle_degrees)
    cos, sin = np.cos(angle), np.sin(angle)
    first, second = [a for a in range(3) if a != axis]
    matrix = np.eye(3)
    matrix[first, first], matrix[first, second] = cos, -sin
    matrix[second, first], matrix[second, second] = sin, cos
    return matrix


def _combined_3d(
    image_shape: tuple[int, ...], rng: np.random.Generator, augment: Augment
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """One 3-D affine (output index → input index) for the rotation and crop-and-zoom."""
    shape = np.array(image_shape, dtype=np.float64)
    centre = (shape - 1) / 2
    matrix = np.eye(3)
    offset = np.zeros(3)
    changed = False
    if rng.random() < augment.rotate:
        rotation = _rotation(0, float(rng.uniform(-augment.max_angle, augment.max_angle)))
        if augment.max_tilt > 0:
            for axis in (1, 2):
                tilt = float(rng.uniform(-augment.max_tilt, augment.max_tilt))
                rotation = rotation @ _rotation(axis, tilt)
        matrix, offset = rotation, centre - rotation @ centre
        changed = True
    if rng.random() < augment.crop_zoom:
        matrix, offset = _with_crop_zoom(matrix, offset, shape, rng, augment)
        changed = True
    return (matrix, offset) if changed else None


def _affine_volume_pair(
    image: NDArray[np.float32],
    mask: NDArray[np.uint8],
    matrix: NDArray[np.float64],
    offset: NDArray[np.float64],
) -> Pair:
    """Both warped through one affine: trilinear with edge values for the image, nearest with
    zero outside for the mask (scipy's compiled resampler)."""
    from scipy import ndimage

    warped = ndimage.affine_transform(
        np.ascontiguousarray(image, dtype=np.float32), matrix, offset, order=1, mode="nearest"
    )
    labels = ndimage.affine_transform(
        np.ascontiguousarray(mask), matrix, offset, order=0, mode="constant", cval=0
    )
    return warped.astype(np.float32, copy=False), labels.astype(mask.dtype, copy=False)
