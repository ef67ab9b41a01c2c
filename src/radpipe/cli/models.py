"""``radpipe train``, ``radpipe segment`` and ``radpipe evaluate``: segmentation models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radpipe.cli.console import stdout
from radpipe.cli.options import chosen_output, output_option


def _sizes(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected integers separated by commas, got {text!r}") from None


def train_command(
    dataset: Annotated[Path, typer.Argument(help="Dataset file from `radpipe dataset build`.")],
    out: Annotated[Path | None, output_option("Model folder")] = None,
    out_flag: Annotated[Path | None, typer.Option("--out", help="Model folder.")] = None,
    epochs: Annotated[int, typer.Option("--epochs", min=1, help="Passes over the data.")] = 50,
    max_minutes: Annotated[
        float | None, typer.Option("--max-minutes", help="Stop after the epoch passing this.")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    learning_rate: Annotated[float, typer.Option("--learning-rate")] = 2e-3,
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of patients held out.")
    ] = 0.2,
    val_patients: Annotated[
        str | None, typer.Option("--val-patients", help="Held-out patients: NAME,NAME.")
    ] = None,
    patch_size: Annotated[
        str | None, typer.Option("--patch-size", help="Training window H,W or D,H,W.")
    ] = None,
    augment: Annotated[
        str, typer.Option("--augment", help="none, light, standard or strong.")
    ] = "standard",
    foreground_fraction: Annotated[
        float,
        typer.Option(
            "--foreground-fraction",
            min=0.0,
            max=1.0,
            help="Share of training windows centred on a label (with --patch-size).",
        ),
    ] = 0.33,
    class_balanced: Annotated[
        bool,
        typer.Option(
            "--class-balanced",
            help="Centre windows on each class alike (small classes as often as large ones).",
        ),
    ] = False,
    batch_dice: Annotated[
        bool,
        typer.Option(
            "--batch-dice",
            help="Pool the Dice loss over the batch (default: per window).",
        ),
    ] = False,
    postprocess: Annotated[
        str,
        typer.Option(
            "--postprocess",
            help="Keep each class's largest connected part: auto "
            "(where it raises the validation Dice), largest (always), convex (largest, then "
            "filled to its convex hull in each slice) or none.",
        ),
    ] = "auto",
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    name: Annotated[str | None, typer.Option("--name", help="Model name (SEG, reports).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the folder's checkpoint.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier model folder.")
    ] = False,
) -> None:
    """Train a segmentation network (MONAI U-Net, 2-D or 3-D after the dataset).

    Example:

    $ radpipe train liver.h5 --out liver-model --epochs 40 --max-minutes 10
    """
    from radpipe.models.training import TrainOptions, train

    folder = chosen_output(out, out_flag, "model folder")
    options = TrainOptions(
        epochs=epochs, max_minutes=max_minutes, batch_size=batch_size,
        learning_rate=learning_rate, val_fraction=val_fraction,
        val_patients=[p.strip() for p in val_patients.split(",")] if val_patients else None,
        seed=seed, device=device, patch_size=_sizes(patch_size), augment=augment, name=name,
        foreground_fraction=foreground_fraction, postprocess=postprocess,
        class_balanced=class_balanced, batch_dice=batch_dice,
    )  # fmt: skip

    def report(record: object, total: int) -> None:
        from radpipe.models.training import EpochRecord

        assert isinstance(record, EpochRecord)
        dice = "  ".join(f"{k} {v:.3f}" for k, v in record.val_dice.items())
        stdout.print(
            f"epoch {record.epoch}/{total}  loss {record.train_loss:.4f}"
            + (f"  val Dice {dice}" if dice else "")
            + f"  ({record.seconds:.1f} s)"
        )

    result = train(dataset, folder, options=options, resume=resume, overwrite=overwrite,
                   on_epoch=report)  # fmt: skip
    best = result.card.validation
    summary = (
        f"best epoch {best.get('epoch')}, mean validation Dice {best['mean_dice']:.3f}"
        if best.get("mean_dice") is not None
        else "no validation patients"
    )
    reason = " (time limit)" if result.stopped == "time" else ""
    stdout.print(f"wrote {folder}: {summary}{reason}; metrics.csv, curves.png, model.json")
    kept = [result.card.classes[v] for v in result.card.largest_component_classes]
    if kept:
        stdout.print(f"post-processing: largest connected part of {', '.join(kept)}")
    hulls = [result.card.classes[v] for v in result.card.convex_hull_classes]
    if hulls:
        stdout.print(f"post-processing: convex hull per slice of {', '.join(hulls)}")


def segment_command(
    image: Annotated[Path, typer.Argument(help="DICOM series or file, NIfTI, NRRD, zip member.")],
    output: Annotated[
        Path | None, typer.Argument(help="Label map (.nii.gz, .nrrd) or SEG (.dcm).")
    ] = None,
    output_flag: Annotated[Path | None, output_option("Label map or SEG")] = None,
    model: Annotated[
        Path, typer.Option("--model", help="Model folder from `radpipe train`.")
    ] = Path("model"),
    probabilities: Annotated[
        Path | None, typer.Option("--probabilities", help="Write a probability heatmap here.")
    ] = None,
    probability_class: Annotated[
        str | None,
        typer.Option("--probability-class", help="Class of --probabilities (default: the last)."),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    mirror: Annotated[
        bool,
        typer.Option("--mirror", help="Average over mirror images too (test-time augmentation)."),
    ] = False,
    keep_phi: Annotated[
        bool, typer.Option("--keep-phi", help="SEG keeps the real patient identity.")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes for a folder of series.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address (tcp://HOST:PORT).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs.")] = False,
) -> None:
    """Segment an image with a trained model; the result lies on the image's exact grid.
    With an output folder (no file ending), every 3-D series under IMAGE is segmented, in
    parallel (--workers, or a Dask cluster with --scheduler).

    Example:

    $ radpipe segment ct/ -o labels.nii.gz --model liver-model --probabilities tumour.nii.gz

    $ radpipe segment ct/ -o seg.dcm --model liver-model

    $ radpipe segment /data/cohort -o predictions --model liver-model --workers 2
    """
    from radpipe.export.segmentation import segment_to_files, segment_tree

    target = chosen_output(output, output_flag, "output file")
    if not target.suffix:
        from radpipe.cli.console import progress_bar

        with progress_bar("Segmenting") as (advance, _):
            labelled, problems, _ = segment_tree(
                image, target, model=model, device=device, workers=workers,
                scheduler=scheduler, overwrite=overwrite, progress=advance, mirror=mirror,
            )  # fmt: skip
        stdout.print(f"wrote {len(labelled)} label map(s) into {target}")
        for name, problem in problems:
            stdout.print(f"[yellow]not segmented:[/yellow] {name}: {problem}")
        return
    written = segment_to_files(
        image, target, model=model, probabilities=probabilities,
        probability_class=probability_class, device=device, keep_phi=keep_phi,
        overwrite=overwrite, mirror=mirror,
    )  # fmt: skip
    for line in written:
        stdout.print(line)


def evaluate_command(
    predicted: Annotated[Path, typer.Argument(help="Predicted label map, or a folder of them.")],
    reference: Annotated[
        Path,
        typer.Argument(
            help="Reference label map, a folder of them, or a dataset root whose "
            "masks are the truth (matched by patient)."
        ),
    ],
    output: Annotated[Path | None, output_option("Report folder (CSV, JSON, HTML)")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the report.")] = False,
) -> None:
    """Dice, 95 % Hausdorff distance (mm) and volume difference per label and case.

    Example:

    $ radpipe evaluate predictions/ truth/ -o evaluation

    $ radpipe evaluate predictions/ /data/3Dircadb1 -o evaluation   # `segment` on the tree
    """
    from rich.table import Table

    from radpipe.models.evaluation import evaluate

    result = evaluate(predicted, reference)
    table = Table(title="Segmentation evaluation (mean over cases)")
    for column in ("label", "cases", "Dice", "HD95 (mm)", "|volume diff.| (%)"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for name, means in result.means().items():
        distance, percent = means["hausdorff95_mm"], means["abs_volume_difference_percent"]
        table.add_row(
            name, str(means["cases"]), f"{means['dice']:.3f}",
            "–" if distance is None else f"{distance:.2f}",
            "–" if percent is None else f"{percent:.1f}",
        )  # fmt: skip
    stdout.print(table)
    if result.unmatched:
        stdout.print(f"[yellow]without a counterpart:[/yellow] {', '.join(result.unmatched)}")
    if output is not None:
        files = result.write(output, overwrite=overwrite)
        stdout.print(f"wrote {', '.join(str(f) for f in files)}")
