"""Post-processing of a model's label map: keep only the largest connected part of a class
(one left ventricle, one liver), chosen per class on the validation patients as nnU-Net does
(kept only where it raises their Dice), and optionally fill each slice's part to its convex
hull (a blood pool whose reference contour encloses the papillary muscles)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

#: ``TrainOptions.postprocess`` / ``radpipe train --postprocess`` choices.
#: ``convex`` is ``largest`` followed by :func:`fill_convex_hull` on every class.
POSTPROCESS_CHOICES = ("auto", "none", "largest", "convex")


def keep_largest_component(
    labels: NDArray[np.integer], classes: Iterable[int]
) -> NDArray[np.integer]:
    """``labels`` with each class in ``classes`` reduced to its largest connected part
    (26-connected in 3-D, 8-connected in 2-D); the voxels of its other parts become
    background. A new array; ``labels`` is unchanged."""
    import cc3d

    result = labels.copy()
    for value in classes:
        present = labels == value
        if not present.any():
            continue
        parts = cc3d.connected_components(
            present.astype(np.uint8), connectivity=26 if labels.ndim == 3 else 8
        )
        sizes = np.bincount(parts.reshape(-1))
        sizes[0] = 0
        if np.count_nonzero(sizes) > 1:
            result[present & (parts != int(sizes.argmax()))] = 0
    return result


def keep_largest_per_slice(
    labels: NDArray[np.integer], classes: Iterable[int]
) -> NDArray[np.integer]:
    """:func:`keep_largest_component` on each (H, W) slice of a (N, H, W) stack of unrelated
    slices (a 2-D dataset's samples)."""
    chosen = list(classes)
    return np.stack([keep_largest_component(plane, chosen) for plane in labels])


def fill_convex_hull(labels: NDArray[np.integer], classes: Iterable[int]) -> NDArray[np.integer]:
    """``labels`` with each class in ``classes`` grown, slice by slice, to the convex hull of
    its voxels in that slice (scikit-image's ``convex_hull_image``).

    ``labels`` is an (H, W) slice or an (N, H, W) stack, each plane on its own; only background
    voxels are taken, so a tumour inside a hull stays a tumour. A new array; ``labels`` is
    unchanged. Meant for classes convex in cross-section, after :func:`keep_largest_component`
    (the hull of two distant parts spans the gap between them).
    """
    from skimage.morphology import convex_hull_image

    chosen = list(classes)
    result = labels.copy()
    planes = result[None] if result.ndim == 2 else result
    originals = labels[None] if labels.ndim == 2 else labels
    for plane, original in zip(planes, originals, strict=True):
        for value in chosen:
            present = original == value
            if np.count_nonzero(present) < 3:
                continue  # specks of one or two pixels stay as they are
            # the hull lies within the class's bounding box: work on that box only (the same
            # pixels; a 512×512 slice's hull costs its whole grid otherwise)
            rows = np.flatnonzero(present.any(axis=1))
            columns = np.flatnonzero(present.any(axis=0))
            box = np.s_[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
            hull = convex_hull_image(present[box])
            window = plane[box]
            window[hull & (window == 0)] = value
    return result


def choose_largest_component(
    predicted: NDArray[np.integer],
    truth: NDArray[np.integer],
    classes: dict[int, str],
    *,
    per_slice: bool,
) -> tuple[list[int], dict[str, dict[str, float]]]:
    """The classes whose validation Dice the largest-component rule raises, and each class's
    Dice without and with it.

    ``predicted`` and ``truth`` are the validation samples' label maps, (N, H, W) slices when
    ``per_slice`` (each slice its own image) or (N, D, H, W) volumes.
    """
    from radpipe.models.training import dice_per_class

    foreground = [v for v in classes if v != 0]
    if per_slice:
        kept = keep_largest_per_slice(predicted, foreground)
    else:
        kept = np.stack([keep_largest_component(volume, foreground) for volume in predicted])
    before = dice_per_class(predicted, truth, classes)
    after = dice_per_class(kept, truth, classes)
    chosen = [v for v in foreground if after[classes[v]] > before[classes[v]]]
    figures = {
        classes[v]: {"dice": before[classes[v]], "dice_largest_component": after[classes[v]]}
        for v in foreground
    }
    return chosen, figures
