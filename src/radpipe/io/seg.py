"""DICOM SEG through highdicom: segments read onto their image's grid (frames matched by
position), and label maps written as SEG referencing their source images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from radpipe.errors import FormatError, ReadError, SeriesError
from radpipe.masks import MaskSet, resample_nearest
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
        segmentation = hd.seg.segread(str(source))
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
        masks = {
            name: resample_nearest(
                mask.astype(np.uint8), affine, image, name=f"SEG {source.name}"
            ).astype(bool)
            for name, mask in masks.items()
        }
        affine = image.affine.copy()
    return MaskSet(affine, masks, [])


def write_seg(
    labels: LabelMap,
    source_files: Sequence[str | Path],
    path: str | Path,
    *,
    categories: dict[int, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a label map as a binary DICOM SEG referencing its source images.

    Parameters
    ----------
    labels : LabelMap
        On the geometry of the images in ``source_files``.
    source_files : DICOM files of the segmented series.
    path : output ``.dcm``
    categories : label → "organ" | "tumor" | "tissue"; by default guessed from the names.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from radpipe.io.atomic import atomic_path

    datasets = sorted(
        (pydicom.dcmread(p) for p in source_files),
        key=lambda ds: float(
            np.dot(
                np.cross(ds.ImageOrientationPatient[:3], ds.ImageOrientationPatient[3:]),
                ds.ImagePositionPatient,
            )
        ),
    )
    if not datasets:
        raise FormatError("write_seg needs the source images' files")
    for dataset in datasets:  # an empty character set (seen in the wild) trips highdicom
        if "SpecificCharacterSet" in dataset and not str(dataset.SpecificCharacterSet).strip():
            del dataset.SpecificCharacterSet
    shape = (len(datasets), int(datasets[0].Rows), int(datasets[0].Columns))
    if labels.spatial_shape != shape:
        raise FormatError(
            f"label map shape {labels.spatial_shape} differs from the images' {shape}"
        )
    present = [int(v) for v in np.unique(labels.array) if v != 0]
    if not present:
        raise FormatError("the label map is empty; nothing to write")
    descriptions = []
    for number, value in enumerate(present, start=1):
        name = labels.labels.get(value, f"label {value}")
        kind = (categories or {}).get(value) or (
            "tumor" if "tum" in name.lower() or "lesion" in name.lower() else "organ"
        )
        category, property_type = (
            (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm)
            if kind == "tumor"
            else (codes.SCT.Organ, codes.SCT.Organ)
        )
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=category,
                segmented_property_type=property_type,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
    ordered = labels.array  # slices follow the position order of the sorted datasets
    mask = np.stack([ordered == value for value in present], axis=-1).astype(np.uint8)
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=mask,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=99,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="radpipe",
        manufacturer_model_name="radpipe",
        software_versions="0.1",
        device_serial_number="0",
    )
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as temporary:
        seg.save_as(temporary)
    return target
