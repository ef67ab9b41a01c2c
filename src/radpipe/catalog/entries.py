"""The one series record of a catalog: what discovery builds, the store keeps and queries return."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: The columns of one series row in CSV / JSON exports, in order.
EXPORT_COLUMNS = (
    "key", "patient", "study_uid", "series_uid", "modality", "description", "role", "name",
    "layout", "format", "slices", "rows", "columns", "spacing_slice", "spacing_row",
    "spacing_column", "orientation", "slice_spacing_regular", "gantry_tilt_deg", "files",
    "linked", "first_location",
)  # fmt: skip


@dataclass
class SeriesEntry:
    """One series of a catalog (DICOM stack, SEG / RTSTRUCT object, volume file or contour
    set): built by discovery, stored by the catalog and returned by its queries."""

    key: str
    patient: str
    study_uid: str | None
    series_uid: str | None
    modality: str | None
    description: str | None
    role: str
    name: str | None
    layout: str
    format: str
    shape: tuple[int, ...] | None
    spacing: tuple[float, float, float] | None
    orientation: str | None
    slice_spacing_regular: bool | None
    gantry_tilt_deg: float
    files: int
    first_location: str
    linked: str | None = None
    warnings: tuple[str, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.shape = tuple(int(n) for n in self.shape) if self.shape else None
        if self.spacing:
            slice_mm, row_mm, column_mm = (float(v) for v in self.spacing)
            self.spacing = (slice_mm, row_mm, column_mm)
        else:
            self.spacing = None
        self.warnings = tuple(self.warnings)

    @property
    def slice_spacing_mm(self) -> float | None:
        """Distance between slice centres in mm (not SliceThickness, which overlapping
        reconstructions exceed the spacing by)."""
        return self.spacing[0] if self.spacing else None

    def as_row(self) -> dict[str, Any]:
        """Flat dictionary of the export columns."""
        shape = self.shape or (None, None, None)
        spacing = self.spacing or (None, None, None)
        values = asdict(self)
        values.update(
            slices=shape[0],
            rows=shape[1] if len(shape) > 1 else None,
            columns=shape[2] if len(shape) > 2 else None,
            spacing_slice=spacing[0],
            spacing_row=spacing[1],
            spacing_column=spacing[2],
        )
        return {column: values[column] for column in EXPORT_COLUMNS}
