"""Lesion analysis: radpipe (cc3d + per-lesion measures) against the scipy.ndimage route, and
RTSTRUCT-style rasterisation against scikit-image's per-slice polygon.

    .venv/bin/python benchmarks/bench_analysis.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report
from radpipe.analysis import analyse_patient
from radpipe.masks import rasterize_contours
from radpipe.volume import Volume


def lesion_mask(shape: tuple[int, int, int], count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(count):
        centre = rng.uniform([20, 60, 60], [shape[0] - 20, shape[1] - 60, shape[2] - 60])
        radius = rng.uniform(4, 14)
        box = tuple(slice(max(0, int(c - radius - 1)), int(c + radius + 2)) for c in centre)
        axes = [np.arange(b.start, b.stop, dtype=float) for b in box]
        z, y, x = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
        inside = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2
        mask[box] |= inside
    return mask


def scipy_route(image: np.ndarray, mask: np.ndarray) -> int:
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())
    boxes = ndimage.find_objects(labels)
    centres = ndimage.center_of_mass(mask, labels, range(1, count + 1))
    means = ndimage.mean(image, labels, range(1, count + 1))
    extremes = ndimage.extrema(image, labels, range(1, count + 1))
    del sizes, boxes, centres, means, extremes
    return count


def main() -> None:
    shape = (300, 512, 512)
    mask = lesion_mask(shape, 20)
    rng = np.random.default_rng(1)
    image = rng.normal(40, 10, shape).astype(np.int16)
    volume = Volume(image, np.diag([1.0, 0.7, 0.7, 1.0]))
    organ = np.zeros(shape, dtype=bool)
    organ[10:290, 40:470, 40:470] = True

    start = time.perf_counter()
    result = analyse_patient("bench", volume, organs={"liver": organ}, tumours={"tumor": mask})
    ours = time.perf_counter() - start
    start = time.perf_counter()
    count = scipy_route(image, mask)
    peer = time.perf_counter() - start
    assert count == result.tumour_count + len(result.small_lesions), (count, result.tumour_count)
    print(f"\n{result.tumour_count} lesions in a 512×512×300 mask")
    print("  radpipe: volumes, RECIST and 3-D diameters, surface, sphericity, HU, organ, burden")
    print("  scipy: label + bincount + find_objects + center_of_mass + mean + extrema")
    report("lesion analysis of one patient", ours, {"scipy.ndimage route": peer})
    print(f"  speed-up {peer / ours:.1f}x (target >= 5x)")

    from skimage.draw import polygon

    theta = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    contours = [
        np.column_stack([256 + (80 + 20 * np.sin(k / 9)) * np.cos(theta), 256 + 60 * np.sin(theta)])
        for k in range(100)
    ]
    start = time.perf_counter()
    ours_masks = [rasterize_contours([c], (512, 512)) for c in contours]
    ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = []
    for contour in contours:
        plane = np.zeros((512, 512), bool)
        rows, columns = polygon(contour[:, 1], contour[:, 0], shape=(512, 512))
        plane[rows, columns] = True
        theirs.append(plane)
    peer = time.perf_counter() - start
    differing = sum(int((a != b).sum()) for a, b in zip(ours_masks, theirs, strict=True))
    report("rasterising a 100-slice ROI (200-point contours)", ours, {"scikit-image polygon": peer})
    print(f"  pixels that differ: {differing}")


if __name__ == "__main__":
    main()
