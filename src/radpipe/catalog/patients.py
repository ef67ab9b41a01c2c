"""A catalog's patients, one at a time: which patients have an image with masks, each patient's
main image with every mask that belongs to it, and the (patient, image, masks) inputs of an
analysis (from a folder scanned into a catalog, or an image with its mask files)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from radpipe.catalog.entries import SeriesEntry
from radpipe.catalog.store import Catalog
from radpipe.errors import ReadError
from radpipe.io.mask_sources import label_names_from_sidecar, load_mask_file
from radpipe.masks import MaskSet
from radpipe.placement import labels_on
from radpipe.volume import Volume


def patients_from_catalog(
    catalog: Catalog, *, strict: bool = False
) -> Iterator[tuple[str, Volume, MaskSet]]:
    """Each patient of a catalog with its main image and every mask that belongs to it.

    Lazy: one patient is loaded at a time (see :func:`load_catalog_patient`). Patients without
    masks are skipped.
    """
    for row in catalog.patients():
        found = load_catalog_patient(catalog, row["patient"], strict=strict)
        if found is not None:
            yield (row["patient"], *found)


MASK_ROLES = ("mask", "label", "segmentation", "contours")


def annotated_patients(catalog: Catalog) -> list[str]:
    """Patients of a catalog with a DICOM image series and at least one mask source.

    Reads the catalog only (no image is loaded); the list may hold a patient whose masks turn
    out to reference another series, which :func:`load_catalog_patient` then reports as None.
    """
    found = []
    for row in catalog.patients():
        roles = {(entry.role, entry.format) for entry in catalog.series(patient=row["patient"])}
        if ("image", "DICOM") in roles and any(role in MASK_ROLES for role, _ in roles):
            found.append(row["patient"])
    return found


def load_catalog_patient(
    catalog: Catalog, patient: str, *, strict: bool = False, on_duplicate: str = "error"
) -> tuple[Volume, MaskSet] | None:
    """One patient's main image and every mask that belongs to it, or None without masks.

    The image is the patient's largest DICOM image series (role ``image``); masks are its
    3D-IRCADb mask series, label maps linked to it or beside it, and SEG / RTSTRUCT objects
    that reference it. Only this patient's files are read. ``on_duplicate`` treats images
    sharing a slice position as :func:`radpipe.load` does (an error by default).
    """
    from radpipe.io.sources import local_copy

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
            found.contour_volumes_ml.update(part.contour_volumes_ml)
    return (image, found) if found.masks else None


def patient_image(catalog: Catalog, patient: str) -> tuple[Volume, MaskSet | None]:
    """A patient's main image with its masks, or its first DICOM image series without masks.

    Raises
    ------
    KeyError
        When the catalog holds no image of ``patient``.
    """
    annotated = load_catalog_patient(catalog, patient)
    if annotated is not None:
        return annotated
    images = [e for e in catalog.series(patient=patient, role="image") if e.format == "DICOM"]
    if not images:
        raise KeyError(patient)
    return catalog.load(images[0]), None


def dataset_order(catalog: Catalog) -> list[tuple[str, str]]:
    """(patient, folder name) of every patient with an image, in the dataset's folder order.

    The folder is the top folder of the patient's image files under the scanned root (the
    patient's own folder in a dataset of patient folders), so patient 1 is the first folder as
    a file browser lists them, whatever the pseudonyms are.
    """
    from radpipe.catalog.discover import patient_folder

    first: dict[str, str] = {}
    for entry in catalog.series(role="image"):
        location = entry.first_location
        if entry.patient not in first or location < first[entry.patient]:
            first[entry.patient] = location
    ordered = sorted(first.items(), key=lambda item: item[1])
    return [(patient, patient_folder(location, catalog.root)) for patient, location in ordered]


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
            combined.contour_volumes_ml.update(part.contour_volumes_ml)
        patient = volume.meta.patient_id if keep_phi else pseudonym(volume.meta.patient_id)
        yield patient or "patient", volume, combined
        return
    if path is None:
        raise ReadError("give a patient folder or dataset root, or an image with its masks")
    from radpipe.catalog.store import open_catalog, scan

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


def image_series(catalog: Catalog) -> list[tuple[str, SeriesEntry]]:
    """Every 3-D image series of a catalog named ``<patient>_<NNN>`` in catalog order (the
    names :func:`image_volumes` gives)."""
    entries = [e for e in catalog.series(role="image") if e.shape and len(e.shape) == 3]
    return [(f"{e.patient}_{n:03d}", e) for n, e in enumerate(entries, start=1)]


def image_volumes(root: str | Path, *, on_duplicate: str = "error") -> Iterator[tuple[str, Volume]]:
    """Every 3-D image series under ``root`` (scanned into a temporary catalog), loaded one at a
    time and named ``<patient>_<NNN>`` in catalog order (patients pseudonymised).

    Raises
    ------
    ReadError
        If no 3-D image series is found.
    """
    import tempfile

    from radpipe.catalog.store import scan

    with tempfile.TemporaryDirectory(prefix="radpipe-") as work:
        catalog, _ = scan(root, Path(work) / "catalog.sqlite")
        with catalog:
            named = image_series(catalog)
            if not named:
                raise ReadError(f"{root}: no 3-D image series found")
            for name, entry in named:
                yield name, catalog.load(entry, on_duplicate=on_duplicate)
