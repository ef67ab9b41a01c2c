"""``radpipe analyze`` (organ / tumour reports) and ``radpipe masks convert``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout
from radpipe.cli.options import (
    OnDuplicate,
    SchedulerOption,
    WorkersOption,
    chosen_output,
    output_option,
)

masks_app = typer.Typer(
    help="Convert masks between label maps, DICOM SEG and contours.", no_args_is_help=True
)


def _mask_specs(values: list[str]) -> list[tuple[str | None, Path]]:
    specs: list[tuple[str | None, Path]] = []
    for value in values:
        name, sep, path = value.partition("=")
        specs.append((name, Path(path)) if sep else (None, Path(value)))
    return specs


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
            "-o",
            "--output",
            "--out",
            help="Folder for lesions.csv, patients.csv, report.json, report.html.",
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
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier report in --out.")
    ] = False,
    on_duplicate: OnDuplicate = "error",
    dicom_results: Annotated[
        Path | None,
        typer.Option(
            "--dicom-results",
            help="Folder for each patient's DICOM SEG and SR measurement report (TID 1500).",
        ),
    ] = None,
    send: Annotated[
        bool, typer.Option("--send", help="C-STORE the SEG and SR to the PACS (--host …).")
    ] = False,
    host: Annotated[str | None, typer.Option("--host", help="PACS host for --send.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="PACS port for --send.")] = None,
    called_aet: Annotated[str | None, typer.Option("--called-aet")] = None,
    calling_aet: Annotated[str | None, typer.Option("--calling-aet")] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Measure organs and tumours: per-lesion, per-patient and cohort reports; optionally a
    DICOM SEG and SR per patient, sent back to the PACS.

    Example:

    $ radpipe analyze demo-output/patient01 --out report

    $ radpipe analyze --image ct/ --mask liver=liver.nii.gz --mask tumor=tumor.nii.gz

    $ radpipe analyze study/ --dicom-results results --send --host pacs --port 4242
    """
    from radpipe.catalog.patients import analysis_inputs
    from radpipe.export.report import analyse_to_reports
    from radpipe.io.mask_sources import parse_label_names

    def report_line(report: Any) -> None:
        burden = (
            "-" if report.tumour_burden_percent is None else f"{report.tumour_burden_percent:.2f} %"
        )
        small = f", {len(report.small_lesions)} small component(s)" if report.small_lesions else ""
        stdout.print(
            f"{report.patient}: {report.tumour_count} lesion(s), "
            f"{report.total_tumour_volume_ml:.2f} mL, burden {burden} of "
            f"{report.reference_organ or '-'}{small}"
        )

    peer = None
    if send:
        from radpipe.pacs.peer import resolve_peer

        peer = resolve_peer(host, port, called_aet, calling_aet)  # checked before any work
        dicom_results = dicom_results or out / "dicom"
    written: list[Path] = []

    def results(report: Any, image_volume: Any, masks: Any) -> None:
        from radpipe.export.sr import write_results

        assert dicom_results is not None
        files = write_results(image_volume, masks, report, dicom_results / report.patient,
                              connectivity=connectivity, keep_phi=keep_phi,
                              overwrite=overwrite)  # fmt: skip
        written.extend([files.seg, files.sr])

    if path is not None and image is None:
        from radpipe.export.cohort import analyse_catalog_to_reports

        with progress_bar(f"Scanning {path.name}") as (advance, set_total):
            _, paths, files = analyse_catalog_to_reports(
                path, out, catalog=catalog, keep_phi=keep_phi, strict=strict,
                on_duplicate=on_duplicate, reference_organ=reference_organ,
                connectivity=connectivity, min_volume_ml=min_volume, pictures=pictures,
                overwrite=overwrite, dicom_results=dicom_results, workers=workers,
                scheduler=scheduler, on_patient=report_line, progress=advance,
                on_total=set_total,
            )  # fmt: skip
        written.extend(files)
        _finish(paths, written, dicom_results, peer)
        return
    with progress_bar("Reading") as (advance, set_total):
        inputs = analysis_inputs(
            path, image=image, masks=_mask_specs(mask or []), label_names=parse_label_names(labels),
            catalog=catalog, keep_phi=keep_phi, strict=strict, on_duplicate=on_duplicate,
            progress=advance,
            on_total=set_total,
        )  # fmt: skip
        _, paths = analyse_to_reports(
            inputs, out, reference_organ=reference_organ, connectivity=connectivity,
            min_volume_ml=min_volume, pictures=pictures, overwrite=overwrite,
            on_patient=report_line,
            input_folders=[str(p) for p in (path, image) if p is not None],
            on_analysed=results if dicom_results is not None else None,
        )  # fmt: skip
    _finish(paths, written, dicom_results, peer)


def _finish(paths: dict[str, Path], written: list[Path], dicom_results: Path | None,
            peer: Any) -> None:  # fmt: skip
    """Say what was written; send the SEG and SR files to the PACS."""
    stdout.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if written:
        stdout.print(f"wrote {len(written) // 2} DICOM SEG + SR pair(s) into {dicom_results}")
    if peer is not None and written:
        from radpipe.pacs.dimse import send as store

        result = store(peer, written)
        stdout.print(f"{peer}: {result.sent} of {len(written)} result instance(s) stored")


@masks_app.command("convert")
def convert_masks(
    source: Annotated[
        Path, typer.Argument(help="Label map, DICOM mask series, SEG, RTSTRUCT or contour folder.")
    ],
    output: Annotated[
        Path | None,
        typer.Argument(help=".nii / .nii.gz / .nrrd label map, or .dcm for DICOM SEG."),
    ] = None,
    output_flag: Annotated[Path | None, output_option("Label map or SEG")] = None,
    image: Annotated[
        Path | None,
        typer.Option(
            "--image", help="The image the masks belong to (DICOM series for SEG output)."
        ),
    ] = None,
    labels: Annotated[
        str | None, typer.Option("--labels", help="Names of label values, e.g. 1=liver,2=tumor.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of a single-label mask.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUTPUT if it exists.")
    ] = False,
    keep_phi: Annotated[
        bool,
        typer.Option(
            "--keep-phi",
            help="SEG: keep the real patient identity (default: pseudonym, shifted dates and "
            "remapped UIDs, as `radpipe deidentify` gives the images).",
        ),
    ] = False,
) -> None:
    """Convert masks to a label map (NIfTI / NRRD) or a DICOM SEG on IMAGE's geometry.

    Example:

    $ radpipe masks convert labels.nii.gz seg.dcm --image study/CT

    $ radpipe masks convert rtstruct.dcm labels.nii.gz --image study/CT
    """
    output = chosen_output(output, output_flag, "output file")
    if image is None:
        raise typer.BadParameter("give the image the masks belong to", param_hint="--image")
    from radpipe.errors import FormatError
    from radpipe.io import load, save
    from radpipe.io.atomic import check_writable, guard_output, inputs_of
    from radpipe.io.mask_sources import load_mask_file, parse_label_names

    check_writable(output, overwrite=overwrite)
    volume = load(image)
    sources = inputs_of(volume)
    guard_output(output, inputs=[*sources["inputs"], str(source)],
                 input_folders=[*sources["input_folders"], str(source)])  # fmt: skip
    masks = load_mask_file(source, volume, name=name, label_names=parse_label_names(labels))
    labelmap = masks.to_labelmap()
    if output.name.lower().endswith(".dcm"):
        from radpipe.export.seg import write_seg
        from radpipe.io import registry

        files = [f for f in volume.meta.source_files if registry.format_of(f) is None]
        if not files:
            raise FormatError("DICOM SEG output needs --image to be a DICOM series")
        write_seg(labelmap, files, output, overwrite=overwrite, keep_phi=keep_phi)
    else:
        save(labelmap, output, overwrite=overwrite)
    counts = ", ".join(f"{n}: {c}" for n, c in masks.voxel_counts().items())
    stdout.print(f"wrote {output} ({counts} voxels)")
