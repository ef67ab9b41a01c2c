"""Analysis reports: lesions.csv, patients.csv, report.json and a self-contained report.html
with a picture through each lesion, the tables, cohort statistics and a volume histogram."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.analysis import PatientReport, cohort_summary
from radpipe.io.atomic import atomic_path

#: Pictures per patient in the HTML report (the largest lesions first).
MAX_PICTURES = 8


def _png_data_uri(image: NDArray[np.uint8]) -> str:
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


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    with atomic_path(path, overwrite=True) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or ["patient"])
        writer.writeheader()
        writer.writerows(rows)


def write_reports(
    reports: list[PatientReport],
    folder: str | Path,
    *,
    pictures: dict[str, list[tuple[str, NDArray[np.uint8]]]] | None = None,
) -> dict[str, Path]:
    """Write the four report files into ``folder`` (each atomically).

    Parameters
    ----------
    reports : one PatientReport per patient (patients already pseudonymised)
    folder : output folder (created)
    pictures : patient → [(caption, RGB image)], shown in the HTML report

    Returns
    -------
    dict of kind → path (``lesions``, ``patients``, ``json``, ``html``)
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    lesion_rows = [
        {"patient": report.patient, **lesion.row()}
        for report in reports
        for lesion in report.lesions + report.small_lesions
    ]
    patient_rows = [report.row() for report in reports]
    summary = cohort_summary(reports)
    paths = {
        "lesions": target / "lesions.csv",
        "patients": target / "patients.csv",
        "json": target / "report.json",
        "html": target / "report.html",
    }
    _write_csv(paths["lesions"], lesion_rows)
    _write_csv(paths["patients"], patient_rows)
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
    with atomic_path(paths["json"], overwrite=True) as temporary:
        temporary.write_text(json.dumps(document, indent=2, default=float))
    sections = []
    for report in reports:
        figures = "".join(
            f'<figure><img src="{_png_data_uri(image)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            for caption, image in (pictures or {}).get(report.patient, [])[:MAX_PICTURES]
        )
        lesions = [
            {k: v for k, v in lesion.row().items() if not k.startswith("hu_p")}
            for lesion in report.lesions
        ]
        small = [lesion.row() for lesion in report.small_lesions]
        warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
        sections.append(
            f"<section><h2>{html.escape(report.patient)}</h2>{_table([report.row()])}"
            f"<h3>Lesions</h3>{_table(lesions)}"
            + (f"<h3>Small components (possible noise)</h3>{_table(small)}" if small else "")
            + (f"<ul class=warn>{warnings}</ul>" if warnings else "")
            + f"<div class=figs>{figures}</div></section>"
        )
    histogram = _histogram([lesion.volume_ml for report in reports for lesion in report.lesions])
    cohort_rows = [
        {"measure": name, **values} for name, values in summary.items() if isinstance(values, dict)
    ]
    style = (
        "body{font-family:sans-serif;margin:2em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px;text-align:right}"
        "th{background:#eee}figure{display:inline-block;margin:4px}img{max-width:100%}"
        ".warn{color:#a60}"
    )
    histogram_html = f'<img src="{histogram}" alt="lesion volumes">' if histogram else ""
    page = (
        '<!doctype html><html><head><meta charset="utf-8"><title>radpipe analysis</title>'
        f"<style>{style}</style></head><body><h1>Organ and tumour analysis</h1>"
        f"<p>{summary['patients']} patient(s). Patient identifiers are pseudonymised.</p>"
        f"<h2>Cohort</h2>{_table(cohort_rows)}{histogram_html}{''.join(sections)}</body></html>"
    )
    with atomic_path(paths["html"], overwrite=True) as temporary:
        temporary.write_text(page)
    return paths
