"""Write a CT volume in HU as a DICOM series (CT Image Storage, one file per slice)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radpipe.errors import FormatError
from radpipe.io.atomic import atomic_folder
from radpipe.volume import Volume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
#: Transfer syntaxes the writer can produce, by short name.
TRANSFER_SYNTAXES = {
    "explicit": "1.2.840.10008.1.2.1",
    "implicit": "1.2.840.10008.1.2",
    "rle": "1.2.840.10008.1.2.5",
    "jpeg2000": "1.2.840.10008.1.2.4.90",
    "jpegls": "1.2.840.10008.1.2.4.80",
}
HU_INTERCEPT = -1024


@dataclass(frozen=True)
class SeriesIdentity:
    """Identifiers written into every file of a series."""

    patient_id: str
    patient_name: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    study_description: str = "radpipe phantom"
    series_description: str = "CT"
    series_number: int = 1
    study_date: str = "20260101"


def write_ct_series(
    volume: Volume,
    folder: str | Path,
    identity: SeriesIdentity,
    *,
    transfer_syntax: str = "explicit",
    overwrite: bool = False,
    uid_seed: str | None = None,
    encoding: str = "ct12",
    file_names: str = "IM{number:04d}.dcm",
) -> list[Path]:
    """Write an (S, R, C) HU volume as CT Image Storage files, one per slice.

    Stored values are ``HU + 1024`` in 12 of 16 unsigned bits with RescaleIntercept −1024, as
    most scanners write CT (values outside −1024..3071 HU are clipped). Files are named
    ``IM0001.dcm`` … from the most
    superior slice down, as many scanners do, so readers must sort by position.

    Parameters
    ----------
    volume : Volume
        (S, R, C) in HU; its affine must not be sheared.
    folder : str or Path
        Output folder, written atomically.
    identity : SeriesIdentity
    transfer_syntax : {"explicit", "implicit", "rle", "jpeg2000", "jpegls"}
    uid_seed : str, optional
        Makes the SOP Instance UIDs deterministic.
    encoding : {"ct12", "hu16", "mask8"}
        ``ct12`` (default) as above; ``hu16`` stores HU directly as signed 16-bit with
        intercept 0, clipped to −1024..1023 (as 3D-IRCADb does); ``mask8`` stores a 0/1 mask
        as 8-bit 0/255 (3D-IRCADb masks, whose Modality still says CT).
    file_names : str
        Format of the file names with ``{number}`` (1-based, superior first) and ``{index}``
        (0-based), e.g. ``"image_{index}"`` for 3D-IRCADb's extension-less names.
    """
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, generate_uid

    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise FormatError(
            f"unknown transfer syntax {transfer_syntax!r}; choose from {sorted(TRANSFER_SYNTAXES)}"
        )
    if volume.array.ndim != 3:
        raise FormatError(f"a CT series needs an (S, R, C) volume, got shape {volume.shape}")
    syntax = UID(TRANSFER_SYNTAXES[transfer_syntax])
    affine = volume.affine
    row_spacing, column_spacing = volume.spacing[1], volume.spacing[2]
    row_direction = affine[:3, 2] / column_spacing
    column_direction = affine[:3, 1] / row_spacing
    normal = np.cross(row_direction, column_direction)
    slice_spacing = float(np.dot(affine[:3, 0], normal))
    if encoding == "ct12":
        stored = np.clip(volume.array.astype(np.int32) - HU_INTERCEPT, 0, 4095).astype(np.uint16)
        bits, signed, intercept = (16, 12), 0, HU_INTERCEPT
    elif encoding == "hu16":
        stored = np.clip(volume.array, -1024, 1023).astype(np.int16)
        bits, signed, intercept = (16, 16), 1, 0
    elif encoding == "mask8":
        stored = np.where(volume.array > 0, 255, 0).astype(np.uint8)
        bits, signed, intercept = (8, 8), 0, 0
    else:
        raise FormatError(f"unknown encoding {encoding!r}; choose ct12, hu16 or mask8")
    slices = volume.spatial_shape[0]
    # superior slice first in file order
    order = np.argsort([-float(volume.index_to_world([k, 0, 0])[2]) for k in range(slices)])

    base = pydicom.Dataset()
    base.SOPClassUID = CT_IMAGE_STORAGE
    base.Modality = "CT"
    base.PatientID = identity.patient_id
    base.PatientName = identity.patient_name
    base.PatientBirthDate = ""
    base.PatientSex = "O"
    base.StudyInstanceUID = identity.study_uid
    base.SeriesInstanceUID = identity.series_uid
    base.FrameOfReferenceUID = identity.frame_of_reference_uid
    base.StudyDate = identity.study_date
    base.SeriesDate = identity.study_date
    base.StudyTime = "120000"
    base.StudyDescription = identity.study_description
    base.SeriesDescription = identity.series_description
    base.SeriesNumber = identity.series_number
    base.StudyID = "1"
    base.AccessionNumber = ""
    base.ReferringPhysicianName = ""
    base.Manufacturer = "radpipe"
    base.BodyPartExamined = "ABDOMEN"
    base.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    base.ImageOrientationPatient = [f"{v:.8g}" for v in (*row_direction, *column_direction)]
    base.PixelSpacing = [f"{row_spacing:.8g}", f"{column_spacing:.8g}"]
    base.SliceThickness = f"{abs(slice_spacing):.8g}"
    base.SpacingBetweenSlices = f"{abs(slice_spacing):.8g}"
    base.KVP = "120"
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.Rows, base.Columns = volume.spatial_shape[1], volume.spatial_shape[2]
    base.BitsAllocated, base.BitsStored = bits
    base.HighBit = bits[1] - 1
    base.PixelRepresentation = signed
    base.RescaleIntercept = str(intercept)
    base.RescaleSlope = "1"
    base.RescaleType = "HU"
    base.WindowCenter = "40"
    base.WindowWidth = "400"

    written: list[Path] = []
    with atomic_folder(folder, overwrite=overwrite) as temporary:
        for number, k in enumerate(order, start=1):
            dataset = base.copy()
            sop_uid = (
                generate_uid(entropy_srcs=[uid_seed, str(number)]) if uid_seed else generate_uid()
            )
            dataset.SOPInstanceUID = sop_uid
            dataset.InstanceNumber = number
            position = volume.index_to_world([int(k), 0, 0])
            dataset.ImagePositionPatient = [f"{v:.6f}" for v in position]
            dataset.SliceLocation = f"{float(np.dot(position, normal)):.6f}"
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
            meta.MediaStorageSOPInstanceUID = sop_uid
            meta.TransferSyntaxUID = UID(TRANSFER_SYNTAXES["explicit"])
            dataset.file_meta = meta
            pixels = np.ascontiguousarray(stored[k])
            if syntax.is_compressed:
                dataset.compress(syntax, pixels, generate_instance_uid=False)
            else:
                meta.TransferSyntaxUID = syntax
                dataset.PixelData = pixels.tobytes()
            path = temporary / file_names.format(number=number, index=number - 1)
            dataset.save_as(path, enforce_file_format=True)
            written.append(Path(folder) / path.name)
    return written
