"""Batch loading from a dataset file, radpipe against its peers in one run:

- 2-D slices (256×256 float32, batch 32, shuffled): radpipe's BatchLoader plain and with flips,
  a ±15° rotation and a crop-zoom, against a naive PyTorch Dataset (one h5py read per item,
  2-worker DataLoader) and MONAI (``CacheDataset`` + ``DataLoader``, 2 workers, the same
  augmentations as RandFlipd / RandRotated / RandZoomd).
- 3-D patches (64³ from 128×192×192 volumes, 4 patches per volume, batch 8, flips on every
  axis): radpipe's patch sampler against TorchIO's ``Queue`` (LabelSampler) and MONAI's
  ``RandCropByPosNegLabeld``.

Each figure is the median of several runs with its range, so a noisy run shows as a spread.

    .venv/bin/python benchmarks/bench_loader.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from radpipe.dataset.augment import Augment
from radpipe.dataset.loader import BatchLoader
from radpipe.dataset.schema import DatasetReader, DatasetWriter, Sample

SLICES = 4096
SLICE_SHAPE = (256, 256)
VOLUMES = 16
VOLUME_SHAPE = (128, 192, 192)
PATCH = (64, 64, 64)
PER_VOLUME = 4


def make_slices(path: Path) -> None:
    rng = np.random.default_rng(0)
    writer = DatasetWriter(path, mode="2d", preprocessing={}, label_names={1: "organ"})
    for start in range(0, SLICES, 512):
        batch = []
        for k in range(start, start + 512):
            image = rng.normal(0, 1, SLICE_SHAPE).astype(np.float32)
            mask = (image > 1.5).astype(np.uint8)
            batch.append(Sample(image, mask, f"anon-{k // 64}", "s", k, (0, 0, k), (1, 1, 1), True))
        writer.write(batch)
    writer.close()


def make_volumes(path: Path) -> None:
    rng = np.random.default_rng(1)
    writer = DatasetWriter(path, mode="3d", preprocessing={}, label_names={1: "organ"})
    k, j, i = np.indices(VOLUME_SHAPE, dtype=np.float32)
    for number in range(VOLUMES):
        centre = rng.uniform(0.3, 0.7, 3) * np.array(VOLUME_SHAPE)
        inside = ((k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2) < 20**2
        image = rng.normal(0, 1, VOLUME_SHAPE).astype(np.float32) + inside * 2
        sample = Sample(image, inside.astype(np.uint8), f"anon-{number}", "s", -1, (0, 0, 0),
                        (1, 1, 1), True)  # fmt: skip
        writer.write([sample])
    writer.close()


def rate(batches: Iterable[Any], limit: int) -> float:
    """Samples per second over the first ``limit`` samples of an iterator of batches."""
    start = time.perf_counter()
    count = 0
    for batch in batches:
        count += int(batch["image"].shape[0])
        if count >= limit:
            break
    return count / (time.perf_counter() - start)


def spread(function: Callable[[], float], runs: int) -> tuple[float, float, float]:
    values = [function() for _ in range(runs)]
    return statistics.median(values), min(values), max(values)


def naive_torch(path: Path) -> float:
    import h5py
    import torch

    class Naive(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.file: Any = None

        def __len__(self) -> int:
            return SLICES

        def __getitem__(self, index: int) -> dict[str, Any]:
            if self.file is None:
                self.file = h5py.File(path, "r")
            return {"image": torch.from_numpy(self.file["images"][index][None]),
                    "mask": torch.from_numpy(self.file["masks"][index][None])}  # fmt: skip

    loader = torch.utils.data.DataLoader(Naive(), batch_size=32, shuffle=True, num_workers=2)
    return rate(loader, SLICES)


def _monai_items(path: Path) -> list[dict[str, Any]]:
    reader = DatasetReader(path)
    images, masks = reader.read(np.arange(len(reader)))
    return [{"image": images[n][None], "label": masks[n][None]} for n in range(len(reader))]


def monai_2d(items: list[dict[str, Any]], *, augment: bool) -> float:
    from monai import transforms as mt
    from monai.data import CacheDataset, DataLoader

    keys = ["image", "label"]
    steps: list[Any] = [mt.EnsureTyped(keys=keys, track_meta=False)]
    if augment:
        steps += [
            mt.RandFlipd(keys, prob=0.5, spatial_axis=1),
            mt.RandFlipd(keys, prob=0.5, spatial_axis=0),
            mt.RandRotated(keys, range_x=np.radians(15), prob=0.5, mode=("bilinear", "nearest")),
            mt.RandZoomd(keys, prob=0.5, min_zoom=1.0, max_zoom=1.25, mode=("bilinear", "nearest")),
        ]
    dataset = CacheDataset(items, transform=mt.Compose(steps), cache_rate=1.0, progress=False)
    loader = DataLoader(dataset, batch_size=32, shuffle=True, num_workers=2)
    return rate(loader, 2048 if augment else SLICES)


def monai_3d(items: list[dict[str, Any]]) -> float:
    from monai import transforms as mt
    from monai.data import CacheDataset, DataLoader

    keys = ["image", "label"]
    steps = mt.Compose([
        mt.EnsureTyped(keys=keys, track_meta=False),
        mt.RandCropByPosNegLabeld(keys, label_key="label", spatial_size=PATCH, pos=1, neg=1,
                                  num_samples=PER_VOLUME),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=0),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=1),
        mt.RandFlipd(keys, prob=0.5, spatial_axis=2),
    ])  # fmt: skip
    dataset = CacheDataset(items, transform=steps, cache_rate=1.0, progress=False)
    loader = DataLoader(dataset, batch_size=2, shuffle=True, num_workers=2)  # 2 × 4 patches
    return rate(loader, VOLUMES * PER_VOLUME)


def torchio_3d(items: list[dict[str, Any]]) -> float:
    import torch
    import torchio as tio

    subjects = [
        tio.Subject(image=tio.ScalarImage(tensor=torch.from_numpy(item["image"])),
                    label=tio.LabelMap(tensor=torch.from_numpy(item["label"])))
        for item in items
    ]  # fmt: skip
    dataset = tio.SubjectsDataset(subjects, transform=tio.RandomFlip(axes=(0, 1, 2)))
    sampler = tio.LabelSampler(PATCH, label_name="label", label_probabilities={0: 1, 1: 1})
    queue = tio.Queue(dataset, max_length=2 * PER_VOLUME * 4, samples_per_volume=PER_VOLUME,
                      sampler=sampler, num_workers=2, shuffle_subjects=True,
                      shuffle_patches=True, verbose=False)  # fmt: skip
    loader = torch.utils.data.DataLoader(queue, batch_size=8, num_workers=0)
    return rate(({"image": b["image"]["data"]} for b in loader), VOLUMES * PER_VOLUME)


def radpipe_3d(path: Path) -> float:
    flips = Augment(flip_horizontal=0.5, flip_vertical=0.5, flip_depth=0.5)
    with BatchLoader(path, batch_size=8, epochs=1, patch_size=PATCH,
                     patches_per_sample=PER_VOLUME, augment=flips) as loader:  # fmt: skip
        return rate(loader, VOLUMES * PER_VOLUME)


def yardstick() -> str:
    """Memory copy speed and a 256×256 bilinear warp here: the machine's own pace, to compare
    figures measured on different days (hosts of one kind differ several-fold)."""
    from scipy import ndimage

    block = np.ones(64 << 20, np.uint8)
    target = np.empty_like(block)
    started = time.perf_counter()
    for _ in range(10):
        np.copyto(target, block)
    copy_rate = 10 * block.nbytes / (time.perf_counter() - started) / 1e9
    image = np.random.default_rng(0).random((256, 256), dtype=np.float32)
    matrix = np.array([[0.9, -0.2], [0.2, 0.9]])
    started = time.perf_counter()
    for _ in range(50):
        ndimage.affine_transform(image, matrix, order=1)
    warp_ms = (time.perf_counter() - started) / 50 * 1e3
    return f"machine: memory copy {copy_rate:.1f} GB/s, 256×256 bilinear warp {warp_ms:.2f} ms"


def line(name: str, figures: tuple[float, float, float], note: str = "") -> None:
    median, low, high = figures
    print(f"  {name:<40} {median:8.0f} samples/s  (runs {low:.0f}–{high:.0f}) {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print(yardstick())
    with tempfile.TemporaryDirectory() as work:
        slices, volumes = Path(work) / "slices.h5", Path(work) / "volumes.h5"
        started = time.perf_counter()
        make_slices(slices)
        written = SLICES / (time.perf_counter() - started)
        make_volumes(volumes)

        def plain() -> float:
            return rate(BatchLoader(slices, batch_size=32, epochs=1), SLICES)

        def augmented() -> float:
            return rate(BatchLoader(slices, batch_size=32, epochs=1, augment=Augment.standard()),
                        2048)  # fmt: skip

        ours_plain = spread(plain, runs)
        ours_augmented = spread(augmented, runs)
        naive = spread(lambda: naive_torch(slices), runs)
        items = _monai_items(slices)
        monai_plain = spread(lambda: monai_2d(items, augment=False), runs)
        monai_augmented = spread(lambda: monai_2d(items, augment=True), runs)
        ours_patches = spread(lambda: radpipe_3d(volumes), runs)
        volume_items = _monai_items(volumes)
        tio_patches = spread(lambda: torchio_3d(volume_items), runs)
        monai_patches = spread(lambda: monai_3d(volume_items), runs)

    print(f"\n2-D: {SLICES} slices of {SLICE_SHAPE[0]}×{SLICE_SHAPE[1]} float32, batch 32, "
          f"shuffled, median of {runs} runs")  # fmt: skip
    line("radpipe BatchLoader", ours_plain)
    line("naive PyTorch Dataset, 2 workers", naive,
         f"radpipe {ours_plain[0] / naive[0]:.1f}x (target >= 3x)")  # fmt: skip
    line("MONAI CacheDataset + DataLoader", monai_plain,
         f"radpipe {ours_plain[0] / monai_plain[0]:.2f}x (target >= 1x)")  # fmt: skip
    line("radpipe + flips, rotation, crop-zoom", ours_augmented)
    line("MONAI + RandFlip, RandRotate, RandZoom", monai_augmented,
         f"radpipe {ours_augmented[0] / monai_augmented[0]:.2f}x (target >= 1x)")  # fmt: skip
    print(f"\n3-D: {PATCH[0]}³ patches, {PER_VOLUME} per {VOLUME_SHAPE} volume, "
          f"foreground-weighted, flips, batch 8")  # fmt: skip
    line("radpipe BatchLoader(patch_size=…)", ours_patches)
    line("TorchIO Queue + LabelSampler", tio_patches,
         f"radpipe {ours_patches[0] / tio_patches[0]:.2f}x (target >= 1x)")  # fmt: skip
    line("MONAI RandCropByPosNegLabeld", monai_patches,
         f"radpipe {ours_patches[0] / monai_patches[0]:.2f}x")  # fmt: skip
    print(f"\n  writing 2-D samples: {written:.0f} samples/s")


if __name__ == "__main__":
    main()
