"""A cohort analysis in parallel: one job per patient of a catalog, on local processes or a Dask
cluster; each worker reads its patient from the catalog's shared paths, measures it, draws its
pictures and (optionally) writes its DICOM SEG + SR atomically; the parent writes the reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from radpipe.analysis import PatientReport
from radpipe.errors import ReadError


@dataclass(frozen=True)
class PatientJob:
    """What a worker needs to analyse one patient (plain values: it travels to the worker)."""

    catalog: str
    patient: str
    reference_organ: str | None
    connectivity: int
    min_volume_ml: float
    pictures: bool
    strict: bool
    on_duplicate: str
    dicom_results: str | None
    keep_phi: bool
    overwrite: bool


@dataclass
class PatientResult:
    """A worker's answer: the report, its pictures and the DICOM results it wrote."""

    report: PatientReport | None
    pictures: list[tuple[str, str]]
    """(caption, PNG data URI): encoded in the worker, small to send."""
    files: list[str]


def analyse_patient_job(job: PatientJob) -> PatientResult:
    """Analyse one patient of a catalog (run in a worker; None when it has no masks)."""
    from radpipe.analysis import analyse_masks
    from radpipe.catalog.patients import load_catalog_patient
    from radpipe.catalog.store import open_catalog
    from radpipe.export.report import lesion_pictures, png_data_uri

    with open_catalog(job.catalog) as catalog:
        loaded = load_catalog_patient(
            catalog, job.patient, strict=job.strict, on_duplicate=job.on_duplicate
        )
    if loaded is None:
        return PatientResult(None, [], [])
    image, masks = loaded
    report = analyse_masks(
        job.patient, image, masks, reference_organ=job.reference_organ,
        connectivity=job.connectivity, min_volume_ml=job.min_volume_ml,
    )  # fmt: skip
    pictures = [
        (caption, png_data_uri(picture))
        for caption, picture in (lesion_pictures(image, masks, report.lesions) if job.pictures
                                 else [])
    ]  # fmt: skip
    files: list[str] = []
    if job.dicom_results is not None:
        from radpipe.export.sr import write_results

        written = write_results(
            image, masks, report, Path(job.dicom_results) / job.patient,
            connectivity=job.connectivity, keep_phi=job.keep_phi, overwrite=job.overwrite,
        )  # fmt: skip
        files = [str(written.seg), str(written.sr)]
    return PatientResult(report, pictures, files)


def analyse_catalog_to_reports(
    path: str | Path,
    folder: str | Path,
    *,
    catalog: str | Path | None = None,
    keep_phi: bool = False,
    strict: bool = False,
    on_duplicate: str = "error",
    reference_organ: str | None = None,
    connectivity: int = 26,
    min_volume_ml: float = 0.1,
    pictures: bool = True,
    overwrite: bool = False,
    dicom_results: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    on_patient: Callable[[PatientReport], None] | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[list[PatientReport], dict[str, Path], list[Path]]:
    """Scan ``path`` into a catalog and analyse every annotated patient in parallel.

    The reports are those :func:`radpipe.export.report.analyse_to_reports` writes, in the
    same patient order whatever ran where. On a Dask cluster (``scheduler``) the scanned files,
    ``folder`` and ``dicom_results`` must be on paths every worker reads; the temporary catalog
    is then made in a hidden folder beside ``folder`` (give ``catalog`` to keep one).

    Parameters
    ----------
    path : str or Path
        Patient folder or dataset root, scanned into the catalog.
    folder : str or Path
        Where lesions.csv, patients.csv, report.json and report.html are written.
    catalog : str or Path, optional
        Catalog to create or update (default: a temporary one).
    keep_phi, strict, on_duplicate
        As for :func:`radpipe.catalog.patients.analysis_inputs`.
    reference_organ, connectivity, min_volume_ml, pictures, overwrite
        As for :func:`radpipe.export.report.analyse_to_reports`.
    dicom_results : str or Path, optional
        Folder for each patient's DICOM SEG and SR (written by the workers).
    workers, scheduler
        Local processes, or a Dask scheduler address.
    on_patient, progress, on_total
        Called with each report as it comes back, and with the scan's progress.

    Returns
    -------
    (reports, paths, dicom_files)
        The patient reports, the report files written and each patient's SEG and SR.
    """
    from radpipe.catalog.patients import annotated_patients
    from radpipe.catalog.store import scan
    from radpipe.export.report import check_report_folder, write_reports
    from radpipe.io.atomic import guard_output
    from radpipe.parallel import run_map, work_folder

    target = Path(folder)
    guard_output(target, input_folders=[str(path)], inside_ok=True)
    check_report_folder(target, overwrite=overwrite)
    with work_folder(target, scheduler) as work:
        catalog_path = Path(catalog) if catalog is not None else Path(work) / "catalog.sqlite"
        found, _ = scan(path, catalog_path, keep_phi=keep_phi, progress=progress,
                        on_total=on_total, workers=workers, scheduler=scheduler)  # fmt: skip
        with found:
            patients = annotated_patients(found)
        jobs = [
            PatientJob(
                str(catalog_path.resolve()),
                patient,
                reference_organ,
                connectivity,
                min_volume_ml,
                pictures,
                strict,
                on_duplicate,
                None if dicom_results is None else str(Path(dicom_results).resolve()),
                keep_phi,
                overwrite,
            )
            for patient in patients
        ]
        reports: list[PatientReport] = []
        figures: dict[str, list[tuple[str, NDArray[np.uint8] | str]]] = {}
        files: list[Path] = []
        for result in run_map(
            analyse_patient_job, jobs, workers=workers, scheduler=scheduler, chunksize=1
        ):
            if result.report is None:
                continue
            reports.append(result.report)
            figures[result.report.patient] = list(result.pictures)
            files.extend(Path(f) for f in result.files)
            if on_patient is not None:
                on_patient(result.report)
    if not reports:
        raise ReadError(
            f"{path}: no patient with an image and masks found (looked for mask series, "
            "label maps beside or linked to a series, SEG and RTSTRUCT)"
        )
    paths = write_reports(reports, target, pictures=figures, overwrite=overwrite)
    return reports, paths, files
