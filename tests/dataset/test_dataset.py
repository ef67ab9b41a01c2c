"""HDF5 datasets: round trips, appending, sanity checks, the loader and paired augmentation."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from radpipe.cli.main import main
from radpipe.dataset.augment import Augment
from radpipe.dataset.build import BuildOptions, PatientJob, build, load_config, sunnybrook_jobs
from radpipe.dataset.loader import BatchLoader, split_by_patient
from radpipe.dataset.schema import DatasetReader, DatasetWriter, Sample
from radpipe.errors import DatasetError


def make_samples(count: int, patient: str, shape=(32, 40), seed=0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(count):
        image = rng.normal(0, 1, shape).astype(np.float32)
        mask = np.zeros(shape, np.uint8)
        mask[5 + k % 10 : 12 + k % 10, 8:20] = 1
        samples.append(
            Sample(image, mask, patient, "1.2.3", k, (0.0, 0.0, float(k)), (2.0, 1.0, 1.0), True)
        )
    return samples


def write(path, samples, **options):
    writer = DatasetWriter(
        path, mode="2d", preprocessing={"x": 1}, label_names={1: "organ"}, **options
    )
    writer.write(samples)
    return writer.close()


def test_round_trip_and_append_equals_one_build(tmp_path):
    first, second = make_samples(7, "anon-a", seed=1), make_samples(5, "anon-b", seed=2)
    write(tmp_path / "once.h5", first + second)
    write(tmp_path / "twice.h5", first)
    write(tmp_path / "twice.h5", second, append=True)
    for name in ("once.h5", "twice.h5"):
        reader = DatasetReader(tmp_path / name)
        images, masks = reader.read(np.arange(12))
        np.testing.assert_array_equal(images, np.stack([s.image for s in first + second]))
        np.testing.assert_array_equal(masks, np.stack([s.mask for s in first + second]))
        assert reader.meta["patient"].tolist() == [b"anon-a"] * 7 + [b"anon-b"] * 5
        assert reader.meta["slice_index"].tolist() == list(range(7)) + list(range(5))
    with h5py.File(tmp_path / "once.h5") as a, h5py.File(tmp_path / "twice.h5") as b:
        assert a["images"].chunks == (1, 32, 40)
        assert a.attrs["schema_version"] == b.attrs["schema_version"] == 1


def test_failed_runs_leave_the_previous_file_and_bad_paths_are_clear(tmp_path):
    path = write(tmp_path / "data.h5", make_samples(3, "anon-a"))
    before = path.read_bytes()
    writer = DatasetWriter(path, mode="2d", preprocessing={}, label_names={}, append=True)
    with pytest.raises(DatasetError, match="has shape"):
        writer.write(make_samples(2, "anon-b", shape=(16, 16)))
    writer.abort()
    assert path.read_bytes() == before and not list(tmp_path.glob(".data.h5*"))
    with pytest.raises(DatasetError, match="does not exist"):
        DatasetWriter(tmp_path / "missing" / "x.h5", mode="2d", preprocessing={}, label_names={})
    (tmp_path / "corrupt.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        DatasetWriter(
            tmp_path / "corrupt.h5", mode="2d", preprocessing={}, label_names={}, append=True
        )
    with pytest.raises(DatasetError, match="exists"):
        DatasetWriter(path, mode="2d", preprocessing={}, label_names={})


def test_loader_is_reproducible_and_covers_each_epoch(tmp_path):
    path = write(tmp_path / "d.h5", make_samples(20, "anon-a") + make_samples(10, "anon-b", seed=3))
    first = [b["index"].tolist() for b in BatchLoader(path, batch_size=8, epochs=2, seed=5)]
    again = [b["index"].tolist() for b in BatchLoader(path, batch_size=8, epochs=2, seed=5)]
    other = [b["index"].tolist() for b in BatchLoader(path, batch_size=8, epochs=2, seed=6)]
    assert first == again and first != other
    epoch0 = [i for batch in first[:4] for i in batch]
    epoch1 = [i for batch in first[4:] for i in batch]
    assert sorted(epoch0) == list(range(30)) and epoch0 != epoch1
    batch = next(iter(BatchLoader(path, batch_size=4, epochs=1, shuffle=False)))
    assert batch["image"].shape == (4, 1, 32, 40) and batch["image"].dtype == np.float32
    assert batch["mask"].shape == (4, 1, 32, 40) and batch["mask"].dtype == np.uint8
    reader = DatasetReader(path)
    np.testing.assert_array_equal(batch["image"][:, 0], reader.read([0, 1, 2, 3])[0])
    train, val = split_by_patient(reader.meta["patient"], 0.5, seed=0)
    patients_train = set(reader.meta["patient"][train].tolist())
    patients_val = set(reader.meta["patient"][val].tolist())
    assert patients_train and patients_val and not patients_train & patients_val
    x, y = next(BatchLoader(path, batch_size=4).keras())
    assert x.shape == (4, 32, 40, 1) and y.shape == (4, 32, 40, 1)


def test_augmentation_moves_mask_with_image():
    rows, columns = np.indices((48, 48))
    image = (rows * 100 + columns).astype(np.float32)  # every pixel encodes its coordinates
    mask = np.zeros((48, 48), np.uint8)
    mask[10:20, 25:40] = 1
    augment = Augment(
        flip_horizontal=0.5, flip_vertical=0.5, rotate90=0.5, rotate=0.0, crop_zoom=0.0
    )
    for seed in range(20):
        out_image, out_mask = augment(image, mask, np.random.default_rng(seed))
        coords = out_image[out_mask == 1]
        original = np.stack([coords // 100, coords % 100], axis=1).astype(int)
        assert (mask[original[:, 0], original[:, 1]] == 1).all()
        assert out_mask.sum() == mask.sum()
    # rotations and crop-zooms interpolate: encode rows and columns in two images and apply
    # the same draws to both; the mask must land where its source pixels land
    smooth = Augment(flip_horizontal=0, rotate=1.0, max_angle=20, crop_zoom=1.0)
    row_image, column_image = rows.astype(np.float32), columns.astype(np.float32)
    for seed in range(10):
        moved_rows, out_mask = smooth(row_image, mask, np.random.default_rng(seed))
        moved_columns, same_mask = smooth(column_image, mask, np.random.default_rng(seed))
        np.testing.assert_array_equal(out_mask, same_mask)
        inside = out_mask == 1
        source_rows = np.clip(np.rint(moved_rows[inside]).astype(int), 0, 47)
        source_columns = np.clip(np.rint(moved_columns[inside]).astype(int), 0, 47)
        assert mask[source_rows, source_columns].mean() > 0.9  # only edge pixels may disagree
    again = smooth(image, mask, np.random.default_rng(3))
    np.testing.assert_array_equal(again[0], smooth(image, mask, np.random.default_rng(3))[0])


def test_sunnybrook_builds_one_sample_per_contoured_slice(data_dir, tmp_path):
    options = BuildOptions(spacing=[1.3, 1.3], size=[256, 256])
    jobs = sunnybrook_jobs(data_dir / "sunnybrook", options)
    names = {1: "endocardium", 2: "myocardium"}
    path, written, rejected, errors, *_ = build(
        jobs, tmp_path / "sb.h5", options=options, label_names=names, workers=2
    )
    contours = list((data_dir / "sunnybrook/contourfiles").rglob("*-icontour-manual.txt"))
    assert written + len(rejected) == len(contours) and not errors
    reader = DatasetReader(path)
    assert np.allclose(reader.meta["spacing_mm"][:, 1:], 1.3)
    assert reader.meta["has_mask"].all()
    _, masks = reader.read(np.arange(len(reader)))
    assert all(m.any() for m in masks)


def test_pycerr_rtstruct_patients_build_in_3d(data_dir, tmp_path):
    root = tmp_path / "pycerr"
    shutil.copytree(data_dir / "pyCERR/radiomics_phantom_dicom", root)
    assert main(["dataset", "build", str(root), "-o", str(tmp_path / "3d.h5"), "--mode", "3d",
                 "--spacing", "2,2,2", "--size", "40,80,80"]) == 0  # fmt: skip
    reader = DatasetReader(tmp_path / "3d.h5")
    assert len(reader) == 2 and reader.sample_shape == (40, 80, 80)
    _, masks = reader.read([0, 1])
    assert masks[0].any() and masks[1].any()


def test_config_files_and_cli(tmp_path, data_dir, capsys):
    (tmp_path / "c.toml").write_text('[dataset]\nspacing = "1.4,1.4"\nsize = "128,128"\n')
    assert load_config(tmp_path / "c.toml")["size"] == "128,128"
    (tmp_path / "c.ini").write_text("[paths]\ndata_directory = x\n[process]\nsize = 64,64\n")
    assert load_config(tmp_path / "c.ini") == {"data_directory": "x", "size": "64,64"}
    out = tmp_path / "sb.h5"
    source = ["dataset", "build", "--data-directory", str(data_dir / "sunnybrook")]
    config = ["--config", str(tmp_path / "c.toml"), "--print-random-image"]
    assert main([*source, "--output-filename", str(out), *config]) == 0
    assert (tmp_path / "sb_random.png").is_file()
    assert DatasetReader(out).sample_shape == (128, 128)
    assert main(["dataset", "inspect", str(out)]) == 0
    assert "label 1 (endocardium)" in capsys.readouterr().out
    assert (
        main(
            [
                "dataset",
                "batches",
                str(out),
                "--print-batch-indices",
                "--batchsize",
                "16",
                "--epochs",
                "3",
            ]
        )
        == 0
    )
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert lines[0].startswith("epoch 0 batch:") and lines[-1].startswith("epoch 2 batch:")
    assert main([*source, "--output-filename", str(tmp_path / "nofolder" / "x.h5")]) == 1


def test_torch_adapter_under_dataloader_workers(tmp_path):
    torch = pytest.importorskip("torch")
    from radpipe.dataset.torch import TorchDataset

    path = write(tmp_path / "d.h5", make_samples(12, "anon-a"))
    loader = torch.utils.data.DataLoader(TorchDataset(path), batch_size=4, num_workers=2)
    batches = list(loader)
    assert len(batches) == 3 and batches[0]["image"].shape == (4, 1, 32, 40)
    expected = DatasetReader(path).read([0, 1, 2, 3])[0]
    np.testing.assert_array_equal(batches[0]["image"][:, 0].numpy(), expected)


def test_patient_jobs_with_mismatched_mask_are_reported(tmp_path, phantom_study):
    job = PatientJob("anon-x", "catalog", (str(tmp_path / "missing.sqlite"),), BuildOptions())
    with pytest.raises(DatasetError):
        build([job], tmp_path / "x.h5", options=BuildOptions(), label_names={}, workers=1)
    assert not (tmp_path / "x.h5").exists()


def test_catalog_build_loads_each_image_once(tmp_path, monkeypatch):
    """4 patients → 4 image loads plus one per mask series (it was 14 image loads: each job
    walked the catalog up to its own patient). Counted in-process with ``workers=1``."""
    from radpipe.catalog.patients import annotated_patients
    from radpipe.catalog.store import Catalog, scan
    from radpipe.dataset.build import BuildOptions, PatientJob, build
    from radpipe.phantom import write_ircadb_patient

    root = tmp_path / "ircadb"
    for number in range(1, 5):
        write_ircadb_patient(
            root / f"3Dircadb1.{number}", patient_id=f"IRCAD-{number}", shape=(12, 48, 48),
            spacing=(2.5, 3.0, 3.0), tumours=1, seed=number, zipped=False,
        )  # fmt: skip
    catalog, _ = scan(root, tmp_path / "catalog.sqlite", workers=1)
    with catalog:
        patients = annotated_patients(catalog)
        mask_series = len(catalog.series(role="mask"))
    assert len(patients) == 4
    loads: list[str] = []
    real_load = Catalog.load

    def counting_load(self, entry, **options):
        loads.append(entry.role)
        return real_load(self, entry, **options)

    monkeypatch.setattr(Catalog, "load", counting_load)
    options = BuildOptions(mode="2d")
    jobs = [
        PatientJob(p, "catalog", (str(tmp_path / "catalog.sqlite"),), options) for p in patients
    ]
    _, written, _, errors, *_ = build(
        jobs, tmp_path / "train.h5", options=options, label_names={}, workers=1
    )
    assert errors == [] and written > 0
    assert loads.count("image") == 4
    assert loads.count("mask") == mask_series


def test_sunnybrook_download_missing_a_patient_warns_and_goes_on(data_dir, tmp_path):
    import shutil
    import warnings

    from radpipe.dataset.build import BuildOptions, sunnybrook_jobs
    from radpipe.errors import RadpipeWarning

    root = tmp_path / "sunnybrook"
    shutil.copytree(data_dir / "sunnybrook", root)
    link = (root / "link.csv").read_text()
    (root / "link.csv").write_text(link.rstrip("\n") + "\nSCD_MISSING,SC-HF-I-99\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        jobs = sunnybrook_jobs(root, BuildOptions())
    assert len(jobs) == 3
    messages = [str(w.message) for w in caught if issubclass(w.category, RadpipeWarning)]
    assert any("SCD_MISSING" in m and "skipped" in m for m in messages)


def test_a_script_that_takes_one_batch_exits(tmp_path):
    """`next(iter(BatchLoader(...)))` (and the Keras iterator) at the end of a script: the
    process exits within seconds (it used to hang on the prefetch thread)."""
    import subprocess
    import sys
    import time

    from radpipe.catalog.patients import annotated_patients
    from radpipe.catalog.store import scan
    from radpipe.dataset.build import BuildOptions, PatientJob, build
    from radpipe.phantom import write_phantom_study

    write_phantom_study(tmp_path / "study", shape=(24, 64, 64), tumours=1, seed=2)
    catalog, _ = scan(tmp_path / "study", tmp_path / "c.sqlite", workers=1)
    with catalog:
        (patient,) = annotated_patients(catalog)
    job = PatientJob(patient, "catalog", (str(tmp_path / "c.sqlite"),), BuildOptions())
    path, *_ = build([job], tmp_path / "d.h5", options=BuildOptions(), label_names={}, workers=1)
    for code in (
        "x = next(iter(BatchLoader(sys.argv[1], batch_size=4, prefetch=2)))",
        "x = next(BatchLoader(sys.argv[1], batch_size=4).keras())",
    ):
        # the script's last line prints the time; the process must be gone soon after (the
        # imports before it, Keras with its backend above all, take seconds and do not count)
        result = subprocess.run(
            [sys.executable, "-c", f"import sys, time\nfrom radpipe.dataset.loader import "
             f"BatchLoader\n{code}\nprint('ok', time.time())", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        ended = time.time()
        assert result.returncode == 0 and "ok" in result.stdout, result.stderr
        assert ended - float(result.stdout.split()[-1]) < 3


def _zscore(image):
    return ((image - image.mean()) / image.std()).astype(np.float32)


def _find_window(whole, patch):
    """The start of ``patch`` inside ``whole`` (exact values), or None."""
    rows, columns = patch.shape
    for r, c in np.argwhere(whole[: whole.shape[0] - rows + 1, : whole.shape[1] - columns + 1]
                            == patch[0, 0]):  # fmt: skip
        if np.array_equal(whole[r : r + rows, c : c + columns], patch):
            return int(r), int(c)
    return None


def test_loader_normalizes_whole_slices_before_cutting_windows(data_dir, tmp_path):
    # a per-slice z-score must use the slice's statistics (what inference sees), not the window's
    path = tmp_path / "sb.h5"
    assert main(["dataset", "build", "--data-directory", str(data_dir / "sunnybrook"),
                 "-o", str(path), "--labels", "endocardium=1"]) == 0  # fmt: skip
    reader = DatasetReader(path)
    loader = BatchLoader(path, batch_size=4, shuffle=False, epochs=1, patch_size=(96, 96),
                         foreground_fraction=1.0, normalize=_zscore, prefetch=0)  # fmt: skip
    batch = next(iter(loader))
    images, masks = reader.read(batch["index"])
    for patch, mask, whole, whole_mask in zip(
        batch["image"][:, 0], batch["mask"][:, 0], images, masks, strict=True
    ):
        normalized = _zscore(whole.astype(np.float32))
        start = _find_window(normalized, patch)
        assert start is not None, "the window is not a window of the normalized slice"
        r, c = start
        np.testing.assert_array_equal(mask, whole_mask[r : r + 96, c : c + 96])
        assert mask.any()  # centred on the ventricle
        assert abs(float(patch.mean())) > 0.05  # a window's own z-score would have mean 0
    plain = next(iter(BatchLoader(path, batch_size=2, shuffle=False, normalize=_zscore)))
    np.testing.assert_allclose(
        plain["image"][:, 0], [_zscore(x.astype(np.float32)) for x in reader.read([0, 1])[0]]
    )


def test_patch_augmentation_reads_the_anatomy_around_the_window():
    shape, patch = (160, 160), (48, 48)
    rows, columns = np.meshgrid(np.arange(160), np.arange(160), indexing="ij")
    row_image, column_image = rows.astype(np.float32), columns.astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    mask[76:84, 76:84] = 1  # the window is centred here
    augment = Augment(flip_horizontal=0.5, rotate=1.0, max_angle=180, crop_zoom=1.0,
                      zoom_range=(0.7, 1.4))  # fmt: skip
    context = augment.context_shape(patch)
    assert context[0] == context[1] >= int(np.ceil(48 * (2 * 1.4 - 1) * np.sqrt(2)))
    from radpipe.dataset.patches import cut_context_pair

    side = context[0]
    reached_beyond = 0
    for seed in range(30):
        windows = [
            cut_context_pair(
                image, mask, patch, context, np.random.default_rng(seed), foreground_fraction=1.0
            )
            for image in (row_image, column_image)
        ]
        # context windows are centred on the patch, which is centred on the label
        np.testing.assert_array_equal(windows[0][1], windows[1][1])
        window_rows, window_mask = windows[0]
        centre = side // 2
        assert window_mask[centre - 4 : centre + 4, centre - 4 : centre + 4].any()
        outputs = [augment(w, m, np.random.default_rng([seed, 1]), output_shape=patch)
                   for w, m in windows]  # fmt: skip
        (moved_rows, out_mask), (moved_columns, same_mask) = outputs
        assert moved_rows.shape == patch and out_mask.shape == patch
        np.testing.assert_array_equal(out_mask, same_mask)
        # every output pixel read inside the context window: the image was not clamped at its edge
        first_row = float(window_rows[0, 0])
        assert (moved_rows > first_row).all() and (moved_rows < first_row + side - 1).all()
        # the mask lands where its source pixels are
        labelled = out_mask > 0
        source = mask[np.rint(moved_rows[labelled]).astype(int),
                      np.rint(moved_columns[labelled]).astype(int)]  # fmt: skip
        assert (source == out_mask[labelled]).mean() > 0.9
        offset_rows = np.abs(moved_rows - 79.5)
        offset_columns = np.abs(moved_columns - 79.5)
        reached_beyond += int((np.maximum(offset_rows, offset_columns) > 24 + 4).any())
    assert reached_beyond >= 25  # zooms out and rotations show what lies around the patch
    # a pure rotation of a centred window equals the centre of the rotated whole
    turn = Augment(flip_horizontal=0.0, rotate=1.0, max_angle=180)
    whole, _ = turn(row_image, mask, np.random.default_rng(7))
    centred, _ = turn(row_image, mask, np.random.default_rng(7), output_shape=(64, 64))
    np.testing.assert_allclose(centred, whole[48:112, 48:112], atol=1e-3)
    with pytest.raises(ValueError, match="larger than the context"):
        turn(row_image[:40, :40], mask[:40, :40], np.random.default_rng(0), output_shape=(64, 64))
