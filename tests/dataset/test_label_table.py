"""One label table per dataset: patients with different mask sets (3D-IRCADb-style phantom
trees) get the same numbers for the same classes, whatever order they are processed in."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from radpipe.catalog.patients import annotated_patients
from radpipe.catalog.store import scan
from radpipe.cli.main import main
from radpipe.dataset.build import BuildOptions, PatientJob, build, build_options
from radpipe.dataset.labels import merged_name, parse_label_table
from radpipe.dataset.schema import DatasetReader
from radpipe.errors import DatasetError
from radpipe.phantom import write_ircadb_patient

SHAPE = (16, 48, 48)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Three patients: A has 1 tumour and every organ; B 3 tumours and no spleen; C 2 tumours
    and a 'kidney' where the others have 'bone'."""
    root = tmp_path_factory.mktemp("labels") / "ircadb"
    truth = {}
    for number, tumours in ((1, 1), (2, 3), (3, 2)):
        folder = root / f"3Dircadb1.{number}"
        phantom = write_ircadb_patient(
            folder, patient_id=f"IRCAD-{number}", shape=SHAPE, spacing=(2.5, 3.0, 3.0),
            tumours=tumours, seed=number, zipped=False,
        )  # fmt: skip
        truth[number] = phantom
    shutil.rmtree(root / "3Dircadb1.2" / "MASKS_DICOM" / "spleen")
    (root / "3Dircadb1.3" / "MASKS_DICOM" / "bone").rename(
        root / "3Dircadb1.3" / "MASKS_DICOM" / "kidney"
    )
    catalog_path = root.parent / "catalog.sqlite"
    catalog, _ = scan(root, catalog_path, workers=1)
    with catalog:
        patients = annotated_patients(catalog)
        folders = {entry.patient: entry.first_location for entry in catalog.series(role="image")}
    number_of = {p: int(folders[p].split("3Dircadb1.")[1].split("/")[0]) for p in patients}
    return root, catalog_path, patients, number_of, truth


def _build(tree, path, options, order=None):
    _, catalog_path, patients, _, _ = tree
    chosen = patients if order is None else [patients[i] for i in order]
    jobs = [PatientJob(p, "catalog", (str(catalog_path),), options) for p in chosen]
    return build(jobs, path, options=options, workers=1)


def _patient_masks(path):
    reader = DatasetReader(path)
    _, masks = reader.read(np.arange(len(reader)))
    patients = reader.meta["patient"].astype(str)
    return reader, {p: masks[patients == p] for p in np.unique(patients)}


def test_one_table_across_patients_with_different_mask_sets(tree, tmp_path):
    _, _, patients, number_of, truth = tree
    summary = _build(tree, tmp_path / "a.h5", BuildOptions())
    expected = {1: "bone", 2: "kidney", 3: "liver", 4: "livertumor", 5: "spleen"}
    assert summary.label_names == expected
    reader, masks = _patient_masks(summary.path)
    assert reader.label_names == expected
    for patient in patients:
        phantom = truth[number_of[patient]]
        present = set(np.unique(masks[patient]).tolist()) - {0}
        if number_of[patient] == 2:
            assert 5 not in present and 1 in present  # no spleen in B
        if number_of[patient] == 3:
            assert 1 not in present and 2 in present  # C's bone is called kidney
        # tumours are painted last: every phantom tumour voxel is label 4, whatever the organ
        tumour_truth = int((phantom.labels.array == 2).sum())
        assert int((masks[patient] == 4).sum()) == tumour_truth
        # the spleen is label 5 wherever it exists
        if number_of[patient] != 2:
            assert int((masks[patient] == 5).sum()) == int((phantom.labels.array == 3).sum())
    # the same file whatever order the patients come in
    reversed_build = _build(tree, tmp_path / "b.h5", BuildOptions(), order=[2, 1, 0])
    assert reversed_build.label_names == expected
    _, other = _patient_masks(reversed_build.path)
    for patient in patients:
        np.testing.assert_array_equal(
            np.sort(masks[patient], axis=0), np.sort(other[patient], axis=0)
        )


def test_given_table_merge_rules_and_left_out_classes(tree, tmp_path):
    _, _, patients, number_of, truth = tree
    options = build_options(labels="liver=1,tumor=2", merge=["livertumor*=tumor"])
    summary = _build(tree, tmp_path / "given.h5", options)
    assert summary.label_names == {1: "liver", 2: "tumor"}
    assert summary.left_out == {"bone": 2, "kidney": 1, "spleen": 2}
    _, masks = _patient_masks(summary.path)
    for patient in patients:
        phantom = truth[number_of[patient]]
        assert set(np.unique(masks[patient]).tolist()) <= {0, 1, 2}
        assert int((masks[patient] == 2).sum()) == int((phantom.labels.array == 2).sum())
        # liver (organ mask holds its tumours) minus tumours = phantom label 1
        assert int((masks[patient] == 1).sum()) == int((phantom.labels.array == 1).sum())


def test_numbered_classes_kept_on_request(tree, tmp_path):
    summary = _build(tree, tmp_path / "numbered.h5", BuildOptions(keep_numbered=True))
    names = list(summary.label_names.values())
    assert names == sorted(names)
    assert [n for n in names if n.startswith("livertumor")] == [
        "livertumor01", "livertumor02", "livertumor03",
    ]  # fmt: skip


def test_appending_with_another_table_is_refused(tree, tmp_path):
    _, catalog_path, patients, number_of, _ = tree
    b = [p for p in patients if number_of[p] == 2]
    a = [p for p in patients if number_of[p] == 1]
    options = BuildOptions()
    jobs = [PatientJob(p, "catalog", (str(catalog_path),), options) for p in b]
    first = build(jobs, tmp_path / "d.h5", options=options, workers=1)
    assert first.label_names == {1: "bone", 2: "liver", 3: "livertumor"}
    before = first.path.read_bytes()
    # A holds a spleen, which the file's table lacks
    jobs = [PatientJob(p, "catalog", (str(catalog_path),), options) for p in a]
    with pytest.raises(DatasetError, match="spleen"):
        build(jobs, first.path, options=options, append=True, workers=1)
    # another table given
    other = build_options(labels="liver=1,livertumor=2")
    with pytest.raises(DatasetError, match="label table"):
        build(jobs, first.path, options=other, append=True, workers=1)
    assert first.path.read_bytes() == before
    # the same table, with the spleen merged into an existing class, appends
    merged = build_options(merge=["spleen=liver"])
    jobs = [PatientJob(p, "catalog", (str(catalog_path),), merged) for p in a]
    appended = build(jobs, first.path, options=merged, append=True, workers=1)
    assert appended.label_names == first.label_names and appended.written > 0


def test_cli_build_and_inspect_show_the_table(tree, tmp_path, capsys):
    root = tree[0]
    output = tmp_path / "cli.h5"
    code = main(["dataset", "build", str(root), "-o", str(output), "--merge", "livertumor*=tumor",
                 "--workers", "1"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "labels: 1 bone, 2 kidney, 3 liver, 4 spleen, 5 tumor" in printed
    assert main(["dataset", "inspect", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "label 5 (tumor)" in printed and "label 4 (spleen)" in printed and "?" not in printed
    assert main(["dataset", "build", str(root), "-o", str(tmp_path / "x.h5"),
                 "--labels", "liver=0"]) == 1  # fmt: skip
    assert "values must be 1" in capsys.readouterr().err


def test_label_table_parsing(tmp_path):
    assert parse_label_table("tumor=2, liver=1") == {1: "liver", 2: "tumor"}
    (tmp_path / "t.json").write_text('{"1": "liver", "2": "tumor"}')
    assert parse_label_table(str(tmp_path / "t.json")) == {1: "liver", 2: "tumor"}
    (tmp_path / "u.json").write_text('{"liver": 1, "tumor": 3}')
    assert parse_label_table(str(tmp_path / "u.json")) == {1: "liver", 3: "tumor"}
    for bad in ("liver", "liver=1,tumor=1", "liver=1,liver=2", "liver=x", "liver=256"):
        with pytest.raises(DatasetError):
            parse_label_table(bad)
    assert merged_name("livertumor07") == "livertumor"
    assert merged_name("artery1") == "artery1"  # organs keep their names
    assert merged_name("GTV-2") == "GTV"


def test_montage_colours_follow_the_table_and_carry_a_legend(tree, tmp_path, capsys):
    from PIL import Image

    from radpipe.export.montage import dataset_colours, montage_png, sample_picture

    summary = _build(tree, tmp_path / "m.h5", build_options(labelled_only=True))
    reader = DatasetReader(summary.path)
    colours = dataset_colours(reader)
    assert sorted(colours) == sorted(summary.label_names)
    # the same label keeps its colour whatever else the tile holds (it followed the tile's max)
    image = np.zeros((40, 40), np.float32)
    liver_only = np.zeros((40, 40), np.uint8)
    liver_only[10:20, 10:20] = 3
    with_tumour = liver_only.copy()
    with_tumour[30:35, 30:35] = 4
    edge = (10, 15)  # on the liver's outline, drawn fully opaque
    first = sample_picture(image, liver_only, colours)[edge]
    second = sample_picture(image, with_tumour, colours)[edge]
    assert tuple(first) == tuple(second) == colours[3]
    png = montage_png(reader, tmp_path / "m.png", count=9)
    picture = np.asarray(Image.open(png).convert("RGB"))
    tile_height = reader.sample_shape[0]
    assert picture.shape[0] > 3 * tile_height  # the legend strip under the 3×3 tiles
    legend = picture[3 * tile_height :].reshape(-1, 3)
    for colour in colours.values():
        assert (legend == colour).all(axis=1).sum() >= 50  # each label's swatch is drawn
    assert main(["dataset", "batches", "--input_filename", str(summary.path), "--batchsize", "4",
                 "--print_random_image", "--print_batch_indices"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "epoch 0 batch:" in printed and "_batch_sample.png" in printed
    sample_png = summary.path.with_name("m_batch_sample.png")
    assert Image.open(sample_png).size[0] == reader.sample_shape[1]
