"""Readers and writers. ``load`` asks each reader whether a path is its own; ``save`` writes by
file ending."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from radpipe.errors import FormatError, ReadError
from radpipe.volume import Volume

__all__ = ["load", "save"]


def load(
    path: str | Path,
    *,
    series: str | None = None,
    on_duplicate: str = "error",
    resample_tilt: bool = True,
    irregular: str = "resample",
    progress: Callable[[int], None] | None = None,
) -> Volume:
    """Load a volume from any supported file, a DICOM folder or a zip archive.

    Parameters
    ----------
    path : str or Path
        A DICOM file or folder (a folder is searched recursively for one series); a zip archive
        of DICOM files, or a location inside one (``study.zip::CT`` for a folder,
        ``study.zip::ct.nii.gz`` for a file; ``::`` again for a zip inside a zip); or a file of a
        format in :mod:`radpipe.io.registry` (NIfTI, NRRD, MetaImage, Analyze, MINC, MGH).
    series : str, optional
        DICOM only: the SeriesInstanceUID to load when a folder holds several.
    on_duplicate : {"error", "first", "last"}
        DICOM only: what to do with images that share a slice position.
    resample_tilt : bool
        DICOM only: resample gantry-tilted CT onto an orthogonal grid (default, with a warning;
        False keeps the sheared affine).
    irregular : {"resample", "mean", "error"}
        DICOM only: unevenly spaced or missing slices are resampled onto a regular grid through
        their true positions (default, with a warning), kept with the mean spacing, or refused.
    progress : callable, optional
        DICOM only: called with the number of frames decoded as they finish.

    Returns
    -------
    Volume
        (S, R, C[, N]) on an LPS affine; CT in HU.

    Raises
    ------
    ReadError
        If the path does not exist, is not a regular file or folder, or no reader accepts it.

    Warns
    -----
    GeometryWarning, DuplicateSliceWarning
        For missing or uneven slices, gantry tilt and dropped duplicates (DICOM).

    Examples
    --------
    >>> import radpipe
    >>> ct = radpipe.load("study/CT")  # doctest: +SKIP
    >>> ct = radpipe.load("study.zip::CT")  # doctest: +SKIP
    >>> ct.array.shape, ct.spacing  # doctest: +SKIP
    ((300, 512, 512), (2.5, 0.7, 0.7))
    """
    from radpipe.io import registry
    from radpipe.io.sources import check_location, is_archive_path

    location = str(path)
    kind = check_location(location)
    volume_format = registry.format_of(location)
    if volume_format is not None and kind == "file":
        if series is not None:
            raise FormatError(f"{location}: --series applies to DICOM folders, not this file")
        if is_archive_path(location):
            from radpipe.io.sources import local_copy

            with local_copy(location) as copy:
                return volume_format.read(copy)
        return volume_format.read(Path(location))
    if kind == "file" and not is_archive_path(location) and not is_dicom_file(Path(location)):
        raise ReadError(f"{location}: not a format radpipe reads (tried {registry.format_names()})")
    from radpipe.io.dicom.series import read_series

    return read_series(
        location,
        series=series,
        on_duplicate=on_duplicate,
        resample_tilt=resample_tilt,
        irregular=irregular,
        progress=progress,
    )


def is_dicom_file(path: Path) -> bool:
    """Whether a file starts like DICOM (``DICM`` after the preamble, or a bare data set)."""
    from radpipe.io.dicom.headers import _looks_like_raw_dataset

    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM" or _looks_like_raw_dataset(head[:8])


def save(volume: Volume, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``volume`` by the file's ending: ``.nii``, ``.nii.gz``, ``.nrrd`` or ``.mha``.

    The file is written under a temporary name and renamed into place; an existing file is
    refused unless ``overwrite``. A :class:`~radpipe.volume.LabelMap` with names also writes
    them to ``<stem>.json`` beside it (``{"1": "liver"}``), where the mask loaders find them.

    Raises
    ------
    FormatError
        If no format writes that ending.
    OutputExistsError
        If the file exists and ``overwrite`` is False.
    """
    from radpipe.io import registry

    target = Path(path)
    volume_format = registry.format_of(target)
    if (
        volume_format is None
        or volume_format.write is None
        or not target.name.lower().endswith(volume_format.write_suffixes)
    ):
        raise FormatError(
            f"{target}: unknown output format; use one of {', '.join(registry.writable_suffixes())}"
        )
    from radpipe.io.atomic import guard_output, inputs_of
    from radpipe.volume import LabelMap

    guard_output(target, **inputs_of(volume))
    if isinstance(volume, LabelMap) and volume.labels:
        sidecar = label_sidecar_path(target)
        guard_output(sidecar, **inputs_of(volume))
        if sidecar.exists() and not overwrite:
            from radpipe.errors import OutputExistsError

            raise OutputExistsError(f"{sidecar}: already exists; pass overwrite=True / --overwrite")
    written = volume_format.write(volume, target, overwrite=overwrite)
    if isinstance(volume, LabelMap) and volume.labels:
        import json

        from radpipe.io.atomic import atomic_path

        names = {str(value): name for value, name in sorted(volume.labels.items())}
        with atomic_path(label_sidecar_path(target), overwrite=True) as temporary:
            temporary.write_text(json.dumps(names, indent=1) + "\n")
    return written


def label_sidecar_path(path: str | Path) -> Path:
    """Where a label map's names live: ``<name>.json`` beside it, the name without its volume
    ending (``labels.nii.gz`` → ``labels.json``, ``labels.v2.nii.gz`` → ``labels.v2.json``),
    read back by the mask loaders."""
    from radpipe.io import registry

    target = Path(path)
    return target.with_name(registry.strip_suffix(target.name) + ".json")
