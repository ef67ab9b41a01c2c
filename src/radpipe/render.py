"""Slices in any plane, shown the radiological way with the right aspect, heatmap and mask
overlays, orientation letters, scale bars, colour bars, three-plane figures and lightboxes.

Pure: Volumes and arrays in, (H, W, 3) uint8 RGB arrays out (PNG writing is in ``export``).
Display convention: axial views put the patient's right on the image's left and anterior at
the top; coronal and sagittal views put the head at the top (sagittal: anterior on the left).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.colormaps import blend, colormap_table, normalization_range, normalize
from radpipe.errors import FormatError, GeometryError
from radpipe.placement import Resize, heatmap_on, labels_on
from radpipe.volume import Heatmap, LabelMap, Volume
from radpipe.windowing import Normalization, Window, resolve_window, to_grey

log = logging.getLogger(__name__)

RGB = NDArray[np.uint8]
#: Smallest longer side, in pixels, a rendered view is enlarged to.
MIN_DISPLAY_SIZE = 384


class Plane(StrEnum):
    """Anatomical viewing plane."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"

    @classmethod
    def _missing_(cls, value: object) -> Plane:
        raise FormatError(f"unknown plane {value!r}; use axial, coronal or sagittal")


#: Edge letters (top, bottom, left, right) of each plane's display.
EDGES = {
    Plane.AXIAL: ("A", "P", "R", "L"),
    Plane.CORONAL: ("S", "I", "R", "L"),
    Plane.SAGITTAL: ("S", "I", "A", "P"),
}


def canonical(volume: Volume) -> Volume:
    """The volume transposed / flipped so columns run to L, rows to P and slices to S."""
    return volume if volume.orientation_code == "LPS" else volume.reoriented("LPS")


def _axis(plane: Plane) -> int:
    return {Plane.AXIAL: 0, Plane.CORONAL: 1, Plane.SAGITTAL: 2}[plane]


def plane_slice(array: NDArray[Any], plane: Plane | str, index: int) -> NDArray[Any]:
    """The display-oriented 2-D slice of an LPS-canonical (S, R, C[, N]) array."""
    chosen = Plane(plane)
    size = array.shape[_axis(chosen)]
    if not 0 <= index < size:
        raise GeometryError(f"{chosen.value} slice {index} is outside 0..{size - 1}")
    result: NDArray[Any]
    if chosen is Plane.AXIAL:
        result = array[index]
    elif chosen is Plane.CORONAL:
        result = array[::-1, index]
    else:
        result = array[::-1, :, index]
    return result


def pixel_spacing(volume: Volume, plane: Plane | str) -> tuple[float, float]:
    """(row, column) spacing in mm of a canonical volume's display slices in ``plane``."""
    s, r, c = volume.spacing
    return {Plane.AXIAL: (r, c), Plane.CORONAL: (s, c), Plane.SAGITTAL: (s, r)}[Plane(plane)]


def slice_index(volume: Volume, plane: Plane | str, where: int | str | None) -> int:
    """Index of a canonical volume's slice from an index, ``"mm:POSITION"`` or None (middle).

    ``mm:`` positions are patient coordinates along the plane's normal (z for axial, y for
    coronal, x for sagittal, LPS mm).
    """
    chosen = Plane(plane)
    axis = _axis(chosen)
    size = volume.spatial_shape[axis]
    if where is None:
        return size // 2
    if isinstance(where, str) and where.lower().startswith("mm:"):
        try:
            position = float(where[3:])
        except ValueError:
            raise FormatError(f"bad slice position {where!r}; write mm:-41.5") from None
        if not math.isfinite(position):
            raise FormatError(f"bad slice position {where!r}; write a finite number, mm:-41.5")
        centre = volume.index_to_world([(n - 1) / 2 for n in volume.spatial_shape])
        world_axis = {Plane.AXIAL: 2, Plane.CORONAL: 1, Plane.SAGITTAL: 0}[chosen]
        centre[world_axis] = position
        index = round(float(volume.world_to_index(centre)[axis]))
        if not 0 <= index < size:
            raise GeometryError(f"{where} lies outside the volume's {chosen.value} extent")
        return index
    try:
        index = int(where)
    except ValueError:
        raise FormatError(f"bad slice {where!r}; give an index or mm:POSITION") from None
    if not 0 <= index < size:
        raise GeometryError(f"{chosen.value} slice {index} is outside 0..{size - 1}")
    return index


def display_size(shape: tuple[int, int], spacing: tuple[float, float]) -> tuple[int, int]:
    """(height, width) in pixels that shows a slice with square pixels, enlarged if small."""
    rows, columns = shape
    unit = min(spacing)
    height = rows * spacing[0] / unit
    width = columns * spacing[1] / unit
    longest = max(height, width)
    scale = max(1.0, MIN_DISPLAY_SIZE / longest) if longest < MIN_DISPLAY_SIZE else 1.0
    return max(1, round(height * scale)), max(1, round(width * scale))


def _resize_rgb(image: RGB, size: tuple[int, int], *, nearest: bool = False) -> RGB:
    from PIL import Image

    if image.shape[:2] == size:
        return image
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    resized = Image.fromarray(image).resize((size[1], size[0]), method)
    return np.asarray(resized)


@dataclass(frozen=True)
class HeatmapStyle:
    """How heatmap values are shown."""

    colormap: str = "jet"
    opacity: float = 0.6
    normalization: Normalization | str = Normalization.MINMAX
    percentiles: tuple[float, float] = (5.0, 95.0)
    threshold: float | None = None
    alpha_by_value: bool = False
    resize: Resize | str = Resize.BILINEAR
    scope: str = "volume"
    """Normalise over the whole heatmap ("volume", every slice coloured alike) or per shown
    slice ("slice")."""

    def __post_init__(self) -> None:
        if self.scope not in ("volume", "slice"):
            raise FormatError(f"normalisation scope must be volume or slice, got {self.scope!r}")
        if not (math.isfinite(self.opacity) and 0.0 <= self.opacity <= 1.0):
            raise FormatError(f"--opacity must be between 0.0 and 1.0, got {self.opacity}")
        if self.threshold is not None and not (
            math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0
        ):
            raise FormatError(
                f"--threshold applies to normalised values and must lie in 0.0–1.0, got "
                f"{self.threshold}"
            )
        if str(self.resize) not in {member.value for member in Resize}:
            raise FormatError(f"--resize must be bilinear or nearest, got {self.resize!r}")


def label_colours(labels: list[int]) -> dict[int, tuple[int, int, int]]:
    """A distinct colour per label from matplotlib's ``tab10`` (then ``tab20``) table."""
    import matplotlib

    table = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    count = 10 if len(labels) <= 10 else 20
    colours = {}
    for number, label in enumerate(sorted(labels)):
        r, g, b, _ = table(number % count)
        colours[label] = (round(r * 255), round(g * 255), round(b * 255))
    return colours


def blend_labels(
    image: RGB,
    labels: NDArray[Any],
    colours: dict[int, tuple[int, int, int]],
    *,
    opacity: float = 0.35,
    outline: bool = True,
    inplace: bool = False,
) -> RGB:
    """Fill each label with its colour at ``opacity`` and draw its outline fully opaque
    (into ``image`` itself with ``inplace``).

    Only the labelled box of the slice is blended, with one colour lookup for every label; a
    pixel is on a label's outline when one of its four neighbours (outside the image counts)
    holds another value, as a binary erosion of each label would find.
    """
    chosen = {int(v): c for v, c in colours.items() if v != 0}
    result = image if inplace else image.copy()
    if not chosen or labels.size == 0:
        return result
    rows = np.flatnonzero(labels.any(axis=1))
    if rows.size == 0:
        return result
    columns = np.flatnonzero(labels.any(axis=0))
    top, bottom = rows[0], rows[-1] + 1
    left, right = columns[0], columns[-1] + 1
    box = labels[top:bottom, left:right]
    largest = max(int(box.max()), max(chosen))
    palette = np.zeros((largest + 1, 3), np.float32)
    wanted = np.zeros(largest + 1, bool)
    for value, colour in chosen.items():
        palette[value] = colour
        wanted[value] = True
    inside = wanted[box]
    if not inside.any():
        return result
    part = result[top:bottom, left:right]
    blended = part.astype(np.float32)
    blended[inside] = blended[inside] * (1 - opacity) + palette[box[inside]] * opacity
    if outline:
        padded = np.pad(box, 1)
        centre = padded[1:-1, 1:-1]
        edge = inside & (
            (padded[:-2, 1:-1] != centre)
            | (padded[2:, 1:-1] != centre)
            | (padded[1:-1, :-2] != centre)
            | (padded[1:-1, 2:] != centre)
        )
        edge[0, :] |= inside[0, :] & (top == 0)
        edge[-1, :] |= inside[-1, :] & (bottom == labels.shape[0])
        edge[:, 0] |= inside[:, 0] & (left == 0)
        edge[:, -1] |= inside[:, -1] & (right == labels.shape[1])
        blended[edge] = palette[box[edge]]
    part[...] = np.rint(blended).astype(np.uint8)
    return result


def _draw(image: RGB) -> Any:
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    return canvas, ImageDraw.Draw(canvas)


def annotate(
    image: RGB,
    plane: Plane | str,
    *,
    mm_per_pixel: float | None = None,
    title: str | None = None,
    legend: dict[str, tuple[int, int, int]] | None = None,
) -> RGB:
    """Draw orientation letters on the edges, a scale bar (mm), a title and a legend."""
    from PIL import ImageFont

    canvas, draw = _draw(image)
    font = ImageFont.load_default()
    height, width = image.shape[:2]
    top, bottom, left, right = EDGES[Plane(plane)]
    white, shadow = (255, 255, 255), (0, 0, 0)

    def text(xy: tuple[float, float], value: str, anchor: str) -> None:
        draw.text((xy[0] + 1, xy[1] + 1), value, fill=shadow, font=font, anchor=anchor)
        draw.text(xy, value, fill=white, font=font, anchor=anchor)

    text((width / 2, 3), top, "mt")
    text((width / 2, height - 3), bottom, "mb")
    text((4, height / 2), left, "lm")
    text((width - 4, height / 2), right, "rm")
    if title:
        text((4, 3), title, "lt")
    if mm_per_pixel:
        length_mm = _nice_length(width * mm_per_pixel / 4)
        pixels = length_mm / mm_per_pixel
        x1, y = width - 8, height - 14
        draw.line([(x1 - pixels, y + 1), (x1 + 1, y + 1)], fill=shadow, width=2)
        draw.line([(x1 - pixels, y), (x1, y)], fill=white, width=2)
        text((x1 - pixels / 2, y - 3), f"{length_mm:g} mm", "mb")
    if legend:
        y = height - 14 * len(legend) - 4
        for name, colour in legend.items():
            draw.rectangle([(6, y), (16, y + 10)], fill=colour)
            text((20, y + 5), name, "lm")
            y += 14
    return np.asarray(canvas)


def _nice_length(limit: float) -> float:
    """The largest 1-2-5 × 10^n length not above ``limit`` (for scale bars)."""
    if limit <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(limit))
    for step in (5, 2, 1):
        if step * power <= limit:
            return float(step * power)
    return float(power)


def colour_bar(
    image: RGB, *, colormap: str, value_range: tuple[float, float], width: int = 18
) -> RGB:
    """Append a vertical colour bar with its value range to the right of an image."""
    from PIL import ImageFont

    height = image.shape[0]
    table = colormap_table(colormap)
    ramp = table[np.linspace(255, 0, height).round().astype(int)]
    bar = np.repeat(ramp[:, None, :], width, axis=1)
    margin = np.zeros((height, 56, 3), dtype=np.uint8)
    combined = np.concatenate([image, np.zeros((height, 4, 3), np.uint8), bar, margin], axis=1)
    canvas, draw = _draw(combined)
    font = ImageFont.load_default()
    low, high = value_range
    x = image.shape[1] + 4 + width + 3
    draw.text((x, 2), f"{high:.3g}", fill=(255, 255, 255), font=font, anchor="lt")
    draw.text((x, height - 2), f"{low:.3g}", fill=(255, 255, 255), font=font, anchor="lb")
    return np.asarray(canvas)


def view(
    volume: Volume,
    *,
    plane: Plane | str = Plane.AXIAL,
    index: int | str | None = None,
    window: str | Window | tuple[float, float] | None = None,
    heatmap: Heatmap | NDArray[Any] | None = None,
    heatmap_index: int | None = None,
    heatmap_box: tuple[int, int, int, int] | None = None,
    style: HeatmapStyle | None = None,
    mask: LabelMap | Volume | None = None,
    mask_opacity: float = 0.35,
    outline: bool = True,
    annotations: bool = True,
    colorbar: bool = False,
    label_values: list[int] | None = None,
    legend: bool = True,
    heatmap_range: tuple[float, float] | None = None,
) -> RGB:
    """One slice of a volume as an RGB image, with optional heatmap and mask overlays.

    Parameters
    ----------
    volume : Volume
        (S, R, C) grey or (S, R, C, 3) RGB; any stored orientation.
    plane : {"axial", "coronal", "sagittal"}
    index : int or "mm:POSITION", optional
        Slice in the display plane (of the LPS-canonical volume); the middle by default.
    window : preset name, "C/W", Window or (centre, width), optional
        Default: the header's window, soft tissue for CT, 1–99 % otherwise.
    heatmap : Heatmap or array, optional
        With geometry: placed by world position; without: 3-D on the volume's grid, or 2-D for
        the stored slice ``heatmap_index`` (see :func:`radpipe.placement.heatmap_on`).
    style : HeatmapStyle, optional
    mask : LabelMap or Volume, optional
        Labels on any grid overlapping the volume's (placed by world position), filled and
        outlined, with a legend.
    label_values : list of int, optional
        The non-zero labels present in ``mask`` when already known (saves a pass over it).
    legend : bool
        Name the mask's labels in a legend (figures of several views show it once).
    heatmap_range : (low, high), optional
        Heatmap values mapped to the colormap's ends; by default computed over the whole
        heatmap (``style.scope="volume"``) or the shown slice (``"slice"``). The colour bar
        shows these values.

    Returns
    -------
    (H, W, 3) uint8
        Square pixels (resampled for display), enlarged when small.

    Examples
    --------
    >>> from radpipe.phantom import make_phantom
    >>> rgb = view(make_phantom(shape=(24, 64, 64), tumours=1).ct, plane="coronal")
    >>> rgb.shape[2], rgb.dtype
    (3, dtype('uint8'))
    """
    chosen = Plane(plane)
    volume.require_grey("a view")
    shown = canonical(volume)
    k = slice_index(shown, chosen, index)
    grey_window = resolve_window(volume, window)
    image = to_grey(plane_slice(shown.array, chosen, k), grey_window)
    rows_mm, cols_mm = pixel_spacing(shown, chosen)
    options = style or HeatmapStyle()
    legend_names = None
    base = image
    if heatmap is not None:
        placed = heatmap_on(
            heatmap, volume, index=heatmap_index, box=heatmap_box, resize=options.resize
        )
        values_shown = plane_slice(canonical(placed).array, chosen, k)
        if heatmap_range is None and options.scope == "volume":  # one colour scale for all
            heatmap_range = normalization_range(
                placed.array, options.normalization, percentiles=options.percentiles
            )
        unit = (
            normalize(
                values_shown,
                options.normalization,
                percentiles=options.percentiles,
                value_range=heatmap_range,
            )
            if np.isfinite(values_shown).any()
            else np.full(values_shown.shape, np.nan, np.float32)
        )
        if heatmap_range is None:
            heatmap_range = (
                normalization_range(
                    values_shown, options.normalization, percentiles=options.percentiles
                )
                if np.isfinite(values_shown).any()
                else None
            )
        base = blend(
            base, unit, colormap=options.colormap, opacity=options.opacity,
            threshold=options.threshold, alpha_by_value=options.alpha_by_value,
        )  # fmt: skip
    rgb = np.repeat(base[..., None], 3, axis=2) if base.ndim == 2 else base
    size = display_size(rgb.shape[:2], (rows_mm, cols_mm))
    rgb = _resize_rgb(rgb, size)
    if mask is not None:
        mask = labels_on(mask, volume)
        labels_shown = plane_slice(canonical(mask).array, chosen, k)
        present = label_values if label_values is not None else mask.present()
        colours = label_colours(present)
        from PIL import Image

        resized = np.asarray(
            Image.fromarray(labels_shown.astype(np.int32)).resize(
                (size[1], size[0]), Image.Resampling.NEAREST
            )
        )
        rgb = blend_labels(rgb, resized, colours, opacity=mask_opacity, outline=outline)
        legend_names = {mask.name_of(label): colours[label] for label in present}
    if annotations:
        mm_per_pixel = cols_mm * rgb_width_ratio(shown, chosen, size)
        rgb = annotate(
            rgb,
            chosen,
            mm_per_pixel=mm_per_pixel,
            title=f"{chosen.value} {k}",
            legend=legend_names if legend else None,
        )
    if colorbar and heatmap is not None and heatmap_range is not None:
        rgb = colour_bar(rgb, colormap=options.colormap, value_range=heatmap_range)
    return rgb


def rgb_width_ratio(volume: Volume, plane: Plane, size: tuple[int, int]) -> float:
    """Stored columns per displayed pixel along the width (for the scale bar)."""
    columns = {
        Plane.AXIAL: volume.spatial_shape[2],
        Plane.CORONAL: volume.spatial_shape[2],
        Plane.SAGITTAL: volume.spatial_shape[1],
    }[plane]
    return columns / size[1]


def overlay(
    volume: Volume,
    heatmap: Heatmap | NDArray[Any],
    *,
    colormap: str = "jet",
    opacity: float = 0.6,
    normalization: Normalization | str = Normalization.MINMAX,
    **options: Any,
) -> RGB:
    """A slice with a heatmap blended on it: ``view`` with the heatmap options up front.

    Examples
    --------
    >>> from radpipe.phantom import make_phantom
    >>> ct = make_phantom(shape=(24, 64, 64), tumours=1).ct
    >>> heat = np.random.default_rng(0).random((64, 64))
    >>> overlay(ct, heat, heatmap_index=12, index=12, colormap="hot", opacity=0.5).shape[2]
    3
    """
    given = heatmap if isinstance(heatmap, Heatmap) else Heatmap(heatmap, source="heatmap")
    if given.is_2d and not given.has_geometry and options.get("heatmap_index") is None:
        heatmap_index, view_index = stored_slice_of_plane_heatmap(
            volume, options.get("plane", Plane.AXIAL), options.get("index")
        )
        options["heatmap_index"], options["index"] = heatmap_index, view_index
    style = HeatmapStyle(
        colormap=colormap,
        opacity=opacity,
        normalization=normalization,
        percentiles=options.pop("percentiles", (5.0, 95.0)),
        threshold=options.pop("threshold", None),
        alpha_by_value=options.pop("alpha_by_value", False),
        resize=options.pop("resize", Resize.BILINEAR),
        scope=options.pop("scope", "volume"),
    )
    return view(volume, heatmap=given, style=style, **options)


def stored_slice_of_plane_heatmap(
    volume: Volume, plane: Plane | str, where: int | str | None
) -> tuple[int, int | str | None]:
    """Which stored slice a 2-D heatmap without geometry belongs to, and the view index.

    A 2-D heatmap is computed on one stored image (``volume.array[k]``). ``where`` (an index or
    ``mm:POSITION``, the middle by default) picks it: for an LPS-stored volume as an axial
    display index, otherwise an integer is taken as the stored index itself.

    Returns
    -------
    (stored index for the heatmap, index for :func:`view` in ``plane``)
    """
    stored = slice_index(canonical(volume), Plane.AXIAL, where)
    if volume.orientation_code != "LPS" and where is not None and not str(where).startswith("mm:"):
        stored = int(where)
    return stored, stored if Plane(plane) is Plane.AXIAL else where


def prepared(volume: Volume, options: dict[str, Any]) -> tuple[Volume, dict[str, Any]]:
    """The volume and :func:`view` options in display orientation, with the mask and heatmap
    placed on the volume's grid and the mask's labels found once: the whole-volume work of many
    views of one volume, done a single time.

    A 2-D heatmap (it indexes the stored slices) is left for :func:`view` to place.
    """
    result = dict(options)
    mask = result.get("mask")
    if mask is not None:
        mask = labels_on(mask, volume)
        if result.get("label_values") is None:
            result["label_values"] = mask.present()
    heatmap = result.get("heatmap")
    if heatmap is not None:
        given = heatmap if isinstance(heatmap, Heatmap) else Heatmap(heatmap, source="heatmap")
        if given.is_2d and not given.has_geometry:
            heatmap = None
        else:
            style = result.get("style") or HeatmapStyle()
            heatmap = heatmap_on(given, volume, resize=style.resize)
            if style.scope == "volume" and result.get("heatmap_range") is None:
                result["heatmap_range"] = normalization_range(
                    heatmap.array, style.normalization, percentiles=style.percentiles
                )
    shown = canonical(volume)
    if mask is not None:
        result["mask"] = canonical(mask)
    if heatmap is not None:
        result["heatmap"] = canonical(heatmap)
    return shown, result


def three_plane(
    volume: Volume, *, point: tuple[int, int, int] | None = None, **options: Any
) -> RGB:
    """Axial, coronal and sagittal views through one voxel, side by side.

    Parameters
    ----------
    point : (k, j, i) of the LPS-canonical volume, optional
        The centre by default.
    **options
        Passed to :func:`view` (window, heatmap, style, mask …).
    """
    shown, options = prepared(volume, options)
    k, j, i = point if point is not None else tuple(n // 2 for n in canonical(shown).spatial_shape)
    options.setdefault("legend", True)
    once = {**options, "legend": False}  # the legend is drawn in the last panel only
    panels = [
        view(shown, plane=Plane.AXIAL, index=k, **once),
        view(shown, plane=Plane.CORONAL, index=j, **once),
        view(shown, plane=Plane.SAGITTAL, index=i, **options),
    ]
    return _row(panels)


def _row(panels: list[RGB], gap: int = 4) -> RGB:
    height = max(p.shape[0] for p in panels)
    padded = []
    for panel in panels:
        pad = height - panel.shape[0]
        padded.append(np.pad(panel, ((pad // 2, pad - pad // 2), (0, 0), (0, 0))))
        padded.append(np.zeros((height, gap, 3), np.uint8))
    return np.concatenate(padded[:-1], axis=1)


def lightbox(
    volume: Volume, *, count: int = 16, plane: Plane | str = Plane.AXIAL, **options: Any
) -> RGB:
    """A grid of ``count`` evenly spaced slices in one plane."""
    chosen = Plane(plane)
    volume, options = prepared(volume, options)
    size = canonical(volume).spatial_shape[_axis(chosen)]
    count = max(1, min(count, size))
    indices = (
        np.linspace(0, size - 1, count + 2)[1:-1].round().astype(int)
        if count < size
        else np.arange(size)
    )
    tiles = [view(volume, plane=chosen, index=int(n), **options) for n in indices]
    columns = math.ceil(math.sqrt(len(tiles)))
    rows = [_row(tiles[start : start + columns]) for start in range(0, len(tiles), columns)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0))) for r in rows]
    return np.concatenate(rows, axis=0)
