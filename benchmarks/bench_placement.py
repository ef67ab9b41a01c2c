"""Placing a mask or heatmap on an image by world position (``radpipe.placement``) against
SimpleITK's ResampleImageFilter doing the same (nearest neighbour for labels, linear for a
heatmap), on a 200×512×512 CT-sized grid. Also checks that both give the same labels.

Three cases:
- a label map stored in the opposite slice order (same voxel centres: radpipe places it exactly);
- a label map on a coarser grid (2.5 → 5 mm slices, 0.7 → 1.4 mm pixels), nearest neighbour;
- a float heatmap on that coarser grid, linear.

    .venv/bin/python benchmarks/bench_placement.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_time, report
from radpipe.errors import ResampledWarning
from radpipe.placement import heatmap_on, labels_on
from radpipe.volume import Heatmap, LabelMap, Volume

SHAPE = (200, 512, 512)
SPACING = (2.5, 0.7, 0.7)


def sitk_resample(source: Volume, target: Volume, *, linear: bool) -> np.ndarray:
    import SimpleITK as sitk

    reference = sitk.Image([n for n in target.spatial_shape[::-1]], sitk.sitkUInt8)
    reference.SetSpacing(target.spacing[::-1])
    reference.SetOrigin(target.origin)
    reference.SetDirection(tuple(float(v) for v in target.direction[:, ::-1].ravel()))
    interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    result = sitk.Resample(source.to_sitk(), reference, sitk.Transform(), interpolator, 0.0)
    return sitk.GetArrayFromImage(result)


def main() -> None:
    warnings.simplefilter("ignore", ResampledWarning)
    affine = np.diag([SPACING[0], SPACING[1], SPACING[2], 1.0])
    affine[:3, 3] = (-180.0, -180.0, -250.0)
    image = Volume(np.zeros(SHAPE, np.int16), affine)
    rng = np.random.default_rng(0)
    labels = np.zeros(SHAPE, np.uint8)
    labels[40:160, 100:400, 120:420] = 1
    labels[80:100, 200:260, 200:260] = 2
    truth = LabelMap(labels, affine, labels={1: "liver", 2: "tumor"})

    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1.0, SHAPE[0] - 1
    flipped = truth.like(np.ascontiguousarray(labels[::-1]), affine @ flip)
    ours = best_time(lambda: labels_on(flipped, image))
    theirs = best_time(lambda: sitk_resample(flipped, image, linear=False))
    same = np.array_equal(
        labels_on(flipped, image).array, sitk_resample(flipped, image, linear=False)
    )
    report(f"flipped label map onto {SHAPE} (identical to SimpleITK: {same})", ours,
           {"SimpleITK Resample (nearest)": theirs})  # fmt: skip

    coarse_affine = affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    coarse = truth.like(np.ascontiguousarray(labels[::2, ::2, ::2]), coarse_affine)
    ours = best_time(lambda: labels_on(coarse, image))
    theirs = best_time(lambda: sitk_resample(coarse, image, linear=False))
    oracle = sitk_resample(coarse, image, linear=False)
    agree = float(np.mean(labels_on(coarse, image).array == oracle))
    report(f"coarse label map onto {SHAPE}, nearest (voxels agreeing: {agree:.4%})", ours,
           {"SimpleITK Resample (nearest)": theirs})  # fmt: skip

    heat = Heatmap(rng.random((100, 256, 256), dtype=np.float32), coarse_affine, source="bench")
    ours = best_time(lambda: heatmap_on(heat, image), repeats=2)
    theirs = best_time(lambda: sitk_resample(heat, image, linear=True), repeats=2)
    report(f"coarse heatmap onto {SHAPE}, linear (NaN-aware in radpipe)", ours,
           {"SimpleITK Resample (linear)": theirs})  # fmt: skip


if __name__ == "__main__":
    main()
