"""Heatmap values to colours: normalisation, matplotlib colour tables, thresholds and alpha
blending onto grey or RGB images. Pure NumPy on arrays."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radpipe.errors import FormatError
from radpipe.windowing import Normalization

#: The normalisations a heatmap can be shown with.
HEATMAP_NORMALIZATIONS = (
    Normalization.MINMAX,
    Normalization.ZSCORE,
    Normalization.PERCENTILE,
    Normalization.NONE,
)

#: The colormaps of the heatmap tools radpipe replaces; any matplotlib name works too.
NAMED = ("red", "hot", "jet", "viridis", "plasma")


@functools.lru_cache(maxsize=64)
def colormap_table(name: str) -> NDArray[np.uint8]:
    """The 256-entry RGB table of a colormap, sampled from matplotlib.

    ``red`` is black → red (matplotlib's ``LinearSegmentedColormap`` of those two colours);
    every other name is looked up in matplotlib's registry (``hot``, ``jet``, ``viridis``,
    ``plasma``, ``magma``, ``Reds`` …).

    Raises
    ------
    FormatError
        If matplotlib knows no colormap of that name.
    """
    import matplotlib
    from matplotlib.colors import LinearSegmentedColormap

    colormap: Any
    if name == "red":
        colormap = LinearSegmentedColormap.from_list("red", ["black", "red"], N=256)
    else:
        try:
            colormap = matplotlib.colormaps[name]
        except KeyError:
            raise FormatError(
                f"unknown colormap {name!r}; use one of {', '.join(NAMED)} or any matplotlib "
                f"colormap name (e.g. magma, inferno, Reds)"
            ) from None
    rgba = colormap(np.linspace(0.0, 1.0, 256))
    table: NDArray[np.uint8] = np.rint(rgba[:, :3] * 255).astype(np.uint8)
    return table


def normalization_range(
    values: ArrayLike,
    method: Normalization | str = Normalization.MINMAX,
    *,
    percentiles: tuple[float, float] = (5.0, 95.0),
) -> tuple[float, float]:
    """The values that map to 0 and 1: min/max, mean ± 3 SD, two percentiles, or (0, 1).

    Computed over everything given (a whole heatmap volume, so every slice is coloured alike).

    Raises
    ------
    FormatError
        If no value is finite, or the method or percentiles are not valid.
    """
    choice = Normalization.choose(method, HEATMAP_NORMALIZATIONS, option="--normalization")
    low_pct, high_pct = (float(v) for v in percentiles)
    if choice is Normalization.PERCENTILE and not 0.0 <= low_pct < high_pct <= 100.0:
        raise FormatError(
            f"--percentiles must be LOW,HIGH with 0 ≤ LOW < HIGH ≤ 100, got {list(percentiles)}"
        )
    data = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(data)
    if not finite.any():
        raise FormatError("the heatmap has no finite value (all NaN or infinite)")
    good = data if bool(finite.all()) else data[finite]
    if choice is Normalization.NONE:
        return 0.0, 1.0
    if choice is Normalization.ZSCORE:
        mean, std = float(good.mean()), float(good.std())
        return mean - 3 * std, mean + 3 * std
    if choice is Normalization.PERCENTILE:
        low, high = (float(v) for v in np.percentile(good, percentiles))
        return low, high
    return float(good.min()), float(good.max())


def normalize(
    values: ArrayLike,
    method: Normalization | str = Normalization.MINMAX,
    *,
    percentiles: tuple[float, float] = (5.0, 95.0),
    value_range: tuple[float, float] | None = None,
) -> NDArray[np.float32]:
    """Map heatmap values to [0, 1]; NaN and ±inf stay NaN ("no value").

    Parameters
    ----------
    values : array_like
        Any shape.
    method : {"minmax", "zscore", "percentile", "none"}
        ``zscore`` maps ±3 standard deviations to 0 and 1 (clipped); ``percentile`` clips at
        ``percentiles``; ``none`` only clips to [0, 1]. A constant map becomes 0 everywhere.
    value_range : (low, high), optional
        The values mapping to 0 and 1, computed elsewhere (over a whole volume, so one slice
        is coloured as the volume is); from ``values`` by ``method`` when omitted.

    Raises
    ------
    FormatError
        If no value is finite.
    """
    data = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(data)
    low, high = (
        value_range
        if value_range is not None
        else normalization_range(data, method, percentiles=percentiles)
    )
    result = data if bool(finite.all()) else np.where(finite, data, np.float32(np.nan))
    if high <= low:
        return np.where(finite, np.float32(0.0), np.float32(np.nan)).astype(np.float32)
    scaled = (result - np.float32(low)) * np.float32(1.0 / (high - low))
    np.clip(scaled, 0.0, 1.0, out=scaled)
    return scaled


def blend(
    base: NDArray[np.uint8],
    unit_values: NDArray[np.float32],
    *,
    colormap: str = "jet",
    opacity: float = 0.6,
    threshold: float | None = None,
    alpha_by_value: bool = False,
) -> NDArray[np.uint8]:
    """Colour normalised values and blend them over a grey (H, W) or RGB (H, W, 3) image.

    Parameters
    ----------
    base : (H, W) or (H, W, 3) uint8
    unit_values : (H, W) float32 in [0, 1], NaN for no value
    colormap : str
    opacity : float
        0.0 (invisible) … 1.0 (opaque).
    threshold : float, optional
        Values below it (in the normalised 0…1 scale) are transparent.
    alpha_by_value : bool
        Opacity proportional to the value (faint where low).

    Returns
    -------
    (H, W, 3) uint8
    """
    if not 0.0 <= opacity <= 1.0:
        raise FormatError(f"opacity must be between 0.0 and 1.0, got {opacity}")
    if base.shape[:2] != unit_values.shape:
        raise FormatError(f"heatmap shape {unit_values.shape} differs from image {base.shape[:2]}")
    valid = np.isfinite(unit_values)
    clean = np.where(valid, unit_values, np.float32(0.0))
    heat = np.rint(clean * np.float32(255.0)).astype(np.uint16)
    hidden = ~valid
    if threshold is not None:
        hidden |= clean < threshold
    if base.ndim == 2 and not alpha_by_value:
        # one lookup per pixel in a (grey, heat) table of packed RGB (heat 256 = transparent)
        heat[hidden] = 256
        index = base.astype(np.uint32) * 257 + heat
        packed = np.take(_packed_table(colormap, round(opacity * 256)), index)
        return packed.view(np.uint8).reshape(*base.shape, 4)[..., :3]
    table = colormap_table(colormap)
    rgb_base = base[..., None] if base.ndim == 2 else base
    colours = np.take(table, heat.astype(np.uint8), axis=0)
    # integer blending with weights in 1/256: (base * (256 - a) + colour * a) / 256
    if alpha_by_value:
        weight = np.rint(clean * np.float32(opacity * 256.0)).astype(np.uint16)
    else:
        weight = np.full(unit_values.shape, round(opacity * 256), dtype=np.uint16)
    weight[hidden] = 0
    weight = weight[..., None]
    mixed = rgb_base.astype(np.uint16) * (256 - weight) + colours.astype(np.uint16) * weight
    mixed += 128
    mixed >>= 8
    return mixed.astype(np.uint8)


@functools.lru_cache(maxsize=16)
def _packed_table(colormap: str, weight: int) -> NDArray[np.uint32]:
    """RGB of grey ``g`` under heat ``h`` at index ``g * 257 + h``, packed little-endian
    into uint32 (heat 256 leaves the grey unchanged)."""
    colours = colormap_table(colormap).astype(np.uint32)
    grey = np.arange(256, dtype=np.uint32)[:, None, None]
    mixed = (grey * (256 - weight) + colours[None, :, :] * weight + 128) >> 8  # (256, 256, 3)
    table = np.empty((256, 257, 3), dtype=np.uint32)
    table[:, :256] = mixed
    table[:, 256] = grey[:, 0]
    packed = table[..., 0] | (table[..., 1] << 8) | (table[..., 2] << 16) | np.uint32(255 << 24)
    return np.ascontiguousarray(packed.reshape(-1))
