"""Writing a model's segmentation of an image file: a label map (``.nii.gz``, ``.nrrd``, …) or
a DICOM SEG (``.dcm``, algorithm type AUTOMATIC, the model named) referencing the source
images, and a probability heatmap of one class; the outputs checked before any is written."""

from __future__ import annotations

from pathlib import Path

from radpipe.errors import FormatError, ModelError


def _class_value(names: dict[int, str], chosen: str | None) -> int:
    """The class of ``--probability-class`` (a value or a name; default the last class)."""
    foreground = {v: n for v, n in names.items() if v != 0}
    if chosen is None:
        return max(foreground)
    for value, name in foreground.items():
        if chosen == name or chosen == str(value):
            return value
    raise ModelError(
        f"--probability-class {chosen!r}: the model's classes are "
        + ", ".join(f"{v} {n}" for v, n in foreground.items())
    )


def segment_to_files(
    image: str | Path,
    output: str | Path,
    *,
    model: str | Path,
    probabilities: str | Path | None = None,
    probability_class: str | None = None,
    device: str = "auto",
    keep_phi: bool = False,
    overwrite: bool = False,
) -> list[str]:
    """Segment the image at ``image`` with the model folder ``model`` and write ``output``
    (by its ending) and, if asked, ``probabilities``; returns one line per file written.

    Raises
    ------
    FormatError
        For an output ending no writer knows, a SEG of an image that is not DICOM, or
        outputs that clash.
    ModelError
        For a folder that is not a model, or an image the model does not fit.
    """
    from radpipe.io import load, registry, save
    from radpipe.io.atomic import check_writable, guard_output, inputs_of
    from radpipe.models.inference import load_model, segment

    target = Path(output)
    as_seg = target.name.lower().endswith(".dcm")
    if not as_seg and not target.name.lower().endswith(registry.writable_suffixes()):
        raise FormatError(
            f"{target}: unknown output; use .dcm (DICOM SEG) or "
            + ", ".join(registry.writable_suffixes())
        )
    if probabilities is not None:
        heat_target = Path(probabilities)
        if heat_target.resolve() == target.resolve():
            raise FormatError(f"{heat_target}: the probability output is the label output")
        if not heat_target.name.lower().endswith(registry.writable_suffixes()):
            raise FormatError(
                f"{heat_target}: a probability heatmap is written as "
                + ", ".join(registry.writable_suffixes())
            )
        check_writable(heat_target, overwrite=overwrite)
    check_writable(target, overwrite=overwrite)
    loaded = load_model(model, device=device)
    wanted = (
        [_class_value(loaded.card.classes, probability_class)] if probabilities is not None else []
    )
    volume = load(image)
    sources = inputs_of(volume)
    guard_output(target, **sources)
    if as_seg and not getattr(volume.meta, "source_files", ()):
        raise FormatError(
            f"{image}: a DICOM SEG references DICOM images; this input is "
            f"{volume.meta.source_format or 'not DICOM'} — write a label map (.nii.gz) instead"
        )
    result = segment(volume, loaded, probabilities=wanted)
    lines = []
    counts = {
        name: int((result.labels.array == value).sum())
        for value, name in result.labels.labels.items()
    }
    found = ", ".join(f"{name} {count} voxels" for name, count in counts.items())
    if as_seg:
        from radpipe.export.seg import write_seg

        if not any(counts.values()):
            raise ModelError(f"{image}: the model found no {', '.join(counts)}; no SEG to write")
        write_seg(
            result.labels, list(volume.meta.source_files), target,
            algorithm=loaded.card.name, series_description=f"radpipe {loaded.card.name}",
            keep_phi=keep_phi, overwrite=overwrite,
        )  # fmt: skip
        lines.append(f"wrote {target} (DICOM SEG, AUTOMATIC, {loaded.card.name}): {found}")
    else:
        save(result.labels, target, overwrite=overwrite)
        lines.append(f"wrote {target}: {found}")
    for value, heatmap in result.probabilities.items():
        assert probabilities is not None
        save(heatmap, probabilities, overwrite=overwrite)
        lines.append(
            f"wrote {probabilities}: probability of {loaded.card.classes[value]} "
            f"(max {float(heatmap.array.max()):.3f})"
        )
    return lines
