"""``radpipe preprocess`` and ``radpipe dataset build | inspect | batches``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from radpipe.cli.console import progress_bar, stdout
from radpipe.cli.options import OnDuplicate, chosen_output, output_option

dataset_app = typer.Typer(
    help="Build, inspect and sample training datasets (HDF5).", no_args_is_help=True
)


def _floats(text: str | None) -> list[float] | None:
    if text in (None, ""):
        return None
    try:
        return [float(v) for v in str(text).split(",")]
    except ValueError:
        raise typer.BadParameter(f"expected numbers separated by commas, got {text!r}") from None


def _ints(text: str | None) -> list[int] | None:
    values = _floats(text)
    return None if values is None else [int(v) for v in values]


def preprocess_command(
    source: Annotated[Path, typer.Argument(help="Image: DICOM folder or file, NIfTI, NRRD.")],
    output: Annotated[Path | None, typer.Argument(help="Output .nii / .nii.gz / .nrrd.")] = None,
    output_flag: Annotated[Path | None, output_option("Output image")] = None,
    spacing: Annotated[
        str | None, typer.Option("--spacing", help="mm: one value or SLICE,ROW,COLUMN.")
    ] = None,
    orient: Annotated[
        str | None, typer.Option("--orient", help="LPS, RAS or another 3-letter code.")
    ] = None,
    n4: Annotated[bool, typer.Option("--n4", help="N4 bias-field correction (MR).")] = False,
    normalization: Annotated[
        str, typer.Option("--normalization", help="none, window, zscore or percentile.")
    ] = "none",
    window: Annotated[
        str | None,
        typer.Option("--window", help="Preset or CENTER/WIDTH for window normalisation."),
    ] = None,
    crop_body: Annotated[
        bool, typer.Option("--crop-body", help="Crop to the body with a margin.")
    ] = False,
    size: Annotated[str | None, typer.Option("--size", help="Pad / crop to S,R,C voxels.")] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Label map to carry along (nearest neighbour).")
    ] = None,
    mask_output: Annotated[
        Path | None, typer.Option("--mask-output", help="Where to write the processed label map.")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs.")] = False,
) -> None:
    """Resample, reorient, correct, normalise, crop and pad an image (and its label map).

    Example:

    $ radpipe preprocess ct.nii.gz out.nii.gz --spacing 1.5 --orient RAS

    $ radpipe preprocess ct.nii.gz out.nii.gz --mask labels.nii.gz --mask-output out_labels.nii.gz
    """
    output = chosen_output(output, output_flag, "output file")
    from radpipe.errors import FormatError
    from radpipe.io import load, save
    from radpipe.io.atomic import check_writable
    from radpipe.preprocess import preprocess
    from radpipe.windowing import parse_window

    check_writable(output, overwrite=overwrite)
    if mask is not None and mask_output is None:
        raise FormatError("--mask needs --mask-output")
    if mask_output is not None:  # checked before anything is written: both outputs or neither
        from radpipe.io import registry

        if mask is None:
            raise FormatError("--mask-output needs --mask")
        if Path(mask_output).resolve() == Path(output).resolve():
            raise FormatError(f"{mask_output}: the mask output is the image output")
        if not str(mask_output).lower().endswith(registry.writable_suffixes()):
            raise FormatError(
                f"{mask_output}: unknown output format; use one of "
                f"{', '.join(registry.writable_suffixes())}"
            )
        check_writable(mask_output, overwrite=overwrite)
    image = load(source)
    labels = None
    if mask is not None:
        from radpipe.placement import labels_on

        labels = labels_on(load(mask), image, name=str(mask))
    values = _floats(spacing)
    chosen = None if values is None else (values[0] if len(values) == 1 else values)
    out_image, out_labels = preprocess(
        image, labels=labels, spacing=chosen, orient=orient, n4=n4, normalization=normalization,
        window=parse_window(window) if window else None, crop_to_body=crop_body, size=_ints(size),
    )  # fmt: skip
    save(out_image, output, overwrite=overwrite)
    if out_labels is not None and mask_output is not None:
        save(out_labels, mask_output, overwrite=overwrite)
    stdout.print(
        f"wrote {output}: {out_image.shape}, spacing "
        f"{tuple(round(v, 4) for v in out_image.spacing)} mm, {out_image.orientation_code}"
    )


@dataset_app.command("build")
def build_command(
    source: Annotated[
        Path | None, typer.Argument(help="Folder or dataset root with images and masks.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", "--output-filename", help="HDF5 file to write.")
    ] = None,
    data_directory: Annotated[
        Path | None,
        typer.Option(
            "--data-directory", help="Sunnybrook-layout folder (dicoms/, contourfiles/, link.csv)."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML or INI file with any of these options.")
    ] = None,
    mode: Annotated[str | None, typer.Option("--mode", help="2d slices or 3d volumes.")] = None,
    spacing: Annotated[
        str | None, typer.Option("--spacing", help="mm: ROW,COLUMN (2d) or SLICE,ROW,COLUMN.")
    ] = None,
    size: Annotated[
        str | None, typer.Option("--size", help="Voxels: ROWS,COLUMNS (2d) or S,R,C.")
    ] = None,
    normalization: Annotated[
        str | None, typer.Option("--normalization", help="none, window, zscore, percentile.")
    ] = None,
    window: Annotated[str | None, typer.Option("--window", help="Preset or CENTER/WIDTH.")] = None,
    labelled_only: Annotated[
        bool, typer.Option("--labelled-only", help="Keep only samples with a mask.")
    ] = False,
    append: Annotated[
        bool, typer.Option("--append", help="Add patients to an existing file.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing file.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes (default: all cores).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address.")
    ] = None,
    print_random_image: Annotated[
        bool,
        typer.Option("--print-random-image", help="Write a PNG of a random sample with its mask."),
    ] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="Keep real patient identifiers.")
    ] = False,
    on_duplicate: OnDuplicate = "error",
    labels: Annotated[
        str | None,
        typer.Option(
            "--labels",
            help="The label table: NAME=VALUE,… or a JSON file (default: every patient's mask "
            "names, sorted). Other classes are left out.",
        ),
    ] = None,
    merge: Annotated[
        list[str] | None,
        typer.Option(
            "--merge", help="PATTERN=NAME: masks matching PATTERN become class NAME (repeatable)."
        ),
    ] = None,
    keep_numbered: Annotated[
        bool,
        typer.Option(
            "--keep-numbered",
            help="Keep numbered tumours (livertumor01, …) as classes of their own.",
        ),
    ] = False,
    orient: Annotated[
        str | None,
        typer.Option("--orient", help="Reorient every patient first (LPS, RAS, …): one layout."),
    ] = None,
) -> None:
    """Build an HDF5 dataset of images and masks with one label table for every patient.

    Numbered tumour masks (livertumor01, livertumor02, GTV-1) are one class (livertumor, GTV)
    unless --keep-numbered; --merge rules come first.

    Example:

    $ radpipe dataset build /data/3Dircadb1 -o liver.h5 --spacing 2.5,1,1

    $ radpipe dataset build --data-directory sunnybrook -o sb.h5
    """
    from radpipe.dataset.build import build, build_options, load_config, plan_build
    from radpipe.errors import DatasetError

    settings: dict[str, Any] = load_config(config) if config else {}
    options = build_options(
        settings, mode=mode, spacing=_floats(spacing), size=_ints(size),
        normalization=normalization, window=window, labelled_only=labelled_only or None,
        keep_phi=keep_phi or None, on_duplicate=on_duplicate, labels=labels,
        merge=merge or None, keep_numbered=keep_numbered or None, orient=orient,
    )  # fmt: skip
    output = output or (
        Path(settings["output_filename"]) if "output_filename" in settings else None
    )
    data_directory = data_directory or (
        Path(settings["data_directory"]) if "data_directory" in settings else None
    )
    if output is None:
        raise DatasetError("give the output file with -o/--output-filename")
    from radpipe.io.atomic import guard_output

    guard_output(output, input_folders=[str(p) for p in (source, data_directory) if p])
    from radpipe.parallel import work_folder

    with work_folder(output, scheduler) as work:
        jobs, label_names = plan_build(options, work, source=source, data_directory=data_directory)
        with progress_bar("Building") as (advance, set_total):
            set_total(len(jobs))
            summary = build(
                jobs, output, options=options, label_names=label_names, append=append,
                overwrite=overwrite, workers=workers, scheduler=scheduler, progress=advance,
            )  # fmt: skip
    path, written, rejected, errors = (
        summary.path,
        summary.written,
        summary.rejected,
        summary.errors,
    )
    stdout.print(
        f"wrote {path}: {written} samples from {len(jobs)} patient(s), {len(rejected)} rejected"
    )
    table = ", ".join(f"{value} {name}" for value, name in summary.label_names.items())
    stdout.print(f"labels: {table or 'none'}")
    for name, count in summary.left_out.items():
        stdout.print(f"[yellow]left out:[/yellow] {name} ({count} patient(s)), not in --labels")
    for item in rejected[:10]:
        stdout.print(
            f"[yellow]rejected:[/yellow] {item['patient']} slice {item['slice_index']}: "
            f"{item['reason']}"
        )
    for error in errors:
        stdout.print(f"[yellow]skipped patient:[/yellow] {error}")
    if print_random_image:
        from radpipe.export.montage import random_sample_png

        png = path.with_name(path.stem + "_random.png")
        _, index = random_sample_png(path, png)
        stdout.print(f"wrote {png}: sample {index}")


@dataset_app.command("inspect")
def inspect_command(
    path: Annotated[Path, typer.Argument(help="Dataset file.")],
    montage: Annotated[
        Path | None,
        typer.Option(
            "--montage", help="PNG montage of the first samples (default: FILE.montage.png)."
        ),
    ] = None,
) -> None:
    """Counts, shapes, spacing, class balance and a montage of a dataset.

    Example:

    $ radpipe dataset inspect liver.h5 --montage montage.png
    """
    import json

    import numpy as np

    from radpipe.dataset.schema import DatasetReader

    reader = DatasetReader(path)
    attrs = reader.attrs
    names = {str(value): name for value, name in reader.label_names.items()}
    rejected = json.loads(attrs.get("rejected", "[]"))
    meta = reader.meta
    stdout.print(
        f"{path}: {len(reader)} samples of shape {reader.sample_shape} ({attrs.get('mode')})"
    )
    stdout.print(
        f"  patients: {len(np.unique(meta['patient']))}, with a mask: "
        f"{int(meta['has_mask'].sum())}, rejected: {len(rejected)}"
    )
    spacings = np.unique(np.round(meta["spacing_mm"], 4), axis=0)
    formatted = ", ".join("(" + ", ".join(f"{float(v):g}" for v in s) + ")" for s in spacings[:5])
    stdout.print(f"  spacing (mm): {formatted}")
    stdout.print(f"  preprocessing: {attrs.get('preprocessing')}")
    step = max(1, len(reader) // 500)
    _, masks = reader.read(list(range(0, len(reader), step)))
    counts = np.bincount(masks.ravel(), minlength=max(2, int(masks.max()) + 1))
    total = counts.sum()
    for value, count in enumerate(counts):
        stdout.print(
            f"  label {value} ({names.get(str(value), 'background' if value == 0 else '?')}): "
            f"{count / total:.3%}"
        )
    from radpipe.export.montage import montage_png

    target = montage or path.with_suffix(".montage.png")
    montage_png(reader, target)
    stdout.print(f"  montage: {target}")


@dataset_app.command("batches")
def batches_command(
    path: Annotated[Path | None, typer.Argument(help="Dataset file.")] = None,
    input_filename: Annotated[
        Path | None,
        typer.Option("--input-filename", "--input_filename", help="Dataset file (as argument)."),
    ] = None,
    batchsize: Annotated[int, typer.Option("--batchsize", "--batch-size", min=1)] = 16,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 1,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Non-negative seed.")] = 0,
    print_batch_indices: Annotated[
        bool,
        typer.Option(
            "--print-batch-indices", "--print_batch_indices", help="Print each batch's indices."
        ),
    ] = False,
    print_random_image: Annotated[
        bool,
        typer.Option(
            "--print-random-image",
            "--print_random_image",
            help="Write a PNG of a random sample as the loader serves it, with its mask.",
        ),
    ] = False,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Hold out this fraction of patients.")
    ] = 0.0,
    patch_size: Annotated[
        str | None, typer.Option("--patch-size", help="Random patches D,H,W (3-D datasets).")
    ] = None,
) -> None:
    """Show how samples are drawn: batch indices per epoch, reproducible from the seed.

    Example:

    $ radpipe dataset batches liver.h5 --batch-size 16 --epochs 2

    $ radpipe dataset batches --input_filename liver.h5 --print_random_image
    """
    from radpipe.dataset.loader import BatchLoader, split_by_patient
    from radpipe.dataset.schema import DatasetReader

    if path is not None and input_filename is not None and path != input_filename:
        raise typer.BadParameter(f"the dataset is given twice ({path}, {input_filename})")
    chosen = input_filename or path
    if chosen is None:
        raise typer.BadParameter("give the dataset file", param_hint="PATH / --input-filename")
    reader = DatasetReader(chosen)
    train, val = split_by_patient(reader.meta["patient"], val_fraction, seed=seed)
    loader = BatchLoader(
        chosen, batch_size=batchsize, epochs=epochs, seed=seed, indices=train, prefetch=0,
        patch_size=_ints(patch_size),
    )  # fmt: skip
    batches = 0
    first: tuple[int, Any] | None = None
    for epoch, indices in loader.batch_indices():
        batches += 1
        first = first or (epoch, indices)
        if print_batch_indices:
            typer.echo(f"epoch {epoch} batch: {' '.join(map(str, indices.tolist()))}")
    stdout.print(
        f"{batches} batches over {epochs} epoch(s); "
        f"train {train.size} samples, validation {val.size}"
    )
    if print_random_image and first is not None:
        import numpy as np

        from radpipe.export.montage import dataset_colours, legend_strip, sample_picture
        from radpipe.export.png import write_png

        batch = loader.load_batch(*first)
        item = int(np.random.default_rng(seed).integers(len(batch["index"])))
        colours = dataset_colours(reader)
        picture = sample_picture(batch["image"][item, 0], batch["mask"][item, 0], colours)
        legend = legend_strip(picture.shape[1], reader.label_names, colours)
        png = chosen.with_name(chosen.stem + "_batch_sample.png")
        write_png(np.concatenate([picture, legend], axis=0), png, overwrite=True)
        stdout.print(f"wrote {png}: sample {int(batch['index'][item])} of epoch {first[0]}")
