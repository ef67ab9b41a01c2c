"""Keras 3 adapter: a :class:`BatchLoader` as a ``keras.utils.PyDataset`` (``pip install
'radpipe[keras]'``), channels-last, a new shuffle and augmentation every epoch.

Keras needs a backend; when ``KERAS_BACKEND`` is unset and TensorFlow is not installed, the
installed PyTorch (or JAX) backend is chosen before Keras is imported.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from radpipe._optional import import_optional

if TYPE_CHECKING:
    from radpipe.dataset.loader import BatchLoader


def _choose_backend() -> None:
    if "KERAS_BACKEND" in os.environ or importlib.util.find_spec("tensorflow") is not None:
        return
    for backend, module in (("torch", "torch"), ("jax", "jax")):
        if importlib.util.find_spec(module) is not None:
            os.environ["KERAS_BACKEND"] = backend
            return


_choose_backend()
keras = import_optional("keras", extra="keras")


class KerasDataset(keras.utils.PyDataset):  # type: ignore[misc,name-defined]
    """Batches ``(images, masks)`` as (B, H, W, 1) / (B, D, H, W, 1) arrays for ``model.fit``.

    Batch ``i`` of epoch ``e`` is the loader's batch ``i`` of that epoch; Keras calls
    :meth:`on_epoch_end`, which moves to the next epoch (new order, new augmentation).
    ``next(dataset)`` walks the batches one after another, epoch after epoch.

    Examples
    --------
    >>> model.fit(BatchLoader("train.h5", batch_size=16).keras(), epochs=5)  # doctest: +SKIP
    """

    def __init__(self, loader: BatchLoader, **options: Any) -> None:
        super().__init__(**options)
        self.loader = loader
        self.epoch = 0
        self._orders: dict[int, NDArray[np.int64]] = {}
        self._cursor = 0

    def __len__(self) -> int:
        return self.loader.batches_per_epoch()

    def _chunk(self, epoch: int, index: int) -> NDArray[np.int64]:
        if epoch not in self._orders:
            self._orders = {epoch: self.loader.epoch_order(epoch)}
        per_batch = self.loader.batch_size // self.loader.patches_per_sample
        return self._orders[epoch][index * per_batch : (index + 1) * per_batch]

    def __getitem__(self, index: int) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        batch = self.loader.load_batch(self.epoch, self._chunk(self.epoch, index))
        return np.moveaxis(batch["image"], 1, -1), np.moveaxis(batch["mask"], 1, -1)

    def on_epoch_end(self) -> None:
        """Next epoch: a new shuffle and new augmentation draws."""
        self.epoch += 1

    def __next__(self) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
        if self._cursor >= len(self):
            self._cursor = 0
            self.on_epoch_end()
        self._cursor += 1
        return self[self._cursor - 1]
