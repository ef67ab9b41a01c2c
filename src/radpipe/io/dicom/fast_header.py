"""A fast reader of the few header attributes radpipe plans volumes and catalogs with.

pydicom builds a full data set and converts each value on access, which costs about a
millisecond per file; scanning 20,000 files is dominated by that. This reader walks the
elements of little-endian data sets (implicit or explicit VR), skips every value it does not
need (sequences included) and stops at the pixel data. It declines (returns None) whatever it
does not handle exactly like pydicom — big endian, deflate, multi-frame, unusual character
sets — so the caller falls back to pydicom. ``tests/io/test_dicom_fast.py`` checks that both
give the same records and facts on every test file.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

_IMPLICIT_LE = "1.2.840.10008.1.2"
_DECLINED_SYNTAXES = {"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"}  # big endian, deflate
LONG_VRS = {
    b"OB",
    b"OW",
    b"OF",
    b"OD",
    b"OL",
    b"OV",
    b"SQ",
    b"UC",
    b"UN",
    b"UR",
    b"UT",
    b"SV",
    b"UV",
}
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PIXEL_DATA = 0x7FE00010
_UNDEFINED = 0xFFFFFFFF
_TEXT_VRS = {
    "AE",
    "AS",
    "CS",
    "DA",
    "DS",
    "DT",
    "IS",
    "LO",
    "PN",
    "SH",
    "TM",
    "UI",
    "LT",
    "ST",
    "UT",
    "UC",
}
_DECODINGS = {"": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 192": "utf-8"}

#: Attributes read, by keyword (top level only).
WANTED = [
    "SpecificCharacterSet",
    "ImageType",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "SeriesDate",
    "AcquisitionDate",
    "AccessionNumber",
    "Modality",
    "Manufacturer",
    "InstitutionName",
    "StudyDescription",
    "SeriesDescription",
    "ManufacturerModelName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "ContrastBolusAgent",
    "BodyPartExamined",
    "SliceThickness",
    "KVP",
    "SpacingBetweenSlices",
    "TriggerTime",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyID",
    "SeriesNumber",
    "AcquisitionNumber",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "TemporalPositionIdentifier",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "BurnedInAnnotation",
    "WindowCenter",
    "WindowWidth",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
    "EchoNumbers",
    "GridFrameOffsetVector",
    "DoseGridScaling",
]
#: Sequences whose presence (not content) matters.
PRESENCE = (
    "DirectoryRecordSequence",
    "PerFrameFunctionalGroupsSequence",
    "ReferencedSeriesSequence",
)


def _tables() -> tuple[dict[int, tuple[str, str]], dict[int, str]]:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    wanted = {}
    for keyword in WANTED:
        tag = tag_for_keyword(keyword)
        assert tag is not None, keyword
        wanted[int(tag)] = (keyword, str(dictionary_VR(tag)))
    presence = {int(tag_for_keyword(k) or 0): k for k in PRESENCE}
    return wanted, presence


_WANTED_TAGS, _PRESENCE_TAGS = _tables()


class _FileMeta:
    __slots__ = ("TransferSyntaxUID",)

    def __init__(self, syntax: str) -> None:
        self.TransferSyntaxUID = syntax


class FastHeader(dict):  # type: ignore[type-arg]
    """The wanted attributes of one data set, answering ``get`` / ``in`` / attributes like a
    pydicom Dataset does for them (strings, lists of strings for multiple values, ints for
    US). A dict of keyword to value, so ``get`` is the dict's own (the planners call it a few
    dozen times per file)."""

    __slots__ = ("_tags", "file_meta")
    #: What ``headers`` sets on a pydicom data set with float pixel data; the fast reader
    #: declines those files, and answering here spares an AttributeError per file.
    _radpipe_float_bits = 0

    def __init__(self, values: dict[str, Any], tags: set[int], syntax: str) -> None:
        super().__init__(values)
        self._tags = tags
        self.file_meta = _FileMeta(syntax)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return dict.__contains__(self, key)
        if isinstance(key, tuple):
            return ((key[0] << 16) | key[1]) in self._tags
        return key in self._tags

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __bool__(self) -> bool:
        return True  # a data set, present even when none of the wanted attributes is

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (FastHeader, (dict(self), self._tags, self.file_meta.TransferSyntaxUID))


def read_fast_header(handle: BinaryIO) -> tuple[FastHeader, int | None] | None:
    """Parse the wanted attributes of an open DICOM file.

    Returns
    -------
    (header, pixel_offset) or None
        ``pixel_offset`` is the byte offset of native pixel data's value (None when the data
        is encapsulated). None when the file is not a DICOM file this reader handles.
    """
    head = handle.read(65536)
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    parsed = _parse(head)
    if parsed is None:
        handle.seek(0)
        whole = handle.read()
        if len(whole) == len(head):
            return None
        parsed = _parse(whole)
    return parsed


def _explicit_header(data: bytes, position: int) -> tuple[bytes, int, int]:
    """VR, value length and value offset of an explicit-VR little-endian element."""
    vr = data[position + 4 : position + 6]
    if vr in LONG_VRS:
        return vr, struct.unpack_from("<I", data, position + 8)[0], position + 12
    return vr, struct.unpack_from("<H", data, position + 6)[0], position + 8


def _parse(data: bytes) -> tuple[FastHeader, int | None] | None:
    walked = walk(data)
    if walked is None:
        return None
    values, tags, syntax, pixel_offset = walked
    if not tags.isdisjoint(_PRESENCE_TAGS):
        return None  # enhanced multi-frame, DICOMDIR or references: pydicom reads those
    frames = values.get("NumberOfFrames")
    if frames not in (None, "1") or values.get("PhotometricInterpretation") == "PALETTE COLOR":
        return None
    return FastHeader(values, tags, syntax), pixel_offset


Walked = tuple[dict[str, Any], set[int], str, int | None]


def walk_python(data: bytes) -> Walked | None:
    """The wanted values (decoded), the tags present, the transfer syntax and the native
    pixel offset of a DICOM file's first bytes; None when they end before the pixel data, or
    hold what this reader leaves to pydicom. :func:`walk` is this function compiled when the
    extension is built (``_header_walk.pyx``), the same results in a fifth of the time."""
    try:
        return _walk_unchecked(data)
    except (struct.error, IndexError, ValueError, UnicodeDecodeError):
        return None


def _walk_unchecked(data: bytes) -> Walked | None:
    unpack_from = struct.unpack_from
    position = 132
    syntax = None
    # file meta: explicit VR little endian, group 0002
    while position + 8 <= len(data):
        group, element = unpack_from("<HH", data, position)
        if group != 0x0002:
            break
        _, length, value_start = _explicit_header(data, position)
        if element == 0x0010:
            syntax = data[value_start : value_start + length].rstrip(b"\0 ").decode("ascii")
        position = value_start + length
    if syntax is None or syntax in _DECLINED_SYNTAXES:
        return None
    implicit = syntax == _IMPLICIT_LE
    raw: dict[int, bytes] = {}
    tags: set[int] = set()
    end = len(data)
    while True:
        if position + 8 > end:
            return None  # ran out before the pixel data: the caller reads more
        group, element = unpack_from("<HH", data, position)
        tag = (group << 16) | element
        # the hot loop: element headers decoded inline (a helper call per element costs ~20%)
        if implicit:
            (length,) = unpack_from("<I", data, position + 4)
            value_start = position + 8
            is_sequence = length == _UNDEFINED or tag in _PRESENCE_TAGS
        else:
            vr = data[position + 4 : position + 6]
            if vr in LONG_VRS:
                (length,) = unpack_from("<I", data, position + 8)
                value_start = position + 12
            else:
                (length,) = unpack_from("<H", data, position + 6)
                value_start = position + 8
            is_sequence = vr == b"SQ"
        if tag == _PIXEL_DATA:
            tags.add(tag)
            return (
                _decode_values(raw),
                tags,
                syntax,
                (None if length == _UNDEFINED else value_start),
            )
        if tag > _PIXEL_DATA:
            return None
        if tag not in _PRESENCE_TAGS or not _empty_sequence(data, value_start, length):
            tags.add(tag)
        if length == _UNDEFINED:
            if not is_sequence and not implicit:
                return None
            position = _skip_undefined(data, value_start, implicit)
            if position < 0:
                return None
            continue
        if tag in _WANTED_TAGS:
            raw[tag] = data[value_start : value_start + length]
        position = value_start + length
        if position > end:
            return None


def _empty_sequence(data: bytes, value_start: int, length: int) -> bool:
    """A sequence whose items are all empty (some classic files carry one for functional
    groups, which must not make them look enhanced)."""
    position = value_start
    stop = len(data) if length == _UNDEFINED else value_start + length
    while position + 8 <= stop:
        group, element = struct.unpack_from("<HH", data, position)
        (item_length,) = struct.unpack_from("<I", data, position + 4)
        tag = (group << 16) | element
        if tag == _SEQUENCE_END:
            return True
        if tag == _ITEM and item_length == 0:
            position += 8
        elif tag == _ITEM and item_length == _UNDEFINED and position + 12 <= stop:
            group, element = struct.unpack_from("<HH", data, position + 8)
            if ((group << 16) | element) != _ITEM_END:
                return False
            position += 16
        else:
            return False
    return length != _UNDEFINED


def _skip_undefined(data: bytes, position: int, implicit: bool) -> int:
    """Skip a sequence of undefined length; return the position after its delimiter."""
    unpack_from = struct.unpack_from
    depth = 1
    end = len(data)
    while position + 8 <= end:
        group, element = unpack_from("<HH", data, position)
        tag = (group << 16) | element
        (length,) = unpack_from("<I", data, position + 4)
        if tag in (_SEQUENCE_END, _ITEM_END):
            position += 8
            if tag == _SEQUENCE_END:
                depth -= 1
                if depth == 0:
                    return position
            continue
        if tag == _ITEM:
            position += 8 if length == _UNDEFINED else 8 + length
            continue
        # an element inside an item of undefined length
        if implicit:
            value_start = position + 8
        else:
            _, length, value_start = _explicit_header(data, position)
        if length == _UNDEFINED:
            depth += 1
            position = value_start
        else:
            position = value_start + length
    return -1


def _decode_values(raw: dict[int, bytes]) -> dict[str, Any]:
    """The wanted attributes' values as pydicom gives them; ValueError for a character set
    this reader leaves to pydicom."""
    charset_bytes = raw.get(0x00080005, b"")
    charset = charset_bytes.decode("ascii", "replace").strip(" \0")
    encoding = _DECODINGS.get(charset)
    values: dict[str, Any] = {}
    for tag, data in raw.items():
        keyword, vr = _WANTED_TAGS[tag]
        if vr == "US":
            if len(data) < 2:
                continue
            values[keyword] = struct.unpack_from("<H", data)[0]
            continue
        if vr == "FD":
            if len(data) >= 8:
                values[keyword] = struct.unpack_from("<d", data)[0]
            continue
        if vr not in _TEXT_VRS:
            continue
        if encoding is None and vr in ("PN", "LO", "SH", "LT", "ST", "UT", "UC"):
            raise ValueError("character set needs pydicom")
        text = data.decode(encoding or "latin-1").rstrip("\0 ")
        if vr not in ("LT", "ST", "UT"):
            parts = [part.strip() if vr != "PN" else part.rstrip() for part in text.split("\\")]
            if len(parts) > 1:
                values[keyword] = parts
                continue
            text = parts[0]
        if text == "":
            continue
        values[keyword] = text
    return values


def _compiled_walk() -> Any:
    """The compiled walk configured with this module's tables, or None when the extension
    was not built (a platform without a C compiler): the Python walk then does the work."""
    try:
        from radpipe.io.dicom import _header_walk  # type: ignore[attr-defined]
    except ImportError:
        return None
    _header_walk.configure(
        _WANTED_TAGS, set(_PRESENCE_TAGS), _DECODINGS, _IMPLICIT_LE, _DECLINED_SYNTAXES
    )
    return _header_walk.walk


walk_compiled = _compiled_walk()
#: The walk in use: compiled when built, else :func:`walk_python`.
walk = walk_compiled or walk_python
