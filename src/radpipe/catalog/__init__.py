"""Datasets of many patients: discovery of trees and archives and their layouts (3D-IRCADb,
Sunnybrook, image + label pairs, DICOMDIR), the SQLite catalog that is also the scan cache,
metadata tables, and lazy iteration over patients by key.

``discover`` describes files and builds series; ``store`` is the SQLite catalog (``scan``,
``open_catalog``, ``Catalog``); ``metadata`` writes tables; ``patients`` loads one patient at a
time.
"""

from __future__ import annotations

from radpipe.catalog.entries import SeriesEntry
from radpipe.catalog.store import Catalog, open_catalog, scan

__all__ = ["Catalog", "SeriesEntry", "open_catalog", "scan"]
