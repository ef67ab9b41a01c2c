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
    mirror: bool = False,
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
    result = segment(volume, loaded, probabilities=wanted, mirror=mirror)
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


#: A process's loaded model, so each worker reads the weights once.
_LOADED: dict[tuple[str, str], object] = {}


def _segment_entry(
    job: tuple[str, str, str, str, str, bool],
) -> tuple[str, str | None, dict[str, int]]:
    """Segment one catalog series into ``target`` (runs in workers, one model per process)."""
    from radpipe.catalog.store import open_catalog
    from radpipe.errors import RadpipeError
    from radpipe.io import save
    from radpipe.models.inference import Model, load_model, segment

    catalog_path, key, target, model_folder, device, mirror = job
    try:
        model = _LOADED.get((model_folder, device))
        if model is None:
            import torch

            from radpipe.parallel import default_workers

            if len(_LOADED) == 0 and default_workers() > 1:
                torch.set_num_threads(1)  # one thread per worker process: no oversubscription
            model = _LOADED[(model_folder, device)] = load_model(model_folder, device=device)
        assert isinstance(model, Model)
        with open_catalog(catalog_path) as catalog:
            (entry,) = [e for e in catalog.series() if e.key == key]
            volume = catalog.load(entry, on_duplicate="first")
        result = segment(volume, model, mirror=mirror)
        save(result.labels, target)
    except RadpipeError as exc:
        return target, str(exc), {}
    counts = {
        name: int((result.labels.array == value).sum())
        for value, name in result.labels.labels.items()
    }
    return target, None, counts


def segment_tree(
    root: str | Path,
    folder: str | Path,
    *,
    model: str | Path,
    device: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: object = None,
    mirror: bool = False,
) -> tuple[list[Path], list[tuple[str, str]], dict[str, Path]]:
    """Segment every 3-D image series under ``root`` (a dataset root, zips included) into
    ``folder`` as ``<patient>_<NNN>.nii.gz`` label maps (patients pseudonymised), series in
    parallel: local processes, or a Dask cluster with ``scheduler``; ``mirror`` adds
    test-time mirroring (:func:`radpipe.models.segment`).

    Returns
    -------
    written label maps, (series, reason) for those that could not be segmented, and the
    label map of each series UID

    Raises
    ------
    ModelError
        If ``model`` is not a model folder.
    ReadError
        If ``root`` holds no 3-D image series.
    """
    from radpipe.catalog.store import scan
    from radpipe.errors import ReadError
    from radpipe.io.atomic import atomic_folder
    from radpipe.models.card import read_card
    from radpipe.parallel import run_map, work_folder

    read_card(model)  # a bad model folder fails before any image is read
    written: list[Path] = []
    problems: list[tuple[str, str]] = []
    by_series: dict[str, Path] = {}
    target = Path(folder)
    with work_folder(folder, scheduler) as work:
        catalog_path = Path(work) / "catalog.sqlite"
        catalog, _ = scan(root, catalog_path)
        with catalog:
            entries = [e for e in catalog.series(role="image") if e.shape and len(e.shape) == 3]
        if not entries:
            raise ReadError(f"{root}: no 3-D image series to segment")
        with atomic_folder(
            target, overwrite=overwrite, input_folders=[str(root).split("::")[0]]
        ) as staging:
            jobs = [
                (str(catalog_path), entry.key,
                 str(staging / f"{entry.patient}_{number:03d}.nii.gz"),
                 str(Path(model).resolve()), device, mirror)
                for number, entry in enumerate(entries, start=1)
            ]  # fmt: skip
            series_of = {job[2]: entry.series_uid for job, entry in zip(jobs, entries, strict=True)}
            for path, problem, _ in run_map(
                _segment_entry, jobs, workers=workers, scheduler=scheduler, chunksize=1
            ):
                name = Path(path).name
                if problem is None:
                    written.append(target / name)
                    if series_of.get(path):
                        by_series[str(series_of[path])] = target / name
                else:
                    problems.append((name, problem))
                if callable(progress):
                    progress(1)
    return written, problems, by_series
