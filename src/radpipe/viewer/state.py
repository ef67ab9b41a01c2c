"""What the viewer shows: one scan in display (LPS-canonical) orientation with its masks,
heatmap, metadata and analysis, and the rendering of its slices. No web code here."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import GeometryError
from radpipe.masks import MaskSet
from radpipe.privacy import pseudonym
from radpipe.render import (
    Plane,
    annotate,
    blend_labels,
    canonical,
    display_size,
    label_colours,
    pixel_spacing,
    plane_slice,
)
from radpipe.viewer.surface import SurfaceRenderer
from radpipe.volume import Heatmap, Volume
from radpipe.windowing import PRESETS, Window, apply_window, default_window


@dataclass
class Scan:
    """A scan ready to view."""

    image: Volume
    labels: NDArray[np.uint16] | None = None
    label_names: dict[int, str] = field(default_factory=dict)
    colours: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    heat: NDArray[np.float32] | None = None
    window: Window = field(default_factory=lambda: Window(40, 400))
    meta: dict[str, Any] = field(default_factory=dict)
    lesions: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    _surface: SurfaceRenderer | None = field(default=None, repr=False)

    def surface(self) -> SurfaceRenderer:
        """The 3-D pane's renderer of this scan's masks (built on first use)."""
        if self._surface is None:
            labels = self.labels if self.labels is not None else np.zeros((1, 1, 1), np.uint16)
            self._surface = SurfaceRenderer(labels, self.image.spacing)
        return self._surface

    def label_at(self, k: int, j: int, i: int) -> tuple[int, str | None]:
        """The label value and name at a voxel (0, None outside every mask)."""
        if self.labels is None:
            return 0, None
        value = int(self.labels[k, j, i])
        return value, self.label_names.get(value)


def make_scan(
    volume: Volume,
    *,
    masks: MaskSet | None = None,
    heatmap: Heatmap | NDArray[Any] | None = None,
    keep_phi: bool = False,
) -> Scan:
    """Prepare a volume (and its masks / heatmap, placed by world position) for viewing;
    analyse tumours."""
    if volume.array.ndim != 3:
        raise GeometryError(f"the viewer shows grey (S, R, C) volumes, got shape {volume.shape}")
    shown = canonical(volume)
    scan = Scan(image=shown, window=default_window(volume))
    meta = volume.meta
    scan.meta = {
        "patient": (meta.patient_id if keep_phi else pseudonym(meta.patient_id)),
        "modality": meta.modality,
        "description": meta.series_description,
        "shape": list(shown.spatial_shape),
        "spacing_mm": [round(v, 4) for v in shown.spacing],
        "stored_orientation": volume.orientation_code,
        "units": meta.units,
    }
    if masks is not None and masks.masks:
        labelmap = masks.to_labelmap()
        scan.labels = canonical(Volume(labelmap.array.astype(np.uint16), volume.affine)).array
        scan.label_names = dict(labelmap.labels)
        scan.colours = label_colours(list(labelmap.labels))
        _analyse(scan, volume, masks)
    if heatmap is not None:
        from radpipe.colormaps import normalize
        from radpipe.placement import heatmap_on

        placed = heatmap_on(heatmap, volume)
        scan.heat = canonical(placed.with_array(normalize(placed.array))).array
    return scan


def _analyse(scan: Scan, volume: Volume, masks: MaskSet) -> None:
    from radpipe.analysis import analyse_masks

    if not masks.split()[1]:
        return
    report = analyse_masks(scan.meta["patient"] or "patient", volume, masks)
    scan.summary = {
        "tumour_count": report.tumour_count,
        "total_tumour_volume_ml": round(report.total_tumour_volume_ml, 3),
        "tumour_burden_percent": None
        if report.tumour_burden_percent is None
        else round(report.tumour_burden_percent, 3),
        "reference_organ": report.reference_organ,
    }
    shown = scan.image
    for lesion in report.lesions:
        index = [round(float(v)) for v in shown.world_to_index(lesion.centroid_mm)]
        scan.lesions.append(
            {
                "id": lesion.lesion_id,
                "source": lesion.source,
                "volume_ml": round(lesion.volume_ml, 3),
                "diameter_mm": round(lesion.longest_axial_diameter_mm, 1),
                "index": index,
            }
        )


@dataclass(frozen=True)
class ViewRequest:
    """One pane's rendering parameters."""

    plane: Plane
    index: int
    window: Window
    labels: tuple[int, ...] = ()
    label_opacity: float = 0.4
    heatmap: bool = False
    colormap: str = "jet"
    heat_opacity: float = 0.5
    threshold: float | None = None


def pane_geometry(scan: Scan) -> dict[str, Any]:
    """Per plane: slice count, slice shape and display size (square pixels)."""
    geometry = {}
    for plane in Plane:
        shape = plane_slice(scan.image.array, plane, 0).shape
        spacing = pixel_spacing(scan.image, plane)
        height, width = display_size(shape, spacing)
        count = scan.image.spatial_shape[
            {Plane.AXIAL: 0, Plane.CORONAL: 1, Plane.SAGITTAL: 2}[plane]
        ]
        geometry[plane.value] = {
            "count": count,
            "rows": shape[0],
            "columns": shape[1],
            "height": height,
            "width": width,
            "row_mm": spacing[0],
            "column_mm": spacing[1],
        }
    return geometry


def render_pane(scan: Scan, request: ViewRequest) -> NDArray[np.uint8]:
    """The RGB picture of one pane (display size, square pixels)."""
    from PIL import Image

    from radpipe.colormaps import blend

    grey = apply_window(plane_slice(scan.image.array, request.plane, request.index), request.window)
    rgb: NDArray[np.uint8]
    if request.heatmap and scan.heat is not None:
        values = np.ascontiguousarray(plane_slice(scan.heat, request.plane, request.index))
        rgb = blend(
            grey,
            values,
            colormap=request.colormap,
            opacity=request.heat_opacity,
            threshold=request.threshold,
        )
    else:
        rgb = np.repeat(grey[..., None], 3, axis=2)
    if request.labels and scan.labels is not None:
        labels = plane_slice(scan.labels, request.plane, request.index)
        chosen = {value: scan.colours[value] for value in request.labels if value in scan.colours}
        rgb = blend_labels(
            rgb, labels, chosen, opacity=request.label_opacity, outline=True, inplace=True
        )
    spacing = pixel_spacing(scan.image, request.plane)
    height, width = display_size(rgb.shape[:2], spacing)
    if (height, width) != rgb.shape[:2]:
        rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BILINEAR))
    return rgb


def png_bytes(image: NDArray[np.uint8]) -> bytes:
    """PNG encoding of an RGB (or grey) uint8 picture, for interactive panes.

    Rows go unfiltered into one zlib level-1 stream: Pillow's encoder spends most of its time
    choosing a filter per row, which buys nothing on these pictures (the unfiltered stream is as
    small); ``benchmarks/bench_viewer.py`` measures both. Any PNG reader decodes it.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"PNG pictures here are uint8, got {image.dtype}")
    picture = np.ascontiguousarray(image)
    if picture.ndim == 2:
        picture = picture[..., None]
    if picture.ndim != 3 or picture.shape[2] not in (1, 3, 4):
        raise ValueError(f"a PNG picture is (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")
    height, width, channels = picture.shape
    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = np.empty((height, width * channels + 1), np.uint8)
    rows[:, 0] = 0  # filter type None
    rows[:, 1:] = picture.reshape(height, width * channels)
    compressor = zlib.compressobj(1)
    data = compressor.compress(rows.data) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def three_pane_picture(
    scan: Scan, point: tuple[int, int, int], base: ViewRequest
) -> NDArray[np.uint8]:
    """The three panes through ``point`` side by side, annotated (the "save view" picture)."""
    from radpipe.render import _row

    panes = []
    for plane, index in zip(Plane, point, strict=True):
        request = ViewRequest(
            plane=plane, index=index, window=base.window, labels=base.labels,
            label_opacity=base.label_opacity, heatmap=base.heatmap, colormap=base.colormap,
            heat_opacity=base.heat_opacity, threshold=base.threshold,
        )  # fmt: skip
        panes.append(annotate(render_pane(scan, request), plane, title=f"{plane.value} {index}"))
    return _row(panes)


def presets() -> dict[str, list[float]]:
    """Window presets as name → [centre, width]."""
    return {name: [window.center, window.width] for name, window in PRESETS.items()}
