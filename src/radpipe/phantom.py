"""A synthetic abdominal CT of known truth: body, fat, muscle, liver with tumours, spleen, spine,
written as real DICOM with the matching label map. Behind ``radpipe demo`` and many tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from radpipe.errors import GeometryError
from radpipe.volume import LabelMap, Volume, VolumeMeta

#: Hounsfield units of the phantom's tissues.
TISSUE_HU = {
    "air": -1000,
    "fat": -100,
    "muscle": 40,
    "liver": 60,
    "spleen": 45,
    "tumor": 25,
    "bone": 700,
}
#: Labels of the phantom's label map (liver excludes its tumours; liver + tumours = organ).
LABELS = {1: "liver", 2: "tumor", 3: "spleen"}


@dataclass(frozen=True)
class Tumour:
    """One spherical tumour: centre in LPS mm, radius in mm, and its rasterised size."""

    centre_mm: tuple[float, float, float]
    radius_mm: float
    voxels: int
    volume_ml: float


@dataclass(frozen=True)
class Phantom:
    """A phantom CT in HU with its label map and the truth it was built from."""

    ct: Volume
    labels: LabelMap
    tumours: tuple[Tumour, ...]

    @property
    def liver_volume_ml(self) -> float:
        """Liver volume including its tumours, in ml."""
        voxels = int(np.count_nonzero(np.isin(self.labels.array, (1, 2))))
        return voxels * self.ct.voxel_volume_mm3 / 1000.0


@dataclass(frozen=True)
class PhantomStudy:
    """A phantom written to disk: the DICOM series folder, the label map file and the truth."""

    folder: Path
    series_folder: Path
    labels_path: Path
    phantom: Phantom
    patient_id: str
    files: list[Path] = field(default_factory=list)


def _ellipse(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    centre: tuple[float, float],
    axes: tuple[float, float],
) -> NDArray[np.bool_]:
    return ((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 <= 1.0


def make_phantom(
    *,
    shape: tuple[int, int, int] = (40, 128, 128),
    spacing: tuple[float, float, float] = (2.5, 2.8, 2.8),
    tumours: int = 3,
    seed: int = 0,
    noise_hu: float = 8.0,
) -> Phantom:
    """Build a phantom abdominal CT of known anatomy.

    Parameters
    ----------
    shape : (S, R, C)
        Slices, rows, columns; from a few slices for tests to (300, 512, 512) for benchmarks.
    spacing : (slice, row, column) mm
    tumours : int
        Number of spherical tumours placed, without overlap, inside the liver.
    seed : int
        Makes tumour placement and noise reproducible.
    noise_hu : float
        Standard deviation of Gaussian noise added to the CT, in HU.

    Returns
    -------
    Phantom
        ``ct`` (S, R, C) int16 HU on a standard axial LPS affine centred on the body, ``labels``
        (1 liver, 2 tumour, 3 spleen), and each tumour's centre, radius and voxel count.

    Examples
    --------
    >>> p = make_phantom(shape=(24, 64, 64), tumours=2, seed=1)
    >>> p.ct.array.dtype, len(p.tumours)
    (dtype('int16'), 2)
    """
    slices, rows, columns = shape
    slice_mm, row_mm, column_mm = spacing
    rng = np.random.default_rng(seed)
    affine = np.eye(4)
    affine[:3, 0] = (0.0, 0.0, slice_mm)
    affine[:3, 1] = (0.0, row_mm, 0.0)
    affine[:3, 2] = (column_mm, 0.0, 0.0)
    affine[:3, 3] = (
        -(columns - 1) * column_mm / 2,
        -(rows - 1) * row_mm / 2,
        -(slices - 1) * slice_mm / 2,
    )
    half_x, half_y = columns * column_mm / 2, rows * row_mm / 2
    half_z = max(slices * slice_mm / 2, slice_mm)
    body_axes = (0.85 * half_x, 0.62 * half_y)
    # Liver on the patient's right (−x in LPS), spleen on the left, spine posterior (+y).
    liver_centre = np.array([-0.30 * half_x, -0.02 * half_y, 0.0])
    liver_axes = np.array([0.42 * half_x, 0.42 * half_y, 0.8 * half_z]) * rng.uniform(0.85, 1.05)
    spleen_centre = (0.50 * half_x, 0.15 * half_y)
    spleen_axes = (0.12 * half_x, 0.18 * half_y)
    spine_centre = (0.0, 0.40 * half_y)
    spine_radius = 0.09 * min(half_x, half_y)

    placed = _place_tumours(rng, tumours, liver_centre, liver_axes, spacing)
    x = affine[0, 3] + np.arange(columns) * column_mm
    y = affine[1, 3] + np.arange(rows) * row_mm
    grid_x, grid_y = np.meshgrid(x, y)
    ct = np.empty(shape, dtype=np.int16)
    labels = np.zeros(shape, dtype=np.uint8)
    tumour_voxels = [0] * len(placed)
    for k in range(slices):
        z = affine[2, 3] + k * slice_mm
        image = np.full((rows, columns), TISSUE_HU["air"], dtype=np.float64)
        body = _ellipse(grid_x, grid_y, (0.0, 0.0), body_axes)
        inner = _ellipse(grid_x, grid_y, (0.0, 0.0), (body_axes[0] - 15.0, body_axes[1] - 15.0))
        image[body] = TISSUE_HU["fat"]
        image[inner] = TISSUE_HU["muscle"]
        label = np.zeros((rows, columns), dtype=np.uint8)
        dz = (z - liver_centre[2]) / liver_axes[2]
        if abs(dz) < 1.0:
            scale = np.sqrt(1.0 - dz * dz)
            liver = _ellipse(
                grid_x,
                grid_y,
                (liver_centre[0], liver_centre[1]),
                (liver_axes[0] * scale, liver_axes[1] * scale),
            )
            image[liver] = TISSUE_HU["liver"]
            label[liver] = 1
        spleen_scale = 1.0 - (z / (0.6 * half_z)) ** 2
        if spleen_scale > 0:
            axes = (spleen_axes[0] * np.sqrt(spleen_scale), spleen_axes[1] * np.sqrt(spleen_scale))
            spleen = _ellipse(grid_x, grid_y, spleen_centre, axes)
            image[spleen] = TISSUE_HU["spleen"]
            label[spleen] = 3
        spine = _ellipse(grid_x, grid_y, spine_centre, (spine_radius, spine_radius))
        image[spine] = TISSUE_HU["bone"]
        label[spine] = 0
        for index, (centre, radius) in enumerate(placed):
            dz_t = z - centre[2]
            if abs(dz_t) <= radius:
                r = np.sqrt(radius * radius - dz_t * dz_t)
                tumour = _ellipse(grid_x, grid_y, (centre[0], centre[1]), (r, r)) & (label == 1)
                image[tumour] = TISSUE_HU["tumor"]
                label[tumour] = 2
                tumour_voxels[index] += int(np.count_nonzero(tumour))
        if noise_hu > 0:
            image[body] += rng.normal(0.0, noise_hu, size=int(np.count_nonzero(body)))
        ct[k] = np.round(image).astype(np.int16)
        labels[k] = label
    voxel_ml = slice_mm * row_mm * column_mm / 1000.0
    truth = tuple(
        Tumour(
            centre_mm=(float(c[0]), float(c[1]), float(c[2])),
            radius_mm=float(r),
            voxels=tumour_voxels[i],
            volume_ml=tumour_voxels[i] * voxel_ml,
        )
        for i, (c, r) in enumerate(placed)
    )
    meta = VolumeMeta(modality="CT", units="HU", source_format="phantom")
    return Phantom(
        ct=Volume(ct, affine, meta=meta),
        labels=LabelMap(labels, affine, labels=LABELS, meta=meta),
        tumours=truth,
    )


def _place_tumours(
    rng: np.random.Generator,
    count: int,
    liver_centre: NDArray[np.float64],
    liver_axes: NDArray[np.float64],
    spacing: tuple[float, float, float],
) -> list[tuple[NDArray[np.float64], float]]:
    """Non-overlapping spheres well inside the liver ellipsoid, at least 2 voxels in radius."""
    smallest_axis = float(liver_axes.min())
    min_radius = 2.0 * max(spacing)
    max_radius = max(min_radius, 0.28 * smallest_axis)
    placed: list[tuple[NDArray[np.float64], float]] = []
    attempts = 0
    while len(placed) < count:
        attempts += 1
        if attempts > 10_000:
            raise GeometryError(
                f"cannot place {count} separate tumours in a liver of semi-axes "
                f"{liver_axes.round(1).tolist()} mm; use more slices or fewer tumours"
            )
        radius = float(rng.uniform(min_radius, max_radius))
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        reach = float(rng.uniform(0.0, 1.0)) ** (1 / 3)
        inner_axes = liver_axes - radius - max(spacing)
        if np.any(inner_axes <= 0):
            continue
        centre = liver_centre + direction * reach * inner_axes
        if all(np.linalg.norm(centre - c) > radius + r + max(spacing) for c, r in placed):
            placed.append((centre, radius))
    return placed


def write_phantom_study(
    folder: str | Path,
    *,
    patient_id: str = "PHANTOM-001",
    shape: tuple[int, int, int] = (40, 128, 128),
    spacing: tuple[float, float, float] = (2.5, 2.8, 2.8),
    tumours: int = 3,
    seed: int = 0,
    transfer_syntax: str = "explicit",
    overwrite: bool = False,
) -> PhantomStudy:
    """Write a phantom study: ``folder/CT/IM0001.dcm…`` and ``folder/labels.nii.gz``.

    Parameters
    ----------
    folder : str or Path
        Study folder to create.
    patient_id : str
        PatientID written into the DICOM files (PatientName is derived from it).
    shape, spacing, tumours, seed
        See :func:`make_phantom`.
    transfer_syntax : str
        See :func:`radpipe.export.dicom.write_ct_series`.
    """
    from pydicom.uid import generate_uid

    from radpipe.export.dicom import SeriesIdentity, write_ct_series
    from radpipe.io import save

    root = Path(folder)
    phantom = make_phantom(shape=shape, spacing=spacing, tumours=tumours, seed=seed)
    seed_text = f"radpipe-phantom:{patient_id}:{seed}:{shape}:{spacing}:{tumours}"
    identity = SeriesIdentity(
        patient_id=patient_id,
        patient_name=f"Phantom^{patient_id}",
        study_uid=generate_uid(entropy_srcs=[seed_text, "study"]),
        series_uid=generate_uid(entropy_srcs=[seed_text, "series", transfer_syntax]),
        frame_of_reference_uid=generate_uid(entropy_srcs=[seed_text, "frame"]),
        series_description=f"Phantom abdomen CT ({transfer_syntax})",
    )
    root.mkdir(parents=True, exist_ok=True)
    series_folder = root / "CT"
    files = write_ct_series(
        phantom.ct,
        series_folder,
        identity,
        transfer_syntax=transfer_syntax,
        overwrite=overwrite,
        uid_seed=seed_text,
    )
    labels_path = save(phantom.labels, root / "labels.nii.gz", overwrite=overwrite)
    return PhantomStudy(
        folder=root,
        series_folder=series_folder,
        labels_path=labels_path,
        phantom=phantom,
        patient_id=patient_id,
        files=files,
    )


def write_ircadb_patient(
    folder: str | Path,
    *,
    patient_id: str = "IRCAD-001",
    shape: tuple[int, int, int] = (24, 96, 96),
    spacing: tuple[float, float, float] = (2.5, 2.0, 2.0),
    tumours: int = 2,
    seed: int = 0,
    zipped: bool = True,
    overwrite: bool = False,
) -> Phantom:
    """Write a phantom patient in the 3D-IRCADb layout.

    ``folder/PATIENT_DICOM/image_0…`` holds the CT (HU stored directly, positions
    ``[0, 0, z]``, no file extension) and ``folder/MASKS_DICOM/<organ>/image_0…`` one 8-bit
    0/255 mask series per organ (``liver``, ``livertumor01``…, ``spleen``, ``bone``). With
    ``zipped`` each of the two folders is replaced by a ``.zip`` of itself, as the dataset
    ships.
    """
    import shutil
    import zipfile

    from pydicom.uid import generate_uid

    from radpipe.export.dicom import SeriesIdentity, write_ct_series

    root = Path(folder)
    phantom = make_phantom(shape=shape, spacing=spacing, tumours=tumours, seed=seed)
    affine = phantom.ct.affine.copy()
    affine[:2, 3] = 0.0  # 3D-IRCADb positions are [0, 0, z]
    seed_text = f"radpipe-ircadb:{patient_id}:{seed}"

    def identity(description: str, number: int) -> SeriesIdentity:
        return SeriesIdentity(
            patient_id=patient_id,
            patient_name=f"Ircad^{patient_id}",
            study_uid=generate_uid(entropy_srcs=[seed_text, "study"]),
            series_uid=generate_uid(entropy_srcs=[seed_text, description]),
            frame_of_reference_uid=generate_uid(entropy_srcs=[seed_text, "frame"]),
            series_description=description,
            series_number=number,
        )

    labels = phantom.labels.array
    masks: dict[str, NDArray[np.bool_]] = {
        "liver": np.isin(labels, (1, 2)),
        "spleen": labels == 3,
        "bone": phantom.ct.array >= 300,
    }
    for index, tumour in enumerate(phantom.tumours, start=1):
        centre = phantom.ct.world_to_index(tumour.centre_mm)
        grid = np.indices(labels.shape).astype(np.float64)
        distance = np.sqrt(
            sum(((grid[a] - centre[a]) * phantom.ct.spacing[a]) ** 2 for a in range(3))
        )
        masks[f"livertumor{index:02d}"] = (labels == 2) & (distance <= tumour.radius_mm + 1.0)
    root.mkdir(parents=True, exist_ok=True)
    write_ct_series(
        Volume(phantom.ct.array, affine),
        root / "PATIENT_DICOM",
        identity("PATIENT_DICOM", 1),
        encoding="hu16",
        file_names="image_{index}",
        uid_seed=seed_text + ":ct",
        overwrite=overwrite,
    )
    for number, (organ, mask) in enumerate(masks.items(), start=2):
        write_ct_series(
            Volume(mask.astype(np.uint8), affine),
            root / "MASKS_DICOM" / organ,
            identity(organ, number),
            encoding="mask8",
            file_names="image_{index}",
            uid_seed=f"{seed_text}:{organ}",
            overwrite=overwrite,
        )
    if zipped:
        for name in ("PATIENT_DICOM", "MASKS_DICOM"):
            source = root / name
            archive = root / f"{name}.zip"
            temporary = root / f".{name}.zip.tmp"
            with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as bundle:
                for path in sorted(source.rglob("*")):
                    if path.is_file():
                        bundle.write(path, path.relative_to(root).as_posix())
            temporary.replace(archive)
            shutil.rmtree(source)
    return Phantom(
        ct=Volume(phantom.ct.array, affine),
        labels=LabelMap(labels, affine, labels=LABELS),
        tumours=phantom.tumours,
    )


def tumour_heatmap(phantom: Phantom, *, spread: float = 1.5) -> NDArray[np.float32]:
    """A simulated model output: a Gaussian blob on each tumour, peak 1 at its centre.

    Parameters
    ----------
    phantom : Phantom
    spread : float
        Standard deviation of each blob as a multiple of the tumour radius.

    Returns
    -------
    (S, R, C) float32 on the phantom's grid.
    """
    ct = phantom.ct
    grid = [np.arange(n, dtype=np.float32) for n in ct.spatial_shape]
    heat = np.zeros(ct.spatial_shape, dtype=np.float32)
    for tumour in phantom.tumours:
        centre = ct.world_to_index(tumour.centre_mm)
        sigma = tumour.radius_mm * spread
        parts = [
            np.exp(-(((g - c) * s) ** 2) / (2 * sigma**2)).astype(np.float32)
            for g, c, s in zip(grid, centre, ct.spacing, strict=True)
        ]
        blob = parts[0][:, None, None] * parts[1][None, :, None] * parts[2][None, None, :]
        np.maximum(heat, blob, out=heat)
    return heat
