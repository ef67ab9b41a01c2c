"""``radpipe overlay`` (a heatmap on a slice) and ``radpipe render`` (views, montages, slices)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout


def _box(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        row0, col0, rows, columns = (int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter("write ROW0,COL0,ROWS,COLS", param_hint="--heatmap-box") from None
    return row0, col0, rows, columns


def _demo_inputs() -> tuple[Any, Any, Any]:
    """The phantom scan, a heatmap centred on its tumours and its label map."""
    from radpipe.phantom import make_phantom, tumour_heatmap
    from radpipe.volume import Heatmap

    phantom = make_phantom(shape=(64, 192, 192), spacing=(2.5, 1.8, 1.8), tumours=3, seed=7)
    heat = Heatmap(tumour_heatmap(phantom), phantom.ct.affine, source="simulated")
    return phantom.ct, heat, phantom.labels


def overlay(
    input_path: Annotated[
        Path | None,
        typer.Option("-i", "--input", help="DICOM file or series folder, NIfTI or NRRD."),
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG to write.")] = Path(
        "output.png"
    ),
    heatmap: Annotated[
        Path | None, typer.Option("--heatmap", help="JSON, CSV, BIN, NPY/NPZ, NIfTI or PNG.")
    ] = None,
    heatmap_key: Annotated[
        str | None, typer.Option("--heatmap-key", help="Array name in an .npz.")
    ] = None,
    colormap: Annotated[
        str,
        typer.Option("--colormap", help="red, hot, jet, viridis, plasma or any matplotlib name."),
    ] = "jet",
    opacity: Annotated[float, typer.Option("--opacity", help="Heatmap opacity 0.0–1.0.")] = 0.6,
    normalization: Annotated[
        str, typer.Option("--normalization", help="minmax, zscore, percentile or none.")
    ] = "minmax",
    percentiles: Annotated[
        str, typer.Option("--percentiles", help="LOW,HIGH clipping for --normalization percentile.")
    ] = "5,95",
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Hide normalised values below this (0–1).")
    ] = None,
    alpha_by_value: Annotated[
        bool, typer.Option("--alpha-by-value", help="Opacity proportional to the value.")
    ] = False,
    per_slice: Annotated[
        bool,
        typer.Option(
            "--per-slice", help="Normalise each shown slice alone (default: the whole heatmap)."
        ),
    ] = False,
    resize: Annotated[
        str, typer.Option("--resize", help="bilinear or nearest, when shapes differ.")
    ] = "bilinear",
    heatmap_box: Annotated[
        str | None, typer.Option("--heatmap-box", help="ROW0,COL0,ROWS,COLS of a crop heatmap.")
    ] = None,
    plane: Annotated[str, typer.Option("--plane", help="axial, coronal or sagittal.")] = "axial",
    slice_: Annotated[
        str | None, typer.Option("--slice", help="Slice index or mm:POSITION (default: middle).")
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="Preset name or CENTER/WIDTH.")
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="Label map (NIfTI / NRRD / DICOM), placed by world position."),
    ] = None,
    colorbar: Annotated[bool, typer.Option("--colorbar", help="Add a colour bar.")] = False,
    demo: Annotated[
        bool, typer.Option("-d", "--demo", help="Use the phantom scan and a simulated heatmap.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUTPUT if it exists.")
    ] = False,
) -> None:
    """Blend an ML heatmap onto a slice and write a PNG.

    Example:

    $ radpipe overlay -i study/CT --heatmap gradcam.npy -o overlay.png --colormap hot

    $ radpipe overlay --demo -o demo.png
    """
    from radpipe.errors import ReadError
    from radpipe.export.png import write_png
    from radpipe.io import load
    from radpipe.io.atomic import check_writable, inputs_of
    from radpipe.io.heatmaps import read_heatmap
    from radpipe.render import overlay as compose

    check_writable(output, overwrite=overwrite)
    labels = None
    if demo:
        volume, values, labels = _demo_inputs()
    else:
        if input_path is None:
            raise ReadError("no input: give -i/--input (or --demo for the built-in phantom)")
        if heatmap is None:
            raise ReadError("no heatmap: give --heatmap FILE (or --demo)")
        volume = load(input_path)
        values = read_heatmap(heatmap, key=heatmap_key)
    if mask is not None:
        from radpipe.placement import labels_on

        labels = labels_on(load(mask), volume, name=f"mask {mask}")
    try:
        low, high = (float(v) for v in percentiles.split(","))
    except ValueError:
        raise typer.BadParameter("write LOW,HIGH, e.g. 5,95", param_hint="--percentiles") from None
    image = compose(
        volume, values, colormap=colormap, opacity=opacity, normalization=normalization,
        percentiles=(low, high),
        threshold=threshold, alpha_by_value=alpha_by_value, resize=resize,
        scope="slice" if per_slice else "volume",
        heatmap_box=_box(heatmap_box), plane=plane, index=slice_,
        window=window, mask=labels, colorbar=colorbar,
    )  # fmt: skip
    sources = inputs_of(volume)
    extra = [str(p) for p in (heatmap, mask) if p is not None]
    write_png(image, output, overwrite=overwrite, inputs=sources["inputs"] + extra,
              input_folders=sources["input_folders"])  # fmt: skip
    stdout.print(f"wrote {output} ({image.shape[1]}×{image.shape[0]})")


def render(
    input_path: Annotated[
        Path | None, typer.Argument(help="DICOM file or folder, NIfTI or NRRD.")
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="PNG (or folder with --all-slices).")
    ] = Path("render.png"),
    view_name: Annotated[
        str, typer.Option("--view", help="three-plane, lightbox, axial, coronal or sagittal.")
    ] = "three-plane",
    slice_: Annotated[
        str | None, typer.Option("--slice", help="Slice index or mm:POSITION.")
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="Preset name or CENTER/WIDTH.")
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="Label map, placed on the image by world position."),
    ] = None,
    count: Annotated[int, typer.Option("--count", min=1, help="Slices in a lightbox.")] = 16,
    all_slices: Annotated[
        bool, typer.Option("--all-slices", help="Write every slice of --view's plane.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes for --all-slices.")
    ] = None,
    list_windows: Annotated[
        bool, typer.Option("--list-windows", help="Print the window presets and exit.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace OUTPUT if it exists.")
    ] = False,
) -> None:
    """Render views of a volume: three planes, a lightbox, one slice, or every slice.

    Example:

    $ radpipe render study/CT -o views.png --mask labels.nii.gz --window liver

    $ radpipe render study/CT --all-slices --view coronal -o slices/
    """
    from radpipe.errors import FormatError, ReadError
    from radpipe.windowing import PRESETS

    if list_windows:
        stdout.print(f"{'preset':<12} CENTER/WIDTH (as --window takes it)")
        for name, preset in PRESETS.items():
            stdout.print(f"{name:<12} {preset.center:g}/{preset.width:g}")
        return
    from radpipe.export.png import write_all_slices, write_png
    from radpipe.io import load
    from radpipe.io.atomic import check_writable, inputs_of
    from radpipe.placement import labels_on
    from radpipe.render import lightbox, three_plane, view

    if input_path is None:
        raise ReadError("no input: give a DICOM folder or file, NIfTI or NRRD")
    volume = load(input_path)
    labels = None
    if mask is not None:
        labels = labels_on(load(mask), volume, name=f"mask {mask}")
    if all_slices:
        plane = view_name if view_name in ("axial", "coronal", "sagittal") else "axial"
        with progress_bar(f"Rendering {plane} slices") as (advance, _):
            written = write_all_slices(
                volume,
                output,
                plane=plane,
                workers=workers,
                progress=advance,
                overwrite=overwrite,
                window=window,
                mask=labels,
            )
        stdout.print(f"wrote {len(written)} PNGs to {output}")
        return
    check_writable(output, overwrite=overwrite)
    if view_name == "three-plane":
        image = three_plane(volume, window=window, mask=labels)
    elif view_name == "lightbox":
        image = lightbox(volume, count=count, window=window, mask=labels)
    elif view_name in ("axial", "coronal", "sagittal"):
        image = view(volume, plane=view_name, index=slice_, window=window, mask=labels)
    else:
        raise FormatError(
            f"unknown view {view_name!r}; use three-plane, lightbox, axial, coronal or sagittal"
        )
    sources = inputs_of(volume)
    extra = [str(mask)] if mask is not None else []
    write_png(image, output, overwrite=overwrite, inputs=sources["inputs"] + extra,
              input_folders=sources["input_folders"])  # fmt: skip
    stdout.print(f"wrote {output} ({image.shape[1]}×{image.shape[0]})")
