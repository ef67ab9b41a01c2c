"""Masks for an image from any source — label-map files, DICOM mask series, DICOM SEG,
RTSTRUCT — and the patients of a catalog with their image and masks, ready to analyse."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
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
    from radpipe.io.sources import SEPARATOR, read_bytes

    location = str(path)
    ends = [location.rfind("/"), location.rfind(os.sep)]
    if SEPARATOR in location:
        ends.append(location.rfind(SEPARATOR) + len(SEPARATOR) - 1)
    cut = max(ends) + 1
    sidecar = location[:cut] + location[cut:].split(".")[0] + ".json"
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
    names = {}
    for part in text.split(","):
        value, _, name = part.partition("=")
        try:
            names[int(value)] = name.strip()
        except ValueError:
            raise FormatError(f"bad label name {part!r}; write VALUE=NAME, e.g. 1=liver") from None
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
    from radpipe.io.dicom import open_dataset

    try:
        dataset, _ = open_dataset(path, stop_before_pixels=True)
    except ReadError:
        return None
    modality = str(dataset.get("Modality", ""))
    return modality if modality in ("SEG", "RTSTRUCT") else None


def patients_from_catalog(
    catalog: object, *, strict: bool = False
) -> Iterator[tuple[str, Volume, MaskSet]]:
    """Each patient of a catalog with its main image and every mask that belongs to it.

    Lazy: one patient is loaded at a time (see :func:`load_catalog_patient`). Patients without
    masks are skipped.
    """
    from radpipe.io.catalog import Catalog

    assert isinstance(catalog, Catalog)
    for row in catalog.patients():
        found = load_catalog_patient(catalog, row["patient"], strict=strict)
        if found is not None:
            yield (row["patient"], *found)


MASK_ROLES = ("mask", "label", "segmentation", "contours")


def annotated_patients(catalog: object) -> list[str]:
    """Patients of a catalog with a DICOM image series and at least one mask source.

    Reads the catalog only (no image is loaded); the list may hold a patient whose masks turn
    out to reference another series, which :func:`load_catalog_patient` then reports as None.
    """
    from radpipe.io.catalog import Catalog

    assert isinstance(catalog, Catalog)
    found = []
    for row in catalog.patients():
        roles = {(entry.role, entry.format) for entry in catalog.series(patient=row["patient"])}
        if ("image", "DICOM") in roles and any(role in MASK_ROLES for role, _ in roles):
            found.append(row["patient"])
    return found


def load_catalog_patient(
    catalog: object, patient: str, *, strict: bool = False, on_duplicate: str = "error"
) -> tuple[Volume, MaskSet] | None:
    """One patient's main image and every mask that belongs to it, or None without masks.

    The image is the patient's largest DICOM image series (role ``image``); masks are its
    3D-IRCADb mask series, label maps linked to it or beside it, and SEG / RTSTRUCT objects
    that reference it. Only this patient's files are read. ``on_duplicate`` treats images
    sharing a slice position as :func:`radpipe.load` does (an error by default).
    """
    from radpipe.io.catalog import Catalog
    from radpipe.io.sources import local_copy

    assert isinstance(catalog, Catalog)
    series = catalog.series(patient=patient)
    images = [s for s in series if s.role == "image" and s.format == "DICOM"]
    if not images:
        return None
    main = max(
        images, key=lambda s: (s.shape or (0,))[0] * (s.shape or (0, 0))[1] if s.shape else 0
    )
    image = catalog.load(main, on_duplicate=on_duplicate)
    found = MaskSet(image.affine.copy(), {}, [])
    for entry in series:
        if entry.role == "mask" and entry.format == "DICOM":
            volume = catalog.load(entry, on_duplicate=on_duplicate)
            name = entry.name or f"mask {entry.key}"
            found.masks[name] = labels_on(volume, image, name=name).array != 0
        elif entry.role == "label":
            with local_copy(entry.first_location) as path:
                names = label_names_from_sidecar(entry.first_location)
                part = load_mask_file(path, image, label_names=names)
            found.masks.update(part.masks)
        elif entry.role in ("segmentation", "contours") and entry.format in (
            "DICOM SEG",
            "RTSTRUCT",
        ):
            if entry.linked and main.series_uid and entry.linked != main.series_uid:
                continue
            with local_copy(entry.first_location) as path:
                part = load_mask_file(path, image, strict=strict)
            found.masks.update(part.masks)
            found.problems.extend(part.problems)
    return (image, found) if found.masks else None


def analysis_inputs(
    path: str | Path | None = None,
    *,
    image: str | Path | None = None,
    masks: Sequence[tuple[str | None, str | Path]] = (),
    label_names: dict[int, str] | None = None,
    catalog: str | Path | None = None,
    keep_phi: bool = False,
    strict: bool = False,
    on_duplicate: str = "error",
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, Volume, MaskSet]]:
    """The (patient, image, masks) to analyse, one patient at a time.

    Either ``image`` with ``masks`` given one by one (``(name or None, file)``), or ``path``: a
    patient folder, a dataset root or a zip archive, scanned into ``catalog`` (a temporary one
    by default) and iterated patient by patient. ``on_duplicate`` as for :func:`radpipe.load`.

    Raises
    ------
    ReadError
        If neither is given, ``image`` comes without masks, or no patient has an image with
        masks.
    """
    import tempfile

    from radpipe.io import load
    from radpipe.privacy import pseudonym

    if image is not None:
        if not masks:
            raise ReadError("an image needs at least one mask (--mask NAME=FILE)")
        volume = load(image, on_duplicate=on_duplicate)
        combined = MaskSet(volume.affine.copy(), {}, [])
        for name, file in masks:
            part = load_mask_file(file, volume, name=name, label_names=label_names, strict=strict)
            combined.masks.update(part.masks)
            combined.problems.extend(part.problems)
        patient = volume.meta.patient_id if keep_phi else pseudonym(volume.meta.patient_id)
        yield patient or "patient", volume, combined
        return
    if path is None:
        raise ReadError("give a patient folder or dataset root, or an image with its masks")
    from radpipe.io.catalog import open_catalog, scan

    with tempfile.TemporaryDirectory(prefix="radpipe-") as work:
        catalog_path = Path(catalog) if catalog is not None else Path(work) / "catalog.sqlite"
        found, _ = scan(path, catalog_path, keep_phi=keep_phi, progress=progress, on_total=on_total)
        with found:
            patients = annotated_patients(found)
        yielded = 0
        for patient in patients:
            with open_catalog(catalog_path) as opened:
                loaded = load_catalog_patient(
                    opened, patient, strict=strict, on_duplicate=on_duplicate
                )
            if loaded is not None:
                yielded += 1
                yield (patient, *loaded)
        if not yielded:
            raise ReadError(
                f"{path}: no patient with an image and masks found (looked for mask series, "
                "label maps beside or linked to a series, SEG and RTSTRUCT)"
            )
