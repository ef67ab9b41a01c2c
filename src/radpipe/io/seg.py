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
    )

    try:
        dataset = pydicom.dcmread(path)
    except Exception as exc:  # pydicom raises many types for files that are not DICOM
        raise ReadError(f"{path}: not a readable DICOM file ({exc})") from None
    syntax = dataset.file_meta.get("TransferSyntaxUID") if "file_meta" in dir(dataset) else None
    if syntax not in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian):
        return dataset
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if syntax == ExplicitVRBigEndian and "PixelData" in dataset and dataset["PixelData"].VR == "OW":
        dataset.PixelData = np.frombuffer(dataset.PixelData, ">u2").astype("<u2").tobytes()
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)
