"""Siemens mosaics (classic EPI, DWI and fMRI): each file holds every slice of one time point
tiled in one image; nibabel's MosaicWrapper reads the CSA header (images per mosaic, slice
normal) and unpacks them with dcm2niix's geometry. Files of one series become a time series."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from radpipe.errors import ReadError, SeriesError
from radpipe.volume import Volume


def _wrapper(location: str) -> Any:
    import pydicom
    from nibabel.nicom import dicomwrappers

    from radpipe.io.sources import open_source

    try:
        with open_source(location) as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(handle)
            if dataset.file_meta.TransferSyntaxUID.is_compressed:
                dataset.decompress()  # nibabel reads native pixel data
            wrapper = dicomwrappers.wrapper_from_data(dataset)
    except Exception as exc:  # pydicom and nibabel raise many types for damaged files
        raise ReadError(f"{location}: cannot read the Siemens mosaic ({exc})") from None
    if type(wrapper).__name__ != "MosaicWrapper":
        raise ReadError(f"{location}: not a Siemens mosaic nibabel can unpack")
    return wrapper


def read_mosaic_series(files: Sequence[str], *, series: str | None = None) -> Volume:
    """Unpack the mosaic files of one series into (S, R, C) or (S, R, C, T).

    Parameters
    ----------
    files : locations of mosaic DICOM files
    series : SeriesInstanceUID when the files hold several series

    Raises
    ------
    SeriesError
        When the files hold several series and ``series`` does not pick one, or the time points
        disagree in geometry.
    """
    from radpipe.io.dicom.headers import meta_from_header

    wrappers = [(location, _wrapper(location)) for location in files]
    uids = sorted({str(w.dcm_data.SeriesInstanceUID) for _, w in wrappers})
    if series is not None:
        wrappers = [(f, w) for f, w in wrappers if str(w.dcm_data.SeriesInstanceUID) == series]
        if not wrappers:
            raise SeriesError(f"no mosaic series {series!r}; available: {', '.join(uids)}")
    elif len(uids) > 1:
        raise SeriesError(
            f"{len(uids)} mosaic series here, choose one with series=UID / --series UID: "
            f"{', '.join(uids)}"
        )

    def order(item: tuple[str, Any]) -> tuple[float, float]:
        data = item[1].dcm_data
        return (
            float(data.get("AcquisitionNumber", 0) or 0),
            float(data.get("InstanceNumber", 0) or 0),
        )

    wrappers.sort(key=order)
    volumes, affines = [], []
    for _, wrapper in wrappers:
        data = np.asarray(wrapper.get_data())  # (rows, columns, slices), rescaled
        volumes.append(np.transpose(data, (2, 0, 1)))  # radpipe: (slice, row, column)
        affines.append(np.asarray(wrapper.affine, dtype=np.float64)[:, [2, 0, 1, 3]])
    if any(not np.allclose(a, affines[0], atol=1e-3) for a in affines[1:]):
        raise SeriesError(f"{files[0]}: the mosaics of this series disagree in geometry")
    if any(v.shape != volumes[0].shape for v in volumes[1:]):
        raise SeriesError(f"{files[0]}: the mosaics of this series differ in size")
    array = volumes[0] if len(volumes) == 1 else np.stack(volumes, axis=-1)
    first = wrappers[0][1].dcm_data
    timing, phase = _acquisition_facts(wrappers[0][1], len(volumes[0]))
    meta = meta_from_header(
        first,
        extra_axis="time" if len(volumes) > 1 else None,
        source_files=tuple(location for location, _ in wrappers),
        slice_spacing_regular=True,
        slice_timing_s=timing,
        phase_encoding_direction=phase,
    )
    return Volume(np.ascontiguousarray(array), affines[0], meta=meta)


def _acquisition_facts(wrapper: Any, slices: int) -> tuple[tuple[float, ...], str | None]:
    """Slice timing (s, from the CSA header's MosaicRefAcqTimes) and the BIDS phase-encoding
    direction as dcm2niix writes it (ROW → ``i``, COL → ``j``; the sign from the CSA header's
    PhaseEncodingDirectionPositive, inverted along ``j`` because the NIfTI rows run flipped)."""
    from nibabel.nicom import csareader

    csa = getattr(wrapper, "csa_header", None) or {"tags": {}}
    timing: tuple[float, ...] = ()
    try:
        times = csareader.get_vector(csa, "MosaicRefAcqTimes", slices)
        if times is not None:
            timing = tuple(round(float(t) / 1000.0, 6) for t in times)
    except (KeyError, ValueError, csareader.CSAReadError):
        timing = ()
    axis = str(wrapper.dcm_data.get("InPlanePhaseEncodingDirection", "") or "").strip()
    positive = None
    if "PhaseEncodingDirectionPositive" in csa.get("tags", {}):
        try:
            positive = int(csareader.get_scalar(csa, "PhaseEncodingDirectionPositive"))
        except (KeyError, ValueError, TypeError):
            positive = None
    phase = None
    if axis in ("ROW", "COL") and positive in (0, 1):
        letter = "i" if axis == "ROW" else "j"
        negative = (positive == 0) if letter == "i" else (positive == 1)
        phase = letter + ("-" if negative else "")
    return timing, phase
