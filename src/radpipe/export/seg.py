"""DICOM SEG written from a LabelMap with highdicom: one binary segment per label, coded as
organ or tumour, referencing the source images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import FormatError
from radpipe.volume import LabelMap, Volume


def write_seg(
    labels: LabelMap,
    source_files: Sequence[str | Path],
    path: str | Path,
    *,
    categories: dict[int, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a label map as a binary DICOM SEG referencing its source images.

    Frames are placed by world position, never by array order: each source image gets the
    labels found at its own pixels' positions.

    Parameters
    ----------
    labels : LabelMap
        On any grid that overlaps the images in ``source_files``: each source image's pixels
        take the label at their world position (exactly when the grids' voxels coincide — a
        label map stored in the opposite slice order is placed right — else by nearest
        neighbour, with a ``ResampledWarning``).
    source_files : DICOM files of the segmented series.
    path : output ``.dcm``
    categories : label → "organ" | "tumor" | "tissue"; by default guessed from the names.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from radpipe.io.atomic import atomic_path
    from radpipe.io.sources import open_source

    datasets = sorted(
        (_read_source(pydicom, str(p), open_source) for p in source_files),
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
    mask_on_images = _labels_on_source_images(labels, datasets, source=str(path))
    present = [int(v) for v in np.unique(mask_on_images) if v != 0]
    if not present:
        raise FormatError(
            f"{path}: no label of the label map lies on the source images; nothing to write"
        )
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
    mask = np.stack([mask_on_images == value for value in present], axis=-1).astype(np.uint8)
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


def _labels_on_source_images(
    labels: LabelMap, datasets: Sequence[Any], *, source: str
) -> NDArray[Any]:
    """The label map sampled at each source image's pixels: (images, rows, columns).

    Each image is its own one-slice grid (position, orientation, pixel spacing from its header),
    so irregular or reversed stacks are placed right.
    """
    import warnings

    from radpipe import geometry
    from radpipe.errors import GeometryError, ResampledWarning
    from radpipe.placement import copy_coinciding, resample_onto, voxels_coincide

    def _nearest(values: Any, affine: Any, plane: Volume, *, fill: float) -> Any:
        return resample_onto(values, affine, plane, order=0, fill=fill)

    planes = [_image_plane(dataset) for dataset in datasets]
    if not any(
        geometry.grids_overlap(labels.affine, labels.spatial_shape, p.affine, p.spatial_shape)
        for p in planes
    ):
        raise GeometryError(
            f"{source}: the label map ({labels.describe_grid()}) does not overlap the source "
            "images in the patient; was it made for another series?"
        )
    coincide = [voxels_coincide(labels, plane) for plane in planes]
    exact = all(coincide)
    placed = np.stack(
        [
            (copy_coinciding if same else _nearest)(labels.array, labels.affine, plane, fill=0)[0]
            for plane, same in zip(planes, coincide, strict=True)
        ]
    )
    if not exact:
        warnings.warn(
            ResampledWarning(
                f"{source}: the label map ({labels.describe_grid()}) is on another grid than the "
                "source images; resampled onto them by world position (nearest neighbour)"
            ),
            stacklevel=3,
        )
    return placed


def _image_plane(dataset: Any) -> Volume:
    """One source image as a one-slice grid (no pixels): its position, orientation, spacing."""
    from radpipe import geometry

    try:
        orientation = [float(v) for v in dataset.ImageOrientationPatient]
        position = [float(v) for v in dataset.ImagePositionPatient]
        spacing = [float(v) for v in dataset.PixelSpacing]
    except (AttributeError, TypeError, ValueError):
        raise FormatError(
            f"{dataset.filename}: a source image needs ImagePositionPatient, "
            "ImageOrientationPatient and PixelSpacing for a DICOM SEG"
        ) from None
    normal = geometry.slice_normal(orientation)
    affine = geometry.affine_from_dicom(position, orientation, spacing, normal.tolist())
    shape = (1, int(dataset.Rows), int(dataset.Columns))
    return Volume(np.broadcast_to(np.zeros((), np.uint8), shape), affine)


def _read_source(pydicom: Any, location: str, open_source: Any) -> Any:
    """A source image's dataset (files and zip members alike), named by its location."""
    from radpipe.errors import ReadError

    try:
        with open_source(location) as handle:
            dataset = pydicom.dcmread(handle)
    except (pydicom.errors.InvalidDicomError, OSError, ValueError) as exc:
        raise ReadError(f"{location}: not a readable DICOM image for the SEG ({exc})") from None
    dataset.filename = location
    return dataset
