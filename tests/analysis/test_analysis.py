"""Lesion and organ measurements against known truth (phantom) and pyradiomics baselines."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import radpipe
from radpipe.analysis import analyse_patient, find_lesions, intensity
from radpipe.cli.main import main
from radpipe.phantom import make_phantom


def test_phantom_tumours_volumes_and_diameters():
    phantom = make_phantom(shape=(80, 160, 160), spacing=(1.0, 1.0, 1.0), tumours=3, seed=4)
    labels = phantom.labels.array
    report = analyse_patient(
        "p",
        phantom.ct,
        organs={"liver": labels == 1, "spleen": labels == 3},
        tumours={"tumor": labels == 2},
    )
    assert report.tumour_count == 3 and report.reference_organ == "liver"
    truth = sorted(phantom.tumours, key=lambda t: -t.voxels)
    for lesion, tumour in zip(report.lesions, truth, strict=True):
        analytic_ml = 4 / 3 * np.pi * tumour.radius_mm**3 / 1000
        assert lesion.voxels == tumour.voxels
        assert lesion.volume_ml == pytest.approx(analytic_ml, rel=0.01)
        assert abs(lesion.longest_axial_diameter_mm - 2 * tumour.radius_mm) <= 1.0
        assert abs(lesion.longest_3d_diameter_mm - 2 * tumour.radius_mm) <= 1.0
        assert lesion.sphericity == pytest.approx(1.0, abs=0.12)
        assert lesion.organ == "liver" and lesion.fraction_in_organ == 1.0
        assert np.allclose(lesion.centroid_mm, tumour.centre_mm, atol=0.5)
        assert lesion.intensity is not None and abs(lesion.intensity.mean - 25) < 2
    organ_ml = np.isin(labels, (1, 2)).sum() / 1000
    assert report.tumour_burden_percent == pytest.approx(
        100 * report.total_tumour_volume_ml / organ_ml
    )


def test_small_components_listed_apart_and_connectivity():
    image = radpipe.Volume(np.zeros((10, 20, 20), np.int16), np.eye(4))
    mask = np.zeros((10, 20, 20), bool)
    mask[2:6, 2:8, 2:8] = True  # 144 mm³ = 0.144 mL
    mask[8, 15, 15] = True  # one voxel
    mask[7, 14, 14] = True  # diagonal neighbour: joined at 26, apart at 6
    kept, small = find_lesions(image, {"tumor": mask}, min_volume_ml=0.1)
    assert [lesion.voxels for lesion in kept] == [144] and [lesion.voxels for lesion in small] == [
        2
    ]
    _, small6 = find_lesions(image, {"tumor": mask}, connectivity=6, min_volume_ml=0.1)
    assert len(small6) == 2


@pytest.mark.parametrize("case", ["brain1", "breast1"])
def test_pyradiomics_baseline_volume_and_first_order(data_dir, case):
    folder = data_dir / "pyradiomics/data"
    image = radpipe.load(folder / f"{case}_image.nrrd")
    labels = radpipe.load(folder / f"{case}_label.nrrd")
    baseline = {}
    for name in ("firstorder", "shape"):
        with open(folder / "baseline" / f"baseline_{name}.csv") as handle:
            rows = list(csv.reader(handle))
        column = rows[0].index(case)
        baseline.update({row[0]: row[column] for row in rows[1:]})
    mask = labels.array == 1
    assert mask.sum() * image.voxel_volume_mm3 == pytest.approx(
        float(baseline["original_shape_VoxelVolume"]), rel=1e-3
    )
    stats = intensity(image.array[mask])
    assert stats.mean == pytest.approx(float(baseline["original_firstorder_Mean"]), rel=1e-3)
    assert stats.min == pytest.approx(float(baseline["original_firstorder_Minimum"]), rel=1e-3)
    assert stats.max == pytest.approx(float(baseline["original_firstorder_Maximum"]), rel=1e-3)


def test_analyze_cli_on_phantom_studies(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo"), "--patients", "2"]) == 0
    capsys.readouterr()
    assert main(["analyze", str(tmp_path / "demo"), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "lesion(s)" in out and "DEMO-001" not in out
    document = json.loads((tmp_path / "report" / "report.json").read_text())
    assert document["cohort"]["patients"] == 2
    with open(tmp_path / "report" / "lesions.csv") as handle:
        lesions = list(csv.DictReader(handle))
    assert len(lesions) == 1 + 2  # patient 1 has one tumour, patient 2 two
    html = (tmp_path / "report" / "report.html").read_text()
    assert html.count("<figure>") == 3 and "data:image/png;base64," in html
    assert "DEMO-00" not in html


def test_analyze_cli_with_image_and_masks(phantom_study, tmp_path):
    series, labels = str(phantom_study.series_folder), str(phantom_study.labels_path)
    options = [
        "--labels",
        "1=liver,2=tumor,3=spleen",
        "--out",
        str(tmp_path / "r"),
        "--no-pictures",
    ]
    code = main(["analyze", "--image", series, "--mask", labels, *options])
    assert code == 0
    with open(tmp_path / "r" / "patients.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert int(row["tumour_count"]) == len(phantom_study.phantom.tumours)
    assert float(row["total_tumour_volume_ml"]) == pytest.approx(
        sum(t.volume_ml for t in phantom_study.phantom.tumours), rel=1e-6
    )


def test_masks_convert_to_nifti_and_seg(data_dir, tmp_path):
    folder = data_dir / "dcmqi/data/segmentations"
    assert main(["masks", "convert", str(folder / "liver.dcm"), str(tmp_path / "liver.nii.gz"),
                 "--image", str(folder / "ct-3slice")]) == 0  # fmt: skip
    liver = radpipe.load(tmp_path / "liver.nii.gz")
    assert int((liver.array != 0).sum()) == 107_098
    assert main(["masks", "convert", str(tmp_path / "liver.nii.gz"), str(tmp_path / "liver.dcm"),
                 "--image", str(folder / "ct-3slice"), "--keep-phi"]) == 0  # fmt: skip
    from radpipe.io.seg import read_seg

    assert read_seg(tmp_path / "liver.dcm", radpipe.load(folder / "ct-3slice")).voxel_counts() == {
        "Liver": 107_098
    }
    # by default the SEG references the de-identified images: read it against those
    assert main(["masks", "convert", str(tmp_path / "liver.nii.gz"), str(tmp_path / "anon.dcm"),
                 "--image", str(folder / "ct-3slice")]) == 0  # fmt: skip
    assert main(["deidentify", str(folder / "ct-3slice"), str(tmp_path / "anon-ct")]) == 0
    anonymous = radpipe.load(tmp_path / "anon-ct")
    assert read_seg(tmp_path / "anon.dcm", anonymous).voxel_counts() == {"Liver": 107_098}


def test_histogram_statistics_equal_numpys():
    from radpipe.analysis import _integer_intensity

    values = np.random.default_rng(3).normal(40, 300, 300_001).astype(np.int16)
    fast = _integer_intensity(values)
    data = values.astype(np.float64)
    assert fast.mean == pytest.approx(data.mean()) and fast.std == pytest.approx(data.std())
    for name, value in fast.percentiles.items():
        assert value == pytest.approx(np.percentile(data, float(name[1:])), abs=1e-9)


def test_ircadb_tumour_folders_counted_each(tmp_path, capsys):
    from radpipe.phantom import write_ircadb_patient

    phantom = write_ircadb_patient(
        tmp_path / "3Dircadb1.1", patient_id="IRCAD-1", tumours=2, seed=3
    )
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "report"), "--no-pictures"]) == 0
    with open(tmp_path / "report" / "lesions.csv") as handle:
        lesions = list(csv.DictReader(handle))
    assert sorted(row["source"] for row in lesions) == ["livertumor01", "livertumor02"]
    assert all(row["organ"] == "liver" for row in lesions)
    del phantom


def test_an_existing_report_is_refused_by_api_and_cli(phantom_study, tmp_path, capsys):
    from radpipe.catalog.patients import analysis_inputs
    from radpipe.cli.main import main
    from radpipe.errors import OutputExistsError
    from radpipe.export.report import analyse_to_reports

    out = tmp_path / "report"
    reports, _ = analyse_to_reports(analysis_inputs(phantom_study.folder), out, pictures=False)
    assert reports[0].tumour_count == 3
    before = (out / "report.json").read_bytes()
    with pytest.raises(OutputExistsError, match="already holds a report"):
        analyse_to_reports(analysis_inputs(phantom_study.folder), out)
    assert main(["analyze", str(phantom_study.folder), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a report" in err
    assert (out / "report.json").read_bytes() == before
    assert main(["analyze", str(phantom_study.folder), "--out", str(out), "--overwrite"]) == 0


def test_duplicate_slices_follow_one_policy_in_every_command(phantom_study, tmp_path, capsys):
    """`load`, the catalog, `analyze` and `dataset build` refuse a duplicated slice by default
    and keep one with --on-duplicate first, printing the same warning line."""
    import shutil

    from radpipe.cli.main import main

    study = tmp_path / "study"
    shutil.copytree(phantom_study.folder, study)
    import pydicom
    from pydicom.uid import generate_uid

    dataset = pydicom.dcmread(sorted((study / "CT").glob("*.dcm"))[3])
    dataset.SOPInstanceUID = generate_uid()  # a second image at the same position
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.save_as(study / "CT" / "copy.dcm")
    for command in (
        ["convert", str(study / "CT"), str(tmp_path / "ct.nii.gz")],
        ["analyze", str(study), "--out", str(tmp_path / "report")],
        ["dataset", "build", str(study), "-o", str(tmp_path / "d.h5")],
    ):
        assert main(command) == 1, command
        err = capsys.readouterr().err
        assert "slice positions hold more than one image" in err and "--on-duplicate" in err
        assert main([*command, "--on-duplicate", "first"]) == 0, command
        err = capsys.readouterr().err
        assert "radpipe: warning:" in err and "1 duplicate images at 1 slice" in err
