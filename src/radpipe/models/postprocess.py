"""Post-processing of a model's label map: keep only the largest connected part of a class
(one left ventricle, one liver), chosen per class on the validation patients as nnU-Net does
(kept only where it raises their Dice)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

#: ``TrainOptions.postprocess`` / ``radpipe train --postprocess`` choices.
POSTPROCESS_CHOICES = ("auto", "none", "largest")


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
