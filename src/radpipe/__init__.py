"""radpipe: medical images from scanner formats to deep-learning-ready data and back.

The top level imports lazily so that ``radpipe --help`` starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from radpipe.catalog.store import Catalog, open_catalog, scan
    from radpipe.errors import RadpipeError
    from radpipe.io import load, save
    from radpipe.volume import Heatmap, LabelMap, Volume, VolumeMeta

__all__ = [
    "Catalog",
    "Heatmap",
    "LabelMap",
    "RadpipeError",
    "Volume",
    "VolumeMeta",
    "load",
    "open_catalog",
    "save",
    "scan",
]

_LAZY = {
    "load": "radpipe.io",
    "save": "radpipe.io",
    "Volume": "radpipe.volume",
    "VolumeMeta": "radpipe.volume",
    "LabelMap": "radpipe.volume",
    "Heatmap": "radpipe.volume",
    "RadpipeError": "radpipe.errors",
    "Catalog": "radpipe.catalog.store",
    "open_catalog": "radpipe.catalog.store",
    "scan": "radpipe.catalog.store",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'radpipe' has no attribute {name!r}")
