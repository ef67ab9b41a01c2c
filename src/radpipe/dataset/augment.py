"""Paired augmentation: the same geometric change on image and mask (linear for the image,
nearest for the mask), intensity changes on the image only; deterministic from a generator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Pair = tuple[NDArray[np.float32], NDArray[np.uint8]]


@dataclass(frozen=True)
class Augment:
    """Which augmentations to apply to a 2-D (H, W) sample, each with its probability.

    Attributes
    ----------
    flip_horizontal, flip_vertical, rotate90 : float
        Probabilities.
    rotate : float
        Probability of a rotation by an angle drawn from ±``max_angle`` degrees.
    crop_zoom : float
        Probability of cropping a random window of ``zoom_range`` of the size and zooming it back.
    brightness, contrast, gamma, noise : float
        Probabilities of intensity changes (image only), scaled by ``intensity_strength``.
    """

    flip_horizontal: float = 0.5
    flip_vertical: float = 0.0
    rotate90: float = 0.0
    rotate: float = 0.0
    max_angle: float = 15.0
    crop_zoom: float = 0.0
    zoom_range: tuple[float, float] = (0.8, 1.0)
    brightness: float = 0.0
    contrast: float = 0.0
    gamma: float = 0.0
    noise: float = 0.0
    intensity_strength: float = 0.1
    order: Sequence[str] = field(default=("flip", "rotate90", "rotate", "crop_zoom", "intensity"))

    @classmethod
    def standard(cls) -> Augment:
        """Flips, a ±15° rotation and a crop-and-zoom (the loader benchmark's set)."""
        return cls(flip_horizontal=0.5, flip_vertical=0.5, rotate=0.5, crop_zoom=0.5)

    def __call__(
        self, image: NDArray[np.float32], mask: NDArray[np.uint8], rng: np.random.Generator
    ) -> Pair:
        """Augment one pair; identical draws from ``rng`` give identical results."""
        for step in self.order:
            if step == "flip":
                if rng.random() < self.flip_horizontal:
                    image, mask = image[:, ::-1], mask[:, ::-1]
                if rng.random() < self.flip_vertical:
                    image, mask = image[::-1], mask[::-1]
            elif step == "rotate90" and rng.random() < self.rotate90:
                turns = int(rng.integers(1, 4))
                image, mask = np.rot90(image, turns), np.rot90(mask, turns)
            elif step == "rotate" and rng.random() < self.rotate:
                image, mask = _rotate(
                    image, mask, float(rng.uniform(-self.max_angle, self.max_angle))
                )
            elif step == "crop_zoom" and rng.random() < self.crop_zoom:
                image, mask = _crop_zoom(image, mask, rng, self.zoom_range)
            elif step == "intensity":
                image = self._intensity(image, rng)
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
) -> Pair:
    from scipy import ndimage

    rotated = ndimage.affine_transform(image, matrix, offset=offset, order=1, mode="nearest")
    labels = ndimage.affine_transform(mask, matrix, offset=offset, order=0, mode="constant", cval=0)
    return rotated.astype(np.float32), labels


def _rotate(image: NDArray[np.float32], mask: NDArray[np.uint8], degrees: float) -> Pair:
    angle = np.radians(degrees)
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = (np.array(image.shape, dtype=np.float64) - 1) / 2
    return _affine_pair(image, mask, matrix, centre - matrix @ centre)


def _crop_zoom(
    image: NDArray[np.float32],
    mask: NDArray[np.uint8],
    rng: np.random.Generator,
    zoom_range: tuple[float, float],
) -> Pair:
    fraction = float(rng.uniform(*zoom_range))
    shape = np.array(image.shape, dtype=np.float64)
    window = shape * fraction
    start = rng.uniform(0, shape - window)
    matrix = np.diag(window / shape)
    return _affine_pair(image, mask, matrix, start)
