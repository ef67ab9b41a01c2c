"""Import helper for the optional heavy parts (torch, the viewer server, Dask)."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise ``ImportError`` naming the radpipe extra that installs it.

    Parameters
    ----------
    module : str
        Dotted module name, e.g. ``"torch"``.
    extra : str
        The extra of the ``radpipe`` package that brings it, e.g. ``"torch"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is needed for this feature; install it with: pip install 'radpipe[{extra}]'"
        ) from exc
