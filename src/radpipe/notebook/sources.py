"""What a notebook explores: a dataset root, a catalog, a patient folder, a file or a ``Volume``,
resolved to a list of patients in the dataset's order and one patient's image with its masks."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radpipe.errors import RadpipeError
from radpipe.masks import MaskSet
from radpipe.volume import LabelMap, Volume


@dataclass
class Source:
    """Patients to explore and how to open each.

    Attributes
    ----------
    patients : list of (key, folder)
        Every patient in the dataset's order: the catalog key (pseudonym unless identifiers
        were kept) and the folder it came from.
    """

    patients: list[tuple[str, str]]
    catalog_path: Path | None = None
    volume: Volume | None = None
    masks: MaskSet | None = None
    work_dir: Path | None = field(default=None, repr=False)

    def choose(self, patient: int | str) -> str:
        """The key of a patient given by number (1 = first in the dataset), folder or key."""
        if isinstance(patient, int) and not isinstance(patient, bool):
            if not 1 <= patient <= len(self.patients):
                raise RadpipeError(
                    f"patient {patient} does not exist: the source has {len(self.patients)} "
                    f"patient(s), numbered 1 to {len(self.patients)}"
                )
            return self.patients[patient - 1][0]
        for key, folder in self.patients:
            if str(patient) in (key, folder):
                return key
        listed = ", ".join(folder for _, folder in self.patients[:10])
        raise RadpipeError(
            f"no patient {patient!r} in the source; give a number from 1 to "
            f"{len(self.patients)}, a folder name ({listed}) or a pseudonym"
        )

    def open(self, key: str) -> tuple[Volume, MaskSet | None]:
        """One patient's image and masks."""
        if self.volume is not None:
            return self.volume, self.masks
        from radpipe.catalog.patients import patient_image
        from radpipe.catalog.store import open_catalog

        assert self.catalog_path is not None
        with open_catalog(self.catalog_path) as catalog:
            try:
                return patient_image(catalog, key)
            except KeyError:
                raise RadpipeError(
                    f"{catalog.root}: patient {key} has no DICOM image series to show"
                ) from None

    def close(self) -> None:
        """Remove the temporary catalog of a scanned folder."""
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self.work_dir = None


def open_source(source: Any, *, masks: Any = None, keep_phi: bool = False) -> Source:
    """Resolve what :func:`radpipe.notebook.explore` was given.

    Parameters
    ----------
    source : Volume, str or Path
        A ``Volume``; a catalog (``.sqlite``); a dataset root, patient or series folder (scanned
        into a temporary catalog); or an image file.
    masks : MaskSet or LabelMap, optional
        Masks of a ``Volume`` or image file source.
    keep_phi : bool
        Keep real patient identifiers in the catalog of a scanned folder.
    """
    if isinstance(source, Volume):
        return Source([("volume", "volume")], volume=source, masks=_as_masks(masks))
    path = Path(source)
    if not path.exists():
        raise RadpipeError(f"{path}: no such file or folder; give a dataset root, a catalog, "
                           "a patient folder, an image file or a Volume")  # fmt: skip
    if path.is_file() and path.suffix in (".sqlite", ".db"):
        return _catalog_source(path, None)
    if path.is_file() and path.suffix.lower() != ".zip":
        from radpipe.io import load

        return Source([(path.name, path.name)], volume=load(path), masks=_as_masks(masks))
    work = Path(tempfile.mkdtemp(prefix="radpipe-explore-"))
    try:
        from radpipe.catalog.store import scan

        catalog, _ = scan(path, work / "catalog.sqlite", keep_phi=keep_phi)
        catalog.close()
        return _catalog_source(work / "catalog.sqlite", work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _catalog_source(catalog_path: Path, work: Path | None) -> Source:
    from radpipe.catalog.patients import dataset_order
    from radpipe.catalog.store import open_catalog

    with open_catalog(catalog_path) as catalog:
        patients = dataset_order(catalog)
        root = catalog.root
    if not patients:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
        raise RadpipeError(f"{root}: no image series found to explore")
    return Source(patients, catalog_path=catalog_path, work_dir=work)


def _as_masks(masks: Any) -> MaskSet | None:
    if masks is None or isinstance(masks, MaskSet):
        return masks
    if isinstance(masks, LabelMap):
        from radpipe.masks import masks_from_labelmap

        return masks_from_labelmap(masks)
    raise RadpipeError(
        f"masks of a Volume must be a MaskSet or a LabelMap, not {type(masks).__name__}"
    )
