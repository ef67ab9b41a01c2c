"""Masks from SEG, RTSTRUCT, contour files and label maps against their references."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pydicom
import pytest
from skimage.draw import polygon as skimage_polygon

import radpipe
from radpipe.errors import FormatError, GeometryError, SeriesError
from radpipe.export.seg import write_seg
from radpipe.io.contours import read_polygon_file, read_rtstruct, sunnybrook_masks
from radpipe.io.mask_sources import load_mask_file
from radpipe.io.seg import read_seg
from radpipe.masks import rasterize_polygon
from radpipe.volume import LabelMap


def test_polygon_rule_equals_scikit_image_on_every_pixel(data_dir):
    """Random polygons, integer vertices (centres exactly on edges) and every real Sunnybrook
    contour file: identical to skimage.draw.polygon2mask, pixel for pixel."""
    from skimage.draw import polygon2mask

    from radpipe.io.contours import read_polygon_file

    rng = np.random.default_rng(0)
    shapes = [rng.uniform(-3, 40, size=(rng.integers(3, 12), 2)) for _ in range(50)]
    shapes += [rng.integers(0, 36, size=(rng.integers(3, 8), 2)).astype(float) for _ in range(50)]
    for points in shapes:
        ours = rasterize_polygon(points, (36, 38))
        np.testing.assert_array_equal(ours, polygon2mask((36, 38), points[:, ::-1]))
    files = sorted((data_dir / "sunnybrook" / "contourfiles").rglob("*.txt"))
    assert len(files) > 50
    pixels = 0
    for path in files:
        points = read_polygon_file(path)
        ours = rasterize_polygon(points, (256, 256))
        np.testing.assert_array_equal(ours, polygon2mask((256, 256), points[:, ::-1]))
        pixels += int(ours.sum())
    assert pixels > 80_000
    square = rasterize_polygon([(0.5, 0.5), (3.5, 0.5), (3.5, 2.5), (0.5, 2.5)], (5, 5))
    assert np.argwhere(square).tolist() == [[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [2, 3]]


def test_dcmqi_seg_equals_the_nrrd_voxel_for_voxel(data_dir):
    folder = data_dir / "dcmqi/data/segmentations"
    image = radpipe.load(folder / "ct-3slice")
    liver = read_seg(folder / "liver.dcm", image)
    reference = radpipe.load(folder / "liver_seg.nrrd")
    assert liver.voxel_counts() == {"Liver": 107_098}
    np.testing.assert_array_equal(liver.masks["Liver"], reference.array != 0)
    overlaps = read_seg(folder / "partial_overlaps.dcm", image).voxel_counts()
    assert sorted(overlaps.values()) == sorted([9602, 11888, 10743, 6693, 4713])


def test_seg_of_another_series_is_refused(data_dir):
    image = radpipe.load(data_dir / "dcm_qa_ct/In/Philips/S21570/S2010")
    with pytest.raises(SeriesError, match=r"liver\.dcm: segments series .*not the image's"):
        read_seg(data_dir / "dcmqi/data/segmentations/liver.dcm", image)


def test_seg_written_by_radpipe_reads_back_through_highdicom(phantom_study, tmp_path):
    import highdicom as hd

    image = radpipe.load(phantom_study.series_folder)
    labels = LabelMap(
        phantom_study.phantom.labels.array,
        image.affine,
        labels={1: "liver", 2: "tumor", 3: "spleen"},
    )
    path = write_seg(labels, image.meta.source_files, tmp_path / "seg.dcm", keep_phi=True)
    segmentation = hd.seg.segread(str(path))
    assert [
        segmentation.get_segment_description(n).segment_label
        for n in segmentation.get_segment_numbers()
    ] == ["liver", "tumor", "spleen"]
    back = read_seg(path, image)
    for value, name in labels.labels.items():
        np.testing.assert_array_equal(back.masks[name], labels.array == value)


def test_rtstruct_matches_an_independent_rasterisation(data_dir):
    for patient in ("pat_2", "pat_3"):
        folder = data_dir / "pyCERR/radiomics_phantom_dicom" / patient
        structure = next(folder.glob("*RS*"))
        image = radpipe.load(folder)
        masks = read_rtstruct(structure, image)
        ours = masks.masks["GTV-1"]
        dataset = pydicom.dcmread(structure)
        theirs = np.zeros(image.spatial_shape, bool)
        area_mm2 = 0.0
        for roi in dataset.ROIContourSequence:
            for contour in roi.ContourSequence:
                points = np.asarray(contour.ContourData, float).reshape(-1, 3)
                index = image.world_to_index(points)
                k = round(float(index[:, 0].mean()))
                rows, columns = skimage_polygon(
                    index[:, 1], index[:, 2], shape=image.spatial_shape[1:]
                )
                plane = np.zeros(image.spatial_shape[1:], bool)
                plane[rows, columns] = True
                theirs[k] ^= plane
                x, y = points[:, 0], points[:, 1]
                area_mm2 += 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
        assert int(ours.sum()) == int(theirs.sum())
        volume_mm3 = ours.sum() * image.voxel_volume_mm3
        assert volume_mm3 == pytest.approx(area_mm2 * image.spacing[0], rel=0.02)


def test_rtstruct_without_its_images_is_refused(data_dir):
    image = radpipe.load(data_dir / "pyCERR/radiomics_phantom_dicom/pat_2")
    other = next((data_dir / "pyCERR/radiomics_phantom_dicom/pat_3").glob("*RS*"))
    with pytest.raises(SeriesError, match="references series"):
        read_rtstruct(other, image)


def test_sunnybrook_contours_make_masks_inner_inside_outer(data_dir):
    with open(data_dir / "sunnybrook/link.csv") as handle:
        link = {row[1]: row[0] for row in csv.reader(handle) if len(row) == 2}
    total = 0
    for contours, images in link.items():
        found = sunnybrook_masks(
            data_dir / "sunnybrook/dicoms" / images, data_dir / "sunnybrook/contourfiles" / contours
        )
        for _, (image, masks) in found.items():
            assert image.spatial_shape[0] == 1
            inner, outer = masks.masks.get("endocardium"), masks.masks.get("epicardium")
            if inner is not None:
                assert inner.sum() > 0
                total += 1
            if inner is not None and outer is not None:
                # manual contours may touch: at most 0.5 % of the cavity pokes through (1 pixel
                # of 1043 in SC-HF-I-1 image 59)
                assert (inner & ~outer).sum() <= 0.005 * inner.sum()
                ring = masks.masks["myocardium"]
                assert not (ring & inner).any() and not (ring & ~outer).any()
    files = list((data_dir / "sunnybrook/contourfiles").rglob("*-icontour-manual.txt"))
    assert total == len(files)


def test_contour_file_with_text_and_mask_of_another_size(tmp_path, phantom_study):
    bad = tmp_path / "IM-0001-0001-icontour-manual.txt"
    bad.write_text("10.0 12.0\nnot numbers\n")
    with pytest.raises(FormatError, match="line 2 is not two numbers"):
        read_polygon_file(bad)
    image = radpipe.load(phantom_study.series_folder)
    elsewhere = np.eye(4)
    elsewhere[:3, 3] = (5000.0, 5000.0, 5000.0)
    radpipe.save(radpipe.Volume(np.ones((4, 8, 8), np.uint8), elsewhere), tmp_path / "far.nii.gz")
    with pytest.raises(GeometryError, match="does not overlap the image"):
        load_mask_file(tmp_path / "far.nii.gz", image, name="liver")


def test_label_map_on_another_grid_is_resampled(phantom_study, tmp_path):
    image = radpipe.load(phantom_study.series_folder)
    labels = phantom_study.phantom.labels
    coarse = LabelMap(
        labels.array[::2, ::2, ::2].copy(), labels.affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    )
    radpipe.save(coarse, tmp_path / "coarse.nii.gz")
    masks = load_mask_file(
        tmp_path / "coarse.nii.gz", image, label_names={1: "liver", 2: "tumor", 3: "spleen"}
    )
    liver = masks.masks["liver"]
    assert liver.shape == image.spatial_shape
    agreement = (liver == (labels.array == 1)).mean()
    assert agreement > 0.97


def test_seg_is_deidentified_like_its_images_unless_keep_phi(phantom_study, tmp_path, capsys):
    """The SEG carries the pseudonym, shifted dates and remapped UIDs `radpipe deidentify` gives
    its source (so it references the de-identified images), no planted identifier, and nothing
    on stderr names the patient; --keep-phi keeps the real identity."""
    import highdicom as hd
    import pydicom

    from radpipe.cli.main import main
    from radpipe.export.deidentify import deidentify_tree, remap_uid
    from radpipe.privacy import pseudonym_key

    source = pydicom.dcmread(phantom_study.files[0])
    planted = [str(source.PatientName), str(source.PatientID)]
    out = tmp_path / "seg.dcm"
    command = ["masks", "convert", str(phantom_study.labels_path), str(out),
               "--image", str(phantom_study.series_folder)]  # fmt: skip
    assert main(command) == 0
    err = capsys.readouterr().err
    assert not [value for value in planted if value in err]
    data = out.read_bytes()
    assert not [value for value in planted if value.encode() in data]
    seg = hd.seg.segread(str(out))
    deidentify_tree(phantom_study.series_folder, tmp_path / "clean")
    clean = pydicom.dcmread(sorted((tmp_path / "clean").rglob("*.dcm"))[0])
    assert seg.PatientID == clean.PatientID and seg.StudyDate == clean.StudyDate
    assert seg.StudyInstanceUID == clean.StudyInstanceUID
    key = pseudonym_key()
    (referenced,) = {item.SeriesInstanceUID for item in seg.ReferencedSeriesSequence}
    assert referenced == remap_uid(str(source.SeriesInstanceUID), key) == clean.SeriesInstanceUID
    names = {d.segment_label: d for d in (seg.get_segment_description(n)
             for n in seg.get_segment_numbers())}  # fmt: skip
    assert names["liver"].segmented_property_type.meaning == "Liver"
    assert names["tumor"].segmented_property_type.meaning == "Neoplasm"
    assert seg.SeriesDescription == "radpipe segmentation"
    assert main([*command, "--overwrite", "--keep-phi"]) == 0
    kept = pydicom.dcmread(out)
    assert kept.PatientID == source.PatientID and kept.PatientName == source.PatientName


def test_liver_seg_in_every_encoding_gives_107098_voxels(data_dir, tmp_path):
    """The dcmqi liver SEG as stored, re-encoded here as implicit VR and deflated, and
    pydicom-data's big-endian copy: the same 107,098 liver voxels."""
    import warnings

    import pydicom
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

    original = data_dir / "dcmqi/data/segmentations/liver.dcm"
    paths = [original]
    for name, syntax in (("implicit", ImplicitVRLittleEndian),
                         ("deflated", DeflatedExplicitVRLittleEndian)):  # fmt: skip
        dataset = pydicom.dcmread(original)
        dataset.file_meta.TransferSyntaxUID = syntax
        dcmwrite(tmp_path / f"{name}.dcm", dataset, enforce_file_format=True)
        assert pydicom.dcmread(tmp_path / f"{name}.dcm").file_meta.TransferSyntaxUID == syntax
        paths.append(tmp_path / f"{name}.dcm")
    data_store = pytest.importorskip("data_store")
    paths.append(Path(data_store.__file__).parent / "data" / "liver_expb.dcm")  # big endian
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = [read_seg(path).voxel_counts() for path in paths]
    assert counts == [{"Liver": 107_098}] * len(paths)


def test_rtstruct_reports_its_planar_contour_volume_and_what_the_grid_misses(data_dir, tmp_path):
    """pyCERR GTV-1: the stacked planar-contour volume agrees with the voxel volume within 3 %
    on the full CT; on a single CT slice (structures many slices tall) the voxel volume is a
    fraction of it, and a ContourWarning says so instead of a silent small number."""
    import shutil
    import warnings

    from radpipe.errors import ContourWarning

    folder = data_dir / "pyCERR/radiomics_phantom_dicom/pat_2"
    structure = next(folder.glob("*RS*"))
    image = radpipe.load(folder)
    masks = read_rtstruct(structure, image)
    voxel_ml = masks.masks["GTV-1"].sum() * image.voxel_volume_mm3 / 1000
    contour_ml = masks.contour_volumes_ml["GTV-1"]
    assert contour_ml == pytest.approx(voxel_ml, rel=0.03)
    k = int(np.argmax(masks.masks["GTV-1"].sum(axis=(1, 2))))
    (tmp_path / "one").mkdir()
    shutil.copy(image.meta.source_files[k], tmp_path / "one" / "slice.dcm")
    single = radpipe.load(tmp_path / "one")
    with pytest.warns(ContourWarning, match=r"the image grid holds .* mL of its"):
        warnings.simplefilter("always")
        thin = read_rtstruct(structure, single)
    assert thin.contour_volumes_ml["GTV-1"] == pytest.approx(contour_ml)
    assert thin.masks["GTV-1"].sum() * single.voxel_volume_mm3 / 1000 < 0.5 * contour_ml


def test_label_map_and_fractional_segs_read_like_binary_ones(data_dir):
    """highdicom's test SEGs: the same segmentation stored binary, as a label map and as a
    palette-colour label map gives identical segments; a fractional SEG thresholds at 0.5."""
    import warnings

    folder = data_dir / "highdicom/data/test_files"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        binary = read_seg(folder / "seg_image_sm_control.dcm")
        labelmap = read_seg(folder / "seg_image_sm_control_labelmap.dcm")
        palette = read_seg(folder / "seg_image_sm_control_labelmap_palette_color.dcm")
        fractional = read_seg(folder / "seg_image_ct_true_fractional.dcm")
    assert binary.voxel_counts() == labelmap.voxel_counts() == palette.voxel_counts()
    for name, mask in binary.masks.items():
        np.testing.assert_array_equal(mask, labelmap.masks[name])
    assert sum(binary.voxel_counts().values()) > 400
    assert fractional.voxel_counts() == {"first segment": 638}


def _packbits_literal(data: bytes) -> bytes:
    """A valid PackBits encoding of ``data`` using literal runs only (the test's own encoder)."""
    out = bytearray()
    for start in range(0, len(data), 128):
        chunk = data[start : start + 128]
        out.append(len(chunk) - 1)
        out += chunk
    return bytes(out)


def test_one_bit_rle_seg_is_decoded_by_radpipe(data_dir, tmp_path):
    """pydicom cannot decode 1-bit RLE: radpipe expands the PackBits segments itself. The liver
    SEG re-encoded frame by frame as 1-bit RLE gives the same 107,098 voxels."""
    import struct
    import warnings

    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    dataset = pydicom.dcmread(data_dir / "dcmqi/data/segmentations/liver.dcm")
    rows, columns, frames = int(dataset.Rows), int(dataset.Columns), int(dataset.NumberOfFrames)
    bits = np.unpackbits(np.frombuffer(dataset.PixelData, np.uint8), bitorder="little")
    encoded = []
    for frame in range(frames):
        plane = bits[frame * rows * columns : (frame + 1) * rows * columns]
        segment = _packbits_literal(np.packbits(plane, bitorder="little").tobytes())
        header = struct.pack("<16I", 1, 64, *([0] * 14))
        encoded.append(header + segment + (b"\0" if len(segment) % 2 else b""))
    dataset.PixelData = encapsulate(encoded)
    dataset["PixelData"].is_undefined_length = True
    dataset.file_meta.TransferSyntaxUID = RLELossless
    dataset.save_as(tmp_path / "rle.dcm", enforce_file_format=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert read_seg(tmp_path / "rle.dcm").voxel_counts() == {"Liver": 107_098}
