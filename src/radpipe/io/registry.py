"""The one list of volume file formats: which endings each reads and writes, asked by ``load``,
``save``, ``info``, discovery, and mask and heatmap loading.

DICOM is not in this list: it is recognised by content (``is_dicom_file``) or as a folder or zip
archive of files, and read as series by ``radpipe.io.dicom.series``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from radpipe.volume import Volume

Reader = Callable[[Path], Volume]
Writer = Callable[..., Path]


@dataclass(frozen=True)
class VolumeFormat:
    """One file format: its name, the endings it reads and writes, and how.

    Attributes
    ----------
    name : str
        As the catalog and ``info`` show it ("NIfTI", "NRRD", "MetaImage" …).
    suffixes : tuple of str
        Lower-case endings that select this format (``.nii.gz`` as a whole).
    read : callable
        ``read(path) -> Volume``.
    write : callable or None
        ``write(volume, path, overwrite=...) -> Path``; None for read-only formats.
    write_suffixes : tuple of str
        The endings ``write`` accepts.
    """

    name: str
    suffixes: tuple[str, ...]
    read: Reader
    write: Writer | None = None
    write_suffixes: tuple[str, ...] = ()

    def accepts(self, path: str | Path) -> bool:
        """Whether the file name ends as this format's files do."""
        return _name(path).endswith(self.suffixes)


def _name(path: str | Path) -> str:
    """The lower-case file name of a path or an archive location (``a.zip::b/c.nii.gz``)."""
    text = str(path).replace("::", "/").replace("\\", "/")
    last = text.rsplit("/", 1)[-1]
    if last in ("", "."):  # rare: what PurePosixPath(text).name gives, without its parse
        parts = [part for part in text.split("/") if part not in ("", ".")]
        last = parts[-1] if parts else ""
    return last.lower()


def _read_nibabel(path: Path) -> Volume:
    from radpipe.io.nifti import read_nifti

    return read_nifti(path)


def _write_nifti(volume: Volume, path: Path, *, overwrite: bool = False) -> Path:
    from radpipe.io.nifti import write_nifti

    return write_nifti(volume, path, overwrite=overwrite)


def _read_nrrd(path: Path) -> Volume:
    from radpipe.io.nrrd import read_nrrd

    return read_nrrd(path)


def _write_nrrd(volume: Volume, path: Path, *, overwrite: bool = False) -> Path:
    from radpipe.io.nrrd import write_nrrd

    return write_nrrd(volume, path, overwrite=overwrite)


def _read_metaimage(path: Path) -> Volume:
    from radpipe.io.metaimage import read_metaimage

    return read_metaimage(path)


def _write_metaimage(volume: Volume, path: Path, *, overwrite: bool = False) -> Path:
    from radpipe.io.metaimage import write_metaimage

    return write_metaimage(volume, path, overwrite=overwrite)


FORMATS: tuple[VolumeFormat, ...] = (
    VolumeFormat("NIfTI", (".nii", ".nii.gz"), _read_nibabel, _write_nifti, (".nii", ".nii.gz")),
    VolumeFormat("NRRD", (".nrrd", ".nhdr"), _read_nrrd, _write_nrrd, (".nrrd",)),
    VolumeFormat("MetaImage", (".mha", ".mhd"), _read_metaimage, _write_metaimage, (".mha",)),
    VolumeFormat("Analyze", (".hdr", ".img", ".img.gz"), _read_nibabel),
    VolumeFormat("MINC", (".mnc", ".mnc2"), _read_nibabel),
    VolumeFormat("MGH", (".mgh", ".mgz"), _read_nibabel),
)


def format_of(path: str | Path) -> VolumeFormat | None:
    """The format whose endings match ``path``, or None (DICOM and unknown files)."""
    name = _name(path)  # once, not once per format (the scan asks for every file)
    return next((fmt for fmt in FORMATS if name.endswith(fmt.suffixes)), None)


def volume_suffixes() -> tuple[str, ...]:
    """Every ending a volume reader accepts."""
    return tuple(suffix for fmt in FORMATS for suffix in fmt.suffixes)


def writable_suffixes() -> tuple[str, ...]:
    """Every ending ``save`` writes."""
    return tuple(suffix for fmt in FORMATS for suffix in fmt.write_suffixes)


def format_names() -> str:
    """The formats tried by ``load``, for messages."""
    return "DICOM (file, folder or zip), " + ", ".join(fmt.name for fmt in FORMATS)


def strip_suffix(name: str) -> str:
    """A file name without its volume ending (``case_seg.nii.gz`` → ``case_seg``)."""
    lower = name.lower()
    for suffix in sorted(volume_suffixes(), key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name
