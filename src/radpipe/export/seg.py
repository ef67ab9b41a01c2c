"""DICOM SEG written from a LabelMap with highdicom: one binary segment per label, coded as
organ or tumour, referencing the source images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from radpipe.errors import FormatError
from radpipe.volume import LabelMap


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
