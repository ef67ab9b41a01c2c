"""Every combination of two spatial objects goes by world position: flipped label maps, heatmaps
on other grids, label maps that lose no names. References: the phantom's known label map, the
dcmqi liver SEG and its NRRD (real GE CT), highdicom reading what radpipe writes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import radpipe
from radpipe.errors import GeometryError, ResampledWarning
from radpipe.phantom import make_phantom
from radpipe.placement import heatmap_on, labels_on
from radpipe.volume import Heatmap, LabelMap, Volume

FLIP_SLICES = np.array([[-1.0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])


def flipped_slices(labels: LabelMap) -> LabelMap:
    """The same label map stored with its slices in the opposite order (affine adjusted)."""
    count = labels.spatial_shape[0]
    flip = FLIP_SLICES.copy()
    flip[0, 3] = count - 1
    return labels.like(labels.array[::-1].copy(), labels.affine @ flip)


def test_flipped_label_map_keeps_every_voxel_in_place():
    phantom = make_phantom(shape=(24, 64, 64), tumours=2, seed=3)
    flipped = flipped_slices(phantom.labels)
    assert not np.array_equal(flipped.array, phantom.labels.array)
    probe = np.array([5.0, 20.0, 30.0])
    world = phantom.labels.index_to_world(probe)
    back = np.rint(flipped.world_to_index(world)).astype(int)
    assert flipped.array[tuple(back)] == phantom.labels.array[tuple(probe.astype(int))]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResampledWarning)  # exact placement: no warning
        placed = labels_on(flipped, phantom.ct)
    np.testing.assert_array_equal(placed.array, phantom.labels.array)
    np.testing.assert_allclose(placed.affine, phantom.ct.affine)
    assert placed.labels == phantom.labels.labels


def test_label_map_keeps_type_and_names_through_operations():
    phantom = make_phantom(shape=(24, 64, 64), tumours=1, seed=3)
    labels = phantom.labels
    for result in (
        labels.with_array(labels.array.copy()),
        labels.reoriented("RAI"),
        labels.like(labels.array[::-1].copy()),
    ):
        assert isinstance(result, LabelMap)
        assert result.labels == labels.labels
    moved = labels.reoriented("RAI")
    assert moved.orientation_code == "RAI"
    corner = np.array([0.0, 0.0, 0.0])
    k, j, i = np.rint(labels.world_to_index(moved.index_to_world(corner))).astype(int)
    assert moved.array[0, 0, 0] == labels.array[k, j, i]


def test_float_labels_are_refused_not_rounded():
    phantom = make_phantom(shape=(24, 64, 64), tumours=1, seed=3)
    values = phantom.labels.array.astype(np.float32)
    values[values == 2] = 1.46
    with pytest.raises(GeometryError, match="whole numbers"):
        labels_on(Volume(values, phantom.ct.affine), phantom.ct)
    values[0, 0, 0] = np.nan
    with pytest.raises(GeometryError, match="NaN"):
        labels_on(Volume(values, phantom.ct.affine), phantom.ct)


def test_label_map_far_away_is_refused_with_both_geometries():
    phantom = make_phantom(shape=(24, 64, 64), tumours=1, seed=3)
    far = phantom.labels.affine.copy()
    far[:3, 3] += 10_000.0
    with pytest.raises(GeometryError, match=r"does not overlap the image .*shape \(24, 64, 64\)"):
        labels_on(phantom.labels.like(phantom.labels.array, far), phantom.ct)


def test_heatmap_nifti_on_another_grid_is_placed_by_world_position(tmp_path):
    phantom = make_phantom(shape=(24, 64, 64), spacing=(2.5, 2.0, 2.0), tumours=1, seed=5)
    # a linear ramp along world x: linear resampling reproduces it exactly inside the grid
    ct = phantom.ct
    x = ct.index_to_world(np.stack(np.indices(ct.spatial_shape), axis=-1).astype(float))[..., 0]
    coarse_affine = ct.affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    coarse = Volume(np.zeros((12, 32, 32), np.float32), coarse_affine)
    coarse_x = coarse.index_to_world(np.stack(np.indices((12, 32, 32)), axis=-1).astype(float))
    radpipe.save(coarse.with_array(coarse_x[..., 0].astype(np.float32)), tmp_path / "h.nii.gz")
    from radpipe.io.heatmaps import read_heatmap

    heat = read_heatmap(tmp_path / "h.nii.gz")
    assert heat.has_geometry
    with pytest.warns(ResampledWarning, match="different grids"):
        placed = heatmap_on(heat, ct)
    inside = np.isfinite(placed.array)
    assert inside[:20, :60, :60].all()
    np.testing.assert_allclose(placed.array[inside], x[inside], atol=1e-3)
    # the same heatmap stored upside down lands in the same place, without interpolation
    flip = FLIP_SLICES.copy()
    flip[0, 3] = 11
    upside_down = heat.like(heat.array[::-1].copy(), heat.affine @ flip)
    placed_again = heatmap_on(upside_down, coarse.with_array(coarse_x[..., 0]))
    np.testing.assert_allclose(placed_again.array, coarse_x[..., 0], atol=1e-4)


def test_heatmap_without_geometry_keeps_index_placement():
    phantom = make_phantom(shape=(24, 64, 64), tumours=1, seed=5)
    heat = Heatmap(np.arange(64 * 64, dtype=np.float32).reshape(64, 64), source="h.json")
    placed = heatmap_on(heat, phantom.ct, index=7)
    assert isinstance(placed, Heatmap) and placed.has_geometry
    np.testing.assert_array_equal(placed.array[7], heat.values)
    assert np.isnan(placed.array[6]).all()


def test_seg_of_a_flipped_label_map_lands_where_the_truth_is(phantom_study, tmp_path):
    import highdicom as hd

    from radpipe.export.seg import write_seg

    image = radpipe.load(phantom_study.series_folder)
    truth = LabelMap(phantom_study.phantom.labels.array, image.affine, labels={1: "liver",
                     2: "tumor", 3: "spleen"})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResampledWarning)
        path = write_seg(flipped_slices(truth), image.meta.source_files, tmp_path / "seg.dcm")
    segmentation = hd.seg.segread(str(path))
    volume = segmentation.get_volume(combine_segments=True, relabel=False)
    read_back = Volume(np.asarray(volume.array), np.asarray(volume.affine, dtype=np.float64))
    numbers = {
        str(segmentation.get_segment_description(n).segment_label): n
        for n in segmentation.get_segment_numbers()
    }
    placed = labels_on(LabelMap.from_volume(read_back), image)
    for value, name in truth.labels.items():
        expected = truth.array == value
        got = placed.array == numbers[name]
        dice = 2 * (expected & got).sum() / (expected.sum() + got.sum())
        assert dice == 1.0, name


def test_seg_of_a_label_map_elsewhere_is_refused(phantom_study, tmp_path):
    from radpipe.export.seg import write_seg

    image = radpipe.load(phantom_study.series_folder)
    far = image.affine.copy()
    far[:3, 3] += 5000.0
    labels = LabelMap(phantom_study.phantom.labels.array, far)
    with pytest.raises(GeometryError, match="does not overlap the source images"):
        write_seg(labels, image.meta.source_files, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_dcmqi_liver_seg_read_in_either_slice_order_equals_the_nrrd(data_dir):
    from radpipe.io.seg import read_seg

    folder = data_dir / "dcmqi/data/segmentations"
    image = radpipe.load(folder / "ct-3slice")
    reference = radpipe.load(folder / "liver_seg.nrrd")
    masks = read_seg(folder / "liver.dcm", image)
    (liver,) = masks.masks.values()
    assert int(liver.sum()) == 107_098
    truth = labels_on(reference, image)
    np.testing.assert_array_equal(liver, truth.array != 0)
    upside_down = LabelMap(liver[::-1].astype(np.uint8), image.affine @ _flip(3))
    np.testing.assert_array_equal(labels_on(upside_down, image).array != 0, liver)


def _flip(count: int) -> np.ndarray:
    flip = FLIP_SLICES.copy()
    flip[0, 3] = count - 1
    return flip


@pytest.mark.parametrize("code", ["LPS", "RAI", "SLP", "IRA"])
def test_exact_placement_equals_simpleitk_for_any_axis_order_and_part(code):
    """A label map reoriented (axes permuted / flipped) and cut to a part of the grid is placed
    by index arithmetic; SimpleITK's nearest-neighbour resampler is the oracle."""
    import SimpleITK as sitk

    from radpipe.placement import copy_coinciding, voxels_coincide

    phantom = make_phantom(shape=(24, 64, 64), tumours=2, seed=9)
    moved = phantom.labels.reoriented(code)
    part = moved.like(moved.array[2:-3, 5:40, 1:].copy(), moved.affine.copy())
    part_affine = part.affine.copy()
    part_affine[:3, 3] = moved.index_to_world([2, 5, 1])
    part = part.like(part.array, part_affine)
    assert voxels_coincide(part, phantom.ct)
    ours = copy_coinciding(part.array, part.affine, phantom.ct, fill=0)
    reference = sitk.Image([64, 64, 24], sitk.sitkUInt8)
    ct = phantom.ct
    reference.SetSpacing(ct.spacing[::-1])
    reference.SetOrigin(ct.origin)
    reference.SetDirection(tuple(float(v) for v in ct.direction[:, ::-1].ravel()))
    oracle = sitk.GetArrayFromImage(
        sitk.Resample(part.to_sitk(), reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    )
    np.testing.assert_array_equal(ours, oracle)
    assert 0 < int((ours > 0).sum()) < int((phantom.labels.array > 0).sum())
