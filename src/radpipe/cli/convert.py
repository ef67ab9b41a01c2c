"""``radpipe convert INPUT OUTPUT``: a DICOM series, DICOM file, NIfTI or NRRD to NIfTI / NRRD."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radpipe.cli.console import progress_bar, stdout
from radpipe.cli.options import Irregular, OnDuplicate, chosen_output, output_option


def convert(
    source: Annotated[
        Path, typer.Argument(help="DICOM folder or file, NIfTI, Analyze, MINC or NRRD.")
    ],
    output: Annotated[
        Path | None, typer.Argument(help="Output file: .nii, .nii.gz, .nrrd or .mha.")
    ] = None,
    output_flag: Annotated[Path | None, output_option("Output file")] = None,
    series: Annotated[
        str | None,
        typer.Option("--series", help="SeriesInstanceUID to convert when INPUT holds several."),
    ] = None,
    on_duplicate: OnDuplicate = "error",
    irregular: Irregular = "resample",
    resample_tilt: Annotated[
        bool,
        typer.Option(
            "--resample-tilt/--keep-tilt",
            help="Gantry-tilted CT: resample onto an orthogonal grid, or keep the sheared affine.",
        ),
    ] = True,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUTPUT if it exists.")
    ] = False,
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="Whole-tree mode: file name pattern ({patient}, {series_number}, "
            "{series_description}, {modality}, {series_uid}).",
        ),
    ] = "{patient}_{series_number}_{series_description}",
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Whole-tree mode: real patient IDs in names.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Whole-tree mode: processes.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Whole-tree mode: Dask scheduler address.")
    ] = None,
) -> None:
    """Convert INPUT to OUTPUT (format from the file ending), keeping exact geometry; with an
    OUTPUT folder (no file ending), every series of a tree becomes a NIfTI and a JSON sidecar.

    Example:

    $ radpipe convert study/CT ct.nii.gz

    $ radpipe convert "study.zip::study/CT" ct.mha

    $ radpipe convert /data/dicom-tree nifti/ --name "{patient}_{series_number}"
    """
    output = chosen_output(output, output_flag, "output file")
    from radpipe.io import load, save
    from radpipe.io.atomic import check_writable
    from radpipe.io.dicom.series import OnDuplicate

    if on_duplicate not in {m.value for m in OnDuplicate}:
        raise typer.BadParameter("choose error, first or last", param_hint="--on-duplicate")
    if irregular not in ("resample", "mean", "error"):
        raise typer.BadParameter("choose resample, mean or error", param_hint="--irregular")
    from radpipe.io import registry

    if registry.format_of(output) is None and not output.suffix:
        from radpipe.export.tree import convert_tree

        with progress_bar(f"Converting {source.name}") as (advance, _):
            done = convert_tree(
                source, output, pattern=name, keep_phi=keep_phi, workers=workers,
                scheduler=scheduler, overwrite=overwrite, progress=advance,
            )  # fmt: skip
        stdout.print(f"wrote {len(done.written)} series (NIfTI + JSON sidecar) to {output}")
        for where, reason in done.problems:
            stdout.print(f"[yellow]not converted:[/yellow] {where}: {reason}")
        return
    check_writable(output, overwrite=overwrite)
    with progress_bar(f"Reading {source.name}") as (advance, _):
        volume = load(
            source,
            series=series,
            on_duplicate=on_duplicate,
            resample_tilt=resample_tilt,
            irregular=irregular,
            progress=advance,
        )
    save(volume, output, overwrite=overwrite)
    spacing = " × ".join(f"{v:.4g}" for v in volume.spacing)
    stdout.print(
        f"wrote {output}  {' × '.join(map(str, volume.shape))}  {spacing} mm  "
        f"{volume.orientation_code}"
    )
