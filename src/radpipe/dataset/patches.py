"""Random patches of 2-D or 3-D samples: centres drawn on the foreground with a chosen
probability, else on the background (as MONAI's ``RandCropByPosNegLabeld``), the patch kept
inside the sample and the sample padded where it is smaller than the patch."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import DatasetError


def check_patch_size(patch_size: Sequence[int], sample_shape: Sequence[int]) -> tuple[int, ...]:
    """The patch size as a tuple of positive ints of the sample's dimensionality.

    Raises
    ------
    DatasetError
        For a size of another length or a non-positive extent.
    """
    size = tuple(int(v) for v in patch_size)
    if len(size) != len(sample_shape) or min(size) < 1:
        raise DatasetError(
            f"patch size {tuple(patch_size)} does not fit samples of shape {tuple(sample_shape)}: "
            f"give {len(sample_shape)} positive extents"
        )
    return size


def patch_start(
    mask: NDArray[np.uint8],
    patch_size: tuple[int, ...],
    rng: np.random.Generator,
    *,
    foreground_fraction: float = 0.5,
    class_balanced: bool = False,
) -> tuple[int, ...]:
    """The first voxel of a random patch of ``mask``'s sample (negative where it is padded).

    With probability ``foreground_fraction`` the centre is a random labelled voxel, otherwise a
    random background voxel; a sample without the drawn kind of voxel takes any voxel. With
    ``class_balanced`` a labelled centre is a voxel of one of the sample's labels drawn with
    equal chances (as nnU-Net's foreground oversampling and MONAI's
    ``RandCropByLabelClassesd``), so a small class — a tumour in its liver — is centred as
    often as a large one (each such draw counts the sample's labels: about a millisecond per
    million voxels, so meant for slices and modest volumes). The patch is then shifted to lie
    inside the sample (centred where the sample is smaller).
    """
    shape = mask.shape
    want_foreground = rng.random() < foreground_fraction
    flat = mask.reshape(-1)
    chosen = -1
    if want_foreground and class_balanced:
        present = np.flatnonzero(np.bincount(flat)[1:]) + 1
        if present.size:
            label = present[rng.integers(present.size)]
            candidates = np.flatnonzero(flat == label)
            chosen = int(candidates[rng.integers(candidates.size)])
    if chosen < 0:
        chosen = _random_voxel(flat, rng, want_foreground=want_foreground)
    centre: tuple[int, ...]
    if chosen >= 0:
        centre = tuple(int(v) for v in np.unravel_index(chosen, shape))
    else:
        centre = tuple(int(rng.integers(n)) for n in shape)
    start = []
    for axis, extent in enumerate(patch_size):
        length = shape[axis]
        if length <= extent:
            start.append(-((extent - length) // 2))  # pad around the sample
        else:
            first = int(centre[axis]) - extent // 2
            start.append(min(max(first, 0), length - extent))
    return tuple(start)


def _random_voxel(
    flat: NDArray[np.uint8], rng: np.random.Generator, *, want_foreground: bool
) -> int:
    """A random labelled (or background) voxel's flat index, -1 when there is none."""
    # a few random voxels first: the common kind is found at once without listing millions
    tries = rng.integers(flat.size, size=64)
    hits = tries[(flat[tries] != 0) == want_foreground]
    if hits.size:
        return int(hits[0])
    candidates = np.flatnonzero(flat if want_foreground else flat == 0)  # the rare kind
    return int(candidates[rng.integers(candidates.size)]) if candidates.size else -1


def cut_patch(array: NDArray[Any], start: Sequence[int], patch_size: Sequence[int]) -> NDArray[Any]:
    """``array[start : start + patch_size]`` with zeros where the patch leaves the array
    (the image padded with its minimum instead, see :func:`cut_pair`)."""
    return _cut(array, start, patch_size, fill=0)


def cut_pair(
    image: NDArray[Any],
    mask: NDArray[np.uint8],
    patch_size: Sequence[int],
    rng: np.random.Generator,
    *,
    foreground_fraction: float = 0.5,
    class_balanced: bool = False,
) -> tuple[NDArray[Any], NDArray[np.uint8], tuple[int, ...]]:
    """A random patch of an image and its mask (same voxels), and its start index (centres as
    :func:`patch_start` draws them).

    Examples
    --------
    >>> image = np.arange(4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6)
    >>> mask = np.zeros((4, 6, 6), np.uint8); mask[3, 5, 5] = 1
    >>> patch, labels, start = cut_pair(image, mask, (2, 3, 3), np.random.default_rng(0),
    ...                                 foreground_fraction=1.0)
    >>> start, int(labels.sum())
    ((2, 3, 3), 1)
    """
    size = check_patch_size(patch_size, image.shape)
    start = patch_start(
        mask, size, rng, foreground_fraction=foreground_fraction, class_balanced=class_balanced
    )
    fill = float(image.min()) if image.size else 0.0
    return _cut(image, start, size, fill=fill), _cut(mask, start, size, fill=0), start


def cut_context_pair(
    image: NDArray[Any],
    mask: NDArray[np.uint8],
    patch_size: Sequence[int],
    context_size: Sequence[int],
    rng: np.random.Generator,
    *,
    foreground_fraction: float = 0.5,
    class_balanced: bool = False,
) -> tuple[NDArray[Any], NDArray[np.uint8]]:
    """The window of ``context_size`` centred on a random patch of ``patch_size`` (drawn as
    :func:`cut_pair` draws it), padded beyond the sample's edge with its minimum (zero for the
    mask): what an augmentation of that patch may read.

    Examples
    --------
    >>> image = np.arange(36, dtype=np.float32).reshape(6, 6)
    >>> mask = np.zeros((6, 6), np.uint8); mask[5, 5] = 1
    >>> window, labels = cut_context_pair(image, mask, (2, 2), (4, 4), np.random.default_rng(0),
    ...                                   foreground_fraction=1.0)
    >>> window.shape, int(labels.sum()), float(window[0, 0])
    ((4, 4), 1, 21.0)
    """
    size = check_patch_size(patch_size, image.shape)
    context = tuple(int(c) for c in context_size)
    if any(c < s for c, s in zip(context, size, strict=True)):
        raise DatasetError(f"context window {context} is smaller than the patch {size}")
    start = patch_start(
        mask, size, rng, foreground_fraction=foreground_fraction, class_balanced=class_balanced
    )
    outer = [s - (c - n) // 2 for s, c, n in zip(start, context, size, strict=True)]
    fill = float(image.min()) if image.size else 0.0
    return _cut(image, outer, context, fill=fill), _cut(mask, outer, context, fill=0)


def _cut(
    array: NDArray[Any], start: Sequence[int], patch_size: Sequence[int], *, fill: float
) -> NDArray[Any]:
    inside = all(
        s >= 0 and s + n <= length
        for s, n, length in zip(start, patch_size, array.shape, strict=True)
    )
    if inside:
        region = tuple(slice(s, s + n) for s, n in zip(start, patch_size, strict=True))
        return np.ascontiguousarray(array[region])
    out = np.full(tuple(patch_size), fill, dtype=array.dtype)
    source = []
    target = []
    for s, n, length in zip(start, patch_size, array.shape, strict=True):
        first, last = max(s, 0), min(s + n, length)
        source.append(slice(first, last))
        target.append(slice(first - s, last - s))
    out[tuple(target)] = array[tuple(source)]
    return out
