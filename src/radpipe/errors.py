"""The exceptions and warnings radpipe raises for problems a user can cause or fix."""

from __future__ import annotations


class RadpipeError(Exception):
    """Base class of every error a user of radpipe can cause; its message says what to do."""


class ReadError(RadpipeError, OSError):
    """A file could not be read: unknown format, corrupt content or an undecodable encoding."""


class SeriesError(RadpipeError, ValueError):
    """Slices cannot be assembled into one volume (duplicates, mixed sizes, ambiguous choice)."""


class GeometryError(RadpipeError, ValueError):
    """An affine, orientation or spacing is invalid or inconsistent."""


class FormatError(RadpipeError, ValueError):
    """An output format or option is not supported, or a value does not fit the format."""


class DatasetError(RadpipeError, ValueError):
    """A dataset on disk is malformed or does not match what was asked of it."""


class ModelError(RadpipeError, ValueError):
    """A model folder, its card or its weights do not fit what was asked (or training failed)."""


class PacsError(RadpipeError, OSError):
    """A DICOM network peer could not be reached, refused, aborted or lacks what was asked."""


class OutputExistsError(RadpipeError, FileExistsError):
    """An output file exists already and overwriting was not allowed."""


class WriteError(RadpipeError, OSError):
    """An output cannot be written there: a read-only or missing folder, a file in the way."""


class RadpipeWarning(UserWarning):
    """Something a user should know about the data (uneven spacing, dropped slices)."""


class GeometryWarning(RadpipeWarning):
    """A series' geometry is irregular: uneven or missing slices, gantry tilt, mixed spacing."""


class DuplicateSliceWarning(RadpipeWarning):
    """Images sharing a slice position were dropped by the chosen duplicate policy."""


class ResampledWarning(RadpipeWarning):
    """A mask or heatmap on another grid was resampled onto the image by world position."""


class ContourWarning(RadpipeWarning):
    """A contour is off the image, crosses itself, has too few points or covers the image."""
