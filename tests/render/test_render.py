"""Views: radiological orientation whatever the stored orientation, aspect, overlays, real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

import radpipe
from radpipe import geometry
from radpipe.errors import GeometryError, ResampledWarning
from radpipe.phantom import make_phantom, tumour_heatmap
from radpipe.render import HeatmapStyle, lightbox, overlay, three_plane, view
from radpipe.volume import LabelMap, Volume
from radpipe.windowing import Window

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
PLAIN = {"annotations": False, "window": Window(50, 100)}


def coordinate_volume(axis: int, code: str) -> Volume:
    """A 1 mm cube whose values equal one LPS coordinate (0 x, 1 y, 2 z), stored as ``code``."""
    affine = np.eye(4)
    affine[:3, :3] = np.array([[0, 0, 1], [0, 1, 0], [1, 0, 0]])  # (k, j, i) -> (z, y, x): LPS
    indices = np.indices((40, 40, 40)).astype(np.float32)
    world = geometry.index_to_world(affine, np.moveaxis(indices, 0, -1))
    lps = Volume(world[..., axis] * 2.5, affine)
    return lps.reoriented(code)


@pytest.mark.parametrize("code", ["LPS", "RAS", "PIR", "SAL"])
def test_radiological_convention_whatever_the_storage(code):
    # axial: patient left (x grows) on the image's right; anterior (y small) at the top
    left = view(coordinate_volume(0, code), plane="axial", **PLAIN)[..., 0].astype(int)
    assert left[20, -1] > left[20, 0]
    front = view(coordinate_volume(1, code), plane="axial", **PLAIN)[..., 0].astype(int)
    assert front[0, 20] < front[-1, 20]
    # coronal and sagittal: head (z large) at the top
    for plane in ("coronal", "sagittal"):
        head = view(coordinate_volume(2, code), plane=plane, **PLAIN)[..., 0].astype(int)
        assert head[0, 20] > head[-1, 20]
    # sagittal: anterior (y small) on the left
    sagittal = view(coordinate_volume(1, code), plane="sagittal", **PLAIN)[..., 0].astype(int)
    assert sagittal[20, 0] < sagittal[20, -1]


def test_real_head_ct_views_have_head_up_and_true_aspect(data_dir):
    ct = radpipe.load(data_dir / "dcm_qa_ct/In/Philips/S21570/S2010")  # 28 × 5 mm, 512 × 0.45 mm
    for plane, width_mm in (("coronal", 512 * 0.451171875), ("sagittal", 512 * 0.451171875)):
        image = view(ct, plane=plane, annotations=False, window="brain")
        height, width = image.shape[:2]
        assert height / width == pytest.approx(28 * 5.0 / width_mm, abs=0.01)
        margin = width // 12  # leave out the head holder's side bars
        bone = image[:, margin:-margin, 0] > 250  # at least 80 HU: the skull
        # the skull base (dense, wide) lies below, the thin vertex above: with the head up
        # the lower half holds far more bone than the upper half
        upper, lower = int(bone[: height // 2].sum()), int(bone[height // 2 :].sum())
        assert lower > 3 * upper


def test_pydicom_ct_mr_and_rgb_render():
    for name in ("CT_small.dcm", "MR_small.dcm"):
        image = view(radpipe.load(PYDICOM_FILES / name))
        assert image.dtype == np.uint8 and image.shape[2] == 3 and image.std() > 10
    source = radpipe.load(PYDICOM_FILES / "SC_rgb_rle.dcm")
    assert source.shape[-1] == 3
    image = view(source, annotations=False)
    # colour passes through windowing untouched (uniform corners keep their exact colour)
    assert image[0, 0].tolist() == source.array[0, 0, 0].tolist()
    assert image[-1, -1].tolist() == source.array[0, -1, -1].tolist()


def test_heatmap_overlay_on_the_tumour():
    phantom = make_phantom(shape=(32, 96, 96), spacing=(2.5, 2.0, 2.0), tumours=1, seed=5)
    heat = tumour_heatmap(phantom)
    centre = np.rint(phantom.ct.world_to_index(phantom.tumours[0].centre_mm)).astype(int)
    image = view(phantom.ct, index=int(centre[0]), heatmap=heat, annotations=False,
                 style=HeatmapStyle(colormap="red", opacity=1.0, threshold=0.5))  # fmt: skip
    red = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
    rows, columns = np.nonzero(red)
    scale = image.shape[0] / 96
    assert abs(rows.mean() / scale - centre[1]) < 2 and abs(columns.mean() / scale - centre[2]) < 2


def test_2d_heatmap_resized_or_boxed():
    phantom = make_phantom(shape=(16, 64, 64), spacing=(2.0, 2.0, 2.0), tumours=0, seed=1)
    small = np.ones((16, 16), np.float32)
    with pytest.warns(ResampledWarning, match=r"\(16, 16\) differs from the image's \(64, 64\)"):
        overlay(
            phantom.ct,
            small,
            heatmap_index=8,
            index=8,
            opacity=1.0,
            colormap="red",
            annotations=False,
        )
    options = {"heatmap_index": 8, "index": 8, "opacity": 1.0, "colormap": "red"}
    boxed = overlay(phantom.ct, small, normalization="none", annotations=False,
                    heatmap_box=(0, 0, 16, 16), **options)  # fmt: skip
    scale = boxed.shape[0] // 64
    assert boxed[2 * scale, 2 * scale].tolist() == [255, 0, 0]
    assert (
        boxed[40 * scale, 40 * scale, 1] == boxed[40 * scale, 40 * scale, 0]
    )  # grey outside the box
    with pytest.raises(GeometryError, match="does not fit"):
        overlay(phantom.ct, small, heatmap_index=8, heatmap_box=(60, 60, 16, 16))


def test_masks_three_plane_and_lightbox():
    phantom = make_phantom(shape=(24, 64, 64), spacing=(2.5, 2.0, 2.0), tumours=1, seed=2)
    labels = LabelMap(
        phantom.labels.array, phantom.ct.affine, labels={1: "liver", 2: "tumor", 3: "spleen"}
    )
    plain = three_plane(phantom.ct, annotations=False)
    masked = three_plane(phantom.ct, mask=labels, annotations=False)
    assert plain.shape == masked.shape
    assert (plain != masked).any()
    montage = lightbox(phantom.ct, count=9, annotations=False)
    assert montage.shape[0] > plain.shape[0]


def test_a_3d_heatmap_is_normalised_over_the_volume_not_the_slice():
    """A slice whose maximum is 0.2 % of the volume's is drawn nearly black, not full red (as the
    viewer colours it); per-slice normalisation only when asked; the colour bar's ends are the
    real values."""
    from radpipe.render import HeatmapStyle, view
    from radpipe.volume import Heatmap

    phantom = make_phantom(shape=(16, 64, 64), spacing=(2.0, 2.0, 2.0), tumours=0, seed=1)
    values = np.zeros((16, 64, 64), np.float32)
    values[5] = 1000.0
    values[10, 20:40, 20:40] = 2.0
    heat = Heatmap(values, phantom.ct.affine, source="model")
    options = {"index": 10, "annotations": False}
    style = HeatmapStyle(colormap="red", opacity=1.0, normalization="minmax")
    whole = view(phantom.ct, heatmap=heat, style=style, **options)
    scale = whole.shape[0] // 64
    assert whole[30 * scale, 30 * scale, 0] <= 2  # 2 / 1000 of the range: black
    per_slice = view(phantom.ct, heatmap=heat, style=HeatmapStyle(colormap="red", opacity=1.0,
                     normalization="minmax", scope="slice"), **options)  # fmt: skip
    assert per_slice[30 * scale, 30 * scale, 0] == 255
    with_bar = view(phantom.ct, heatmap=heat, style=style, colorbar=True, **options)
    assert with_bar.shape[1] > whole.shape[1]
    from radpipe.colormaps import normalization_range

    assert normalization_range(values, "minmax") == (0.0, 1000.0)
