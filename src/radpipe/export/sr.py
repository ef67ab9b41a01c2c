"""Results for the PACS: a DICOM SEG with one segment per organ and per lesion, and a DICOM SR
measurement report (TID 1500, Comprehensive 3D SR, via highdicom) whose measurement groups
give each lesion's volume, diameters and HU statistics and reference its SEG segment and the
source series; both de-identified together (consistent UIDs) unless ``keep_phi``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.analysis import Lesion, PatientReport
from radpipe.errors import FormatError
from radpipe.masks import MaskSet
from radpipe.volume import LabelMap, Volume


@dataclass
class ResultFiles:
    """The SEG and SR written for one patient."""

    seg: Path
    sr: Path
    lesions: int


def lesion_masks(
    masks: MaskSet, lesions: Sequence[Lesion], *, connectivity: int = 26
) -> dict[int, NDArray[np.bool_]]:
    """Each lesion's voxels (lesion id → (S, R, C) bool): the connected component of its
    source mask with the lesion's bounding box and voxel count."""
    import cc3d

    found: dict[int, NDArray[np.bool_]] = {}
    by_source: dict[str, list[Lesion]] = {}
    for lesion in lesions:
        by_source.setdefault(lesion.source, []).append(lesion)
    for source, group in by_source.items():
        mask = masks.masks[source].astype(np.uint8)
        components = cc3d.connected_components(mask, connectivity=connectivity)  # type: ignore[call-overload]
        statistics = cc3d.statistics(components)
        for lesion in group:
            box = lesion.bbox
            for label, count in enumerate(statistics["voxel_counts"]):
                if label == 0 or int(count) != lesion.voxels:
                    continue
                slices = statistics["bounding_boxes"][label]
                if tuple(v for s in slices for v in (s.start, s.stop)) == tuple(box):
                    found[lesion.lesion_id] = components == label
                    break
    return found


def _code(value: str, scheme: str, meaning: str) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator=scheme, meaning=meaning)


def _measurements(lesion: Lesion) -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    millimetre = _code("mm", "UCUM", "millimeter")
    hounsfield = _code("[hnsf'U]", "UCUM", "Hounsfield unit")
    items = [
        hd.sr.Measurement(name=codes.SCT.Volume, value=lesion.volume_ml * 1000.0,
                          unit=_code("mm3", "UCUM", "cubic millimeter")),
        hd.sr.Measurement(name=codes.SCT.LongAxis, value=lesion.longest_axial_diameter_mm,
                          unit=millimetre),
        hd.sr.Measurement(name=codes.SCT.ShortAxis, value=lesion.perpendicular_diameter_mm,
                          unit=millimetre),
        hd.sr.Measurement(name=codes.SCT.Diameter, value=lesion.longest_3d_diameter_mm,
                          unit=millimetre),
    ]  # fmt: skip
    if lesion.intensity is not None:
        for name, value in (
            (codes.SCT.Mean, lesion.intensity.mean),
            (codes.SCT.StandardDeviation, lesion.intensity.std),
            (codes.SCT.Minimum, lesion.intensity.min),
            (codes.SCT.Maximum, lesion.intensity.max),
        ):
            items.append(hd.sr.Measurement(name=name, value=float(value), unit=hounsfield))
    return items


def build_report(
    seg: Any,
    sources: list[Any],
    report: PatientReport,
    segment_of: dict[int, int],
    *,
    algorithm: str | None = None,
) -> Any:
    """The Comprehensive 3D SR of a patient's lesions (TID 1500), one volumetric measurement
    group per lesion, referencing segment ``segment_of[lesion id]`` of ``seg``."""
    import warnings

    import highdicom as hd
    from pydicom.sr.codedict import codes

    from radpipe.export.seg import segment_codes

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=algorithm or "radpipe", manufacturer_name="radpipe",
        ),
    )  # fmt: skip
    modality = str(sources[0].get("Modality", "")) if sources else ""
    procedure = (
        _code("25045-6", "LN", "CT unspecified body region")
        if modality == "CT"
        else _code("363679005", "SCT", "Imaging procedure")
    )
    groups = []
    series_uid = str(sources[0].SeriesInstanceUID)
    for lesion in report.lesions:
        if lesion.lesion_id not in segment_of:
            continue
        sites = None
        if lesion.organ:
            _, organ_code = segment_codes(lesion.organ)
            sites = [hd.sr.FindingSite(anatomic_location=organ_code)]
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(
                uid=hd.UID(), identifier=f"lesion {lesion.lesion_id}"),
            referenced_segment=hd.sr.ReferencedSegment(
                sop_class_uid=str(seg.SOPClassUID), sop_instance_uid=str(seg.SOPInstanceUID),
                segment_number=segment_of[lesion.lesion_id],
                source_series=hd.sr.SourceSeriesForSegmentation(series_uid),
            ),
            finding_type=codes.SCT.Neoplasm, finding_sites=sites,
            measurements=_measurements(lesion),
        ))  # fmt: skip
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    with warnings.catch_warnings():  # highdicom's name checks quote the patient's name
        warnings.simplefilter("ignore", UserWarning)
        return hd.sr.Comprehensive3DSR(
            evidence=[seg, *sources], content=content, series_instance_uid=hd.UID(),
            series_number=100, sop_instance_uid=hd.UID(), instance_number=1,
            manufacturer="radpipe", is_complete=True,
        )  # fmt: skip


def write_results(
    image: Volume,
    masks: MaskSet,
    report: PatientReport,
    folder: str | Path,
    *,
    algorithm: str | None = None,
    connectivity: int = 26,
    keep_phi: bool = False,
    overwrite: bool = False,
) -> ResultFiles:
    """Write ``seg.dcm`` (organs and one segment per lesion) and ``sr.dcm`` (the measurement
    report) for a DICOM image into ``folder``, ready for ``radpipe pacs send``.

    Raises
    ------
    FormatError
        If the image was not read from DICOM files, or there is nothing to report.
    """
    from radpipe.export.deidentify import deidentify_dataset
    from radpipe.export.seg import build_seg
    from radpipe.io.atomic import atomic_folder
    from radpipe.privacy import pseudonym_key

    sources = list(getattr(image.meta, "source_files", ()))
    if not sources:
        raise FormatError(
            f"{image.source_name}: SEG and SR reference DICOM images; this image is not DICOM"
        )
    organs, _ = masks.split()
    regions = lesion_masks(masks, report.lesions, connectivity=connectivity)
    lost = [lesion.lesion_id for lesion in report.lesions if lesion.lesion_id not in regions]
    if lost:
        raise FormatError(
            f"{image.source_name}: lesions {lost} could not be found again in their masks; "
            "write the SEG and SR with the connectivity the analysis used"
        )
    labels = np.zeros(image.spatial_shape, np.uint16 if len(organs) + len(regions) > 255
                      else np.uint8)  # fmt: skip
    names: dict[int, str] = {}
    for value, (name, mask) in enumerate(sorted(organs.items()), start=1):
        labels[mask] = value
        names[value] = name
    first_lesion = len(names) + 1
    segment_of: dict[int, int] = {}
    for offset, (lesion_id, mask) in enumerate(sorted(regions.items())):
        labels[mask] = first_lesion + offset
        names[first_lesion + offset] = f"lesion {lesion_id}"
    if not names:
        raise FormatError(f"{image.source_name}: no organ or lesion to report")
    label_map = LabelMap(labels, image.affine, labels=names)
    categories = {v: ("tumor" if n.startswith("lesion ") else "organ") for v, n in names.items()}
    seg, datasets, number_of = build_seg(
        label_map, sources, categories=categories, algorithm=algorithm, source_name=str(folder)
    )
    for offset, lesion_id in enumerate(sorted(regions)):
        if first_lesion + offset in number_of:
            segment_of[lesion_id] = number_of[first_lesion + offset]
    sr = build_report(seg, datasets, report, segment_of, algorithm=algorithm)
    if not keep_phi:
        key = pseudonym_key()
        deidentify_dataset(seg, key=key)  # the same keyed UID mapping: SR still points at SEG
        deidentify_dataset(sr, key=key)
    for dataset in (seg, sr):  # Type 2 / our own device's attributes the profile dropped
        if "AccessionNumber" not in dataset:
            dataset.AccessionNumber = ""
    seg.DeviceSerialNumber = "0"
    seg.SeriesDescription = "radpipe segmentation"
    sr.SeriesDescription = "radpipe measurement report"
    target = Path(folder)
    with atomic_folder(target, overwrite=overwrite, inputs=sources) as staging:
        seg.save_as(staging / "seg.dcm")
        sr.save_as(staging / "sr.dcm")
    return ResultFiles(target / "seg.dcm", target / "sr.dcm", len(segment_of))
