"""Segmentation models on radpipe datasets (``pip install 'radpipe[ml]'``: MONAI on PyTorch):
:func:`train` a network, :func:`segment` an image with it, :func:`evaluate` predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radpipe.models.evaluation import Evaluation, evaluate
    from radpipe.models.inference import Model, Segmentation, load_model, segment
    from radpipe.models.training import TrainOptions, TrainResult, train

__all__ = [
    "Evaluation", "Model", "Segmentation", "TrainOptions", "TrainResult", "evaluate",
    "load_model", "segment", "train",
]  # fmt: skip

_WHERE = {
    "Evaluation": "evaluation", "evaluate": "evaluation",
    "Model": "inference", "Segmentation": "inference", "load_model": "inference",
    "segment": "inference",
    "TrainOptions": "training", "TrainResult": "training", "train": "training",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"radpipe.models.{_WHERE[name]}"), name)
    raise AttributeError(name)
