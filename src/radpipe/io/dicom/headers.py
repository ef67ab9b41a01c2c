"""DICOM headers: one pass per file that describes every frame it holds (classic, legacy
multi-frame and enhanced multi-frame) as ``FrameRecord``s, and the ``VolumeMeta`` of a series."""

from __future__ import annotations

import functools
import math
import operator
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from radpipe.errors import ReadError
from radpipe.io.dicom.fast_header import LONG_VRS as _LONG_VRS
from radpipe.io.sources import is_archive_location, open_source
from radpipe.volume import VolumeMeta

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_DEFLATED_LE = "1.2.840.10008.1.2.1.99"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_NATIVE_SYNTAXES = {_IMPLICIT_LE, _EXPLICIT_LE, _EXPLICIT_BE}
_PIXEL_DATA_TAG_LE = b"\xe0\x7f\x10\x00"
_PIXEL_DATA_TAG_BE = b"\x7f\xe0\x00\x10"
#: (7FE0,0008) Float Pixel Data and (7FE0,0009) Double Float Pixel Data, as stored.
_FLOAT_PIXEL_TAGS_LE = (b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")
_FLOAT_PIXEL_TAGS_BE = (b"\x7f\xe0\x00\x08", b"\x7f\xe0\x00\x09")

#: Which package decodes which compressed transfer syntax (for error messages).
DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg (JPEG Baseline)",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg (JPEG Extended)",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg (JPEG Lossless)",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg (JPEG Lossless SV1)",
    "1.2.840.10008.1.2.4.80": "pyjpegls (JPEG-LS Lossless)",
    "1.2.840.10008.1.2.4.81": "pyjpegls (JPEG-LS Near-Lossless)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg (JPEG 2000 Lossless)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg (JPEG 2000)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg>=2.4 (HTJ2K Lossless)",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg>=2.4 (HTJ2K Lossless RPCL)",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg>=2.4 (HTJ2K)",
    "1.2.840.10008.1.2.5": "pylibjpeg-rle (RLE Lossless)",
}

#: SOP classes that hold pixels but are not images to assemble into a volume here.
_NOT_VOLUME_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "DICOM SEG (read it with the segmentation reader)",
    "1.2.840.10008.5.1.4.1.1.66.7": "DICOM SEG label map (read it with the segmentation reader)",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set (contours, not an image)",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
}


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """How a file stores its pixels: enough to decode any of its frames."""

    transfer_syntax: str
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar_configuration: int
    number_of_frames: int
    pixel_offset: int | None
    """Byte offset of native pixel data in the file, or None to decode with pydicom."""
    float_pixels: bool = False
    """Float (7FE0,0008) or Double Float (7FE0,0009) Pixel Data: IEEE values, no rescale."""

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # pickled as its fields, and one shared instance per distinct layout when unpickled
        # (a series' files all have the same): the scan sends one per file to the parent
        return (_shared_layout, _layout_values(self))

    @property
    def stored_dtype(self) -> np.dtype[Any]:
        """NumPy dtype of one stored sample (byte order included)."""
        order = ">" if self.transfer_syntax == _EXPLICIT_BE else "<"
        if self.float_pixels:
            return np.dtype(f"{order}f{8 if self.bits_allocated == 64 else 4}")
        kind = "i" if self.signed else "u"
        return np.dtype(f"{order}{kind}{max(1, self.bits_allocated // 8)}")

    @property
    def channels(self) -> int:
        """Values per pixel once decoded: 3 for colour (RGB, YBR and palette colour), else 1."""
        return 3 if self.samples_per_pixel > 1 or self.photometric == "PALETTE COLOR" else 1

    @property
    def frame_samples(self) -> int:
        """Number of samples in one frame."""
        return self.rows * self.columns * self.samples_per_pixel

    @property
    def stored_range(self) -> tuple[int, int]:
        """Smallest and largest value the stored bits can hold."""
        if self.signed:
            return -(2 ** (self.bits_stored - 1)), 2 ** (self.bits_stored - 1) - 1
        return 0, 2**self.bits_stored - 1


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One frame of one file with the header facts needed to place it in a volume."""

    path: str
    frame: int
    layout: PixelLayout
    series_uid: str
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    split_key: tuple[str, ...]
    temporal_key: tuple[float, ...]
    slice_thickness: float | None
    spacing_between_slices: float | None
    modality: str = ""
    rescale_type: str = ""
    header: Any = field(default=None, repr=False, compare=False)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # its fields as a plain tuple: a fraction of the default pickling of a slotted
        # dataclass, paid by the scan's parent for every frame of every file
        return (FrameRecord, (*_record_values(self), self.header))

    def fields(self) -> tuple[Any, ...]:
        """Every field but the parsed header, in order: ``FrameRecord(*record.fields())``
        rebuilds the record without it."""
        return _record_values(self)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of everything but the parsed header (for the catalog cache)."""
        data = dict(zip(_RECORD_FIELDS, _record_values(self), strict=True))
        data["layout"] = dict(zip(PixelLayout.__slots__, _layout_values(self.layout), strict=True))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameRecord:
        """Rebuild a record (without header) from :meth:`to_json`'s dict."""
        values = dict(data)
        values["layout"] = PixelLayout(**values["layout"])
        for name in ("position", "orientation", "pixel_spacing", "split_key", "temporal_key"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)


_RECORD_FIELDS = tuple(name for name in FrameRecord.__slots__ if name != "header")
assert FrameRecord.__slots__[-1] == "header"  # __reduce__ appends it to the other fields
#: The fields of a record but its header, and of a layout, as tuples (one C call each).
_record_values: Callable[[FrameRecord], tuple[Any, ...]] = operator.attrgetter(*_RECORD_FIELDS)
_layout_values: Callable[[PixelLayout], tuple[Any, ...]] = operator.attrgetter(
    *PixelLayout.__slots__
)


@functools.lru_cache(maxsize=256)
def _shared_layout(*fields: Any) -> PixelLayout:
    """The PixelLayout of these fields, one instance for equal ones (they are immutable)."""
    return PixelLayout(*fields)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file in a folder that holds no image to assemble, and why (``damaged`` when it should
    have held one but could not be read)."""

    path: str
    reason: str
    damaged: bool = False


def _float_or_none(value: Any) -> float | None:
    """A finite number, or None when absent, not a number, NaN or infinite (a damaged value
    is treated as a missing one)."""
    try:
        number = float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def _spacing(value: Any) -> tuple[float, float] | None:
    """Two positive spacings in mm, or None when absent or invalid (e.g. ``0\\0``)."""
    numbers = _floats(value, 2)
    if numbers is None or min(numbers) <= 0:
        return None
    return (numbers[0], numbers[1])


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def _strings(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return (str(value).strip(),)
    return tuple(str(v).strip() for v in value)


def open_dataset(path: str | Path, *, stop_before_pixels: bool) -> tuple[Any, int | None]:
    """Read a DICOM file's data set; with ``stop_before_pixels`` also find the pixel data.

    Returns
    -------
    dataset : pydicom.Dataset
    pixel_offset : int or None
        Byte offset of the native pixel data's value (None when not native or not located).

    Raises
    ------
    ReadError
        If the file is not DICOM or cannot be parsed.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    name = str(path)
    try:
        with open_source(name) as handle:
            try:
                dataset = pydicom.dcmread(handle, stop_before_pixels=stop_before_pixels)
            except InvalidDicomError:
                handle.seek(0)
                if not _looks_like_raw_dataset(handle.read(8)):
                    raise
                handle.seek(0)
                dataset = pydicom.dcmread(handle, stop_before_pixels=stop_before_pixels, force=True)
            offset = _locate_native_pixels(handle, dataset) if stop_before_pixels else None
    except InvalidDicomError as exc:
        raise ReadError(f"{name}: not a DICOM file (no 'DICM' marker or valid data set)") from exc
    except (OSError, EOFError, struct.error, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise ReadError(f"{name}: no such file") from exc
        raise ReadError(f"{name}: cannot parse DICOM ({exc}); the file may be truncated") from exc
    return dataset, offset


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A DICOM data set without preamble starts with a group 0002 or 0008 tag."""
    if len(head) < 8:
        return False
    for order in "<>":
        group, element = struct.unpack(f"{order}HH", head[:4])
        if group in (0x0002, 0x0008) and element < 0x0100:
            return True
    return False


def _locate_native_pixels(handle: Any, dataset: Any) -> int | None:
    """After a stop-before-pixels read the handle sits on (7FE0,0010): find its value's offset."""
    syntax = str(getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", _IMPLICIT_LE))
    if syntax not in _NATIVE_SYNTAXES:
        return None
    start: int = handle.tell()
    head = handle.read(12)
    if len(head) < 8:
        return None
    expected_tag = _PIXEL_DATA_TAG_BE if syntax == _EXPLICIT_BE else _PIXEL_DATA_TAG_LE
    float_tags = _FLOAT_PIXEL_TAGS_BE if syntax == _EXPLICIT_BE else _FLOAT_PIXEL_TAGS_LE
    if head[:4] in float_tags:
        dataset._radpipe_float_bits = 64 if head[:4] == float_tags[1] else 32
    elif head[:4] != expected_tag:
        return None
    order = ">" if syntax == _EXPLICIT_BE else "<"
    if syntax == _IMPLICIT_LE:
        (length,) = struct.unpack(f"{order}I", head[4:8])
        value_offset = start + 8
    elif head[4:6] in _LONG_VRS:
        (length,) = struct.unpack(f"{order}I", head[8:12])
        value_offset = start + 12
    else:
        (length,) = struct.unpack(f"{order}H", head[6:8])
        value_offset = start + 8
    if length == 0xFFFFFFFF:
        return None
    return value_offset


def pixel_layout(dataset: Any, pixel_offset: int | None, path: str) -> PixelLayout:
    """Describe how ``dataset`` stores its pixels."""
    syntax = str(getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", _IMPLICIT_LE))
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        bits_allocated = int(dataset.BitsAllocated)
    except AttributeError as exc:
        raise ReadError(f"{path}: image pixel module incomplete ({exc})") from exc
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    float_bits = int(getattr(dataset, "_radpipe_float_bits", 0) or 0)
    if float_bits:
        bits_allocated = float_bits  # 32 or 64 by definition of the element
    if syntax not in _NATIVE_SYNTAXES and syntax != _DEFLATED_LE:
        if syntax not in DECODER_PACKAGES:
            raise ReadError(
                f"{path}: unknown transfer syntax {syntax}; radpipe reads the native, deflated, "
                "JPEG, JPEG-LS, JPEG 2000, HTJ2K and RLE syntaxes — convert the file with "
                "dcmtk's dcmconv or gdcmconv first"
            )
        if pixel_offset is not None:
            raise ReadError(
                f"{path}: the transfer syntax {syntax} says the pixels are compressed, but they "
                "are stored raw (not encapsulated); the file is inconsistent — re-export it"
            )
    layout = PixelLayout(
        transfer_syntax=syntax,
        rows=rows,
        columns=columns,
        samples_per_pixel=samples,
        bits_allocated=bits_allocated,
        bits_stored=int(dataset.get("BitsStored", bits_allocated) or bits_allocated),
        signed=int(dataset.get("PixelRepresentation", 0) or 0) == 1,
        photometric=str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip(),
        planar_configuration=int(dataset.get("PlanarConfiguration", 0) or 0),
        number_of_frames=int(dataset.get("NumberOfFrames", 1) or 1),
        pixel_offset=pixel_offset,
        float_pixels=float_bits > 0,
    )
    native_ok = (
        pixel_offset is not None
        and samples == 1
        and bits_allocated in ((32, 64) if float_bits else (8, 16, 32))
        and layout.photometric in ("MONOCHROME1", "MONOCHROME2")
    )
    if not native_ok and pixel_offset is not None:
        layout = PixelLayout(**{**_layout_fields(layout), "pixel_offset": None})
    return layout


def _layout_fields(layout: PixelLayout) -> dict[str, Any]:
    return {name: getattr(layout, name) for name in PixelLayout.__slots__}


def _is_mosaic(dataset: Any) -> bool:
    image_type = [str(v).upper() for v in _strings(dataset.get("ImageType"))]
    return "MOSAIC" in image_type or (0x0019, 0x100A) in dataset


def frame_records(
    path: str | Path, *, fast: bool = True, file_size: int | None = None
) -> list[FrameRecord] | SkippedFile:
    """Read one file's header and describe each of its frames (see ``_frame_records``).

    ``fast`` tries radpipe's own header reader first (:mod:`radpipe.io.dicom.fast_header`), falling
    back to pydicom for what it declines; ``fast=False`` always uses pydicom. ``file_size``, when
    the caller has it from its walk, spares the check for truncated pixel data a ``stat``.
    """
    try:
        result = _frame_records(path, fast=fast, file_size=file_size)
        if not isinstance(result, SkippedFile):
            for record in result:
                _check_geometry_values(record, path)
        return result
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise ReadError(
            f"{path}: invalid DICOM header value ({exc}); fix or remove the file"
        ) from exc


def _check_geometry_values(record: FrameRecord, path: str | Path) -> None:
    """Refuse NaN or infinite positions, orientations and spacings (a damaged header)."""
    for name, values in (
        ("ImagePositionPatient", record.position),
        ("ImageOrientationPatient", record.orientation),
        ("PixelSpacing", record.pixel_spacing),
    ):
        if values is not None and not all(map(math.isfinite, values)):
            raise ReadError(
                f"{path}: {name} holds values that are not numbers ({list(values)}); the header "
                "is damaged, restore the file from the source"
            )


def _frame_records(
    path: str | Path, *, fast: bool = True, file_size: int | None = None
) -> list[FrameRecord] | SkippedFile:
    """Read one file's header and describe each of its frames.

    Parameters
    ----------
    path : str or Path
        A DICOM file.

    Returns
    -------
    list of FrameRecord, or SkippedFile
        A ``SkippedFile`` with a reason for files that are not DICOM or hold no image volume
        (DICOMDIR, reports, structure sets, SEG) or cannot assemble (Siemens mosaics).

    Raises
    ------
    ReadError
        For broken headers.
    """
    name = str(path)
    quick = _fast_header(name) if fast else None
    try:
        dataset, offset = (
            quick if quick is not None else open_dataset(name, stop_before_pixels=True)
        )
    except ReadError as exc:
        if "not a DICOM file" in str(exc):
            if name.lower().endswith(".dcm"):
                raise ReadError(
                    f"{name}: named .dcm but not a readable DICOM file (damaged or overwritten); "
                    "restore it from the source or remove it"
                ) from None
            return SkippedFile(name, "not DICOM")
        raise
    sop_class = str(dataset.get("SOPClassUID", ""))
    if sop_class in _NOT_VOLUME_SOP_CLASSES:
        return SkippedFile(name, _NOT_VOLUME_SOP_CLASSES[sop_class])
    if "Rows" not in dataset or "Columns" not in dataset or "BitsAllocated" not in dataset:
        if "DirectoryRecordSequence" in dataset:
            return SkippedFile(name, "DICOMDIR")
        if "ImagePositionPatient" in dataset or "ImageOrientationPatient" in dataset:
            missing = [k for k in ("Rows", "Columns", "BitsAllocated") if k not in dataset]
            raise ReadError(
                f"{name}: an image header without {', '.join(missing)} (damaged); restore the "
                "file from the source or remove it"
            )
        return SkippedFile(name, "no pixel data")
    if _is_mosaic(dataset):
        return SkippedFile(name, "Siemens mosaic (unpacked by radpipe.io.dicom.mosaic)")
    layout = pixel_layout(dataset, offset, name)
    _check_pixel_length(layout, name, file_size)
    if _has_functional_groups(dataset, layout):
        return _enhanced_records(name, dataset, layout)
    if layout.number_of_frames > 1:
        return _legacy_multiframe_records(name, dataset, layout)
    return [_classic_record(name, dataset, layout)]


def _check_pixel_length(layout: PixelLayout, name: str, size: int | None = None) -> None:
    """Refuse native pixel data that runs past the end of the file (a truncated copy), from
    the header and the file size alone; zip members are checked when decoded."""
    import os

    if layout.pixel_offset is None or is_archive_location(name):
        return
    needed = layout.pixel_offset + (
        layout.number_of_frames * layout.frame_samples * layout.stored_dtype.itemsize
    )
    if size is None:
        try:
            size = os.path.getsize(name)
        except OSError:
            return
    if size < needed:
        raise ReadError(
            f"{name}: pixel data is truncated (the header needs {needed} bytes, the file has "
            f"{size}); the file is incomplete, copy it again from the source"
        )


def _fast_header(name: str) -> tuple[Any, int | None] | None:
    """The fast reader's header for the common case, or None to read with pydicom."""
    from radpipe.io.dicom.fast_header import read_fast_header

    try:
        with open_source(name) as handle:
            return read_fast_header(handle)
    except (OSError, ReadError):
        return None


def _has_functional_groups(dataset: Any, layout: PixelLayout) -> bool:
    """Enhanced multi-frame: one non-empty functional-group item per frame (some classic files
    carry an empty PerFrameFunctionalGroupsSequence, which must be ignored)."""
    groups = dataset.get("PerFrameFunctionalGroupsSequence")
    if not groups or len(groups) != layout.number_of_frames:
        return False
    return any(len(item) > 0 for item in groups)


def _classic_record(path: str, dataset: Any, layout: PixelLayout) -> FrameRecord:
    spacing = _spacing(dataset.get("PixelSpacing")) or _spacing(dataset.get("ImagerPixelSpacing"))
    image_type = _strings(dataset.get("ImageType"))
    echo_number = _float_or_none(dataset.get("EchoNumbers"))
    echo = f"{echo_number:g}" if echo_number else ""
    return FrameRecord(
        path=path,
        frame=0,
        layout=layout,
        series_uid=str(dataset.get("SeriesInstanceUID", "") or f"no-series-uid:{path}"),
        position=_floats(dataset.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
        orientation=_floats(dataset.get("ImageOrientationPatient"), 6),
        pixel_spacing=spacing,
        slope=_float_or_none(dataset.get("RescaleSlope")) or 1.0,
        intercept=_float_or_none(dataset.get("RescaleIntercept")) or 0.0,
        split_key=(*image_type[:3], f"echo={echo}") if echo else tuple(image_type[:3]),
        temporal_key=(
            _float_or_none(dataset.get("TemporalPositionIdentifier")) or 0.0,
            _float_or_none(dataset.get("AcquisitionNumber")) or 0.0,
            _float_or_none(dataset.get("TriggerTime")) or 0.0,
            _float_or_none(dataset.get("InstanceNumber")) or 0.0,
        ),
        slice_thickness=_float_or_none(dataset.get("SliceThickness")),
        spacing_between_slices=_float_or_none(dataset.get("SpacingBetweenSlices")),
        modality=str(dataset.get("Modality", "") or "").upper(),
        rescale_type=str(dataset.get("RescaleType", "") or "").upper(),
        header=dataset,
    )


def _legacy_multiframe_records(path: str, dataset: Any, layout: PixelLayout) -> list[FrameRecord]:
    """Frames of a multi-frame file without per-frame geometry: stacked along the normal."""
    from radpipe.geometry import slice_normal

    base = _classic_record(path, dataset, layout)
    frames = layout.number_of_frames
    offsets = _floats(dataset.get("GridFrameOffsetVector"), frames)
    step = base.spacing_between_slices or base.slice_thickness or 1.0
    if offsets is None:
        offsets = tuple(index * step for index in range(frames))
    slope = _float_or_none(dataset.get("DoseGridScaling")) or base.slope
    records = []
    normal = slice_normal(base.orientation) if base.orientation else None
    for index in range(frames):
        position = base.position
        if position is not None and normal is not None:
            moved = np.asarray(position) + normal * offsets[index]
            position = (float(moved[0]), float(moved[1]), float(moved[2]))
        elif position is None:
            position = (0.0, 0.0, float(offsets[index]))
        records.append(
            FrameRecord(
                path=path,
                frame=index,
                layout=layout,
                series_uid=base.series_uid,
                position=position,
                orientation=base.orientation or (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
                pixel_spacing=base.pixel_spacing,
                slope=slope,
                intercept=base.intercept,
                split_key=base.split_key,
                temporal_key=base.temporal_key,
                slice_thickness=base.slice_thickness,
                spacing_between_slices=base.spacing_between_slices or abs(step),
                modality=base.modality,
                rescale_type=base.rescale_type,
                header=dataset,
            )
        )
    return records


def _group_item(frame_item: Any, shared_item: Any, sequence: str) -> Any:
    for item in (frame_item, shared_item):
        if item is not None and sequence in item:
            value = item[sequence].value
            if value:
                return value[0]
    return None


def _enhanced_records(path: str, dataset: Any, layout: PixelLayout) -> list[FrameRecord]:
    """Frames of an enhanced multi-frame image, each with its functional-group geometry."""
    shared_sequence = dataset.get("SharedFunctionalGroupsSequence")
    shared = shared_sequence[0] if shared_sequence else None
    per_frame = dataset.PerFrameFunctionalGroupsSequence
    series_uid = str(dataset.get("SeriesInstanceUID", "") or f"no-series-uid:{path}")
    modality = str(dataset.get("Modality", "") or "").upper()
    rescale_type = str(dataset.get("RescaleType", "") or "").upper()
    records = []
    for index, item in enumerate(per_frame):
        position_item = _group_item(item, shared, "PlanePositionSequence")
        orientation_item = _group_item(item, shared, "PlaneOrientationSequence")
        measures = _group_item(item, shared, "PixelMeasuresSequence")
        transform = _group_item(item, shared, "PixelValueTransformationSequence")
        content = _group_item(item, shared, "FrameContentSequence")
        frame_type_item = (
            _group_item(item, shared, "MRImageFrameTypeSequence")
            or _group_item(item, shared, "CTImageFrameTypeSequence")
            or _group_item(item, shared, "XAXRFFrameCharacteristicsSequence")
        )
        echo_item = _group_item(item, shared, "MREchoSequence")
        frame_type = _strings(frame_type_item.get("FrameType")) if frame_type_item else ()
        echo_time = _float_or_none(echo_item.get("EffectiveEchoTime")) if echo_item else None
        split = tuple(frame_type[:4]) + ((f"TE={echo_time:g}",) if echo_time is not None else ())
        temporal: tuple[float, ...] = (float(index),)
        if content is not None:
            temporal = (
                _float_or_none(content.get("TemporalPositionIndex")) or 0.0,
                *(float(v) for v in _strings(content.get("DimensionIndexValues"))[::-1]),
                float(index),
            )
        records.append(
            FrameRecord(
                path=path,
                frame=index,
                layout=layout,
                series_uid=series_uid,
                position=_floats((position_item or dataset).get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
                orientation=_floats(
                    (orientation_item or dataset).get("ImageOrientationPatient"), 6
                ),
                pixel_spacing=_spacing((measures or dataset).get("PixelSpacing")),
                slope=(_float_or_none(transform.get("RescaleSlope")) or 1.0) if transform else 1.0,
                intercept=(_float_or_none(transform.get("RescaleIntercept")) or 0.0)
                if transform
                else 0.0,
                split_key=split,
                temporal_key=temporal,
                slice_thickness=_float_or_none(measures.get("SliceThickness"))
                if measures
                else None,
                spacing_between_slices=_float_or_none(measures.get("SpacingBetweenSlices"))
                if measures
                else None,
                modality=modality,
                rescale_type=rescale_type,
                header=dataset,
            )
        )
    return records


def meta_from_header(dataset: Any, **extra: Any) -> VolumeMeta:
    """The typed record of what a DICOM series is, from one of its headers."""

    def text(keyword: str) -> str | None:
        value = dataset.get(keyword)
        return str(value).strip() if value not in (None, "") else None

    series_number = dataset.get("SeriesNumber")
    return VolumeMeta(
        modality=text("Modality"),
        patient_id=text("PatientID"),
        patient_name=text("PatientName"),
        patient_birth_date=text("PatientBirthDate"),
        accession_number=text("AccessionNumber"),
        institution=text("InstitutionName"),
        study_uid=text("StudyInstanceUID"),
        study_date=text("StudyDate"),
        study_description=text("StudyDescription"),
        series_uid=text("SeriesInstanceUID"),
        series_number=int(series_number) if series_number not in (None, "") else None,
        series_description=text("SeriesDescription"),
        manufacturer=text("Manufacturer"),
        model=text("ManufacturerModelName"),
        body_part=text("BodyPartExamined"),
        image_type=_strings(dataset.get("ImageType")),
        photometric=text("PhotometricInterpretation"),
        window_center=_numbers(dataset.get("WindowCenter")),
        window_width=_numbers(dataset.get("WindowWidth")),
        slice_thickness_mm=_float_or_none(dataset.get("SliceThickness")),
        source_format="DICOM",
        header=dataset,
        **extra,
    )


def _numbers(value: Any) -> tuple[float, ...]:
    numbers = []
    for item in _strings(value):
        number = _float_or_none(item)
        if number is not None:
            numbers.append(number)
    return tuple(numbers)


# --------------------------------------------------------------------------------------------
# Decoding


def referenced_series(dataset: Any) -> list[str]:
    """SeriesInstanceUIDs a SEG (ReferencedSeriesSequence) or RTSTRUCT (through its frames of
    reference) points to."""
    found: list[str] = []
    for item in dataset.get("ReferencedSeriesSequence", []) or []:
        uid = item.get("SeriesInstanceUID")
        if uid:
            found.append(str(uid))
    for frame in dataset.get("ReferencedFrameOfReferenceSequence", []) or []:
        for study in frame.get("RTReferencedStudySequence", []) or []:
            for series in study.get("RTReferencedSeriesSequence", []) or []:
                uid = series.get("SeriesInstanceUID")
                if uid:
                    found.append(str(uid))
    return found
