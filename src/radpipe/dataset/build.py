"""Building a dataset: patients (images + masks from any source) preprocessed in parallel,
cut into 2-D slices or kept as 3-D volumes, checked, and written by one writer."""

from __future__ import annotations

import configparser
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from radpipe.dataset.labels import (
    MergeRule,
    derive_label_table,
    merge_masks,
    paint_labels,
    parse_label_table,
    parse_merge_rules,
    table_text,
)
from radpipe.dataset.schema import DatasetWriter, Sample
from radpipe.errors import DatasetError, FormatError, RadpipeError, RadpipeWarning
from radpipe.volume import LabelMap, Volume

#: A mask covering more than this fraction of its sample is rejected as implausible.
MAX_MASK_FRACTION = 0.5


@dataclass
class BuildOptions:
    """Everything a build can be told (CLI flags, or a TOML / INI config)."""

    mode: str = "2d"
    spacing: list[float] | None = None
    size: list[int] | None = None
    normalization: str = "none"
    window: str | None = None
    labelled_only: bool = False
    max_mask_fraction: float = MAX_MASK_FRACTION
    keep_phi: bool = False
    compression: str | None = None
    on_duplicate: str = "error"
    labels: dict[int, str] | None = None
    merge: list[str] = field(default_factory=list)
    keep_numbered: bool = False
    orient: str | None = None
    """Reorient every patient to this code (``LPS``, ``RAS``, …) first: samples then share one
    orientation whatever each series' storage order (a model trained on them needs it)."""

    def settings(self) -> dict[str, Any]:
        """What goes in the file's ``preprocessing`` attribute (the label table has its own)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("keep_phi", "labels")}

    def merge_rules(self) -> list[MergeRule]:
        """The parsed ``merge`` rules."""
        return parse_merge_rules(self.merge)


def load_config(path: str | Path) -> dict[str, Any]:
    """Options from a TOML file (``[dataset]`` table or top level) or an INI file (any section).

    Raises
    ------
    FormatError
        If the file cannot be parsed.
    """
    source = Path(path)
    try:
        if source.suffix.lower() == ".toml":
            document = tomllib.loads(source.read_text())
            table = document.get("dataset", document)
            return {str(k).replace("-", "_"): v for k, v in table.items()}
        parser = configparser.ConfigParser()
        parser.read_string(source.read_text())
        values: dict[str, Any] = {}
        for section in parser.sections():
            for key, value in parser.items(section):
                values[key.replace("-", "_")] = value
        return values
    except (tomllib.TOMLDecodeError, configparser.Error, OSError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise FormatError(f"{source}: cannot read the config ({reason})") from None


@dataclass
class PatientJob:
    """Where one patient's data is: a Sunnybrook pair or a catalog patient."""

    patient: str
    kind: str
    sources: tuple[str, ...]
    options: BuildOptions
    label_names: dict[int, str] = field(default_factory=dict)


@dataclass
class PatientResult:
    """Samples and rejections of one patient; ``label_names`` is the numbering its masks carry
    (the dataset's table when one was fixed, else the patient's own sorted names), and
    ``left_out`` the classes not in a fixed table."""

    samples: list[Sample]
    rejected: list[tuple[str, int, str]]
    error: str | None = None
    label_names: dict[int, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    patient: str = ""


def _labels_for(
    masks: dict[str, np.ndarray], affine: np.ndarray, job: PatientJob
) -> tuple[LabelMap, list[str]]:
    """The patient's masks merged by class and painted with the job's fixed table, or with the
    patient's own sorted numbering when the dataset's table is derived at the end."""
    options = job.options
    merged = merge_masks(masks, options.merge_rules(), keep_numbered=options.keep_numbered)
    table = job.label_names or derive_label_table(merged)
    values = {name: value for value, name in table.items()}
    left_out = sorted(name for name in merged if name not in values)
    return LabelMap(paint_labels(merged, values), affine, labels=table), left_out


def _check(
    sample: Sample, inside: np.ndarray, options: BuildOptions, contoured: bool
) -> str | None:
    mask = sample.mask != 0
    if (mask & ~inside).any():
        return "mask extends outside the image"
    if mask.mean() > options.max_mask_fraction:
        return (
            f"mask covers {mask.mean():.0%} of the sample (limit {options.max_mask_fraction:.0%})"
        )
    if contoured and not mask.any():
        return "a contour exists but the mask is empty"
    return None


def _samples_from_volume(
    patient: str,
    series: str,
    image: Volume,
    labels: LabelMap,
    options: BuildOptions,
    contoured_slices: set[int] | None = None,
) -> PatientResult:
    """Preprocess one image + label map and cut it into samples with sanity checks."""
    from radpipe.preprocess import pad_or_crop, preprocess
    from radpipe.windowing import parse_window

    window = parse_window(options.window) if options.window else None
    inside_volume = LabelMap(np.ones(image.spatial_shape, np.uint8), image.affine)
    spacing = None
    if options.spacing:
        spacing = (
            options.spacing
            if len(options.spacing) == 3
            else [image.spacing[0], *options.spacing[-2:]]
        )
    processed, mask = preprocess(
        image,
        labels=labels,
        spacing=spacing,
        normalization=options.normalization,
        window=window,
        orient=options.orient,
    )
    assert mask is not None
    inside = inside_volume
    if spacing is not None or options.orient:
        from radpipe.preprocess import resample

        inside = resample(inside_volume, reference=processed)
    if options.size:
        size = (
            options.size
            if len(options.size) == 3
            else [processed.spatial_shape[0], *options.size[-2:]]
        )
        processed = pad_or_crop(processed, size)
        mask = pad_or_crop(mask, size)
        inside = pad_or_crop(inside, size)
    result = PatientResult([], [])
    original_slices = image.spatial_shape[0]
    if options.mode == "3d":
        sample = Sample(
            image=processed.array, mask=mask.array.astype(np.uint8), patient=patient, series=series,
            slice_index=-1, position_mm=processed.origin, spacing_mm=processed.spacing,
            has_mask=bool(mask.array.any()),
        )  # fmt: skip
        reason = _check(sample, inside.array != 0, options, contoured=bool(contoured_slices))
        (result.rejected.append((patient, -1, reason)) if reason else result.samples.append(sample))
        return result
    for k in range(processed.spatial_shape[0]):
        slice_mask = mask.array[k].astype(np.uint8)
        has_mask = bool(slice_mask.any())
        source_slice = k if processed.spatial_shape[0] == original_slices else -1
        contoured = contoured_slices is not None and source_slice in contoured_slices
        if options.labelled_only and not (has_mask or contoured):
            continue
        sample = Sample(
            image=processed.array[k], mask=slice_mask, patient=patient, series=series,
            slice_index=k, position_mm=tuple(float(v) for v in processed.index_to_world([k, 0, 0])),  # type: ignore[arg-type]
            spacing_mm=processed.spacing, has_mask=has_mask or contoured,
        )  # fmt: skip
        reason = _check(sample, inside.array[k] != 0, options, contoured)
        if reason:
            result.rejected.append((patient, k, reason))
        else:
            result.samples.append(sample)
    return result


def run_job(job: PatientJob) -> PatientResult:
    """Process one patient (module-level: runs in worker processes and on Dask)."""
    import warnings

    try:
        with warnings.catch_warnings():
            # pydicom's value-format complaints (they can quote header values)
            warnings.filterwarnings("ignore", category=UserWarning, module="pydicom")
            result = _sunnybrook_patient(job) if job.kind == "sunnybrook" else _catalog_patient(job)
    except RadpipeError as exc:
        return PatientResult([], [], error=f"{job.patient}: {exc}", patient=job.patient)
    result.patient = job.patient
    return result


def _sunnybrook_patient(job: PatientJob) -> PatientResult:
    from radpipe.io.contours import sunnybrook_masks
    from radpipe.privacy import pseudonym

    image_folder, contour_folder = job.sources
    patient = job.patient
    combined = PatientResult([], [])
    for name, (image, masks) in sunnybrook_masks(image_folder, contour_folder).items():
        chosen: dict[str, np.ndarray] = {
            n: masks.masks[n] for n in ("endocardium", "myocardium") if n in masks.masks
        }
        if not chosen:
            continue
        label_map, left_out = _labels_for(chosen, image.affine, job)
        combined.label_names = dict(label_map.labels)
        combined.left_out = sorted(set(combined.left_out) | set(left_out))
        series = image.meta.series_uid or name
        if not job.options.keep_phi and image.meta.patient_id:
            patient = pseudonym(image.meta.patient_id)
        part = _samples_from_volume(
            patient, series, image, label_map, job.options, contoured_slices={0}
        )
        for sample in part.samples:
            sample.slice_index = int(Path(name).stem)
        combined.samples.extend(part.samples)
        combined.rejected.extend((p, int(Path(name).stem), r) for p, _, r in part.rejected)
    return combined


def _catalog_patient(job: PatientJob) -> PatientResult:
    from radpipe.catalog.patients import load_catalog_patient
    from radpipe.catalog.store import open_catalog

    (catalog_path,) = job.sources
    with open_catalog(catalog_path) as catalog:
        found = load_catalog_patient(catalog, job.patient, on_duplicate=job.options.on_duplicate)
        if found is not None:
            image, masks = found
            labels, left_out = _labels_for(masks.masks, image.affine, job)
            result = _samples_from_volume(
                job.patient, image.meta.series_uid or "", image, labels, job.options
            )
            result.label_names = dict(labels.labels)
            result.left_out = left_out
            return result
    raise DatasetError(f"{job.patient}: no image with masks found in the catalog")


def sunnybrook_jobs(data_directory: str | Path, options: BuildOptions) -> list[PatientJob]:
    """One job per ``link.csv`` row of a Sunnybrook-layout folder."""
    import csv

    root = Path(data_directory)
    link = root / "link.csv"
    if not link.is_file():
        raise DatasetError(f"{root}: no link.csv (expected dicoms/, contourfiles/ and link.csv)")
    jobs = []
    try:
        with open(link, newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
    except (OSError, csv.Error) as exc:
        raise DatasetError(f"{link}: cannot read the link table ({exc})") from None
    for row in rows:
        if len(row) < 2 or row[0].strip().lower() in ("patient_id", "patient"):
            continue
        images, contours = row[0].strip(), row[1].strip()
        missing = [
            folder
            for folder in (root / "dicoms" / images, root / "contourfiles" / contours)
            if not images or not contours or not folder.is_dir()
        ]
        if missing:  # a real download often lacks some patients
            warnings.warn(
                RadpipeWarning(f"{link}: patient {images!r} skipped, no folder {missing[0]}"),
                stacklevel=2,
            )
            continue
        jobs.append(
            PatientJob(
                patient=images,
                kind="sunnybrook",
                sources=(str(root / "dicoms" / images), str(root / "contourfiles" / contours)),
                options=options,
            )
        )
    if not jobs:
        raise DatasetError(f"{link}: lists no patient whose image and contour folders exist")
    return jobs


class BuildSummary(NamedTuple):
    """What :func:`build` did."""

    path: Path
    written: int
    """Samples written by this run."""
    rejected: list[dict[str, Any]]
    """Rejected samples (all runs, for an appended file)."""
    errors: list[str]
    """Patients skipped, one line each."""
    label_names: dict[int, str]
    """The dataset's label table."""
    left_out: dict[str, int]
    """Mask classes not in a given table, with the number of patients that had them."""


def build(
    jobs: list[PatientJob],
    output: str | Path,
    *,
    options: BuildOptions,
    label_names: dict[int, str] | None = None,
    append: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Any = None,
) -> BuildSummary:
    """Process patients in parallel and write them with one writer.

    The label table is ``options.labels`` if given, else ``label_names`` (a layout's fixed
    table), else the table of the file appended to, else derived once from every patient's
    (merged) mask names in sorted order. Classes outside a given table are left out; appending
    patients whose classes the file's table lacks is refused.

    Raises
    ------
    DatasetError
        If no sample is written, the tables of a file and an append disagree, or appended
        patients hold classes the file's table lacks.
    """
    from radpipe.parallel import run_map

    given = dict(options.labels or label_names or {})
    writer = DatasetWriter(
        output, mode=options.mode, preprocessing=options.settings(), label_names=given,
        append=append, overwrite=overwrite, compression=options.compression,
    )  # fmt: skip
    fixed = given or writer.label_names
    strict = not given and bool(writer.label_names)  # appending without a table of one's own
    for job in jobs:
        job.label_names = fixed
    written = 0
    errors: list[str] = []
    left_out: dict[str, int] = {}
    try:
        for result in run_map(run_job, jobs, workers=workers, scheduler=scheduler, chunksize=1):
            if result.error:
                errors.append(result.error)
            if strict and result.left_out:
                raise DatasetError(
                    f"{writer.path}: its label table {table_text(fixed)} has no "
                    f"{', '.join(result.left_out)} (patient {_patient_of(result)}); build a new "
                    "file, or map them with --merge 'PATTERN=NAME' or --labels"
                )
            for name in result.left_out:
                left_out[name] = left_out.get(name, 0) + 1
            writer.write(result.samples, labels=result.label_names or None)
            written += len(result.samples)
            for patient, index, reason in result.rejected:
                writer.reject(patient, index, reason)
            if progress is not None:
                progress(1)
        if written == 0 and not append:
            raise DatasetError(
                "no sample was written" + (f": {errors[0]}" if errors else "; check the inputs")
            )
        path = writer.close()
    except BaseException:
        writer.abort()
        raise
    return BuildSummary(path, written, writer.rejected, errors, writer.label_names, left_out)


def _patient_of(result: PatientResult) -> str:
    return result.patient or (result.samples[0].patient if result.samples else "?")


def _numbers(value: Any, *, name: str) -> list[float] | None:
    """A list of numbers from ``1.0,2.0`` text or a list (a config value), or None."""
    if value in (None, "", []):
        return None
    parts = value if isinstance(value, list | tuple) else str(value).split(",")
    try:
        return [float(v) for v in parts]
    except (TypeError, ValueError):
        raise DatasetError(f"{name}: expected numbers separated by commas, got {value!r}") from None


def build_options(settings: dict[str, Any] | None = None, **given: Any) -> BuildOptions:
    """Options from a config file's ``settings`` with explicit values (not None) taking
    precedence, as the CLI merges ``--config`` with its flags.

    Raises
    ------
    DatasetError
        For a mode other than 2d / 3d or values that are not numbers.
    """
    merged = dict(settings or {})
    merged.update({key: value for key, value in given.items() if value is not None})
    spacing = _numbers(merged.get("spacing"), name="spacing")
    size = _numbers(merged.get("size"), name="size")
    labelled = merged.get("labelled_only", False)
    labels = merged.get("labels")
    if isinstance(labels, dict):  # a TOML table {liver = 1, tumor = 2}
        labels = ",".join(f"{name}={value}" for name, value in labels.items())
    merge = merged.get("merge") or []
    merge = [merge] if isinstance(merge, str) else [str(rule) for rule in merge]
    keep_numbered = merged.get("keep_numbered", False)
    options = BuildOptions(
        mode=str(merged.get("mode", "2d")),
        spacing=spacing,
        size=None if size is None else [int(v) for v in size],
        normalization=str(merged.get("normalization", "none")),
        window=merged.get("window"),
        labelled_only=labelled if isinstance(labelled, bool)
        else str(labelled).lower() in ("1", "true", "yes"),
        keep_phi=bool(merged.get("keep_phi", False)),
        on_duplicate=str(merged.get("on_duplicate", "error")),
        labels=parse_label_table(str(labels)) if labels else None,
        orient=str(merged["orient"]).upper() if merged.get("orient") else None,
        merge=merge,
        keep_numbered=keep_numbered if isinstance(keep_numbered, bool)
        else str(keep_numbered).lower() in ("1", "true", "yes"),
    )  # fmt: skip
    options.merge_rules()  # bad rules fail here, before any patient is read
    if options.mode not in ("2d", "3d"):
        raise DatasetError(f"--mode must be 2d or 3d, got {options.mode!r}")
    return options


def plan_build(
    options: BuildOptions,
    work_dir: str | Path,
    *,
    source: str | Path | None = None,
    data_directory: str | Path | None = None,
) -> tuple[list[PatientJob], dict[int, str]]:
    """The jobs of a build and the dataset's label names.

    ``data_directory`` is a Sunnybrook-layout folder (``link.csv``): labels endocardium /
    myocardium, and unless given, the in-plane spacing of the first image and 256×256 slices.
    ``source`` is any folder, zip or dataset root, scanned into a catalog in ``work_dir``; each
    patient with an image and masks becomes a job.

    Raises
    ------
    DatasetError
        If neither is given, or no patient has an image with masks.
    """
    if data_directory is not None:
        jobs = sunnybrook_jobs(data_directory, options)
        if options.spacing is None:
            from radpipe.io import load

            files = sorted(p for p in Path(jobs[0].sources[0]).iterdir() if p.is_file())
            if not files:
                raise DatasetError(f"{jobs[0].sources[0]}: no image files")
            first = files[0]
            spacing = load(first).spacing
            options.spacing = [spacing[1], spacing[2]]
        if options.size is None:
            options.size = [256, 256]
        return jobs, {1: "endocardium", 2: "myocardium"}
    if source is None:
        raise DatasetError("give a folder, or --data-directory for the Sunnybrook layout")
    from radpipe.catalog.patients import annotated_patients
    from radpipe.catalog.store import scan

    catalog_path = Path(work_dir) / "catalog.sqlite"
    catalog, _ = scan(source, catalog_path, keep_phi=options.keep_phi)
    with catalog:
        patients = annotated_patients(catalog)
    if not patients:
        raise DatasetError(f"{source}: no patient with an image and masks found")
    return [PatientJob(p, "catalog", (str(catalog_path),), options) for p in patients], {}
