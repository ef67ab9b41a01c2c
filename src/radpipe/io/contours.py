"""Contours: Sunnybrook-style polygon text files and DICOM RTSTRUCT, rasterised on their
image's grid (pixel centres, even-odd rule)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import ContourWarning, FormatError, ReadError, SeriesError
from radpipe.io.dicom.headers import referenced_series
from radpipe.masks import (
    ContourProblem,
    MaskSet,
    check_contour,
    rasterize_contours,
    stacked_contour_volume_mm3,
)
from radpipe.volume import Volume

#: A contour farther than this (in slices) from an image plane is reported.
SLICE_TOLERANCE = 0.1


def read_polygon_file(path: str | Path) -> NDArray[np.float64]:
    """``x y`` pixel coordinates, one point a line (Sunnybrook's contour files).

    Raises
    ------
    FormatError
        If a line is not two numbers (the message gives its number).
    """
    source = Path(path)
    try:
        lines = source.read_text().splitlines()
    except FileNotFoundError as exc:
        raise ReadError(f"{source}: no such contour file") from exc
    points = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            x, y = (float(v) for v in parts)
        except ValueError:
            raise FormatError(
                f"{source}: line {number} is not two numbers 'x y': {line.strip()[:40]!r}"
            ) from None
        points.append((x, y))
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def contour_number(path: str | Path) -> int | None:
    """The image number in a Sunnybrook contour name (``IM-0001-0048-icontour…`` → 48)."""
    match = re.search(r"IM-\d+-(\d+)-[io]contour", Path(path).name)
    return int(match.group(1)) if match else None


def sunnybrook_masks(
    image_folder: str | Path, contour_folder: str | Path, *, strict: bool = False
) -> dict[str, tuple[Volume, MaskSet]]:
    """Masks of every contoured Sunnybrook image.

    Parameters
    ----------
    image_folder : folder of ``NNN.dcm`` images
    contour_folder : folder with ``i-contours/`` and ``o-contours/`` (``IM-0001-NNNN-…``)
    strict : bool
        Raise on the first contour problem instead of recording it.

    Returns
    -------
    dict of image file name → (image Volume (1, R, C), MaskSet)
        Masks ``endocardium`` (inside the i-contour), ``epicardium`` (inside the o-contour)
        and ``myocardium`` (the ring between them, where both exist).
    """
    from radpipe.io import load

    images = {int(p.stem): p for p in Path(image_folder).glob("*.dcm") if p.stem.isdigit()}
    files: dict[int, dict[str, Path]] = {}
    for kind, folder in (("endocardium", "i-contours"), ("epicardium", "o-contours")):
        for path in sorted((Path(contour_folder) / folder).glob("*.txt")):
            number = contour_number(path)
            if number is None:
                continue
            files.setdefault(number, {})[kind] = path
    result: dict[str, tuple[Volume, MaskSet]] = {}
    for number, contours in sorted(files.items()):
        if number not in images:
            raise ReadError(
                f"{next(iter(contours.values()))}: no image {number}.dcm in {image_folder}"
            )
        image = load(images[number])
        shape = image.spatial_shape[1:]
        masks: dict[str, NDArray[np.bool_]] = {}
        problems: list[ContourProblem] = []
        for kind, path in contours.items():
            points = read_polygon_file(path)
            found = check_contour(points, shape, str(path))
            if strict and found:
                raise FormatError(f"{found[0].where}: {found[0].reason}")
            problems.extend(found)
            masks[kind] = rasterize_contours([points], shape)[None]
        if "endocardium" in masks and "epicardium" in masks:
            masks["myocardium"] = masks["epicardium"] & ~masks["endocardium"]
        result[images[number].name] = (image, MaskSet(image.affine.copy(), masks, problems))
    return result


def read_rtstruct(path: str | Path, image: Volume, *, strict: bool = False) -> MaskSet:
    """Rasterise every ROI of an RT Structure Set on its referenced image's grid.

    Contour points (LPS mm) are mapped to the image's indices; each closed planar contour
    is filled on the nearest slice (a distance over ``SLICE_TOLERANCE`` slices is reported),
    and the contours of one ROI on one slice combine by the even-odd rule (holes).

    Raises
    ------
    SeriesError
        If the structure set references another series than ``image``.
    """
    import pydicom

    source = Path(path)
    try:
        dataset = pydicom.dcmread(source)
    except (pydicom.errors.InvalidDicomError, OSError) as exc:
        raise ReadError(f"{source}: not a readable DICOM file ({exc})") from exc
    if str(dataset.get("Modality", "")) != "RTSTRUCT":
        raise FormatError(f"{source}: not an RT Structure Set (Modality {dataset.get('Modality')})")
    referenced = referenced_series(dataset)
    if referenced and image.meta.series_uid and image.meta.series_uid not in referenced:
        raise SeriesError(
            f"{source}: references series {', '.join(referenced)}, not the image's "
            f"{image.meta.series_uid}; load the referenced images"
        )
    names = {
        int(roi.ROINumber): str(roi.ROIName) for roi in dataset.get("StructureSetROISequence", [])
    }
    slices, rows, columns = image.spatial_shape
    masks: dict[str, NDArray[np.bool_]] = {}
    problems: list[ContourProblem] = []
    volumes: dict[str, float] = {}
    normal = image.direction[:, 0]
    in_plane = (image.direction[:, 2], image.direction[:, 1])  # column, row directions
    for roi in dataset.get("ROIContourSequence", []):
        name = names.get(int(roi.ReferencedROINumber), f"ROI {roi.ReferencedROINumber}")
        per_slice: dict[int, list[NDArray[np.float64]]] = {}
        planes: dict[float, list[NDArray[np.float64]]] = {}
        for number, contour in enumerate(roi.get("ContourSequence", []), start=1):
            where = f"{source} ROI {name!r} contour {number}"
            data = np.asarray(contour.ContourData, dtype=np.float64).reshape(-1, 3)
            kind = str(contour.get("ContourGeometricType", "CLOSED_PLANAR"))
            if kind not in ("CLOSED_PLANAR",):
                problems.append(
                    ContourProblem(where, f"{kind} contour skipped (not closed planar)")
                )
                continue
            if len(data) >= 3:  # the contour's own geometry, wherever the image grid lies
                position = round(float(np.mean(data @ normal)), 2)
                planes.setdefault(position, []).append(
                    np.stack([data @ in_plane[0], data @ in_plane[1]], axis=1)
                )
            indices = image.world_to_index(data)
            k_mean = float(indices[:, 0].mean())
            k = round(k_mean)
            if abs(k_mean - k) > SLICE_TOLERANCE or np.ptp(indices[:, 0]) > 2 * SLICE_TOLERANCE:
                problems.append(
                    ContourProblem(
                        where, f"lies {abs(k_mean - k):.2f} slices off the nearest image plane"
                    )
                )
            if not 0 <= k < slices:
                problems.append(ContourProblem(where, "lies outside the image's slices; skipped"))
                continue
            polygon = indices[:, [2, 1]]  # (x, y) = (column, row)
            found = check_contour(polygon, (rows, columns), where)
            if strict and (found or problems):
                first = (found or problems)[0]
                raise FormatError(f"{first.where}: {first.reason}")
            problems.extend(found)
            per_slice.setdefault(k, []).append(polygon)
        mask = np.zeros(image.spatial_shape, dtype=bool)
        for k, polygons in per_slice.items():
            mask[k] = rasterize_contours(polygons, (rows, columns))
        masks[name] = mask
        volumes[name] = stacked_contour_volume_mm3(planes, image.spacing[0]) / 1000.0
        voxel_ml = float(mask.sum()) * image.voxel_volume_mm3 / 1000.0
        if volumes[name] > 0 and abs(voxel_ml - volumes[name]) > 0.5 * volumes[name]:
            problems.append(
                ContourProblem(
                    f"{source} ROI {name!r}",
                    f"the image grid holds {voxel_ml:.2f} mL of its {volumes[name]:.2f} mL "
                    "(planar contour volume); most contours lie off the image's slices",
                )
            )
    for problem in problems:
        warnings.warn(ContourWarning(f"{problem.where}: {problem.reason}"), stacklevel=2)
    return MaskSet(image.affine.copy(), masks, problems, contour_volumes_ml=volumes)
