"""The Jupyter widget: three linked planes of one patient with slice sliders, window presets and a
drag window, mask and heatmap overlays with opacity, and the lesion table with click-to-jump.

Panes are rendered by the viewer's renderer (``radpipe.viewer.state``) in the kernel and shown
as PNG ``ipywidgets.Image`` values, so nothing but the visible slices travels to the browser.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe._optional import import_optional
from radpipe.errors import RadpipeError
from radpipe.masks import is_tumour
from radpipe.notebook.sources import Source, open_source
from radpipe.render import Plane
from radpipe.viewer.state import Scan, ViewRequest, make_scan, pane_geometry, png_bytes, render_pane
from radpipe.volume import Heatmap, Volume
from radpipe.windowing import PRESETS, Window

PLANES = ("axial", "coronal", "sagittal")
CROSS = np.array([80, 200, 255], np.float32)
DEFAULT = "header default"
CUSTOM = "custom"


def explore(
    source: Any,
    patient: int | str = 1,
    mask: str | None = "all",
    heatmap: Any = None,
    *,
    masks: Any = None,
    keep_phi: bool = False,
) -> Explorer:
    """Explore one patient of a dataset in a live Jupyter widget.

    Parameters
    ----------
    source : Volume, str or Path
        A dataset root, a catalog (``.sqlite``), a patient or series folder, an image file, or a
        ``Volume``.
    patient : int or str
        A number in the dataset's order (1 = the first patient folder), a folder name or a
        pseudonym.
    mask : str, optional
        The mask shown at first: an organ name (``"liver"``), ``"tumor"`` for every tumour,
        ``"all"`` or None for none. The others can be switched on in the widget.
    heatmap : Heatmap, ndarray, str or Path, optional
        A model heatmap of the chosen patient, placed on its image by world position (a bare
        array must have the image's grid); other patients of the menu are shown without it.
    masks : MaskSet or LabelMap, optional
        Masks of a ``Volume`` or image-file source.
    keep_phi : bool
        Show real patient identifiers instead of pseudonyms.

    Returns
    -------
    Explorer
        Displays itself as the cell's result; ``state()`` describes what it shows.

    Examples
    --------
    >>> from radpipe.notebook import explore
    >>> explore("/data/3Dircadb1", patient=1, mask="liver")  # doctest: +SKIP
    """
    return Explorer(
        open_source(source, masks=masks, keep_phi=keep_phi),
        patient=patient, mask=mask, heatmap=heatmap, keep_phi=keep_phi,
    )  # fmt: skip


class Explorer:
    """A live widget over one patient's image (see :func:`explore`)."""

    def __init__(
        self,
        source: Source,
        *,
        patient: int | str = 1,
        mask: str | None = "all",
        heatmap: Any = None,
        keep_phi: bool = False,
    ) -> None:
        self._widgets = import_optional("ipywidgets", extra="notebook")
        self._source = source
        weakref.finalize(self, source.close)
        self._keep_phi = keep_phi
        self._heatmap_input = heatmap
        self._updating = False
        self.patient = source.choose(patient)
        self._heat_patient = self.patient
        self._first_mask: list[str] | str | None = mask
        self._build_controls()
        self._load(self.patient, mask)

    # -- what it shows ---------------------------------------------------------------------
    @property
    def scan(self) -> Scan:
        """The scan on show (display orientation, LPS-canonical)."""
        return self._scan

    @property
    def window(self) -> Window:
        """The current display window (centre, width)."""
        return self._window

    @property
    def point(self) -> tuple[int, int, int]:
        """The (k, j, i) voxel the three planes pass through."""
        return (self._point[0], self._point[1], self._point[2])

    @property
    def shown_masks(self) -> list[str]:
        """Names of the masks drawn."""
        return [self._scan.label_names[v] for v in self._shown]

    def state(self) -> dict[str, Any]:
        """What the widget shows, as plain values (for tests and saved notebooks)."""
        return {
            "patient": self._scan.meta.get("patient"),
            "folder": dict(self._source.patients).get(self.patient),
            "patients": len(self._source.patients),
            "shape": list(self._scan.image.spatial_shape),
            "spacing": [float(v) for v in self._scan.image.spacing],
            "window": [self._window.center, self._window.width],
            "preset": self._preset.value,
            "point": list(self.point),
            "masks": self.shown_masks,
            "all_masks": list(self._scan.label_names.values()),
            "heatmap": self._scan.heat is not None,
            "lesions": [dict(lesion) for lesion in self._scan.lesions],
        }

    def jump(self, k: int, j: int, i: int) -> None:
        """Move the three planes to pass through voxel (k, j, i)."""
        shape = self._scan.image.spatial_shape
        self._point = [min(max(int(v), 0), n - 1) for v, n in zip((k, j, i), shape, strict=True)]
        self._updating = True
        try:
            for axis, plane in enumerate(PLANES):
                self._sliders[plane].value = self._point[axis]
        finally:
            self._updating = False
        self.refresh()

    def set_window(self, center: float, width: float) -> None:
        """Show the image with a window (the preset menu says which, or "custom")."""
        self._window = Window(float(center), max(float(width), 1.0))
        low = round(self._window.center - self._window.width / 2)
        high = round(self._window.center + self._window.width / 2)
        self._updating = True
        try:
            self._range.min = min(self._range.min, low)
            self._range.max = max(self._range.max, high)
            self._range.value = (low, high)
            self._preset.value = self._preset_name(self._window)
        finally:
            self._updating = False
        self.refresh()

    def show_masks(self, names: list[str] | str | None) -> None:
        """Draw these masks (names, ``"all"``, ``"tumor"`` or None)."""
        self._shown = self._chosen_values(names)
        self._updating = True
        try:
            for value, box in self._mask_boxes.items():
                box.value = value in self._shown
        finally:
            self._updating = False
        self.refresh()

    def refresh(self) -> None:
        """Render the three panes again."""
        for plane in PLANES:
            self._images[plane].value = self._picture(plane)
            index = self._point[PLANES.index(plane)]
            self._labels[plane].value = f"{plane} {index} / {self._geometry[plane]['count'] - 1}"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- building --------------------------------------------------------------------------
    def _build_controls(self) -> None:
        w = self._widgets
        self._images = {p: w.Image(format="png", layout=w.Layout(width="100%")) for p in PLANES}
        self._sliders = {
            p: w.IntSlider(min=0, max=1, description=p, continuous_update=True,
                           layout=w.Layout(width="100%"))
            for p in PLANES
        }  # fmt: skip
        self._labels = {p: w.Label() for p in PLANES}
        for axis, plane in enumerate(PLANES):
            self._sliders[plane].observe(self._on_slider(axis), names="value")
        self._patient_menu = w.Dropdown(
            options=[(folder, key) for key, folder in self._source.patients],
            value=self.patient, description="patient",
            layout=w.Layout(display="" if len(self._source.patients) > 1 else "none"),
        )  # fmt: skip
        self._patient_menu.observe(self._on_patient, names="value")
        self._preset = w.Dropdown(options=[DEFAULT, *PRESETS, CUSTOM], description="window")
        self._preset.observe(self._on_preset, names="value")
        self._range = w.IntRangeSlider(
            min=-1024, max=3071, value=(-160, 240), description="HU", continuous_update=False,
            layout=w.Layout(width="420px"),
        )  # fmt: skip
        self._range.observe(self._on_range, names="value")
        self._opacity = w.FloatSlider(value=0.4, min=0, max=1, step=0.05, description="masks")
        self._opacity.observe(lambda _: self.refresh(), names="value")
        self._heat_box = w.Checkbox(value=True, description="heatmap", indent=False)
        self._heat_opacity = w.FloatSlider(value=0.5, min=0, max=1, step=0.05,
                                           description="opacity")  # fmt: skip
        self._colormap = w.Dropdown(options=["jet", "hot", "viridis", "plasma", "red"],
                                    description="colormap")  # fmt: skip
        for control in (self._heat_box, self._heat_opacity, self._colormap):
            control.observe(lambda _: self.refresh(), names="value")
        self._masks_row = w.HBox()
        self._heat_row = w.HBox([self._heat_box, self._heat_opacity, self._colormap])
        self._title = w.HTML()
        self._lesions = w.VBox()
        panes = [
            w.VBox([self._images[p], self._sliders[p], self._labels[p]],
                   layout=w.Layout(width="33%"))
            for p in PLANES
        ]  # fmt: skip
        self.widget = w.VBox([
            self._title,
            w.HBox([self._patient_menu, self._preset, self._range]),
            w.HBox([self._opacity, self._masks_row]),
            self._heat_row,
            w.HBox(panes),
            self._lesions,
        ])  # fmt: skip

    def _load(self, key: str, mask: str | None) -> None:
        image, masks = self._source.open(key)
        # the heatmap given belongs to the first patient shown, not to the others of the menu
        heat = _heatmap(self._heatmap_input, image) if key == self._heat_patient else None
        self.patient = key
        self._scan = make_scan(image, masks=masks, heatmap=heat, keep_phi=self._keep_phi)
        self._geometry = pane_geometry(self._scan)
        try:
            self._shown = self._chosen_values(mask if mask is not None else self._first_mask)
        except RadpipeError:
            if mask is not None:
                raise
            self._shown = set(self._scan.label_names)  # another patient lacks the first choice
        self._point = [self._geometry[p]["count"] // 2 for p in PLANES]
        w = self._widgets
        self._updating = True
        try:
            if self._patient_menu.value != key:
                self._patient_menu.value = key
            for axis, plane in enumerate(PLANES):
                slider = self._sliders[plane]
                slider.max = self._geometry[plane]["count"] - 1
                slider.value = self._point[axis]
            self._mask_boxes = {}
            for value, name in self._scan.label_names.items():
                box = w.Checkbox(value=value in self._shown, description=name, indent=False,
                                 layout=w.Layout(width="auto"))  # fmt: skip
                box.observe(self._on_mask(value), names="value")
                self._mask_boxes[value] = box
            self._masks_row.children = list(self._mask_boxes.values())
            self._opacity.layout.display = "" if self._mask_boxes else "none"
            self._heat_row.layout.display = "" if self._scan.heat is not None else "none"
            self._lesions.children = self._lesion_rows()
            self._title.value = self._title_html()
            values = self._scan.image.array
            low, high = int(np.min(values)), int(np.max(values))
            with self._range.hold_trait_notifications():
                self._range.min, self._range.max = low, max(high, low + 1)
            self._range.description = self._scan.meta.get("units") or "value"
        finally:
            self._updating = False
        self._window = self._scan.window
        self.set_window(self._window.center, self._window.width)

    def _chosen_values(self, names: list[str] | str | None) -> set[int]:
        labels = self._scan.label_names
        if names is None or not labels:
            return set()
        wanted = [names] if isinstance(names, str) else list(names)
        chosen: set[int] = set()
        for name in wanted:
            text = name.strip().lower()
            if text == "all":
                return set(labels)
            found = {v for v, n in labels.items() if n.lower() == text}
            if not found and text in ("tumor", "tumour", "tumors", "tumours", "lesions"):
                found = {v for v, n in labels.items() if is_tumour(n)}
            if not found:
                raise RadpipeError(
                    f"no mask {name!r} for this patient; its masks are "
                    f"{', '.join(labels.values())} (or use 'all', 'tumor' or None)"
                )
            chosen |= found
        return chosen

    def _lesion_rows(self) -> list[Any]:
        w = self._widgets
        rows = []
        for lesion in self._scan.lesions:
            button = w.Button(
                description=(f"lesion {lesion['id']} · {lesion['source']} · "
                             f"{lesion['volume_ml']} mL · {lesion['diameter_mm']} mm"),
                tooltip="show this lesion", layout=w.Layout(width="auto"),
            )  # fmt: skip
            index = lesion["index"]
            button.on_click(lambda _, at=index: self.jump(*at))
            rows.append(button)
        summary = self._scan.summary
        if summary:
            burden = summary.get("tumour_burden_percent")
            organ = summary["reference_organ"]
            text = f"<b>{summary['tumour_count']} tumour(s)</b>, "
            text += f"{summary['total_tumour_volume_ml']} mL"
            text += f", {burden} % of the {organ}" if burden else ""
            rows.insert(0, w.HTML(text))
        return rows

    def _title_html(self) -> str:
        meta = self._scan.meta
        spacing = " × ".join(f"{v:g}" for v in meta["spacing_mm"])
        shape = " × ".join(str(v) for v in meta["shape"])
        return (f"<b>{meta.get('patient') or ''}</b> {meta.get('modality') or ''} "
                f"{meta.get('description') or ''} — {shape} voxels, {spacing} mm")  # fmt: skip

    # -- events ----------------------------------------------------------------------------
    def _on_patient(self, change: dict[str, Any]) -> None:
        if self._updating:
            return
        self._first_mask = self.shown_masks or None  # keep the organs chosen
        previous = self.patient
        try:
            self._load(change["new"], None)
        except Exception:
            self._updating = True
            try:
                self._patient_menu.value = previous  # the menu says what is shown
            finally:
                self._updating = False
            raise

    def _on_slider(self, axis: int) -> Any:
        def changed(change: dict[str, Any]) -> None:
            if self._updating:
                return
            self._point[axis] = int(change["new"])
            self.refresh()

        return changed

    def _on_mask(self, value: int) -> Any:
        def changed(change: dict[str, Any]) -> None:
            if self._updating:
                return
            (self._shown.add if change["new"] else self._shown.discard)(value)
            self.refresh()

        return changed

    def _on_preset(self, change: dict[str, Any]) -> None:
        if self._updating or change["new"] == CUSTOM:
            return
        chosen = self._scan.window if change["new"] == DEFAULT else PRESETS[change["new"]]
        self.set_window(chosen.center, chosen.width)

    def _on_range(self, change: dict[str, Any]) -> None:
        if self._updating:
            return
        low, high = change["new"]
        self.set_window((low + high) / 2, max(high - low, 1))

    def _preset_name(self, window: Window) -> str:
        def same(other: Window) -> bool:
            return abs(other.center - window.center) < 0.5 and abs(other.width - window.width) < 1

        if same(self._scan.window):
            return DEFAULT
        return next((name for name, preset in PRESETS.items() if same(preset)), CUSTOM)

    # -- pictures --------------------------------------------------------------------------
    def _picture(self, plane: str) -> bytes:
        request = ViewRequest(
            plane=Plane(plane), index=self._point[PLANES.index(plane)], window=self._window,
            labels=tuple(sorted(self._shown)), label_opacity=float(self._opacity.value),
            heatmap=bool(self._heat_box.value) and self._scan.heat is not None,
            colormap=str(self._colormap.value), heat_opacity=float(self._heat_opacity.value),
        )  # fmt: skip
        rgb = render_pane(self._scan, request)
        return png_bytes(self._crosshair(rgb, plane))

    def _crosshair(self, rgb: NDArray[np.uint8], plane: str) -> NDArray[np.uint8]:
        """Where the other two planes cut this one, as thin lines."""
        slices = self._geometry["axial"]["count"]
        k, j, i = self._point
        row, column = {"axial": (j, i), "coronal": (slices - 1 - k, i),
                       "sagittal": (slices - 1 - k, j)}[plane]  # fmt: skip
        pane = self._geometry[plane]
        y = min(int((row + 0.5) * rgb.shape[0] / pane["rows"]), rgb.shape[0] - 1)
        x = min(int((column + 0.5) * rgb.shape[1] / pane["columns"]), rgb.shape[1] - 1)
        out = rgb if rgb.flags.writeable else rgb.copy()  # a resized pane comes read-only
        out[y, :] = (out[y, :] * 0.4 + CROSS * 0.6).astype(np.uint8)
        out[:, x] = (out[:, x] * 0.4 + CROSS * 0.6).astype(np.uint8)
        return out


def _heatmap(heatmap: Any, image: Volume) -> Heatmap | NDArray[Any] | None:
    if heatmap is None or isinstance(heatmap, Heatmap | np.ndarray):
        return heatmap
    if isinstance(heatmap, str | Path):
        from radpipe.io.heatmaps import read_heatmap

        return read_heatmap(heatmap)
    raise RadpipeError(
        f"a heatmap is a Heatmap, an array or a heatmap file, not {type(heatmap).__name__}"
    )


__all__ = ["Explorer", "explore"]
