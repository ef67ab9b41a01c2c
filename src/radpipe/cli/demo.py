"""``radpipe demo``: write phantom CT studies, read them back, convert to NIfTI, show the table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radpipe.cli.console import stdout


def demo(
    folder: Annotated[Path, typer.Argument(help="Where to write the demo studies.")] = Path(
        "demo-output"
    ),
    patients: Annotated[
        int, typer.Option("--patients", min=1, max=20, help="Number of phantom patients.")
    ] = 3,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier demo's files.")
    ] = False,
) -> None:
    """Run radpipe end to end on built-in phantom CT studies."""
    from radpipe.cli.info import print_table
    from radpipe.io import load, save
    from radpipe.io.summary import summarize_volume
    from radpipe.phantom import write_phantom_study

    summaries = []
    for number in range(1, patients + 1):
        patient_folder = folder / f"patient{number:02d}"
        study = write_phantom_study(
            patient_folder,
            patient_id=f"DEMO-{number:03d}",
            shape=(48, 192, 192),
            spacing=(2.5, 1.8, 1.8),
            tumours=number,
            seed=number,
            overwrite=overwrite,
        )
        volume = load(study.series_folder)
        nifti = save(volume, patient_folder / "ct.nii.gz", overwrite=overwrite)
        tumour_ml = ", ".join(f"{t.volume_ml:.2f}" for t in study.phantom.tumours)
        stdout.print(
            f"[bold]{patient_folder}[/bold]: {len(study.files)} DICOM files → {nifti.name}; "
            f"liver {study.phantom.liver_volume_ml:.1f} ml, tumours {tumour_ml} ml"
        )
        summaries.append(summarize_volume(volume, key=patient_folder.name))
    print_table(summaries, title=f"radpipe demo: {folder}")

    from radpipe.cli.scan import print_series
    from radpipe.io.catalog import scan

    catalog, report = scan(folder, folder / "catalog.sqlite")
    with catalog:
        print_series(catalog.series(), title=f"catalog of {folder} ({folder / 'catalog.sqlite'})")
    stdout.print(
        f"{report.files} files, {report.series} series, {report.patients} patients, "
        f"{report.problems} problems in {report.seconds:.2f} s"
    )
