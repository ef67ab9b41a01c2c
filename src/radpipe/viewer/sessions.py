"""Viewer sessions from paths: one scan with its masks and heatmap, or a dataset root scanned into
a temporary catalog whose patients open on demand (removed when the session closes)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from radpipe.viewer.app import Session


def build_session(
    path: Path,
    masks: list[str],
    heatmap: Path | None,
    *,
    keep_phi: bool = False,
    label_names: str | None = None,
    background: bool = False,
) -> Session:
    """A viewer session for a scan (with masks / heatmap) or a dataset root.

    Parameters
    ----------
    path : Path
        A scan (series folder, file, zip location) or a dataset root of several patients.
    masks : list of str
        ``NAME=FILE`` or ``FILE`` mask sources, placed on the scan by world position.
    heatmap : Path, optional
        A heatmap file (with geometry: placed by world position).
    keep_phi : bool
        Show real patient identifiers.
    label_names : str, optional
        ``1=liver,2=tumor`` names of label values.
    background : bool
        Load one scan in a thread while the server starts (the page is answered at once; its
        data requests wait for the scan). A missing path still fails here; datasets are
        scanned first either way.

    Returns
    -------
    Session
        A context manager: closing it removes its temporary catalog.
    """
    from radpipe.io.sources import check_location

    source = Path(path)
    check_location(str(source))  # a missing path fails here, before any URL is printed
    if is_dataset(source, masks, heatmap):
        return _dataset_session(source, keep_phi=keep_phi)
    if not background:
        from radpipe.viewer.app import Session

        scan = build_scan(source, masks, heatmap, keep_phi=keep_phi, label_names=label_names)
        return Session(scan)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="radpipe-view-load")
    pending = pool.submit(
        build_scan, source, masks, heatmap, keep_phi=keep_phi, label_names=label_names
    )
    pool.shutdown(wait=False)
    from radpipe.viewer.app import Session  # the server's imports run while the scan loads

    return Session(pending=pending)


def is_dataset(source: Path, masks: list[str], heatmap: Path | None) -> bool:
    """A dataset root (patients to choose from) rather than one scan."""
    from radpipe.io.sources import check_location

    return (
        check_location(str(source)) == "folder"
        and source.is_dir()
        and not masks
        and heatmap is None
        and _is_dataset_root(source)
    )


def build_scan(
    source: Path,
    masks: list[str],
    heatmap: Path | None,
    *,
    keep_phi: bool = False,
    label_names: str | None = None,
) -> Any:
    """One scan with its masks and heatmap, ready to view (see :func:`build_session`)."""
    from radpipe.io import load
    from radpipe.io.heatmaps import read_heatmap
    from radpipe.io.mask_sources import load_mask_file, parse_label_names
    from radpipe.masks import MaskSet
    from radpipe.viewer.state import make_scan

    volume = load(source)
    found = MaskSet(volume.affine.copy(), {}, [])
    for spec in masks:
        name, sep, file = spec.partition("=")
        part = load_mask_file(Path(file if sep else spec), volume, name=name if sep else None,
                              label_names=parse_label_names(label_names))  # fmt: skip
        found.masks.update(part.masks)
    heat = read_heatmap(heatmap) if heatmap is not None else None
    return make_scan(volume, masks=found, heatmap=heat, keep_phi=keep_phi)


def _is_dataset_root(folder: Path) -> bool:
    """A folder whose subfolders hold series (more than one patient folder)."""
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return len(subfolders) > 1 and not any(
        p.is_file() and p.suffix == ".dcm" for p in folder.iterdir()
    )


def _dataset_session(root: Path, *, keep_phi: bool) -> Session:
    work = tempfile.mkdtemp(prefix="radpipe-view-")
    try:
        return _catalog_session(root, Path(work), keep_phi=keep_phi)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _catalog_session(root: Path, work: Path, *, keep_phi: bool) -> Session:
    from radpipe.catalog.patients import patient_image
    from radpipe.catalog.store import open_catalog, scan
    from radpipe.viewer.app import Session
    from radpipe.viewer.state import make_scan

    catalog_path = work / "catalog.sqlite"
    catalog, _ = scan(root, catalog_path, keep_phi=keep_phi)
    with catalog:
        patients = [
            {"patient": row["patient"], "series": row["series"]} for row in catalog.patients()
        ]

    def opener(patient: str) -> Any:
        with open_catalog(catalog_path) as found:
            image, masks = patient_image(found, patient)
            return make_scan(image, masks=masks, keep_phi=keep_phi)

    return Session(patients=patients, opener=opener, work_dir=work)
