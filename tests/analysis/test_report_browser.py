"""The analysis report as a person reads it: Chromium at 1,280 px shows it without horizontal
scrolling, lesions numbered in the order listed (largest first), each picture marking its own
lesion, one legend per picture, and the organ volume behind the burden stated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from radpipe.catalog.patients import analysis_inputs
from radpipe.export.report import analyse_to_reports, lesion_pictures

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def report(phantom_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    reports, paths = analyse_to_reports(analysis_inputs(phantom_study.folder), out)
    return reports[0], paths


def test_lesions_are_numbered_in_the_order_listed(report):
    patient, paths = report
    volumes = [lesion.volume_ml for lesion in patient.lesions]
    assert [lesion.lesion_id for lesion in patient.lesions] == list(range(1, len(volumes) + 1))
    assert volumes == sorted(volumes, reverse=True)
    document = json.loads(paths["json"].read_text())
    row = document["patients"][0]
    liver = next(o for o in row["organs"] if o["name"] == "liver")
    # the burden's organ includes the tumours inside it: stated, and at least the mask's volume
    assert row["reference_organ_volume_ml"] >= liver["volume_ml"]
    assert row["tumour_burden_percent"] == pytest.approx(
        100 * row["total_tumour_volume_ml"] / row["reference_organ_volume_ml"], rel=1e-3
    )


def test_each_picture_marks_its_own_lesion(phantom_study):
    (_, image, masks), *_ = list(analysis_inputs(phantom_study.folder))
    from radpipe.analysis import analyse_masks

    lesions = analyse_masks("p", image, masks).lesions
    plain = lesion_pictures(image, masks, lesions[:1])[0][1]
    assert plain.shape[2] == 3
    from radpipe.export.report import _lesion_voxels

    voxels = _lesion_voxels(masks, lesions[0], image.spatial_shape)
    assert int(voxels.sum()) == lesions[0].voxels


def test_the_report_reads_at_1280_pixels_in_chromium(report, chromium):
    _, paths = report
    tab = chromium.new_page(viewport={"width": 1280, "height": 900})
    tab.goto(paths["html"].resolve().as_uri())
    widths = tab.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    headers = tab.evaluate("Array.from(document.querySelectorAll('h3')).map(h => h.textContent)")
    folded = tab.evaluate("document.querySelectorAll('details:not([open])').length")
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "report-1280.png"), full_page=False)
    assert widths[0] <= widths[1] <= 1280, widths  # no horizontal scrolling
    assert "Lesions (largest first)" in headers
    assert folded >= 1  # the full measurements are folded away
