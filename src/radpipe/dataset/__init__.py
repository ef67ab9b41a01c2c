"""Training datasets: the HDF5 schema, building from images and masks, the batch loader,
augmentation, and the PyTorch / Keras adapters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radpipe.dataset.loader import BatchLoader
    from radpipe.dataset.torch import TorchDataset

__all__ = ["BatchLoader", "TorchDataset"]


def __getattr__(name: str) -> Any:
    if name == "BatchLoader":
        from radpipe.dataset.loader import BatchLoader

        return BatchLoader
    if name == "TorchDataset":
        from radpipe.dataset.torch import TorchDataset

        return TorchDataset
    raise AttributeError(name)
