"""Analysis reports: lesions.csv, patients.csv, report.json and a self-contained report.html
with a picture through each lesion, the tables, cohort statistics and a volume histogram."""

from __future__ import annotations

import base64
import contextlib
import csv
import html
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.analysis import Lesion, PatientReport, cohort_summary
from radpipe.io.atomic import atomic_path
from radpipe.masks import MaskSet
from radpipe.volume import Volume

#: Pictures per patient in the HTML report (the largest lesions first).
MAX_PICTURES = 8


def png_data_uri(image: NDArray[np.uint8] | str) -> str:
    """A picture as a ``data:`` URI for the HTML report (a URI given is returned as is, so
    workers can encode their pictures and send the text)."""
    if isinstance(image, str):
        return image
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _histogram(volumes: list[float]) -> str | None:
    if not volumes:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 2.6), dpi=100)
    axes.hist(volumes, bins=min(30, max(5, len(volumes))), color="#4477aa")
    axes.set_xlabel("lesion volume (mL)")
    axes.set_ylabel("lesions")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _lesion_summary(lesion: Lesion) -> dict[str, Any]:
    """The columns a reader needs first; everything else is in the folded details."""
    hu = lesion.intensity.mean if lesion.intensity is not None else None
    return {
        "lesion": lesion.lesion_id,
        "volume mL": lesion.volume_ml,
        "axial diameter mm": lesion.longest_axial_diameter_mm,
        "perpendicular mm": lesion.perpendicular_diameter_mm,
        "3-D diameter mm": lesion.longest_3d_diameter_mm,
        "mean HU": hu,
        "organ": lesion.organ,
        "source": lesion.source,
    }


def _patient_summary(report: PatientReport) -> dict[str, Any]:
    """One patient in a few columns: counts, volumes and the burden with its definition."""
    return {
        "lesions": report.tumour_count,
        "tumour volume mL": report.total_tumour_volume_ml,
        "largest mL": report.largest_lesion_ml,
        "reference organ": report.reference_organ,
        "reference organ volume mL": report.reference_organ_volume_ml,
        "burden %": report.tumour_burden_percent,
        "small components": len(report.small_lesions),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns or ["patient"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


REPORT_FILES = {
    "lesions": "lesions.csv",
    "patients": "patients.csv",
    "json": "report.json",
    "html": "report.html",
}


def check_report_folder(folder: Path, *, overwrite: bool) -> None:
    """Refuse a folder that already holds a report unless ``overwrite``.

    Raises
    ------
    OutputExistsError
        Naming the report files found.
    """
    from radpipe.errors import OutputExistsError

    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder}: is a file; the report needs a folder")
    existing = [name for name in REPORT_FILES.values() if (folder / name).exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{folder}: already holds a report ({', '.join(existing)}); pass overwrite=True / "
            "--overwrite to replace it, or choose another folder"
        )


def write_reports(
    reports: list[PatientReport],
    folder: str | Path,
    *,
    pictures: dict[str, list[tuple[str, NDArray[np.uint8] | str]]] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the four report files into ``folder`` (each atomically).

    Parameters
    ----------
    reports : one PatientReport per patient (patients already pseudonymised)
    folder : output folder (created)
    pictures : patient → [(caption, RGB image)], shown in the HTML report
    overwrite : replace report files already in ``folder`` (other files are never touched)

    Returns
    -------
    dict of kind → path (``lesions``, ``patients``, ``json``, ``html``)

    Raises
    ------
    OutputExistsError
        If a report file exists in ``folder`` and ``overwrite`` is False.
    """
    target = Path(folder)
    check_report_folder(target, overwrite=overwrite)
    from radpipe.io.atomic import make_parent

    make_parent(target / "report.json")
    lesion_rows = [
        {"patient": report.patient, **lesion.row()}
        for report in reports
        for lesion in report.lesions + report.small_lesions
    ]
    patient_rows = [report.row() for report in reports]
    summary = cohort_summary(reports)
    paths = {kind: target / name for kind, name in REPORT_FILES.items()}
    texts = {"lesions": _csv_text(lesion_rows), "patients": _csv_text(patient_rows)}
    document = {
        "cohort": summary,
        "patients": [
            {
                **report.row(),
                "organs": [asdict(organ) for organ in report.organs],
                "lesions": [asdict(lesion) for lesion in report.lesions],
                "small_lesions": [asdict(lesion) for lesion in report.small_lesions],
                "warnings": report.warnings,
            }
            for report in reports
        ],
    }
    texts["json"] = json.dumps(document, indent=2, default=float)
    sections = []
    for report in reports:
        figures = "".join(
            f'<figure><img src="{png_data_uri(image)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            for caption, image in (pictures or {}).get(report.patient, [])[:MAX_PICTURES]
        )
        lesions = [_lesion_summary(lesion) for lesion in report.lesions]
        details = [
            {k: v for k, v in lesion.row().items() if not k.startswith("hu_p")}
            for lesion in report.lesions + report.small_lesions
        ]
        small = [_lesion_summary(lesion) for lesion in report.small_lesions]
        warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
        sections.append(
            f"<section><h2>{html.escape(report.patient)}</h2>{_table([_patient_summary(report)])}"
            f"<h3>Lesions (largest first)</h3>{_table(lesions)}"
            + (f"<h3>Small components (possible noise)</h3>{_table(small)}" if small else "")
            + (f"<ul class=warn>{warnings}</ul>" if warnings else "")
            + f"<div class=figs>{figures}</div>"
            + "<details><summary>All measurements of each lesion and organ</summary>"
            f"<div class=wide>{_table(details)}{_table([report.row()])}</div></details></section>"
        )
    histogram = _histogram([lesion.volume_ml for report in reports for lesion in report.lesions])
    cohort_rows = [
        {"measure": name, **values} for name, values in summary.items() if isinstance(values, dict)
    ]
    style = (
        "body{font-family:sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;"
        "color:#222}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:right}"
        "th{background:#eee}figure{display:inline-block;margin:4px;max-width:100%}"
        "img{max-width:100%;height:auto}.warn{color:#a60}.wide{overflow-x:auto;max-width:100%}"
        "details{margin:.5em 0}summary{cursor:pointer;color:#246}"
    )
    histogram_html = f'<img src="{histogram}" alt="lesion volumes">' if histogram else ""
    definitions = (
        "<p>Organ volumes are the voxels of each organ mask. The tumour burden is total tumour "
        "volume ÷ reference-organ volume, where the reference organ includes the tumours inside "
        "it (holes a tumour leaves in the organ mask are filled): that volume is given as "
        "<i>reference organ volume</i>. Lesions are connected tumour components, numbered "
        "largest first; each picture marks its lesion in its own colour.</p>"
    )
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>radpipe analysis</title><style>{style}</style></head><body>"
        "<h1>Organ and tumour analysis</h1>"
        f"<p>{summary['patients']} patient(s). Patient identifiers are pseudonymised.</p>"
        f"{definitions}<h2>Cohort</h2><div class=wide>{_table(cohort_rows)}</div>"
        f"{histogram_html}{''.join(sections)}</body></html>"
    )
    texts["html"] = page
    # every file is written under a temporary name first, and all are renamed together: a
    # failed write (a full disk) leaves the earlier report whole, never a mix
    with contextlib.ExitStack() as stack:
        temporaries = {
            kind: stack.enter_context(atomic_path(paths[kind], overwrite=True)) for kind in paths
        }
        for kind, temporary in temporaries.items():
            temporary.write_text(
                texts[kind], newline="" if kind in ("lesions", "patients") else None
            )
    return paths


def lesion_pictures(
    image: Volume, masks: MaskSet, lesions: Sequence[Lesion], *, count: int = MAX_PICTURES
) -> list[tuple[str, NDArray[np.uint8]]]:
    """A captioned three-plane picture through the centre of each of the first ``count``
    lesions, with the masks outlined and the lesion itself in its own colour and legend entry."""
    from radpipe.render import canonical, three_plane

    labels = masks.to_labelmap()
    shown = canonical(image)
    mark = max(labels.labels, default=0) + 1
    pictures = []
    for lesion in list(lesions)[:count]:
        centre = (round(float(v)) for v in shown.world_to_index(lesion.centroid_mm))
        k, j, i = (min(max(v, 0), n - 1) for v, n in zip(centre, shown.spatial_shape, strict=True))
        marked = labels.array.copy()
        marked[_lesion_voxels(masks, lesion, labels.spatial_shape)] = mark
        named = labels.like(marked)
        named.labels = {**labels.labels, mark: f"lesion {lesion.lesion_id}"}
        picture = three_plane(image, point=(k, j, i), mask=named, mask_opacity=0.15)
        caption = (
            f"lesion {lesion.lesion_id}: {lesion.volume_ml:.2f} mL, "
            f"{lesion.longest_axial_diameter_mm:.1f} mm"
        )
        pictures.append((caption, picture))
    return pictures


def _lesion_voxels(
    masks: MaskSet, lesion: Lesion, shape: tuple[int, int, int]
) -> NDArray[np.bool_]:
    """The voxels of one lesion: the component of its source mask, inside its bounding box,
    that has its voxel count."""
    import cc3d

    found = np.zeros(shape, dtype=bool)
    source = masks.masks.get(lesion.source)
    if source is None:
        return found
    s0, s1, r0, r1, c0, c1 = lesion.bbox
    crop = source[s0:s1, r0:r1, c0:c1]
    components = cc3d.connected_components(crop.astype(np.uint8), connectivity=26)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    matching = np.flatnonzero(sizes == lesion.voxels)
    chosen = int(matching[0]) if matching.size else int(np.argmax(sizes))
    found[s0:s1, r0:r1, c0:c1] = components == chosen
    return found


def analyse_to_reports(
    inputs: Iterable[tuple[str, Volume, MaskSet]],
    folder: str | Path,
    *,
    reference_organ: str | None = None,
    connectivity: int = 26,
    min_volume_ml: float = 0.1,
    pictures: bool = True,
    overwrite: bool = False,
    on_patient: Callable[[PatientReport], None] | None = None,
    input_folders: Sequence[str | Path] = (),
    on_analysed: Callable[[PatientReport, Volume, MaskSet], None] | None = None,
) -> tuple[list[PatientReport], dict[str, Path]]:
    """Analyse each (patient, image, masks) and write the cohort's reports into ``folder``.

    Parameters
    ----------
    inputs : iterable of (patient, image, masks)
        E.g. :func:`radpipe.catalog.patients.analysis_inputs`; consumed one patient at a time.
    folder : output folder for lesions.csv, patients.csv, report.json and report.html
    reference_organ, connectivity, min_volume_ml
        See :func:`radpipe.analysis.analyse_patient`.
    pictures : a three-plane picture through each lesion in report.html
    overwrite : replace an earlier report in ``folder``; checked before any work is done
    on_patient : called with each patient's report as it is done (progress)
    on_analysed : called with each report, its image and masks while they are in memory (e.g.
        :func:`radpipe.export.sr.write_results` for DICOM SEG and SR)
    input_folders : folders the inputs were read from; the report folder may lie in one (a
        dataset root) but may not be one or hold one

    Returns
    -------
    (reports, paths)

    Examples
    --------
    >>> from radpipe.catalog.patients import analysis_inputs
    >>> reports, paths = analyse_to_reports(analysis_inputs("demo/p1"), "report")  # doctest: +SKIP
    """
    from radpipe.analysis import analyse_masks
    from radpipe.io.atomic import guard_output

    target = Path(folder)
    guard_output(target, input_folders=input_folders, inside_ok=True)
    check_report_folder(target, overwrite=overwrite)
    reports = []
    figures: dict[str, list[tuple[str, NDArray[np.uint8] | str]]] = {}
    for patient, image, masks in inputs:
        report = analyse_masks(
            patient, image, masks, reference_organ=reference_organ, connectivity=connectivity,
            min_volume_ml=min_volume_ml,
        )  # fmt: skip
        reports.append(report)
        if pictures:
            figures[patient] = list(lesion_pictures(image, masks, report.lesions))
        if on_analysed is not None:
            on_analysed(report, image, masks)
        if on_patient is not None:
            on_patient(report)
    paths = write_reports(reports, target, pictures=figures, overwrite=overwrite)
    return reports, paths
