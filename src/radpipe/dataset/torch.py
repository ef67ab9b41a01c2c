"""PyTorch adapter: a map-style Dataset over a dataset file (``pip install 'radpipe[torch]'``).

The HDF5 file opens lazily in each DataLoader worker process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from radpipe._optional import import_optional
from radpipe.dataset.augment import Augment
from radpipe.dataset.schema import DatasetReader

torch = import_optional("torch", extra="torch")


class TorchDataset(torch.utils.data.Dataset):  # type: ignore[misc,name-defined]
    """Samples as dicts of channel-first tensors: ``image`` (1, H, W) float32, ``mask``."""

    def __init__(
        self,
        path: str | Path,
        *,
        augment: Augment | None = None,
        seed: int = 0,
        indices: Any = None,
    ) -> None:
        self.reader = DatasetReader(path)
        self.indices = np.arange(len(self.reader)) if indices is None else np.asarray(indices)
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = int(self.indices[position])
        images, masks = self.reader.read([index])
        image, mask = images[0].astype(np.float32), masks[0]
        if self.augment is not None:
            image, mask = self.augment(
                image, mask, np.random.default_rng([self.seed, self.epoch, index])
            )
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image))[None],
            "mask": torch.from_numpy(np.ascontiguousarray(mask))[None],
            "index": index,
        }
