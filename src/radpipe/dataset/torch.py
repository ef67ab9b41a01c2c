"""PyTorch adapter: a map-style Dataset over a dataset file (``pip install 'radpipe[torch]'``)
and a DataLoader that moves it to the next epoch itself (new augmentation every epoch).

The HDF5 file opens lazily in each DataLoader worker process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from radpipe._optional import import_optional
from radpipe.dataset.augment import Augment
from radpipe.dataset.patches import check_patch_size, cut_pair
from radpipe.dataset.schema import DatasetReader
from radpipe.errors import DatasetError

torch = import_optional("torch", extra="torch")


class TorchDataset(torch.utils.data.Dataset):  # type: ignore[misc,name-defined]
    """Samples as dicts of channel-first tensors: ``image`` (1, H, W) or (1, D, H, W) float32,
    ``mask`` uint8, ``index``, ``epoch``.

    Augmentation and patch draws come from (seed, epoch, index): call :meth:`set_epoch` at the
    start of each epoch, or iterate through :meth:`loader`, which does it.

    Parameters
    ----------
    path : dataset file (2-D or 3-D)
    augment : Augment, optional
    seed : int
    indices : sample indices to serve (e.g. one side of ``split_by_patient``)
    patch_size : sequence of int, optional
        A random patch of each sample (foreground-centred with ``foreground_fraction``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        augment: Augment | None = None,
        seed: int = 0,
        indices: Any = None,
        patch_size: tuple[int, ...] | list[int] | None = None,
        foreground_fraction: float = 0.5,
    ) -> None:
        self.reader = DatasetReader(path)
        self.indices = np.arange(len(self.reader)) if indices is None else np.asarray(indices)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self.patch_size = (
            None if patch_size is None else check_patch_size(patch_size, self.reader.sample_shape)
        )
        self.foreground_fraction = foreground_fraction

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's augmentation (and patches) from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, position: int) -> dict[str, Any]:
        index = int(self.indices[position])
        images, masks = self.reader.read([index])
        image, mask = images[0].astype(np.float32), masks[0]
        rng = np.random.default_rng([self.seed, self.epoch, index, 0])
        if self.patch_size is not None:
            image, mask, _ = cut_pair(
                image, mask, self.patch_size, rng, foreground_fraction=self.foreground_fraction
            )
        if self.augment is not None:
            image, mask = self.augment(image, mask, rng)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image))[None],
            "mask": torch.from_numpy(np.ascontiguousarray(mask))[None],
            "index": index,
            "epoch": self.epoch,
        }

    def loader(self, **options: Any) -> EpochDataLoader:
        """A :class:`EpochDataLoader` over this dataset (``options`` as for DataLoader)."""
        return EpochDataLoader(self, **options)


class EpochDataLoader(torch.utils.data.DataLoader):  # type: ignore[misc,name-defined]
    """A ``torch.utils.data.DataLoader`` that calls ``dataset.set_epoch`` before each pass, so
    every epoch gets new augmentation without the training loop having to remember.

    Raises
    ------
    DatasetError
        With ``persistent_workers=True``: workers kept alive hold the first epoch's dataset.
    """

    def __init__(self, dataset: TorchDataset, **options: Any) -> None:
        if options.get("persistent_workers"):
            raise DatasetError(
                "persistent_workers=True keeps every worker on the first epoch's augmentation; "
                "leave it off (radpipe's dataset reopens its file cheaply in each worker)"
            )
        super().__init__(dataset, **options)
        self.epoch = 0

    def __iter__(self) -> Iterator[Any]:
        self.dataset.set_epoch(self.epoch)
        self.epoch += 1
        return super().__iter__()  # type: ignore[no-any-return]
