"""Window / level: named HU presets, defaults from the DICOM header, percentile windows for
non-HU data, the mapping of any image to 8-bit grey, and the one list of intensity
normalisations (``Normalization``) that heatmaps, preprocessing and exports choose from."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from radpipe.errors import FormatError
from radpipe.volume import Volume


class Normalization(StrEnum):
    """How values are mapped to a range: the one list every command chooses from.

    ``minmax`` maps the smallest and largest value to 0 and 1; ``zscore`` subtracts the mean and
    divides by the standard deviation; ``percentile`` clips at two percentiles; ``window`` maps
    a window / level (HU) to 0…1; ``none`` keeps the values. Each function accepts the subset
    that makes sense for it (see :meth:`choose`).
    """

    NONE = "none"
    MINMAX = "minmax"
    ZSCORE = "zscore"
    PERCENTILE = "percentile"
    WINDOW = "window"

    @classmethod
    def choose(
        cls, value: Normalization | str, allowed: tuple[Normalization, ...], *, option: str
    ) -> Normalization:
        """``value`` as a member of ``allowed``.

        Raises
        ------
        FormatError
            Naming ``option`` and the allowed values when ``value`` is not one of them.
        """
        names = ", ".join(member.value for member in allowed)
        try:
            chosen = cls(str(value).lower())
        except ValueError:
            raise FormatError(f"{option} must be one of {names}, got {value!r}") from None
        if chosen not in allowed:
            raise FormatError(f"{option} must be one of {names} here, got {chosen.value!r}")
        return chosen


@dataclass(frozen=True)
class Window:
    """A display window: values ``center ± width / 2`` map to black … white.

    Attributes
    ----------
    center : float
        Window centre (level), in the image's units (HU for CT).
    width : float
        Window width, > 0.
    """

    center: float
    width: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.center) or not np.isfinite(self.width) or self.width <= 0:
            raise FormatError(
                f"a window needs a finite centre and a positive width, got "
                f"{self.center}/{self.width}"
            )

    @property
    def low(self) -> float:
        """Value shown black."""
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        """Value shown white."""
        return self.center + self.width / 2


#: Named CT windows in HU (radiologists quote them as width / level: soft tissue 400/40).
PRESETS: dict[str, Window] = {
    "soft-tissue": Window(40, 400),
    "abdomen": Window(40, 350),
    "liver": Window(90, 150),
    "mediastinum": Window(50, 350),
    "lung": Window(-600, 1500),
    "bone": Window(400, 1800),
    "brain": Window(40, 80),
    "stroke": Window(40, 40),
    "subdural": Window(75, 200),
}


def parse_window(text: str) -> Window:
    """A window from a preset name (``liver``) or ``CENTER/WIDTH`` (``40/400``).

    Raises
    ------
    FormatError
        If the text is neither.
    """
    name = text.strip().lower().replace("_", "-")
    if name in PRESETS:
        return PRESETS[name]
    if name == "soft":
        return PRESETS["soft-tissue"]
    parts = name.split("/")
    if len(parts) == 2:
        try:
            return Window(float(parts[0]), float(parts[1]))
        except ValueError:
            pass
    raise FormatError(
        f"unknown window {text!r}: use CENTER/WIDTH (e.g. 40/400) or one of {', '.join(PRESETS)}"
    )


def auto_window(values: ArrayLike, *, percentiles: tuple[float, float] = (1.0, 99.0)) -> Window:
    """A window spanning the given percentiles of the finite values (for MR and other data).

    A constant image gets a window of width 1 around its value.
    """
    data = np.asarray(values)
    if data.dtype.kind == "f":
        data = data[np.isfinite(data)]
    if data.size == 0:
        return Window(0.0, 1.0)
    if data.size > 2_000_000:  # a strided sample is enough for percentiles
        data = data.reshape(-1)[:: data.size // 1_000_000]
    low, high = (float(v) for v in np.percentile(data, percentiles))
    if high <= low:
        return Window(low, 1.0)
    return Window((low + high) / 2, high - low)


def default_window(volume: Volume, values: ArrayLike | None = None) -> Window:
    """The window to show a volume with when the user names none.

    The first WindowCenter / WindowWidth of the DICOM header when present; the soft-tissue
    preset for CT in HU without one; else the 1–99 percentile window of ``values`` (or of the
    whole volume).
    """
    meta = volume.meta
    if meta.window_center and meta.window_width and meta.window_width[0] > 0:
        return Window(meta.window_center[0], meta.window_width[0])
    if meta.units == "HU":
        return PRESETS["soft-tissue"]
    return auto_window(volume.array if values is None else values)


def resolve_window(volume: Volume, window: str | Window | tuple[float, float] | None) -> Window:
    """A window from a name / ``C/W`` text, a Window, a (centre, width) pair, or the default."""
    if window is None:
        return default_window(volume)
    if isinstance(window, Window):
        return window
    if isinstance(window, str):
        if window.strip().lower() == "auto":
            return auto_window(volume.array)
        return parse_window(window)
    center, width = window
    return Window(float(center), float(width))


def apply_window(image: ArrayLike, window: Window, *, invert: bool = False) -> NDArray[np.uint8]:
    """Map values to 8-bit grey: ``low`` → 0, ``high`` → 255, linear in between, clipped.

    Parameters
    ----------
    image : ndarray
        Any shape; integer or float values (NaN shows black).
    window : Window
    invert : bool
        Show high values dark (MONOCHROME1 display).

    Returns
    -------
    ndarray of uint8, same shape

    Examples
    --------
    >>> apply_window(np.array([-160, 40, 240]), Window(40, 400)).tolist()
    [0, 128, 255]
    """
    data = np.asarray(image)
    if data.dtype in (np.int16, np.uint16, np.uint8, np.int8):
        # one lookup per pixel; signed values index through their unsigned view
        table = _window_table(data.dtype, window, invert)
        unsigned = (
            data.view(np.dtype(f"u{data.dtype.itemsize}")) if data.dtype.kind == "i" else data
        )
        if unsigned.ndim == 3 and unsigned.size > 4_000_000:
            # whole volumes: look up a few slices at a time into one output (no big temporaries)
            grey: NDArray[np.uint8] = np.empty(unsigned.shape, dtype=np.uint8)
            for start in range(0, unsigned.shape[0], 8):
                np.take(table, unsigned[start : start + 8], out=grey[start : start + 8])
            return grey
        grey = table[unsigned]
        return grey
    scaled = (data.astype(np.float32) - np.float32(window.low)) * np.float32(255.0 / window.width)
    np.clip(scaled, 0.0, 255.0, out=scaled)
    result: NDArray[np.uint8] = np.rint(np.nan_to_num(scaled, nan=0.0)).astype(np.uint8)
    return 255 - result if invert else result


@functools.lru_cache(maxsize=32)
def _window_table(dtype: np.dtype[Any], window: Window, invert: bool) -> NDArray[np.uint8]:
    """Lookup table indexed by the unsigned view of every value of a ≤16-bit integer type."""
    info = np.iinfo(dtype)
    bits = info.bits
    unsigned = np.arange(2**bits, dtype=np.int64)
    values = (
        unsigned if info.min == 0 else np.where(unsigned > info.max, unsigned - 2**bits, unsigned)
    )
    values = values.astype(np.float32)
    scaled = np.clip((values - np.float32(window.low)) * np.float32(255.0 / window.width), 0, 255)
    table: NDArray[np.uint8] = np.rint(scaled).astype(np.uint8)
    return 255 - table if invert else table


def to_grey(volume_or_image: Volume | ArrayLike, window: Window, *, invert: bool = False) -> Any:
    """Window a Volume's array (or any array); RGB arrays (last axis 3, uint8) pass through."""
    data = (
        volume_or_image.array
        if isinstance(volume_or_image, Volume)
        else np.asarray(volume_or_image)
    )
    if data.ndim >= 3 and data.shape[-1] == 3 and data.dtype == np.uint8:
        return data
    return apply_window(data, window, invert=invert)
