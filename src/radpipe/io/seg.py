"""DICOM SEG read through highdicom: segments put on their image's grid (frames matched by
position, not order). Writing SEG is in ``radpipe.export.seg``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from radpipe.errors import FormatError, RadpipeError, ReadError, SeriesError
from radpipe.masks import MaskSet
from radpipe.volume import LabelMap, Volume


def read_seg(path: str | Path, image: Volume | None = None) -> MaskSet:
    """Read every segment of a DICOM SEG (binary, fractional or label map).

    Parameters
    ----------
    path : str or Path
    image : Volume, optional
        The segmented image; its series must be the one the SEG references. The segments are
        put on its grid by position (nearest neighbour), whatever the SEG's frame order.

    Returns
    -------
    MaskSet
        One mask per segment, named by its label; fractional segments are thresholded at 0.5.
    """
    import highdicom as hd

    source = Path(path)
    try:
        segmentation = hd.seg.Segmentation.from_dataset(_little_endian(source))
    except RadpipeError:
        raise
    except Exception as exc:  # highdicom raises many types for files that are not SEG
        raise ReadError(f"{source}: not a readable DICOM SEG ({exc})") from exc
    referenced = {uid[1] for uid in segmentation.get_source_image_uids()}
    if (
        image is not None
        and image.meta.series_uid
        and referenced
        and image.meta.series_uid not in referenced
    ):
        raise SeriesError(
            f"{source}: segments series {', '.join(sorted(referenced))}, not the image's "
            f"{image.meta.series_uid}"
        )
    try:
        volume = segmentation.get_volume(combine_segments=False, rescale_fractional=True)
    except (ValueError, RuntimeError) as exc:
        raise FormatError(f"{source}: the SEG's frames do not form a volume ({exc})") from exc
    array = np.asarray(volume.array)
    if array.ndim == 3:
        array = array[..., None]
    numbers = list(segmentation.get_segment_numbers())
    masks: dict[str, Any] = {}
    for position, number in enumerate(numbers[: array.shape[-1]]):
        description = segmentation.get_segment_description(number)
        name = str(description.segment_label or f"segment {number}")
        if name in masks:
            name = f"{name} ({number})"
        values = array[..., position]
        mask = values >= 0.5 if values.dtype.kind == "f" else values != 0
        masks[name] = mask
    affine = np.asarray(volume.affine, dtype=np.float64)
    if image is not None:
        from radpipe.placement import labels_on

        masks = {
            name: labels_on(
                LabelMap(mask.astype(np.uint8), affine), image, name=f"SEG {source.name}"
            ).array
            != 0
            for name, mask in masks.items()
        }
        affine = image.affine.copy()
    return MaskSet(affine, masks, [])


def _little_endian(path: Path) -> Any:
    """The SEG as a pydicom Dataset in explicit VR little endian, which highdicom parses.

    Big-endian and deflated files are re-encoded in memory (OW pixel words byte-swapped; 1-bit
    and 8-bit OB data is the same in either order); everything else is read as it is.
    """
    import io

    import pydicom
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import (
        DeflatedExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        RLELossless,
    )

    try:
        dataset = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many types for files that are not DICOM
        raise ReadError(f"{path}: not a readable DICOM file ({exc})") from None
    syntax = dataset.file_meta.get("TransferSyntaxUID") if "file_meta" in dir(dataset) else None
    if syntax == RLELossless and int(dataset.get("BitsAllocated", 0) or 0) == 1:
        dataset.PixelData = _one_bit_rle_to_native(dataset, path)
        dataset["PixelData"].VR = "OB"
        dataset["PixelData"].is_undefined_length = False
        syntax = ExplicitVRBigEndian  # re-encoded below as explicit little endian
    if syntax not in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian):
        return dataset
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    big_endian_words = syntax == ExplicitVRBigEndian and dataset["PixelData"].VR == "OW"
    if "PixelData" in dataset and big_endian_words and dataset.get("BitsAllocated") != 1:
        dataset.PixelData = np.frombuffer(dataset.PixelData, ">u2").astype("<u2").tobytes()
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def _packbits_decode(data: bytes, size: int) -> bytes:
    """One RLE segment (PS3.5 G.3.1, PackBits) expanded to ``size`` bytes."""
    output = bytearray()
    position = 0
    while position < len(data) and len(output) < size:
        header = data[position]
        position += 1
        if header < 128:  # copy the next header + 1 bytes
            output += data[position : position + header + 1]
            position += header + 1
        elif header > 128:  # repeat the next byte 257 − header times
            output += bytes([data[position]]) * (257 - header)
            position += 1
    return bytes(output[:size])


def _one_bit_rle_to_native(dataset: Any, path: Path) -> bytes:
    """Decode a 1-bit RLE SEG's frames (each one segment of bit-packed bytes, PS3.5 Annex G)
    into native 1-bit pixel data (bits continuous across frames), which pydicom cannot do."""
    import struct

    from pydicom.encaps import generate_fragmented_frames

    rows, columns = int(dataset.Rows), int(dataset.Columns)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    per_frame = (rows * columns + 7) // 8
    bits = []
    try:
        for fragments in generate_fragmented_frames(dataset.PixelData, number_of_frames=frames):
            frame = b"".join(fragments)
            count = struct.unpack_from("<I", frame, 0)[0]
            if count != 1:
                raise ReadError(f"{path}: a 1-bit RLE frame must hold one segment, found {count}")
            start = struct.unpack_from("<I", frame, 4)[0]
            packed = np.frombuffer(_packbits_decode(frame[start:], per_frame), np.uint8)
            bits.append(np.unpackbits(packed, bitorder="little")[: rows * columns])
    except (struct.error, ValueError) as exc:
        raise ReadError(f"{path}: damaged 1-bit RLE pixel data ({exc})") from None
    return np.packbits(np.concatenate(bits), bitorder="little").tobytes()
