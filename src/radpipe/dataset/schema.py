"""The HDF5 dataset schema (version 1), its single writer and its lazy reader.

Layout::

    /images   (N, H, W) or (N, D, H, W)  image dtype, one chunk per sample, resizable
    /masks    same shape                  uint8 labels, one chunk per sample
    /meta     (N,) compound               patient, series, slice_index, position_mm[3],
                                          spacing_mm[3], has_mask
    attrs     schema, schema_version, mode ("2d" | "3d"), preprocessing (JSON), label_names
              (JSON {"1": "liver", …}: the one label table of the whole file), rejected
              (JSON list of {patient, slice_index, reason})
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radpipe.dataset.labels import table_text
from radpipe.errors import DatasetError
from radpipe.io.atomic import publish_mode, remove_stale_temporaries, temporary_prefix

SCHEMA = "radpipe-dataset"
SCHEMA_VERSION = 1
META_DTYPE = np.dtype(
    [
        ("patient", "S32"),
        ("series", "S80"),
        ("slice_index", "<i4"),
        ("position_mm", "<f8", (3,)),
        ("spacing_mm", "<f8", (3,)),
        ("has_mask", "?"),
    ]
)


@dataclass
class Sample:
    """One training sample: image, mask and where it came from."""

    image: NDArray[Any]
    mask: NDArray[np.uint8]
    patient: str
    series: str
    slice_index: int
    position_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    has_mask: bool


def meta_record(sample: Sample) -> tuple[Any, ...]:
    """The sample's row of the ``meta`` compound dataset."""
    return (
        sample.patient.encode()[:32],
        sample.series.encode()[:80],
        sample.slice_index,
        sample.position_mm,
        sample.spacing_mm,
        sample.has_mask,
    )


class DatasetWriter:
    """The one writer of a dataset file: appends samples; the file appears (or is replaced)
    only when :meth:`close` succeeds, so a failed run leaves the previous file intact."""

    def __init__(
        self,
        path: str | Path,
        *,
        mode: str,
        preprocessing: dict[str, Any],
        label_names: dict[int, str],
        append: bool = False,
        overwrite: bool = False,
        compression: str | None = None,
    ) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise DatasetError(f"{self.path}: the folder {self.path.parent} does not exist")
        if self.path.exists() and not (append or overwrite):
            raise DatasetError(f"{self.path}: exists; pass --append to add patients or --overwrite")
        remove_stale_temporaries(self.path)
        descriptor, temporary = tempfile.mkstemp(
            prefix=temporary_prefix(self.path), suffix=".h5", dir=self.path.parent
        )
        os.close(descriptor)
        self.temporary = Path(temporary)
        self.compression = compression
        self.rejected: list[dict[str, Any]] = []
        self.label_names: dict[int, str] = dict(label_names)
        # samples written in another numbering than the table: (start, stop, their labels)
        self._renumber: list[tuple[int, int, dict[int, str]]] = []
        self._names_seen: set[str] = set()
        if append and self.path.exists():
            check_file(self.path)
            shutil.copyfile(self.path, self.temporary)
            self.file = h5py.File(self.temporary, "r+")
            existing = str(self.file.attrs["mode"])
            if existing != mode:
                self.abort()
                raise DatasetError(
                    f"{self.path}: is a {existing} dataset; append with --mode {existing} "
                    "or build a new file"
                )
            self.rejected = json.loads(self.file.attrs.get("rejected", "[]"))
            existing_table = read_label_names(self.file.attrs)
            if label_names and existing_table and existing_table != dict(label_names):
                self.abort()
                raise DatasetError(
                    f"{self.path}: its label table is {table_text(existing_table)}, not "
                    f"{table_text(label_names)}; append with the same table or build a new file"
                )
            self.label_names = existing_table or dict(label_names)
        else:
            self.file = h5py.File(self.temporary, "w")
            self.file.attrs["schema"] = SCHEMA
            self.file.attrs["schema_version"] = SCHEMA_VERSION
            self.file.attrs["mode"] = mode
            self.file.attrs["preprocessing"] = json.dumps(preprocessing)

    def _create(self, sample: Sample) -> None:
        shape = sample.image.shape
        self.file.create_dataset(
            "images", shape=(0, *shape), maxshape=(None, *shape), dtype=sample.image.dtype,
            chunks=(1, *shape), compression=self.compression,
        )  # fmt: skip
        self.file.create_dataset(
            "masks", shape=(0, *shape), maxshape=(None, *shape), dtype=np.uint8,
            chunks=(1, *shape), compression=self.compression,
        )  # fmt: skip
        self.file.create_dataset(
            "meta", shape=(0,), maxshape=(None,), dtype=META_DTYPE, chunks=(1024,)
        )

    def write(self, samples: list[Sample], *, labels: dict[int, str] | None = None) -> None:
        """Append samples (all of one image shape) whose masks are numbered by ``labels``
        (the file's table when None). Without a table of its own, the file's table is derived
        at :meth:`close` from every name seen, sorted, and earlier samples renumbered."""
        if labels:
            self._names_seen.update(labels.values())
            if self.label_names:
                unknown = sorted(set(labels.values()) - set(self.label_names.values()))
                if unknown:
                    raise DatasetError(
                        f"{self.path}: the label table {table_text(self.label_names)} has no "
                        f"{', '.join(unknown)}"
                    )
        if not samples:
            return
        if "images" not in self.file:
            self._create(samples[0])
        images, masks, meta = self.file["images"], self.file["masks"], self.file["meta"]
        expected = images.shape[1:]
        for sample in samples:
            if sample.image.shape != expected:
                raise DatasetError(
                    f"sample {sample.patient} slice {sample.slice_index} has shape "
                    f"{sample.image.shape}, the dataset {expected}; set a fixed --size"
                )
        start = images.shape[0]
        count = len(samples)
        for dataset in (images, masks, meta):
            dataset.resize(start + count, axis=0)
        images[start:] = np.stack([s.image for s in samples]).astype(images.dtype, copy=False)
        masks[start:] = np.stack([s.mask for s in samples])
        meta[start:] = np.array([meta_record(s) for s in samples], dtype=META_DTYPE)
        if labels and labels != self.label_names:
            self._renumber.append((start, start + count, dict(labels)))

    def reject(self, patient: str, slice_index: int, reason: str) -> None:
        """Record a sample that failed a sanity check."""
        self.rejected.append({"patient": patient, "slice_index": slice_index, "reason": reason})

    def _settle_labels(self) -> None:
        """Fix the table (derived from the names seen when none was given) and renumber the
        samples written in a patient's own numbering, a block at a time."""
        from radpipe.dataset.labels import derive_label_table, lookup_between, relabel

        if not self.label_names:
            self.label_names = derive_label_table(self._names_seen)
        values = {name: value for value, name in self.label_names.items()}
        masks = self.file.get("masks")
        for start, stop, local in self._renumber:
            lookup = lookup_between(local, values)
            if masks is None or all(lookup[v] == v for v in local):
                continue
            block = max(1, (64 << 20) // max(1, int(np.prod(masks.shape[1:]))))
            for first in range(start, stop, block):
                last = min(stop, first + block)
                masks[first:last] = relabel(masks[first:last], lookup)
        self._renumber.clear()
        self.file.attrs["label_names"] = json.dumps(
            {str(k): v for k, v in sorted(self.label_names.items())}
        )

    def close(self) -> Path:
        """Finish the file and rename it into place."""
        self._settle_labels()
        self.file.attrs["rejected"] = json.dumps(self.rejected)
        self.file.close()
        publish_mode(self.temporary)
        os.replace(self.temporary, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the previous dataset (if any) stays as it was."""
        try:
            self.file.close()
        finally:
            self.temporary.unlink(missing_ok=True)


def read_label_names(attrs: Any) -> dict[int, str]:
    """The label table of an open file's attributes (``{}`` when none was stored)."""
    try:
        stored = json.loads(attrs.get("label_names", "{}"))
        return {int(k): str(v) for k, v in sorted(stored.items(), key=lambda kv: int(kv[0]))}
    except (TypeError, ValueError, AttributeError):
        return {}


def check_file(path: str | Path) -> None:
    """Raise DatasetError unless ``path`` is a readable radpipe dataset."""
    import h5py

    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"{source}: no such dataset file; build one with radpipe dataset build")
    try:
        with h5py.File(source, "r") as handle:
            if handle.attrs.get("schema") != SCHEMA:
                raise DatasetError(
                    f"{source}: not a radpipe dataset (schema {handle.attrs.get('schema')!r})"
                )
            version = int(handle.attrs.get("schema_version", 0))
            if version != SCHEMA_VERSION:
                raise DatasetError(
                    f"{source}: dataset schema {version}; this radpipe reads {SCHEMA_VERSION}"
                )
    except OSError as exc:
        raise DatasetError(f"{source}: not a readable HDF5 file ({exc}); rebuild it") from exc


class DatasetReader:
    """Lazy, process-safe access: the HDF5 file opens on first use in each process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        check_file(self.path)
        self._file: Any = None
        self._pid = -1
        with self._open() as handle:
            self.length = int(handle["images"].shape[0]) if "images" in handle else 0
            self.sample_shape = tuple(handle["images"].shape[1:]) if "images" in handle else ()
            self.meta = handle["meta"][:] if "meta" in handle else np.zeros(0, META_DTYPE)
            self.attrs = {k: handle.attrs[k] for k in handle.attrs}
        self.label_names = read_label_names(self.attrs)
        """The file's label table, e.g. ``{1: "liver", 2: "tumor"}``."""

    def _open(self) -> Any:
        import h5py

        return h5py.File(self.path, "r")

    @property
    def file(self) -> Any:
        """The open file of this process (reopened after a fork)."""
        if self._file is None or self._pid != os.getpid():
            self._file = self._open()
            self._pid = os.getpid()
        return self._file

    def __len__(self) -> int:
        return self.length

    def read(
        self, indices: list[int] | NDArray[np.integer]
    ) -> tuple[NDArray[Any], NDArray[np.uint8]]:
        """Images and masks of some samples.

        Files written by radpipe hold one unfiltered chunk per sample: its bytes are the
        sample, so they are read straight into the output arrays at the chunk's file offset
        (one ``preadv`` each, no HDF5 call, the GIL released). Other layouts go through h5py.
        """
        images_ds, masks_ds = self.file["images"], self.file["masks"]
        count = len(indices)
        images = np.empty((count, *self.sample_shape), dtype=images_ds.dtype)
        masks = np.empty((count, *self.sample_shape), dtype=np.uint8)
        table = self._chunk_table()
        if table is not None:
            descriptor, image_offsets, mask_offsets = table
            for position, index in enumerate(indices):
                sample = int(index)
                _read_at(descriptor, images[position], int(image_offsets[sample]))
                _read_at(descriptor, masks[position], int(mask_offsets[sample]))
            return images, masks
        for position, index in enumerate(indices):
            sample = int(index)
            images_ds.read_direct(images, np.s_[sample], np.s_[position])
            masks_ds.read_direct(masks, np.s_[sample], np.s_[position])
        return images, masks

    def _chunk_table(self) -> tuple[int, NDArray[np.int64], NDArray[np.int64]] | None:
        """(file descriptor, image chunk offsets, mask chunk offsets) of this process, or None
        when the samples are not stored one raw chunk each."""
        cached = self.__dict__.get("_table")
        if cached is not None and cached[0] == os.getpid():
            found: tuple[int, NDArray[np.int64], NDArray[np.int64]] | None = cached[1]
            return found
        table = None
        images_ds, masks_ds = self.file["images"], self.file["masks"]
        if all(self._raw_chunks(d) for d in (images_ds, masks_ds)):
            image_offsets = _chunk_offsets(images_ds, self.length)
            mask_offsets = _chunk_offsets(masks_ds, self.length)
            if image_offsets is not None and mask_offsets is not None:
                table = (os.open(self.path, os.O_RDONLY), image_offsets, mask_offsets)
        self.__dict__["_table"] = (os.getpid(), table)
        return table

    def close(self) -> None:
        """Close this process's handles (reading again reopens them)."""
        cached = self.__dict__.pop("_table", None)
        if cached is not None and cached[0] == os.getpid() and cached[1] is not None:
            os.close(cached[1][0])
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at shutdown the handles go with the process
            self.close()

    def _raw_chunks(self, dataset: Any) -> bool:
        key = dataset.name
        cache: dict[str, bool] = self.__dict__.setdefault("_raw", {})
        if key not in cache:
            cache[key] = (
                dataset.chunks == (1, *self.sample_shape)
                and dataset.compression is None
                and not dataset.shuffle
                and not dataset.fletcher32
                and dataset.dtype.isnative
            )
        return cache[key]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        state.pop("_table", None)
        return state


def _chunk_offsets(dataset: Any, length: int) -> NDArray[np.int64] | None:
    """The file offset of each sample's chunk, or None if one is missing or not whole."""
    offsets = np.full(length, -1, dtype=np.int64)
    expected = int(np.prod(dataset.shape[1:])) * dataset.dtype.itemsize
    whole = [True]

    def visit(info: Any) -> None:
        offsets[info.chunk_offset[0]] = info.byte_offset
        whole[0] = whole[0] and info.size == expected and info.filter_mask == 0

    try:
        dataset.id.chunk_iter(visit)
    except (AttributeError, RuntimeError):  # HDF5 before 1.12.3
        return None
    return offsets if whole[0] and (offsets >= 0).all() else None


def _read_at(descriptor: int, target: NDArray[Any], offset: int) -> None:
    """Fill ``target`` (C-contiguous) with the bytes at ``offset`` of the file."""
    view = target.reshape(-1).view(np.uint8).data
    done = 0
    while done < view.nbytes:
        got = os.preadv(descriptor, [view[done:]], offset + done)
        if got <= 0:
            raise DatasetError(f"a sample chunk at byte {offset} ends early: the file is truncated")
        done += got
