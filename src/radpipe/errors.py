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


class OutputExistsError(RadpipeError, FileExistsError):
    """An output file exists already and overwriting was not allowed."""


class RadpipeWarning(UserWarning):
    """Something a user should know about the data (uneven spacing, dropped slices)."""
