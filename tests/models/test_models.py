"""Training, segmentation and evaluation on phantom patients (known truth), on the real
libraries (MONAI, PyTorch, highdicom for the SEG read back); short CPU runs."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("monai")

from radpipe.cli.main import main
from radpipe.errors import ModelError
from radpipe.io import load, save
from radpipe.models import TrainOptions, evaluate, segment, train
from radpipe.models.card import read_card
from radpipe.phantom import write_phantom_study
from radpipe.volume import LabelMap, Volume

SHAPE = (16, 64, 64)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Three phantom patients and a 2-D dataset of them."""
    root = tmp_path_factory.mktemp("models")
    studies = [
        write_phantom_study(root / "tree" / f"p{n}", patient_id=f"M-{n}", shape=SHAPE,
                            spacing=(2.5, 3.0, 3.0), tumours=1, seed=n)
        for n in (1, 2, 3)
    ]  # fmt: skip
    dataset = root / "train.h5"
    assert main(["dataset", "build", str(root / "tree"), "-o", str(dataset), "--workers", "1"]) == 0
    return root, studies, dataset


@pytest.fixture(scope="module")
def model(cohort):
    root, _, dataset = cohort
    folder = root / "model"
    result = train(
        dataset, folder, options=TrainOptions(epochs=3, batch_size=8, seed=1, name="phantom-unet")
    )
    return folder, result


def test_training_writes_a_model_folder(model, cohort):
    folder, result = model
    card = read_card(folder)
    assert card.classes == {0: "background", 1: "liver", 2: "spleen", 3: "tumor"}
    assert card.dimensions == 2 and card.input_size == SHAPE[1:] and card.patch_size == SHAPE[1:]
    assert card.spacing_mm == (2.5, 3.0, 3.0)
    intensity = card.preprocessing["intensity"]  # CT: clipped to the body's HU range
    assert intensity["mode"] == "global_zscore" and -500 < intensity["low"] < 0 < intensity["high"]
    assert card.name == "phantom-unet" and card.radpipe_version
    assert len(card.training["validation_patients"]) == 1  # 3 patients × 0.2 → one held out
    assert not set(card.training["patients"]) & set(card.training["validation_patients"])
    assert not any(p.startswith("M-") for p in card.training["patients"])  # pseudonymised
    with open(folder / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert all(0 <= float(r["val_dice_mean"]) <= 1 for r in rows)
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = max(rows, key=lambda r: float(r["val_dice_mean"]))
    assert card.validation["epoch"] == int(best["epoch"])
    assert len(result.history) == 3


def test_segmentation_lies_on_the_input_grid(model, cohort, tmp_path):
    folder, _ = model
    _, studies, _ = cohort
    image = load(studies[0].series_folder)
    result = segment(image, folder, probabilities=[1, 2, 3])
    assert result.labels.shape == image.spatial_shape
    np.testing.assert_allclose(result.labels.affine, image.affine)
    assert result.labels.labels == {1: "liver", 2: "spleen", 3: "tumor"}
    total = sum(h.array for h in result.probabilities.values())
    assert total.max() <= 1.0 + 1e-5 and total.min() >= 0.0  # background takes the rest
    # on another grid (a NIfTI resampled to 2 mm), the result comes back on that grid
    from radpipe.preprocess import resample

    finer = resample(image, spacing=(2.5, 2.0, 2.0))
    other = segment(finer, folder)
    assert other.labels.shape == finer.spatial_shape
    np.testing.assert_allclose(other.labels.affine, finer.affine)


def test_cli_segment_writes_label_map_seg_and_heatmap(model, cohort, tmp_path, capsys):
    import highdicom as hd

    folder, _ = model
    _, studies, _ = cohort
    series = studies[1].series_folder
    labels_out, heat_out = tmp_path / "p.nii.gz", tmp_path / "tumor.nii.gz"
    assert main(["segment", str(series), "-o", str(labels_out), "--model", str(folder),
                 "--probabilities", str(heat_out),
                 "--probability-class", "tumor"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "probability of tumor" in printed
    written = load(labels_out)
    assert written.shape == load(series).spatial_shape
    heat = load(heat_out)
    assert float(heat.array.min()) >= 0.0 and float(heat.array.max()) <= 1.0
    # the overlay command shows that heatmap directly
    assert main(["overlay", "-i", str(series), "--heatmap", str(heat_out),
                 "--normalization", "none", "-o", str(tmp_path / "o.png")]) == 0  # fmt: skip
    seg_out = tmp_path / "seg.dcm"
    code = main(["segment", str(series), "-o", str(seg_out), "--model", str(folder)])
    if code == 0:
        seg = hd.seg.segread(seg_out)
        assert seg.SegmentationType == "BINARY"
        algorithms = {str(item.SegmentAlgorithmType) for item in seg.SegmentSequence}
        assert algorithms == {"AUTOMATIC"}
        assert {str(item.SegmentAlgorithmName) for item in seg.SegmentSequence} == {"phantom-unet"}
    else:  # a 3-epoch model may find nothing; that is one clear line
        assert "found no" in capsys.readouterr().err


def test_resume_continues_and_nan_loss_keeps_the_last_checkpoint(cohort, tmp_path, capsys):
    from radpipe.dataset.schema import DatasetWriter, Sample

    _, _, dataset = cohort
    folder = tmp_path / "m"
    train(dataset, folder, options=TrainOptions(epochs=1, batch_size=16))
    train(dataset, folder, options=TrainOptions(epochs=2, batch_size=16), resume=True)
    with open(folder / "metrics.csv") as handle:
        assert [line.split(",")[0] for line in handle][1:] == ["1", "2"]
    import torch

    state = torch.load(folder / "checkpoint.pt", weights_only=False)
    assert state["planned_epochs"] == 2 and 0.5 <= state["progress"] < 1.0  # last step of 2
    checkpoint = (folder / "checkpoint.pt").read_bytes()
    card = (folder / "model.json").read_bytes()
    # a dataset whose images turn into NaN: the run stops with one message, nothing lost
    poisoned = tmp_path / "poisoned.h5"
    table = {1: "liver", 2: "spleen", 3: "tumor"}
    writer = DatasetWriter(poisoned, mode="2d", preprocessing={}, label_names=table)
    image = np.full((64, 64), np.nan, np.float32)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:30, 20:30] = 1
    writer.write([Sample(image, mask, f"anon-{k % 2}", "s", k, (0, 0, k), (2.5, 3, 3), True)
                  for k in range(8)])  # fmt: skip
    writer.close()
    (folder / "model.json").write_bytes(card)
    code = main(["train", str(poisoned), "--out", str(folder), "--resume", "--epochs", "3"])
    err = capsys.readouterr().err
    assert (
        code == 1
        and "nan" in err.lower()
        and "checkpoint" in err
        and len(err.strip().splitlines()) == 1
    )
    assert (folder / "checkpoint.pt").read_bytes() == checkpoint
    # resuming on a dataset of other classes is refused before anything is touched
    other = tmp_path / "other.h5"
    writer = DatasetWriter(other, mode="2d", preprocessing={}, label_names={1: "liver"})
    writer.write([Sample(np.ones((64, 64), np.float32), mask, "anon-a", "s", 0, (0, 0, 0),
                         (2.5, 3, 3), True)])  # fmt: skip
    writer.close()
    assert main(["train", str(other), "--out", str(folder), "--resume", "--epochs", "3"]) == 1
    assert "not the model's" in capsys.readouterr().err
    assert (folder / "checkpoint.pt").read_bytes() == checkpoint


def test_bad_models_and_inputs_are_one_line(model, cohort, tmp_path, capsys):
    folder, _ = model
    _, studies, _ = cohort
    series = str(studies[0].series_folder)
    (tmp_path / "empty").mkdir()
    cases = [
        ["segment", series, "-o", str(tmp_path / "a.nii.gz"), "--model", str(tmp_path / "empty")],
        ["segment", series, "-o", str(tmp_path / "b.nii.gz"), "--model", str(tmp_path / "nowhere")],
        [
            "segment",
            series,
            "-o",
            str(tmp_path / "c.nii.gz"),
            "--model",
            str(folder),
            "--probabilities",
            str(tmp_path / "h.nii.gz"),
            "--probability-class",
            "heart",
        ],
        ["segment", series, "-o", str(tmp_path / "c.txt"), "--model", str(folder)],
        ["train", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "m2")],
        ["train", str(cohort[2]), "--out", str(folder)],  # exists, no --overwrite
        ["evaluate", str(tmp_path / "x.nii.gz"), str(tmp_path / "y.nii.gz")],
    ]
    for arguments in cases:
        assert main(arguments) == 1, arguments
        err = capsys.readouterr().err.strip()
        assert err.startswith("radpipe: ") and len(err.splitlines()) == 1, (arguments, err)
    # an RGB image does not fit a one-channel model
    rgb = Volume(np.zeros((2, 16, 16, 3), np.uint8), np.eye(4))
    with pytest.raises(ModelError, match="channel"):
        segment(rgb, folder)
    # a damaged card
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    (broken / "model.pt").write_bytes(b"")
    with pytest.raises(ModelError, match="model card"):
        segment(load(series), broken)
    # weights of another architecture
    other = tmp_path / "other"
    other.mkdir()
    document = json.loads((folder / "model.json").read_text())
    document["network"]["channels"] = [8, 16, 32, 64]
    (other / "model.json").write_text(json.dumps(document))
    (other / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    with pytest.raises(ModelError, match="weights do not fit"):
        segment(load(series), other)
    from radpipe.dataset.schema import DatasetWriter

    empty = tmp_path / "empty.h5"
    DatasetWriter(empty, mode="2d", preprocessing={}, label_names={}).close()
    with pytest.raises(ModelError, match="no sample"):
        train(empty, tmp_path / "m3")


def test_evaluation_against_analytic_spheres(tmp_path, capsys):
    """Two spheres of radius 10 mm, the prediction shifted by 3 mm along x: HD95 ≈ 3 mm,
    Dice from the voxel overlap, equal volumes."""
    shape, spacing = (40, 48, 48), (1.0, 1.0, 1.0)
    k, j, i = np.indices(shape)
    centre = np.array([20, 24, 22])
    truth = ((k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2) <= 100
    shifted = ((k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2] - 3) ** 2) <= 100
    affine = np.diag([*spacing[::-1], 1.0])
    save(
        LabelMap(truth.astype(np.uint8), affine, labels={1: "tumor"}),
        tmp_path / "truth" / "case1.nii.gz",
    )
    save(
        LabelMap(shifted.astype(np.uint8), affine, labels={1: "tumor"}),
        tmp_path / "pred" / "case1_pred.nii.gz",
    )
    result = evaluate(tmp_path / "pred", tmp_path / "truth")
    (score,) = result.scores
    expected_dice = 2 * (truth & shifted).sum() / (truth.sum() + shifted.sum())
    assert score.case == "case1" and score.name == "tumor"
    assert score.dice == pytest.approx(expected_dice, abs=1e-9)
    assert 2.5 <= score.hausdorff95_mm <= 3.5
    assert score.volume_difference_ml == pytest.approx(0.0, abs=1e-9)
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "pred"),
                str(tmp_path / "truth"),
                "-o",
                str(tmp_path / "report"),
            ]
        )
        == 0
    )
    document = json.loads((tmp_path / "report" / "scores.json").read_text())
    assert document["means"]["tumor"]["dice"] == pytest.approx(expected_dice)
    assert "<table>" in (tmp_path / "report" / "summary.html").read_text()
    with open(tmp_path / "report" / "scores.csv", newline="") as handle:
        assert next(csv.DictReader(handle))["case"] == "case1"


def test_a_folder_of_patients_is_segmented_in_parallel(model, cohort, tmp_path, capsys):
    folder, _ = model
    root, studies, _ = cohort
    out = tmp_path / "predictions"
    assert main(["segment", str(root / "tree"), "-o", str(out), "--model", str(folder),
                 "--workers", "2"]) == 0  # fmt: skip
    assert "wrote 3 label map(s)" in capsys.readouterr().out
    written = sorted(out.glob("*.nii.gz"))
    assert len(written) == 3 and all(
        p.with_suffix("").with_suffix(".json").is_file() for p in written
    )
    alone = {
        tuple(segment(load(s.series_folder), folder).labels.array.sum(axis=(1, 2))) for s in studies
    }
    together = {tuple(load(p).array.astype(int).sum(axis=(1, 2))) for p in written}
    assert alone == together  # each series' labels equal the one-by-one segmentation
    # evaluated against the dataset's own masks, matched by patient pseudonym: the scores of
    # each prediction against its phantom's truth label map
    from radpipe.io.mask_sources import label_names_from_sidecar
    from radpipe.models.evaluation import score_case
    from radpipe.privacy import pseudonym

    evaluation = evaluate(out, root / "tree")
    assert evaluation.unmatched == []
    for study in studies:
        case = f"{pseudonym(study.patient_id)}_"
        (path,) = [p for p in written if p.name.startswith(case)]
        truth = LabelMap(study.phantom.labels.array, study.phantom.labels.affine,
                         labels={1: "liver", 2: "tumor", 3: "spleen"})  # fmt: skip
        names = label_names_from_sidecar(path)  # the model's classes, by name
        assert names == {1: "liver", 2: "spleen", 3: "tumor"}
        stored = load(path)
        predicted = LabelMap(stored.array, stored.affine, labels=names)
        expected = {(s.name, round(s.dice, 9), s.reference_ml) for s in
                    score_case(predicted, truth, case=path.name)}  # fmt: skip
        got = {(s.name, round(s.dice, 9), s.reference_ml) for s in evaluation.scores
               if path.name.startswith(s.case)}  # fmt: skip
        assert got == expected and {n for n, _, _ in got} == {"liver", "spleen", "tumor"}
    report = tmp_path / "evaluation"
    assert main(["evaluate", str(out), str(root / "tree"), "-o", str(report)]) == 0
    with open(report / "scores.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 9  # 3 patients × 3 classes
    # a prediction of another series of a patient (here: another grid) is not scored against
    # the masks of the first; it is listed
    first = load(written[0])
    shifted = np.array(first.affine, dtype=float)
    shifted[:3, 3] += shifted[:3, 0]  # one slice further: the grid of a shorter series
    other_grid = LabelMap(first.array[1:].copy(), shifted,
                          labels={1: "liver", 2: "spleen", 3: "tumor"})  # fmt: skip
    case = written[0].name.split("_")[0]
    save(other_grid, out / f"{case}_099.nii.gz")
    again = evaluate(out, root / "tree")
    assert len(again.scores) == 9
    assert again.unmatched == [f"{case}_099 (not on the grid of the masked series)"]
    # a dataset of other patients is one clear line
    other = tmp_path / "other"
    write_phantom_study(other / "p9", patient_id="OTHER-9", shape=(8, 32, 32), tumours=0, seed=9)
    assert main(["evaluate", str(out), str(other)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no patient of" in err and len(err.splitlines()) == 1


def test_a_model_built_with_one_orientation_reads_nifti_and_dicom_alike(cohort, tmp_path):
    """A NIfTI stored in another orientation (RAS, as converters often write) holds the CT's
    slices flipped; a dataset built with --orient LPS gives a model that segments both alike."""
    from radpipe.placement import labels_on

    root, studies, _ = cohort
    dataset = tmp_path / "lps.h5"
    assert main(["dataset", "build", str(root / "tree"), "-o", str(dataset), "--orient", "LPS",
                 "--workers", "1"]) == 0  # fmt: skip
    train(dataset, tmp_path / "m", options=TrainOptions(epochs=1, val_fraction=0.0))
    dicom = load(studies[2].series_folder)
    nifti = load(save(dicom.reoriented("RAS"), tmp_path / "ct.nii.gz"))
    assert not np.array_equal(nifti.array, dicom.array)  # another storage order
    from_dicom = segment(dicom, tmp_path / "m").labels
    from_nifti = segment(nifti, tmp_path / "m").labels
    np.testing.assert_array_equal(labels_on(from_nifti, dicom).array, from_dicom.array)


def test_mirror_tta_is_flip_equivariant_and_a_distribution(model, cohort):
    """Averaged over the flip group, probabilities of a mirrored image are the mirrored
    probabilities (not so for one pass), and still sum to one; the CLI takes --mirror."""
    from radpipe.dataset.schema import DatasetReader
    from radpipe.models.inference import load_model, predict_probabilities

    folder, _ = model
    root, studies, dataset = cohort
    loaded = load_model(folder, device="cpu")
    images, _ = DatasetReader(dataset).read(np.arange(4))
    plain = predict_probabilities(loaded.network, images, loaded.card, loaded.device)
    mirrored = predict_probabilities(loaded.network, images, loaded.card, loaded.device,
                                     mirror=True)  # fmt: skip
    of_flipped = predict_probabilities(loaded.network, images[:, :, ::-1].copy(), loaded.card,
                                       loaded.device, mirror=True)  # fmt: skip
    np.testing.assert_allclose(of_flipped[..., ::-1], mirrored, atol=1e-5)
    np.testing.assert_allclose(mirrored.sum(axis=0), 1.0, atol=1e-5)
    assert np.abs(mirrored - plain).max() > 1e-4  # the passes were really averaged
    out = root / "mirrored.nii.gz"
    assert main(["segment", str(studies[0].series_folder), "-o", str(out), "--model",
                 str(folder), "--mirror", "--device", "cpu"]) == 0  # fmt: skip
    assert load(out).shape == studies[0].phantom.ct.shape


def test_largest_component_matches_scikit_image(cohort):
    """Each listed class keeps its largest 26- (3-D) or 8-connected (2-D) part, as
    scikit-image's labelling finds it; other classes are untouched."""
    from skimage.measure import label as skimage_label

    from radpipe.models.postprocess import keep_largest_component, keep_largest_per_slice

    _, studies, _ = cohort
    labels = studies[0].phantom.labels.array.copy()
    labels[2:4, 2:6, 2:6] = 1  # two stray liver islands, away from the liver
    labels[10, 60:63, 60:63] = 1
    kept = keep_largest_component(labels, [1])
    parts = skimage_label(labels == 1, connectivity=3)
    largest = np.bincount(parts.ravel())[1:].argmax() + 1
    np.testing.assert_array_equal(kept == 1, parts == largest)
    np.testing.assert_array_equal(kept[labels != 1], labels[labels != 1])  # others unchanged
    assert int((kept == 0).sum() - (labels == 0).sum()) == 4 * 4 * 2 + 9
    # per slice: in 2-D, each slice keeps its own largest part (8-connected)
    planes = keep_largest_per_slice(labels, [1])
    for plane, original in zip(planes, labels, strict=True):
        parts = skimage_label(original == 1, connectivity=2)
        if parts.max():
            largest = np.bincount(parts.ravel())[1:].argmax() + 1
            np.testing.assert_array_equal(plane == 1, parts == largest)


def test_postprocessing_is_chosen_on_validation_and_applied(model, cohort, tmp_path, capsys):
    """``auto`` records each class's validation Dice with and without the rule and keeps the
    classes it raises; segment applies the card's choice to the network's argmax."""
    from radpipe.models.postprocess import keep_largest_component

    folder, _ = model
    _, studies, dataset = cohort
    card = read_card(folder)
    figures = card.postprocessing["validation"]
    assert set(figures) == {"liver", "spleen", "tumor"}
    raised = [v for v, n in card.classes.items()
              if v and figures[n]["dice_largest_component"] > figures[n]["dice"]]  # fmt: skip
    assert card.largest_component_classes == raised
    assert card.largest_component_per_slice  # a 2-D model: chosen (and applied) per slice
    # a card asking for the liver's largest part: segment's labels are the raw argmax so reduced
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    document = json.loads((folder / "model.json").read_text())
    document["postprocessing"] = {"largest_component": [1, 3]}
    (chosen / "model.json").write_text(json.dumps(document))
    (chosen / "model.pt").write_bytes((folder / "model.pt").read_bytes())
    image = load(studies[0].series_folder)
    raw = segment(image, chosen, postprocess=False).labels.array
    done = segment(image, chosen).labels.array
    np.testing.assert_array_equal(done, keep_largest_component(raw, [1, 3]))
    document["postprocessing"] = {"largest_component": [1, 3], "per_slice": True}
    (chosen / "model.json").write_text(json.dumps(document))
    from radpipe.models.postprocess import keep_largest_per_slice

    sliced = segment(image, chosen).labels.array
    np.testing.assert_array_equal(sliced, keep_largest_per_slice(raw, [1, 3]))
    # a card naming a class the model lacks, and an unknown --postprocess, are one line
    document["postprocessing"] = {"largest_component": [7]}
    (chosen / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="postprocessing names classes"):
        segment(image, chosen)
    assert main(["train", str(dataset), "--out", str(tmp_path / "m"), "--postprocess",
                 "smallest"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "--postprocess must be one of auto, none, largest" in err and len(err.splitlines()) == 1
    # convex: the largest part per slice, then each slice's convex hull over background only
    document["postprocessing"] = {"largest_component": [1, 3], "convex_hull": [1, 3],
                                  "per_slice": True}  # fmt: skip
    (chosen / "model.json").write_text(json.dumps(document))
    from radpipe.models.postprocess import fill_convex_hull

    hulled = segment(image, chosen).labels.array
    np.testing.assert_array_equal(hulled, fill_convex_hull(keep_largest_per_slice(raw, [1, 3]),
                                                           [1, 3]))  # fmt: skip
    document["postprocessing"] = {"convex_hull": [9]}
    (chosen / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelError, match="postprocessing names classes"):
        segment(image, chosen)


def test_convex_hull_matches_scikit_image_and_keeps_other_classes(cohort):
    """Each slice's class grows to scikit-image's convex hull of it; voxels of other classes
    inside the hull keep their label, and slices without the class are untouched."""
    from skimage.morphology import convex_hull_image

    from radpipe.models.postprocess import fill_convex_hull

    _, studies, _ = cohort
    labels = studies[0].phantom.labels.array.copy()
    filled = fill_convex_hull(labels, [1])
    grown = 0
    for plane, original in zip(filled, labels, strict=True):
        if np.count_nonzero(original == 1) < 3:
            np.testing.assert_array_equal(plane, original)
            continue
        hull = convex_hull_image(original == 1)
        np.testing.assert_array_equal(plane == 1, (original == 1) | (hull & (original == 0)))
        np.testing.assert_array_equal(plane[original > 1], original[original > 1])
        grown += int(np.count_nonzero(plane == 1) - np.count_nonzero(original == 1))
    assert grown > 0  # the phantom liver's concave side is filled somewhere
    np.testing.assert_array_equal(fill_convex_hull(labels[5], [1]), filled[5])  # one slice
    assert labels is not filled and np.array_equal(labels, studies[0].phantom.labels.array)


def test_learning_rate_decays_over_epochs_or_the_time_budget():
    """Progress is the share of the epochs or of the time budget, whichever is further; the
    polynomial factor (1 - p)^0.9 is floored at 1 %."""
    from radpipe.models.training import poly_factor, training_progress

    assert training_progress(5, 10, 0.0, None) == 0.5
    assert training_progress(1, 10, 45.0, 1.0) == 0.75  # the clock is further along
    assert training_progress(9, 10, 6.0, 1.0) == 0.9  # the epochs are
    assert training_progress(3, 10, 600.0, 1.0) == 1.0  # past the budget: capped
    assert poly_factor(0.0) == 1.0 and poly_factor(1.0) == 0.01
    assert abs(poly_factor(0.5) - 0.5**0.9) < 1e-12


def test_dice_term_per_window_by_default_and_pooled_with_batch_dice(cohort, tmp_path):
    """The same seed and data give a different first-epoch loss when the Dice term is pooled
    over the batch (`--batch-dice`), and each card names the loss it was trained with."""
    _, _, dataset = cohort
    per_window, pooled = tmp_path / "per-window", tmp_path / "pooled"
    options = TrainOptions(epochs=1, batch_size=8, seed=3, val_fraction=0.0, augment="none")
    default = train(dataset, per_window, options=options)
    assert main(["train", str(dataset), "--out", str(pooled), "--epochs", "1", "--seed", "3",
                 "--val-fraction", "0", "--augment", "none", "--batch-dice"]) == 0  # fmt: skip
    assert read_card(per_window).training["loss"].endswith("Dice per window)")
    assert read_card(pooled).training["loss"].endswith("batch Dice)")
    with open(pooled / "metrics.csv", newline="") as handle:
        pooled_loss = float(next(csv.DictReader(handle))["train_loss"])
    assert np.isfinite(pooled_loss) and np.isfinite(default.history[0].train_loss)
    assert abs(pooled_loss - default.history[0].train_loss) > 1e-4
    # a resumed run keeps the loss it began with, whatever the flags say now
    assert main(["train", str(dataset), "--out", str(pooled), "--epochs", "2", "--resume"]) == 0
    assert read_card(pooled).training["batch_dice"] is True
    assert read_card(pooled).training["loss"].endswith("batch Dice)")
