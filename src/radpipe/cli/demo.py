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
    """Run radpipe end to end on built-in phantom CT studies.

    Example:

    $ radpipe demo demo-output
    """
    from radpipe.cli.info import print_table
    from radpipe.export.png import write_png
    from radpipe.io import load, save
    from radpipe.io.summary import summarize_volume
    from radpipe.phantom import tumour_heatmap, write_phantom_study
    from radpipe.render import HeatmapStyle, canonical, three_plane, view
    from radpipe.windowing import parse_window

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
        # pictures: a simulated model heatmap on the largest tumour, and masks in three planes
        largest = max(study.phantom.tumours, key=lambda t: t.voxels)
        k, j, i = (int(v) for v in canonical(volume).world_to_index(largest.centre_mm).round())
        point = (k, j, i)
        heat = tumour_heatmap(study.phantom)
        style = HeatmapStyle(colormap="jet", opacity=0.5, threshold=0.15)
        overlay_png = write_png(
            view(volume, index=point[0], heatmap=heat, style=style, colorbar=True),
            patient_folder / "overlay.png",
            overwrite=overwrite,
        )
        masks_png = write_png(
            three_plane(volume, point=point, window="liver", mask=study.phantom.labels),
            patient_folder / "three-plane.png",
            overwrite=overwrite,
        )
        stdout.print(f"    pictures: {overlay_png}, {masks_png}")
    print_table(summaries, title=f"radpipe demo: {folder}")

    from radpipe.catalog.store import scan
    from radpipe.cli.scan import print_series

    catalog, report = scan(folder, folder / "catalog.sqlite")
    with catalog:
        print_series(catalog.series(), title=f"catalog of {folder} ({folder / 'catalog.sqlite'})")
    stdout.print(
        f"{report.files} files, {report.series} series, {report.patients} patients, "
        f"{report.problems} problems in {report.seconds:.2f} s"
    )

    from radpipe.cli.analyze import analyze
    from radpipe.export.nerf import export_nerf

    first = load(folder / "patient01" / "CT")
    nerf = export_nerf(
        first,
        folder / "patient01" / "nerf",
        mode="window",
        window=parse_window("abdomen"),
        overwrite=True,
    )
    stdout.print(
        f"NeRF export: {len(nerf.files)} slices + transforms.json in {nerf.folder} "
        f"(z-step {nerf.z_step:.4f} units)"
    )

    stdout.print("[bold]analysis[/bold] (the phantom's tumour volumes are known; compare above)")
    analyze(
        path=folder, out=folder / "report", catalog=folder / "catalog.sqlite", overwrite=overwrite
    )
