"""Readers and writers. ``load`` asks each reader whether a path is its own; ``save`` writes by
file ending."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from radpipe.errors import FormatError, ReadError
from radpipe.volume import Volume

__all__ = ["load", "save"]

_FORMATS_TRIED = "DICOM (file or folder), NIfTI, Analyze, MINC, MGH, NRRD"


def load(
    path: str | Path,
    *,
    series: str | None = None,
    on_duplicate: str = "error",
    resample_tilt: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Volume:
    """Load a volume from any supported file or a DICOM folder.

    Parameters
    ----------
    path : str or Path
        A DICOM file or folder (a folder is searched recursively for one series), or a NIfTI /
        Analyze / MINC / MGH / NRRD file.
    series : str, optional
        DICOM only: the SeriesInstanceUID to load when a folder holds several.
    on_duplicate : {"error", "first", "last"}
        DICOM only: what to do with images that share a slice position.
    resample_tilt : bool
        DICOM only: resample gantry-tilted CT onto an orthogonal grid.
    progress : callable, optional
        DICOM only: called with the number of frames decoded as they finish.

    Returns
    -------
    Volume
        (S, R, C[, N]) on an LPS affine; CT in HU.

    Raises
    ------
    ReadError
        If the path does not exist or no reader accepts it.

    Examples
    --------
    >>> import radpipe
    >>> ct = radpipe.load("study/CT")  # doctest: +SKIP
    >>> ct.array.shape, ct.spacing  # doctest: +SKIP
    ((300, 512, 512), (2.5, 0.7, 0.7))
    """
    from radpipe.io import nifti, nrrd

    source = Path(path)
    if not source.exists():
        raise ReadError(f"{source}: no such file or folder")
    if source.is_file() and (nifti.accepts(source) or nrrd.accepts(source)):
        if series is not None:
            raise FormatError(f"{source}: --series applies to DICOM folders, not this file")
        return nifti.read_nifti(source) if nifti.accepts(source) else nrrd.read_nrrd(source)
    if source.is_dir() or is_dicom_file(source):
        from radpipe.io.series import read_series

        return read_series(
            source,
            series=series,
            on_duplicate=on_duplicate,
            resample_tilt=resample_tilt,
            progress=progress,
        )
    raise ReadError(f"{source}: not a format radpipe reads (tried {_FORMATS_TRIED})")


def is_dicom_file(path: Path) -> bool:
    """Whether a file starts like DICOM (``DICM`` after the preamble, or a bare data set)."""
    from radpipe.io.dicom import _looks_like_raw_dataset

    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or _looks_like_raw_dataset(head[:8])


def save(volume: Volume, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``volume`` by the file's ending: ``.nii``, ``.nii.gz`` or ``.nrrd``.

    The file is written under a temporary name and renamed into place.
    """
    from radpipe.io import nifti, nrrd

    target = Path(path)
    name = target.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return nifti.write_nifti(volume, target, overwrite=overwrite)
    if name.endswith(".nrrd"):
        return nrrd.write_nrrd(volume, target, overwrite=overwrite)
    raise FormatError(f"{target}: unknown output format; use .nii, .nii.gz or .nrrd")
