"""``radpipe export nerf``: numbered PNG slices and transforms.json for 3D-reconstruction models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout
from radpipe.cli.options import chosen_output, output_option

export_app = typer.Typer(help="Export volumes for other tools.", no_args_is_help=True)


def _range(text: str | None) -> tuple[int | None, int | None]:
    if not text:
        return (None, None)
    start, sep, stop = text.partition(":")
    if not sep:
        raise typer.BadParameter("write START:STOP (either may be empty)", param_hint="--range")
    try:
        return (int(start) if start else None, int(stop) if stop else None)
    except ValueError:
        raise typer.BadParameter("START and STOP must be integers", param_hint="--range") from None


def _split(text: str | None) -> tuple[float, float, float] | None:
    if not text:
        return None
    try:
        train, val, test = (float(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(
            "write TRAIN,VAL,TEST fractions, e.g. 0.8,0.1,0.1", param_hint="--split"
        ) from None
    return (train, val, test)


def _volumes(source: Path, all_series: bool) -> list[tuple[str, Any]]:
    from radpipe.catalog.patients import image_volumes
    from radpipe.io import load

    return list(image_volumes(source)) if all_series else [(source.name, load(source))]


@export_app.command("nerf")
def nerf(
    source: Annotated[
        Path,
        typer.Argument(
            help="DICOM series folder, NIfTI / NRRD file, or a dataset root with --all."
        ),
    ],
    output: Annotated[
        Path | None, typer.Argument(help="Output folder (001.png …, transforms.json).")
    ] = None,
    output_flag: Annotated[Path | None, output_option("Output folder")] = None,
    normalization: Annotated[
        str, typer.Option("--normalization", help="minmax, window or percentile.")
    ] = "minmax",
    window: Annotated[
        str | None, typer.Option("--window", help="Preset name or CENTER/WIDTH (implies window).")
    ] = None,
    window_center: Annotated[
        float | None, typer.Option("--window-center", help="Window centre in HU.")
    ] = None,
    window_width: Annotated[
        float | None, typer.Option("--window-width", help="Window width in HU.")
    ] = None,
    bit_depth: Annotated[int, typer.Option("--bit-depth", help="8 or 16-bit PNG.")] = 8,
    plane: Annotated[
        str, typer.Option("--plane", help="axial, coronal or sagittal (patient terms).")
    ] = "axial",
    axis: Annotated[
        int | None,
        typer.Option("--axis", help="0, 1 or 2 in the input's array order (overrides --plane)."),
    ] = None,
    range_: Annotated[str | None, typer.Option("--range", help="START:STOP slice subset.")] = None,
    every: Annotated[int, typer.Option("--every", help="Keep every N-th slice.")] = 1,
    focal_length: Annotated[
        float | None, typer.Option("--focal-length", help="Pixels (default: image width).")
    ] = None,
    scale: Annotated[float, typer.Option("--scale", help="Scene units per mm.")] = 0.001,
    split: Annotated[
        str | None, typer.Option("--split", help="TRAIN,VAL,TEST fractions, e.g. 0.8,0.1,0.1.")
    ] = None,
    camera_model: Annotated[
        str, typer.Option("--camera-model", help="OPENCV or PINHOLE.")
    ] = "OPENCV",
    all_series: Annotated[
        bool, typer.Option("--all", help="Every image series under SOURCE (one folder each).")
    ] = False,
    output_format: Annotated[
        str,
        typer.Option("--format", help="nerf (PNG + transforms.json) or mvsplat (.torch chunks)."),
    ] = "nerf",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a non-empty OUTPUT.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing but errors.")] = False,
) -> None:
    """Write numbered PNG slices and a nerfstudio / instant-ngp transforms.json.

    Example:

    $ radpipe export nerf study/CT nerf-out --normalization window --window abdomen
    """
    output = chosen_output(output, output_flag, "output folder")
    from radpipe.errors import FormatError
    from radpipe.export.nerf import export_nerf
    from radpipe.io import load
    from radpipe.windowing import Window, parse_window

    chosen_window = None
    mode = normalization
    if window is not None:
        chosen_window, mode = parse_window(window), "window"
    elif window_center is not None or window_width is not None:
        if window_center is None or window_width is None:
            raise FormatError("give both --window-center and --window-width")
        chosen_window, mode = Window(window_center, window_width), "window"
    if camera_model not in ("OPENCV", "PINHOLE"):
        raise FormatError(f"--camera-model must be OPENCV or PINHOLE, got {camera_model!r}")
    options: dict[str, Any] = {
        "plane": plane, "axis": axis, "mode": mode, "window": chosen_window, "bit_depth": bit_depth,
        "focal_length": focal_length, "scale": scale, "selection": _range(range_), "every": every,
        "split": _split(split), "camera_model": camera_model, "overwrite": overwrite,
    }  # fmt: skip
    if output_format not in ("nerf", "mvsplat"):
        raise FormatError(f"--format must be nerf or mvsplat, got {output_format!r}")
    if output_format == "mvsplat":
        from radpipe.export.nerf import export_mvsplat

        volumes = _volumes(source, all_series)
        chunks = export_mvsplat(
            volumes, output, plane=plane, axis=axis, mode=mode, window=chosen_window,
            focal_length=focal_length, scale=scale, overwrite=overwrite,
        )  # fmt: skip
        if not quiet:
            stdout.print(
                f"wrote {len(volumes)} example(s), {len(chunks)} chunk(s) + index.json: {output}"
            )
        return
    if all_series:
        from radpipe.catalog.patients import image_volumes
        from radpipe.export.nerf import export_nerf_each

        def report(result: Any) -> None:
            if not quiet:
                stdout.print(
                    f"{result.folder}: {len(result.files)} slices "
                    f"{result.image_shape[1]}×{result.image_shape[0]}"
                )

        export_nerf_each(image_volumes(source), output, on_export=report, **options)
        return
    if not quiet:
        stdout.print(f"Loading {source}...")
    volume = load(source)
    with progress_bar("Saving slices") as (advance, set_total):
        set_total(volume.spatial_shape[0])
        result = export_nerf(volume, output, progress=advance, **options)
    if quiet:
        return
    low, high = result.original_range
    stdout.print(f"  Volume shape: {result.volume_shape}")
    stdout.print(f"  Voxel spacing: ({', '.join(f'{v:.4g}' for v in result.spacing_mm)}) mm")
    stdout.print(f"  Slice thickness: {result.slice_spacing_mm:.2f} mm")
    stdout.print(f"Normalizing intensity using method: {mode}")
    stdout.print(f"  Original range: [{low:.2f}, {high:.2f}]")
    stdout.print(
        f"  Normalized range: [{result.normalized_range[0]}, {result.normalized_range[1]}]"
    )
    stdout.print(f"Saved {len(result.files)} slices to {result.folder}")
    stdout.print(f"  Image shape: {result.image_shape[1]} x {result.image_shape[0]}")
    stdout.print(f"  Focal length: {result.focal_length:.2f}")
    stdout.print(
        f"  Principal point: ({result.principal_point[0]:.2f}, {result.principal_point[1]:.2f})"
    )
    stdout.print(f"  Z-step (camera translation): {result.z_step:.6f} units")
    stdout.print(f"✓ Conversion complete! Output directory: {result.folder}")
