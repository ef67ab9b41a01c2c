"""``radpipe analyze`` (organ / tumour reports) and ``radpipe masks convert``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout

masks_app = typer.Typer(
    help="Convert masks between label maps, DICOM SEG and contours.", no_args_is_help=True
)


def _mask_specs(values: list[str]) -> list[tuple[str | None, Path]]:
    specs: list[tuple[str | None, Path]] = []
    for value in values:
        name, sep, path = value.partition("=")
        specs.append((name, Path(path)) if sep else (None, Path(value)))
    return specs


def _pictures(image: Any, masks: Any, lesions: list[Any]) -> list[tuple[str, Any]]:
    from radpipe.masks import MaskSet
    from radpipe.render import canonical, three_plane

    assert isinstance(masks, MaskSet)
    labels = masks.to_labelmap()
    shown = canonical(image)
    pictures = []
    for lesion in lesions[:8]:
        k, j, i = (round(float(v)) for v in shown.world_to_index(lesion.centroid_mm))
        k, j, i = (
            min(max(v, 0), n - 1) for v, n in zip((k, j, i), shown.spatial_shape, strict=True)
        )
        picture = three_plane(image, point=(k, j, i), mask=labels, mask_opacity=0.15)
        pictures.append(
            (
                f"lesion {lesion.lesion_id}: {lesion.volume_ml:.2f} mL, "
                f"{lesion.longest_axial_diameter_mm:.1f} mm",
                picture,
            )
        )
    return pictures


def analyze(
    path: Annotated[
        Path | None, typer.Argument(help="Patient folder or dataset root (scanned into a catalog).")
    ] = None,
    image: Annotated[
        Path | None, typer.Option("--image", help="The image, when masks are given one by one.")
    ] = None,
    mask: Annotated[
        list[str] | None,
        typer.Option(
            "--mask", help="NAME=FILE (repeatable): label map, DICOM mask series, SEG or RTSTRUCT."
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Names of label values, e.g. 1=liver,2=tumor.")
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder for lesions.csv, patients.csv, report.json, report.html."
        ),
    ] = Path("radpipe-report"),
    min_volume: Annotated[
        float,
        typer.Option("--min-volume", help="Lesions below this (mL) are listed as possible noise."),
    ] = 0.1,
    connectivity: Annotated[int, typer.Option("--connectivity", help="6, 18 or 26.")] = 26,
    reference_organ: Annotated[
        str | None,
        typer.Option(
            "--reference-organ", help="Organ for the burden (default: where lesions lie)."
        ),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option("--catalog", help="Catalog to use or update (default: a temporary one)."),
    ] = None,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Keep real patient identifiers.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Contour problems are errors.")] = False,
    pictures: Annotated[
        bool, typer.Option("--pictures/--no-pictures", help="Three-plane pictures in report.html.")
    ] = True,
) -> None:
    """Measure organs and tumours: per-lesion, per-patient and cohort reports."""
    from radpipe.analysis import analyse_patient
    from radpipe.errors import ReadError
    from radpipe.export.report import write_reports
    from radpipe.io import load
    from radpipe.io.mask_sources import (
        load_mask_file,
        parse_label_names,
        patients_from_catalog,
        split_masks,
    )
    from radpipe.masks import MaskSet
    from radpipe.privacy import pseudonym

    names = parse_label_names(labels)
    inputs: list[tuple[str, Any, MaskSet]] = []
    if image is not None:
        if not mask:
            raise ReadError("--image needs at least one --mask NAME=FILE")
        volume = load(image)
        combined = MaskSet(volume.affine.copy(), {}, [])
        for name, file in _mask_specs(mask):
            part = load_mask_file(file, volume, name=name, label_names=names, strict=strict)
            combined.masks.update(part.masks)
            combined.problems.extend(part.problems)
        patient = volume.meta.patient_id if keep_phi else pseudonym(volume.meta.patient_id)
        inputs.append((patient or "patient", volume, combined))
    elif path is not None:
        from radpipe.io.catalog import scan

        with tempfile.TemporaryDirectory() as work:
            catalog_path = catalog or Path(work) / "catalog.sqlite"
            with progress_bar(f"Scanning {path.name}") as (advance, set_total):
                found, _ = scan(
                    path, catalog_path, keep_phi=keep_phi, progress=advance, on_total=set_total
                )
            with found:
                inputs.extend(patients_from_catalog(found, strict=strict))
        if not inputs:
            raise ReadError(f"{path}: no patient with an image and masks found")
    else:
        raise ReadError("give a patient folder or dataset root, or --image IMG --mask NAME=FILE")

    reports = []
    figures: dict[str, list[tuple[str, Any]]] = {}
    for patient, volume, masks in inputs:
        organs, tumours = split_masks(masks)
        report = analyse_patient(
            patient, volume, organs=organs, tumours=tumours, reference_organ=reference_organ,
            connectivity=connectivity, min_volume_ml=min_volume,
        )  # fmt: skip
        report.warnings.extend(f"{p.where}: {p.reason}" for p in masks.problems)
        reports.append(report)
        if pictures:
            figures[patient] = _pictures(volume, masks, report.lesions)
        burden = (
            "-" if report.tumour_burden_percent is None else f"{report.tumour_burden_percent:.2f} %"
        )
        stdout.print(
            f"{patient}: {report.tumour_count} lesion(s), {report.total_tumour_volume_ml:.2f} mL, "
            f"burden {burden} of {report.reference_organ or '-'}"
            + (f", {len(report.small_lesions)} small component(s)" if report.small_lesions else "")
        )
    paths = write_reports(reports, out, pictures=figures)
    stdout.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@masks_app.command("convert")
def convert_masks(
    source: Annotated[
        Path, typer.Argument(help="Label map, DICOM mask series, SEG, RTSTRUCT or contour folder.")
    ],
    output: Annotated[
        Path, typer.Argument(help=".nii / .nii.gz / .nrrd label map, or .dcm for DICOM SEG.")
    ],
    image: Annotated[
        Path,
        typer.Option(
            "--image", help="The image the masks belong to (DICOM series for SEG output)."
        ),
    ],
    labels: Annotated[
        str | None, typer.Option("--labels", help="Names of label values, e.g. 1=liver,2=tumor.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of a single-label mask.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUTPUT if it exists.")
    ] = False,
) -> None:
    """Convert masks to a label map (NIfTI / NRRD) or a DICOM SEG on IMAGE's geometry."""
    from radpipe.errors import FormatError
    from radpipe.io import load, save
    from radpipe.io.atomic import check_writable
    from radpipe.io.mask_sources import load_mask_file, parse_label_names

    check_writable(output, overwrite=overwrite)
    volume = load(image)
    masks = load_mask_file(source, volume, name=name, label_names=parse_label_names(labels))
    labelmap = masks.to_labelmap()
    if output.name.lower().endswith(".dcm"):
        from radpipe.export.seg import write_seg
        from radpipe.io import registry

        files = [f for f in volume.meta.source_files if registry.format_of(f) is None]
        if not files:
            raise FormatError("DICOM SEG output needs --image to be a DICOM series")
        write_seg(labelmap, files, output, overwrite=overwrite)
    else:
        save(labelmap, output, overwrite=overwrite)
        import json

        output.with_name(output.name.split(".")[0] + ".json").write_text(
            json.dumps({str(k): v for k, v in labelmap.labels.items()})
        )
    counts = ", ".join(f"{n}: {c}" for n, c in masks.voxel_counts().items())
    stdout.print(f"wrote {output} ({counts} voxels)")
