"""Batch loading from a dataset file: radpipe's BatchLoader with and without augmentation
against a naive PyTorch Dataset (one HDF5 read per __getitem__) under a 2-worker DataLoader;
and the build throughput of the 300-slice phantom.

    .venv/bin/python benchmarks/bench_loader.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report
from radpipe.dataset.augment import Augment
from radpipe.dataset.loader import BatchLoader
from radpipe.dataset.schema import DatasetWriter, Sample

SAMPLES = 4096


def make_file(path: Path) -> None:
    rng = np.random.default_rng(0)
    writer = DatasetWriter(path, mode="2d", preprocessing={}, label_names={1: "organ"})
    for start in range(0, SAMPLES, 512):
        batch = []
        for k in range(start, start + 512):
            image = rng.normal(0, 1, (256, 256)).astype(np.float32)
            mask = (image > 1.5).astype(np.uint8)
            batch.append(Sample(image, mask, f"anon-{k // 64}", "s", k, (0, 0, k), (1, 1, 1), True))
        writer.write(batch)
    writer.close()


def rate(iterator, limit: int) -> float:
    start = time.perf_counter()
    count = 0
    for batch in iterator:
        count += len(batch["index"]) if "index" in batch else batch["image"].shape[0]
        if count >= limit:
            break
    return count / (time.perf_counter() - start)


def naive_torch(path: Path) -> float:
    import h5py
    import torch

    class Naive(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.file = None

        def __len__(self) -> int:
            return SAMPLES

        def __getitem__(self, index: int):
            if self.file is None:
                self.file = h5py.File(path, "r")
            return {"image": torch.from_numpy(self.file["images"][index][None]),
                    "mask": torch.from_numpy(self.file["masks"][index][None])}  # fmt: skip

    loader = torch.utils.data.DataLoader(Naive(), batch_size=32, shuffle=True, num_workers=2)
    return rate(iter(loader), SAMPLES)


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "bench.h5"
        start = time.perf_counter()
        make_file(path)
        build = SAMPLES / (time.perf_counter() - start)
        plain = rate(iter(BatchLoader(path, batch_size=32, epochs=1)), SAMPLES)
        augmented = rate(
            iter(BatchLoader(path, batch_size=32, epochs=1, augment=Augment.standard())), 2048
        )
        peer = naive_torch(path)
    print(f"\n256×256 float32 slices, batch 32, shuffled ({SAMPLES} samples)")
    print(f"  radpipe BatchLoader              {plain:8.0f} samples/s (target >= 5,000)")
    print(f"  radpipe + flips, rotation, crop  {augmented:8.0f} samples/s (target >= 1,000)")
    print(
        f"  naive PyTorch Dataset, 2 workers {peer:8.0f} samples/s  "
        f"radpipe {plain / peer:.1f}x (target >= 3x)"
    )
    print(f"  writing samples                  {build:8.0f} samples/s")
    report(
        "one epoch without augmentation (seconds)",
        SAMPLES / plain,
        {"naive PyTorch DataLoader": SAMPLES / peer},
    )


if __name__ == "__main__":
    main()
