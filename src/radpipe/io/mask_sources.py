"""Masks for an image from any source — label-map files, DICOM mask series, DICOM SEG,
RTSTRUCT — and the patients of a catalog with their image and masks, ready to analyse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from radpipe.errors import FormatError, ReadError
from radpipe.masks import MaskSet, masks_from_labelmap
from radpipe.placement import labels_on
from radpipe.volume import LabelMap, Volume


#: Mask names that mean a tumour (everything else is an organ or tissue).
def label_names_from_sidecar(path: str | Path) -> dict[int, str]:
    """Label names from ``<file stem>.json`` beside a label map (``{"1": "liver"}``), if any.

    ``path`` may be a location inside a zip archive; the sidecar is then looked for there.
    """
    from radpipe.io import registry
    from radpipe.io.sources import SEPARATOR, read_bytes

    location = str(path)
    ends = [location.rfind("/"), location.rfind(os.sep)]
    if SEPARATOR in location:
        ends.append(location.rfind(SEPARATOR) + len(SEPARATOR) - 1)
    cut = max(ends) + 1
    sidecar = location[:cut] + registry.strip_suffix(location[cut:]) + ".json"
    try:
        text = read_bytes(sidecar).decode("utf-8")
    except (ReadError, UnicodeDecodeError):
        return {}
    try:
        names = json.loads(text)
        return {int(k): str(v) for k, v in names.items()}
    except (ValueError, AttributeError) as exc:
        raise FormatError(
            f'{sidecar}: label names must be a JSON object {{"1": "liver"}} ({exc})'
        ) from exc


def parse_label_names(text: str | None) -> dict[int, str]:
    """``"1=liver,2=tumor"`` → ``{1: "liver", 2: "tumor"}``."""
    if not text:
        return {}
    names: dict[int, str] = {}
    for part in text.split(","):
        value, _, name = part.partition("=")
        try:
            number = int(value)
        except ValueError:
            raise FormatError(f"bad label name {part!r}; write VALUE=NAME, e.g. 1=liver") from None
        if not name.strip():
            raise FormatError(f"label {number} has no name in {text!r}; write VALUE=NAME")
        if number in names:
            raise FormatError(f"label {number} is named twice in {text!r}")
        if name.strip() in names.values():
            raise FormatError(
                f"the name {name.strip()!r} is given to two labels in {text!r}; each label needs "
                "its own name (masks are kept by name)"
            )
        if number <= 0:
            raise FormatError(f"label values are positive (0 is background), got {number}")
        names[number] = name.strip()
    return names


def load_mask_file(
    path: str | Path,
    image: Volume,
    *,
    name: str | None = None,
    label_names: dict[int, str] | None = None,
    strict: bool = False,
) -> MaskSet:
    """Masks from one file or folder, put on ``image``'s geometry.

    DICOM SEG → one mask per segment; RTSTRUCT → one per ROI; a NIfTI / NRRD label map → one
    per label (named by ``label_names``, a ``.json`` sidecar, or ``name`` when it holds one
    label); a DICOM mask series (0/255 images, 3D-IRCADb) → one mask named ``name``.
    """
    from radpipe.io import load, registry
    from radpipe.io.sources import check_location, local_copy

    location = str(path)
    if check_location(location) == "file" and registry.format_of(location) is None:
        with local_copy(location) as copy:
            kind = _dicom_kind(copy)
            if kind == "SEG":
                from radpipe.io.seg import read_seg

                return read_seg(copy, image)
            if kind == "RTSTRUCT":
                from radpipe.io.contours import read_rtstruct

                return read_rtstruct(copy, image, strict=strict)
    volume = load(location)
    if (
        name is None
        and check_location(location) == "folder"
        and registry.format_of(location) is None
    ):
        # a DICOM mask series' folder names its organ (3D-IRCADb: MASKS_DICOM/liver)
        name = Path(location.replace("::", "/").rstrip("/")).name or None
    labels = labels_on(volume, image, name=f"mask {location}")
    names = dict(label_names or {}) or label_names_from_sidecar(location)
    present = [int(v) for v in np.unique(labels.array) if v != 0]
    if name and len(present) <= 1:
        names = {value: name for value in present} or {1: name}
    result = masks_from_labelmap(
        LabelMap(labels.array, labels.affine, labels=names or labels.labels)
    )
    if name and len(present) <= 1 and not result.masks:
        result.masks[name] = np.zeros(image.spatial_shape, dtype=bool)
    return result


def _dicom_kind(path: Path) -> str | None:
    from radpipe.io.dicom.headers import open_dataset

    try:
        dataset, _ = open_dataset(path, stop_before_pixels=True)
    except ReadError:
        return None
    modality = str(dataset.get("Modality", ""))
    return modality if modality in ("SEG", "RTSTRUCT") else None
