"""The viewer's 3-D pane: the masks' surfaces ray-cast from any direction, rendered on the server
like the slice panes (one PNG per view, no volume sent to the browser, no WebGL needed).

Each selected label's first surface along every ray is shaded from its depth map; organs are
drawn translucent so the tumours inside them stay visible, tumours opaque.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from radpipe.masks import is_tumour

BACKGROUND = (17, 17, 17)
ORGAN_OPACITY = 0.4


@dataclass
class SurfaceRenderer:
    """Ray casting over the labelled region of an LPS-canonical label array.

    Parameters
    ----------
    labels : ndarray
        (S, R, C) label values, slices to S, rows to P, columns to L.
    spacing : tuple of float
        Voxel spacing in mm along slice, row and column.
    """

    labels: NDArray[np.uint16]
    spacing: tuple[float, float, float]

    def __post_init__(self) -> None:
        present = np.nonzero(self.labels.any(axis=(1, 2)))[0]
        if present.size == 0:
            self.box = None
            return
        rows = np.nonzero(self.labels[present[0] : present[-1] + 1].any(axis=(0, 2)))[0]
        columns = np.nonzero(self.labels[present[0] : present[-1] + 1].any(axis=(0, 1)))[0]
        start = np.array([present[0], rows[0], columns[0]])
        stop = np.array([present[-1], rows[-1], columns[-1]]) + 1
        self.box = (start, stop)
        # one empty voxel around the labelled box: rays leaving it sample the border
        self.crop = np.pad(
            self.labels[start[0] : stop[0], start[1] : stop[1], start[2] : stop[2]], 1
        )

    def render(
        self,
        azimuth: float,
        elevation: float,
        colours: dict[int, tuple[int, int, int]],
        names: dict[int, str],
        *,
        size: int = 192,
    ) -> NDArray[np.uint8]:
        """An RGB (size, size) picture of the chosen labels seen from a direction.

        Parameters
        ----------
        azimuth : float
            Degrees about the patient's S axis; 0 looks from anterior (patient's left on the
            picture's right, head up), 90 from the patient's right side.
        elevation : float
            Degrees the camera is raised towards the head (90 looks down from superior).
        colours : dict
            Label value → RGB of every label to draw; others are transparent.
        names : dict
            Label value → name (tumours are opaque, organs translucent).
        size : int
            Picture width and height in pixels (also the number of depth samples).
        """
        picture = np.empty((size, size, 3), np.float32)
        picture[:] = BACKGROUND
        if self.box is None or not colours:
            return picture.astype(np.uint8)
        sampled = self._sample(azimuth, elevation, size)
        layers = []
        for value, colour in colours.items():
            inside = sampled == value
            depth = inside.argmax(axis=2)
            hit = np.take_along_axis(inside, depth[..., None], axis=2)[..., 0]
            if not hit.any():
                continue
            depth = depth.astype(np.float32)
            shade = _shading(depth, hit)
            rgb = np.asarray(colour, np.float32)[None, None, :] * shade[..., None]
            alpha = 1.0 if is_tumour(names.get(value, "")) else ORGAN_OPACITY
            layers.append((np.where(hit, depth, np.inf), rgb, hit * alpha))
        if not layers:
            return picture.astype(np.uint8)
        depths = np.stack([layer[0] for layer in layers])
        back_to_front = np.argsort(-depths, axis=0)
        colours_stack = np.stack([layer[1] for layer in layers])
        alphas = np.stack([layer[2] for layer in layers]).astype(np.float32)
        for order in back_to_front:
            rgb = np.take_along_axis(colours_stack, order[None, ..., None], axis=0)[0]
            alpha = np.take_along_axis(alphas, order[None], axis=0)[0][..., None]
            picture = picture * (1 - alpha) + rgb * alpha
        return np.clip(picture, 0, 255).astype(np.uint8)

    def _sample(self, azimuth: float, elevation: float, size: int) -> NDArray[np.uint16]:
        """Labels at (row, column, depth) sample points of the view's cube, front to back."""
        assert self.box is not None
        start, stop = self.box
        spacing = np.asarray(self.spacing, np.float64)
        extent = (stop - start) * spacing  # mm along S, P, L index axes
        centre = extent / 2
        radius = float(np.linalg.norm(extent)) / 2 or 1.0
        right, down, forward = _camera(azimuth, elevation)
        steps = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        steps *= radius
        shape = self.crop.shape
        # (row, column, depth): each ray contiguous, so its first hit is a fast argmax
        flat = np.zeros((size, size, size), np.int32)
        values = np.empty((size, size, size), np.float32)
        for axis in range(3):
            # crop index units along S, P, L; the padded border (index 0 and last) is empty
            scale = 1 / spacing[axis]
            base = centre[axis] * scale - 0.5 + 1
            plane = (
                steps[:, None] * float(down[axis] * scale)
                + steps[None, :] * float(right[axis] * scale)
                + np.float32(base)
            )
            np.add(plane[:, :, None], (steps * float(forward[axis] * scale))[None, None, :],
                   out=values)  # fmt: skip
            np.rint(values, out=values)
            np.clip(values, 0, shape[axis] - 1, out=values)
            stride = int(np.prod(shape[axis + 1 :]))
            if stride == 1:
                flat += values.astype(np.int32)
            else:
                flat += values.astype(np.int32) * np.int32(stride)
        sampled: NDArray[np.uint16] = self.crop.ravel()[flat]
        return sampled


def _camera(
    azimuth: float, elevation: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Picture right, picture down and viewing direction as (S, P, L) mm vectors."""
    a, e = math.radians(azimuth), math.radians(elevation)
    up = np.array([1.0, 0.0, 0.0])  # towards S
    # from anterior: right on screen is the patient's L, the view runs towards P
    right = np.array([0.0, -math.sin(a), math.cos(a)])
    forward = np.array([0.0, math.cos(a), math.sin(a)])
    forward, up = forward * math.cos(e) - up * math.sin(e), forward * math.sin(e) + up * math.cos(e)
    return right, -up, forward


def _shading(depth: NDArray[np.float32], hit: NDArray[np.bool_]) -> NDArray[np.float32]:
    """Lambert shading with the light at the camera, normals from the depth map's slope."""
    from scipy.ndimage import gaussian_filter

    filled = np.where(hit, depth, depth[hit].max() if hit.any() else 0).astype(np.float32)
    d_row, d_column = np.gradient(gaussian_filter(filled, 1.0))
    d_row = np.clip(d_row, -4, 4)
    d_column = np.clip(d_column, -4, 4)
    facing = 1 / np.sqrt(1 + d_row**2 + d_column**2)
    shade: NDArray[np.float32] = (0.3 + 0.7 * facing).astype(np.float32)
    return shade
