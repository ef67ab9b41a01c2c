"""``radpipe export nerf``: numbered PNG slices and transforms.json for 3D-reconstruction models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout
from radpipe.cli.options import SchedulerOption, WorkersOption, chosen_output, output_option

if TYPE_CHECKING:
    from radpipe.export.nerf import NerfExport

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
    bit_depth: Annotated[
        int,
        typer.Option(
            "--bit-depth",
            help="8 or 16-bit PNG (nerfstudio and instant-ngp read 8-bit; 16 is for other tools).",
        ),
    ] = 8,
    plane: Annotated[
        str, typer.Option("--plane", help="axial, coronal or sagittal (patient terms).")
    ] = "axial",
    axis: Annotated[
        int | None,
        typer.Option(
            "--axis",
            help="0, 1 or 2 (overrides --plane): a NIfTI / NRRD / MetaImage file's own i, j, k "
            "voxel axis (2 = the axial slices of an axial NIfTI); for DICOM the array's slice, "
            "row, column.",
        ),
    ] = None,
    keep_pixels: Annotated[
        bool,
        typer.Option(
            "--keep-pixels",
            help="Keep non-square pixels (no resampling) and write fl_y = fl_x × column / row "
            "spacing.",
        ),
    ] = False,
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
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
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
        "square": not keep_pixels, "focal_length": focal_length, "scale": scale,
        "selection": _range(range_), "every": every, "split": _split(split),
        "camera_model": camera_model, "overwrite": overwrite,
    }  # fmt: skip
    if output_format not in ("nerf", "mvsplat"):
        raise FormatError(f"--format must be nerf or mvsplat, got {output_format!r}")
    if output_format == "mvsplat":
        from radpipe.export.nerf import export_mvsplat

        volumes = _volumes(source, all_series)
        chunks = export_mvsplat(
            volumes, output, plane=plane, axis=axis, mode=mode, window=chosen_window,
            square=not keep_pixels, focal_length=focal_length, scale=scale, overwrite=overwrite,
        )  # fmt: skip
        if not quiet:
            stdout.print(
                f"wrote {len(volumes)} example(s), {len(chunks)} chunk(s) + index.json: {output}"
            )
        return
    if all_series:
        from radpipe.export.nerf import export_nerf_tree

        def report(result: Any) -> None:
            if not quiet:
                stdout.print(
                    f"{result.folder}: {len(result.files)} slices "
                    f"{result.image_shape[1]}×{result.image_shape[0]}"
                )

        export_nerf_tree(source, output, workers=workers, scheduler=scheduler,
                         on_export=report, **options)  # fmt: skip
        return
    if not quiet:
        stdout.print(f"Loading {source}...", markup=False, highlight=False, soft_wrap=True)
    volume = load(source)
    with progress_bar("Saving slices") as (advance, set_total):
        result = export_nerf(volume, output, progress=advance, on_total=set_total, **options)
    if not quiet:
        _print_summary(result, mode)


def _print_summary(result: NerfExport, mode: str) -> None:
    """The facts the original converter printed, then what to run next (paths printed as they
    are: no Rich markup, no wrapping)."""
    import functools

    say = functools.partial(stdout.print, markup=False, highlight=False, soft_wrap=True)
    low, high = result.original_range
    row_mm, column_mm = result.pixel_spacing_mm
    fl_x, fl_y = result.focal_length
    shape = ", ".join(str(n) for n in result.input_shape)
    spacing = ", ".join(f"{v:.4g}" for v in result.input_spacing_mm)
    say(f"  Volume shape: ({shape}) ({result.axis_order})")
    say(f"  Voxel spacing: ({spacing}) mm ({result.axis_order})")
    step, spacing_mm = result.slice_step_mm, result.slice_spacing_mm
    apart = f" (slices {spacing_mm:.2f} mm apart)" if abs(step - spacing_mm) > 1e-9 else ""
    say(f"  Slice step: {step:.2f} mm between frames{apart}")
    say(f"Normalizing intensity using method: {mode}")
    say(f"  Original range: [{low:.2f}, {high:.2f}]")
    say(f"  Normalized range: [{result.normalized_range[0]}, {result.normalized_range[1]}]")
    say(f"Saved {len(result.files)} slices to {result.folder}")
    say(f"  Image shape: {result.image_shape[1]} x {result.image_shape[0]}")
    if result.resampled_from is not None:
        before_h, before_w = result.resampled_from
        say(
            f"  Resampled from {before_w} x {before_h} to square {column_mm:.4g} mm pixels "
            f"(linear; --keep-pixels keeps them)"
        )
    else:
        say(f"  Pixel spacing: {row_mm:.4g} x {column_mm:.4g} mm (row x column)")
    say(f"  Focal length: fl_x {fl_x:.2f}, fl_y {fl_y:.2f}")
    say(f"  Principal point: ({result.principal_point[0]:.2f}, {result.principal_point[1]:.2f})")
    say(f"  Z-step (camera translation): {result.z_step:.6f} units")
    say(f"✓ Conversion complete! Output directory: {result.folder}")
    say("Next steps:")
    say(f"  1. Train with nerfstudio: ns-train instant-ngp --data {result.folder}")
    say(
        "  2. View: open the viewer link ns-train prints (http://localhost:7007), or later "
        "ns-viewer --load-config outputs/<name>/instant-ngp/<time>/config.yml"
    )
    say(f"  Or with instant-ngp: ./instant-ngp {result.folder}/transforms.json")
