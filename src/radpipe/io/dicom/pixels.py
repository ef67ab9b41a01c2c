"""DICOM pixels: decoding the frames a header pass described, native frames read in place and
compressed transfer syntaxes through pydicom's decoder plugins."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import ReadError
from radpipe.io.dicom.headers import DECODER_PACKAGES, PixelLayout
from radpipe.io.sources import is_archive_location, open_source


def decode_file_frames(path: str, layout: PixelLayout, frames: Sequence[int]) -> list[NDArray[Any]]:
    """Decode the stored values of some frames of one file.

    Returns
    -------
    list of ndarray
        One ``(R, C)`` array (``(R, C, 3)`` for colour, delivered as RGB) per requested frame,
        in the stored dtype; signed values with fewer stored than allocated bits are
        sign-extended.

    Raises
    ------
    ReadError
        If the pixel data is truncated or its transfer syntax cannot be decoded.
    """
    if layout.pixel_offset is not None:
        return _read_native_frames(path, layout, frames)
    if releases_the_gil(layout):
        decoded = _decode_with_imagecodecs(path, layout, frames)
        if decoded is not None:
            return decoded
    return _decode_with_pydicom(path, layout, frames)


#: Transfer syntax → imagecodecs decoder (compiled, GIL released) of grey frames: the fastest
#: of the packaged decoders that gives pydicom's values, per ``benchmarks/bench_load.py
#: --decoders`` (JPEG 2000 and HTJ2K: OpenJPEG, the library pydicom's plugin wraps; JPEG-LS:
#: CharLS, as pyjpegls; JPEG lossless: libjpeg-turbo's lossless mode).
IMAGECODECS_DECODERS = {
    "1.2.840.10008.1.2.4.90": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.91": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.201": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.202": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.203": "jpeg2k_decode",
    "1.2.840.10008.1.2.4.80": "jpegls_decode",
    "1.2.840.10008.1.2.4.81": "jpegls_decode",
    "1.2.840.10008.1.2.4.57": "jpeg8_decode",
    "1.2.840.10008.1.2.4.70": "jpeg8_decode",
}


def releases_the_gil(layout: PixelLayout) -> bool:
    """Whether this layout's frames decode in a library that releases the GIL (so threads,
    not processes, spread them over the cores): grey JPEG 2000, HTJ2K, JPEG-LS and JPEG
    lossless with imagecodecs installed."""
    if layout.transfer_syntax not in IMAGECODECS_DECODERS or layout.samples_per_pixel != 1:
        return False
    if layout.photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return False  # palette colour: pydicom applies the colour table
    return _have_imagecodecs()


@functools.cache
def _have_imagecodecs() -> bool:
    """Whether imagecodecs is installed (asked once: this is on the per-file decode path)."""
    import importlib.util

    return importlib.util.find_spec("imagecodecs") is not None


def _decode_with_imagecodecs(
    path: str, layout: PixelLayout, frames: Sequence[int]
) -> list[NDArray[Any]] | None:
    """Grey frames through imagecodecs (GIL released). None when a decoded frame does not
    match the header's layout exactly (size, signedness, bits) or the decoder refuses the
    stream: pydicom's decoder then applies its corrections or reports the failure."""
    import imagecodecs
    import pydicom
    from pydicom.encaps import generate_frames

    codec = IMAGECODECS_DECODERS[layout.transfer_syntax]
    decode = getattr(imagecodecs, codec, None)
    if decode is None:  # an imagecodecs build without this codec: pydicom's plugin decodes
        return None
    jpeg2000 = codec == "jpeg2k_decode"
    options = {"numthreads": 1} if jpeg2000 else {}
    # JPEG-LS and JPEG lossless code unsigned samples; signed data are their two's complement
    unsigned_codec = not jpeg2000 and layout.signed
    try:
        with open_source(path) as handle:
            dataset = pydicom.dcmread(handle, force=True)
    except (OSError, EOFError) as exc:
        raise ReadError(f"{path}: pixel data cannot be read ({exc})") from exc
    try:
        wanted = set(frames)
        streams = {
            number: bytes(stream)
            for number, stream in enumerate(
                generate_frames(dataset.PixelData, number_of_frames=layout.number_of_frames)
            )
            if number in wanted
        }
        result = []
        for frame in frames:
            if unsigned_codec and _sample_precision(streams[frame]) != layout.bits_stored:
                return None  # pydicom sign-extends from the codestream's own precision
            values = decode(streams[frame], **options)
            if unsigned_codec and values.dtype.kind == "u":
                values = values.view(f"i{values.dtype.itemsize}")  # the header's sign
            if values.shape != (layout.rows, layout.columns) or values.dtype != layout.stored_dtype:
                return None
            result.append(_fix_stored_bits(values, layout))
        return result
    except (KeyError, ValueError, AttributeError, RuntimeError):  # codec errors: RuntimeError
        return None


#: Start-of-frame markers of lossless JPEG (SOF3, SOF7, SOF11, SOF15) and JPEG-LS (SOF55).
_LOSSLESS_FRAME_MARKERS = frozenset({0xC3, 0xC7, 0xCB, 0xCF, 0xF7})


def _sample_precision(stream: bytes) -> int | None:
    """The sample precision (bits) in a JPEG or JPEG-LS codestream's frame header."""
    position = 2 if stream[:2] == b"\xff\xd8" else -1
    while position >= 0 and position + 5 <= len(stream):
        if stream[position] != 0xFF:
            return None
        marker = stream[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in _LOSSLESS_FRAME_MARKERS:
            return stream[position + 4]
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        position += 2 + int.from_bytes(stream[position + 2 : position + 4], "big")
    return None


def _read_native_frames(
    path: str, layout: PixelLayout, frames: Sequence[int]
) -> list[NDArray[Any]]:
    dtype = layout.stored_dtype
    count = layout.frame_samples
    frame_bytes = count * dtype.itemsize
    assert layout.pixel_offset is not None
    result = []
    with open_source(path) as handle:
        for frame in frames:
            handle.seek(layout.pixel_offset + frame * frame_bytes)
            data = handle.read(frame_bytes)  # files and zip members (in memory) alike
            values = np.frombuffer(data, dtype=dtype, count=len(data) // dtype.itemsize)
            if values.size != count:
                raise ReadError(
                    f"{path}: pixel data is truncated (frame {frame} needs {frame_bytes} bytes); "
                    f"the file is incomplete, copy it again from the source"
                )
            if not dtype.isnative:
                values = values.astype(dtype.newbyteorder("="))
            result.append(_fix_stored_bits(values.reshape(layout.rows, layout.columns), layout))
    return result


def _fix_stored_bits(values: NDArray[Any], layout: PixelLayout) -> NDArray[Any]:
    if layout.float_pixels:
        return values
    if layout.signed and layout.bits_stored < layout.bits_allocated:
        shift = layout.bits_allocated - layout.bits_stored
        values = (values << shift) >> shift
    return values


def _decode_with_pydicom(
    path: str, layout: PixelLayout, frames: Sequence[int]
) -> list[NDArray[Any]]:
    """Decode compressed (or unusual native) pixel data with pydicom and its plugins.

    Multi-frame files in a proper DICOM file format decode only the frames asked for; other
    files are read whole.
    """
    import pydicom
    from pydicom.pixels import pixel_array  # type: ignore[attr-defined]

    try:
        palette = layout.photometric == "PALETTE COLOR"
        if (
            layout.number_of_frames > 1
            and len(frames) == 1
            and not palette
            and not is_archive_location(path)
            and _has_file_meta(path)
        ):
            return [np.asarray(pixel_array(path, index=frames[0]))]
        with open_source(path) as handle:
            dataset = pydicom.dcmread(handle, force=True)
        if "TransferSyntaxUID" not in getattr(dataset, "file_meta", {}):
            # a bare data set (no file meta): the syntax the header pass recognised
            from pydicom.dataset import FileMetaDataset

            meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
            meta.TransferSyntaxUID = layout.transfer_syntax
            dataset.file_meta = meta
        decoded = np.asarray(dataset.pixel_array)
        if palette:
            from pydicom.pixels import apply_color_lut  # type: ignore[attr-defined]

            decoded = np.asarray(apply_color_lut(decoded, dataset))
    except (OSError, EOFError) as exc:
        raise ReadError(f"{path}: pixel data cannot be read ({exc})") from exc
    except Exception as exc:  # decoder plugins raise many types; name the file and syntax
        raise ReadError(_decode_failure(path, layout.transfer_syntax, exc)) from exc
    if layout.number_of_frames == 1:
        return [decoded]
    return [decoded[frame] for frame in frames]


def _has_file_meta(path: str) -> bool:
    with open_source(path) as handle:
        handle.seek(128)
        return handle.read(4) == b"DICM"


def _decode_failure(path: str, syntax: str, exc: Exception) -> str:
    from pydicom.pixels import get_decoder  # type: ignore[attr-defined]

    name = _syntax_name(syntax)
    said = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        package = DECODER_PACKAGES.get(syntax)
        hint = f"install {package}" if package else "no decoder for it is available in Python"
        return f"{path}: cannot decode pixel data in {name} ({syntax}): {hint}"
    return (
        f"{path}: the {name} ({syntax}) decoder failed on this file, which is probably corrupt "
        f"or uses an unsupported variant ({said}); re-export it from the source"
    )


def _syntax_name(uid: str) -> str:
    from pydicom.uid import UID

    return str(UID(uid).name)
