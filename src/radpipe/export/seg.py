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

#: Segment names (lower case, first match wins) → SNOMED CT property type, by pydicom's code name.
NAMED_STRUCTURES = (
    ("gtv", "GrossTumorVolume"),
    ("ctv", "ClinicalTargetVolume"),
    ("liver", "Liver"),
    ("spleen", "Spleen"),
    ("kidney", "Kidney"),
    ("pancrea", "Pancreas"),
    ("lung", "Lung"),
    ("heart", "Heart"),
    ("brain", "Brain"),
    ("bone", "Bone"),
)


def segment_codes(name: str, kind: str | None = None) -> tuple[Any, Any]:
    """(category, property type) SNOMED CT codes for a segment named ``name``.

    Tumours (``tumor``, ``lesion``, ``livertumor01`` …) are a Morphologically Abnormal Structure
    / Neoplasm, a ``GTV`` a Gross Tumor Volume; organs are an Anatomical Structure of their own
    code (Liver, Spleen …) when the name says which, else Organ; ``kind`` ("organ", "tumor",
    "tissue") overrides the guess from the name.
    """
    from pydicom.sr.codedict import codes

    from radpipe.masks import is_tumour

    lower = name.lower()
    structure = next(
        (getattr(codes.SCT, code) for word, code in NAMED_STRUCTURES if word in lower), None
    )
    if kind == "tissue":
        return codes.SCT.Tissue, codes.SCT.Tissue
    if kind == "tumor" or (kind is None and is_tumour(name)):
        if "gtv" in lower or "ctv" in lower:
            return codes.SCT.MorphologicallyAbnormalStructure, structure
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm
    return codes.SCT.AnatomicalStructure, structure or codes.SCT.Organ


def write_seg(
    labels: LabelMap,
    source_files: Sequence[str | Path],
    path: str | Path,
    *,
    categories: dict[int, str] | None = None,
    algorithm: str | None = None,
    series_description: str = "radpipe segmentation",
    keep_phi: bool = False,
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
    source_files : DICOM files of the segmented series (files or zip members).
    path : output ``.dcm``
    categories : label → "organ" | "tumor" | "tissue"; by default guessed from the names.
    algorithm : str, optional
        The model that made the labels: segments are then AUTOMATIC with this algorithm name;
        MANUAL otherwise.
    series_description : str
    keep_phi : bool
        Keep the source's real patient identity (for a SEG going back to the hospital's own
        PACS). By default the SEG is de-identified exactly as ``radpipe deidentify`` treats its
        source: the same pseudonym, shifted dates and remapped UIDs, so it references the
        de-identified images.

    Raises
    ------
    GeometryError
        If the label map does not overlap the source images.
    FormatError
        If no label lies on the source images, or a source image lacks its geometry.
    """
    from radpipe.io.atomic import atomic_path

    seg, _, _ = build_seg(
        labels, source_files, categories=categories, algorithm=algorithm, source_name=str(path)
    )
    if not keep_phi:
        from radpipe.export.deidentify import deidentify_dataset
        from radpipe.privacy import pseudonym_key

        deidentify_dataset(seg, key=pseudonym_key())
        if "AccessionNumber" not in seg:  # Type 2: present, empty
            seg.AccessionNumber = ""
        seg.DeviceSerialNumber = "0"  # radpipe's own (Type 1 in Enhanced General Equipment)
    seg.SeriesDescription = series_description  # radpipe's own words: no identifier
    target = Path(path)
    with atomic_path(
        target, overwrite=overwrite, inputs=[str(p) for p in source_files]
    ) as temporary:
        seg.save_as(temporary)
    return target


def build_seg(
    labels: LabelMap,
    source_files: Sequence[str | Path],
    *,
    categories: dict[int, str] | None = None,
    algorithm: str | None = None,
    source_name: str = "SEG",
) -> tuple[Any, list[Any], dict[int, int]]:
    """The binary SEG dataset of :func:`write_seg` before de-identification, the source image
    datasets it references (for an SR that cites both), and label value → segment number (the
    labels found on the source images, in increasing value).

    Raises
    ------
    GeometryError, FormatError
        As :func:`write_seg`.
    """
    import warnings

    import highdicom as hd
    import pydicom

    from radpipe.io.sources import open_source

    path = source_name
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
    if algorithm:
        from pydicom.sr.codedict import codes

        algorithm_type = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        identification = hd.AlgorithmIdentificationSequence(
            name=algorithm, family=codes.cid7162.ArtificialIntelligence, version="1"
        )
    else:
        algorithm_type, identification = hd.seg.SegmentAlgorithmTypeValues.MANUAL, None
    descriptions = []
    for number, value in enumerate(present, start=1):
        name = labels.name_of(value)
        category, property_type = segment_codes(name, (categories or {}).get(value))
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=name,
                segmented_property_category=category,
                segmented_property_type=property_type,
                algorithm_type=algorithm_type,
                algorithm_identification=identification,
            )
        )
    mask = np.stack([mask_on_images == value for value in present], axis=-1).astype(np.uint8)
    with warnings.catch_warnings():  # highdicom's name checks quote the patient's name
        warnings.simplefilter("ignore", UserWarning)
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
            software_versions=_version(),
            device_serial_number="0",
        )
    return seg, datasets, {value: number for number, value in enumerate(present, start=1)}


def _version() -> str:
    from radpipe import __version__

    return __version__


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
